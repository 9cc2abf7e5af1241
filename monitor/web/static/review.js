// bearwatch review pages: keyboard-first verdicts and JSON form posts. No framework, no build step.
"use strict";

(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const root = document.body.dataset.root || "";

  // Every state change goes through here: JSON body, CSRF header, error text from the server.
  async function post(path, body) {
    const res = await fetch(root + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const detail = data && (data.details ? data.details.join("; ") : data.error);
      throw new Error(detail || res.status + " " + res.statusText);
    }
    return data;
  }

  function say(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  // <form data-api="/api/..."> posts its fields as JSON; empty fields are sent as null.
  document.querySelectorAll("form[data-api]").forEach(bindForm);
  // Items the live poll adds (live.js) get the same handlers.
  document.addEventListener("bearwatch:added", function (ev) {
    ev.detail.forEach(function (li) { li.querySelectorAll("form[data-api]").forEach(bindForm); });
  });

  function bindForm(form) {
    if (form.dataset.keep) return; // audit label forms: audit() below handles them, keys included
    if (form.querySelector("button[name=label]")) {
      // Enter in the note would submit with the first label button: make the human pick one.
      form.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && ev.target.matches("input")) {
          ev.preventDefault();
          say(form.querySelector(".say"), "pick a label");
        }
      });
    }
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const out = form.querySelector(".say");
      const body = {};
      new FormData(form, ev.submitter).forEach(function (v, k) { body[k] = v === "" ? null : v; });
      say(out, "saving…");
      try {
        await post(form.dataset.api, body);
        if (form.dataset.keep) {
          form.querySelectorAll("button[name=label]").forEach(function (b) {
            b.classList.toggle("on", b.value === body.label);
          });
          form.closest("li").classList.add("reviewed");
          say(out, "labelled " + body.label);
        } else {
          window.location.reload();
        }
      } catch (e) {
        say(out, e.message, true);
      }
    });
  }

  if (document.body.dataset.page === "queue") queue();
  if (document.body.dataset.page === "audit") audit();

  // The audit page: the queue's keyboard flow for labels. A card may stand for a run of
  // look-alike frames (data-ids): its label goes to every frame of the run.
  function audit() {
    let items = Array.from(document.querySelectorAll("#audit > li.ev"));
    const help = document.getElementById("help");
    const done = [];  // [{li, ids, before}] labels given from this page, newest last: z takes them back
    let idx = Math.max(0, items.findIndex(function (li) { return !li.dataset.label; }));
    let busy = false;

    function select(i, quiet) {
      if (!items.length) return;
      idx = Math.min(Math.max(i, 0), items.length - 1);
      items.forEach(function (li, j) { li.classList.toggle("sel", j === idx); });
      if (!quiet) items[idx].scrollIntoView({ block: "nearest" });
    }

    function show(li, label, text, isError) {
      li.dataset.label = label || "";
      li.classList.toggle("reviewed", Boolean(label));
      li.querySelectorAll("button[name=label]").forEach(function (b) { b.classList.toggle("on", b.value === label); });
      say(li.querySelector(".say"), text, isError);
    }

    async function label(li, value) {
      if (busy || !li) return;
      busy = true;
      const ids = li.dataset.ids.split(" ");
      const note = li.querySelector("input[name=note]").value.trim() || null;
      const before = li.dataset.label || null;
      say(li.querySelector(".say"), "saving…");
      try {
        for (const id of ids) await post("/api/audit/" + id + "/label", { label: value, note: note });
        done.push({ li: li, ids: ids, before: before });
        show(li, value, "labelled " + value + (ids.length > 1 ? " (" + ids.length + " frames)" : ""));
        if (items.indexOf(li) === idx && idx < items.length - 1) select(idx + 1);
      } catch (e) {
        say(li.querySelector(".say"), e.message, true);
      } finally {
        busy = false;
      }
    }

    async function undo() {
      if (busy || !done.length) return;
      busy = true;
      const last = done[done.length - 1];
      try {
        for (const id of last.ids) {
          if (last.before) await post("/api/audit/" + id + "/label", { label: last.before });
          else await post("/api/audit/" + id + "/unlabel");
        }
        done.pop();
        show(last.li, last.before, last.before ? "back to " + last.before : "label taken back");
        select(items.indexOf(last.li));
      } catch (e) {
        say(last.li.querySelector(".say"), e.message, true);
      } finally {
        busy = false;
      }
    }

    function bind(li) {
      li.addEventListener("click", function () { select(items.indexOf(li), true); });
      const form = li.querySelector("form");
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        if (ev.submitter && ev.submitter.name === "label") label(li, ev.submitter.value);
      });
      form.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && ev.target.matches("input")) {
          ev.preventDefault();
          say(form.querySelector(".say"), "pick a label");
        }
      });
    }
    items.forEach(bind);
    document.addEventListener("bearwatch:added", function (ev) {
      const current = items[idx];
      items = Array.from(document.querySelectorAll("#audit > li.ev"));
      ev.detail.forEach(bind);
      idx = current ? items.indexOf(current) : 0;
      select(idx, true);
    });
    document.querySelectorAll("[data-help]").forEach(function (b) {
      b.addEventListener("click", function () { help.showModal(); });
    });

    function next() { select(idx + 1); }
    function prev() { select(idx - 1); }
    const keys = {
      j: next, ArrowDown: next, s: next, k: prev, ArrowUp: prev, z: undo,
      n: function () { const li = items[idx]; if (li) li.querySelector("input[name=note]").focus(); },
      "?": function () { help.showModal(); },
    };

    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || help.open) return;
      if (ev.target.matches("input, select, textarea")) {
        if (ev.key === "Escape") { ev.target.blur(); ev.preventDefault(); }
        return;
      }
      const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
      const li = items[idx];
      const buttons = li ? Array.from(li.querySelectorAll("button[name=label]")) : [];
      const digit = /^[1-9]$/.test(key) ? Number(key) : 0;
      if (digit && digit <= buttons.length) {
        label(li, buttons[digit - 1].value);
      } else if (keys[key]) {
        keys[key]();
      } else {
        return;
      }
      ev.preventDefault();
    });
    select(idx, true);
  }

  function queue() {
    let items = Array.from(document.querySelectorAll("#queue > li.ev"));
    const bar = document.getElementById("bar");
    const out = document.getElementById("say");
    const note = document.getElementById("note");
    const relabel = document.getElementById("relabel");
    const help = document.getElementById("help");
    const reasonButtons = Array.from(bar.querySelectorAll("button[data-reason]"));
    let idx = Math.max(0, items.findIndex(function (li) { return li.dataset.status === "pending"; }));
    let reason = null;   // chosen reason code
    let waiting = null;  // a verdict that still needs a reason or a label
    let busy = false;
    const given = [];    // ids given a verdict from this page, newest last: z walks back through them

    function select(i, quiet) {
      if (!items.length) return;
      idx = Math.min(Math.max(i, 0), items.length - 1);
      items.forEach(function (li, j) { li.classList.toggle("sel", j === idx); });
      if (!quiet) items[idx].scrollIntoView({ block: "nearest" });
      const details = items[idx].querySelector("details.history");
      if (details.open) loadHistory(items[idx]);
    }

    function pickReason(code) {
      reason = reason === code && !waiting ? null : code;
      reasonButtons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.reason === reason)); });
      if (waiting && reason) submit(waiting);
    }

    function reset() {
      waiting = null;
      bar.classList.remove("ask");
      reason = null;
      reasonButtons.forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      note.value = "";
      relabel.value = "";
    }

    function show(li, data) {
      const ev = data.event;
      const count = document.getElementById("pending-count");
      const was = li.dataset.status === "pending", now = ev.review_status === "pending";
      if (count && was !== now) count.textContent = String(Number(count.textContent) + (now ? 1 : -1));
      li.dataset.status = ev.review_status;
      li.classList.toggle("reviewed", ev.review_status !== "pending");
      const badge = li.querySelector(".badge.status");
      badge.className = "badge status " + ev.review_status;
      badge.textContent = ev.review_status;
      let line = "";
      if (ev.reviewer) {
        line = ev.review_status + (ev.relabel ? " → " + ev.relabel : "") + " by " + ev.reviewer +
          (ev.reason_code ? " · " + ev.reason_code : "");
      }
      li.querySelector(".verdict-line").textContent = line;
      if (data.history) fillHistory(li, data.history);
    }

    function fillHistory(li, rows) {
      const list = li.querySelector("ol.hist");
      list.replaceChildren();
      rows.forEach(function (h) {
        const item = document.createElement("li");
        const what = document.createElement("b");
        what.textContent = h.status + (h.relabel ? " → " + h.relabel : "");
        item.append(what, " by " + h.reviewer + ", " + h.reviewed_at.slice(0, 19).replace("T", " ") + " UTC" +
          (h.reason_code ? " · " + h.reason_code : "") + (h.note ? " — " + h.note : ""));
        list.append(item);
      });
      if (!rows.length) list.textContent = "No verdicts yet.";
    }

    async function loadHistory(li) {
      try {
        const res = await fetch(root + "/api/events/" + li.dataset.id + "/history", { credentials: "same-origin" });
        if (res.ok) fillHistory(li, (await res.json()).history);
      } catch (e) { /* the list just stays as it was */ }
    }

    async function submit(status) {
      const li = items[idx];
      if (!li || busy) return;
      const label = relabel.value.trim();
      if (status === "relabelled" && !label) {
        waiting = status;
        say(out, "Relabel: type the new label, then Enter");
        relabel.focus();
        return;
      }
      if (status !== "confirmed" && !reason) {
        waiting = status;
        bar.classList.add("ask");
        say(out, status + ": pick a reason — press 1–" + reasonButtons.length + " (Esc cancels)");
        return;
      }
      const body = { status: status, reason_code: reason, note: note.value.trim() || null,
        relabel: status === "relabelled" ? label : null };
      busy = true;
      try {
        show(li, await post("/api/events/" + li.dataset.id + "/verdict", body));
        given.push(li.dataset.id);
        say(out, "#" + li.dataset.id + " " + status + (reason ? " · " + reason : "") + (body.relabel ? " → " + body.relabel : ""));
        reset();
        if (idx < items.length - 1) select(idx + 1);
      } catch (e) {
        say(out, e.message, true);
      } finally {
        busy = false;
      }
    }

    async function undo() {
      if (busy) return;
      const id = given.length ? given[given.length - 1] : (items[idx] && items[idx].dataset.id);
      const li = items.find(function (x) { return x.dataset.id === id; });
      if (!li) return;
      busy = true;
      try {
        const data = await post("/api/events/" + id + "/undo");
        if (given.length) given.pop();
        show(li, data);
        select(items.indexOf(li));
        say(out, "#" + id + " back to " + data.event.review_status);
      } catch (e) {
        say(out, e.message, true);
      } finally {
        busy = false;
      }
    }

    function toggleHistory() {
      const details = items[idx] && items[idx].querySelector("details.history");
      if (details) details.open = !details.open;
    }

    function bind(li) {
      li.addEventListener("click", function () { select(items.indexOf(li)); });
      li.querySelector("details.history").addEventListener("toggle", function (ev) {
        if (ev.target.open) loadHistory(li);
      });
    }
    items.forEach(bind);
    // New events from the live poll go on top; the selection stays on the same event.
    document.addEventListener("bearwatch:added", function (ev) {
      const current = items[idx];
      items = Array.from(document.querySelectorAll("#queue > li.ev"));
      ev.detail.forEach(bind);
      if (current) idx = items.indexOf(current);
      else idx = Math.max(0, items.findIndex(function (li) { return li.dataset.status === "pending"; }));
      select(idx, true);
    });
    reasonButtons.forEach(function (b) { b.addEventListener("click", function () { pickReason(b.dataset.reason); }); });
    bar.querySelectorAll("button[data-verdict]").forEach(function (b) {
      b.addEventListener("click", function () { submit(b.dataset.verdict); });
    });
    bar.querySelector("button[data-undo]").addEventListener("click", undo);
    document.querySelectorAll("[data-help]").forEach(function (b) {
      b.addEventListener("click", function () { help.showModal(); });
    });

    function next() {
      if (idx === items.length - 1) {
        const more = document.querySelector(".more a");
        say(out, more ? "Last event on this page: “Older events” below has more" : "Last event on this page");
      }
      select(idx + 1);
    }

    const keys = {
      j: next, ArrowDown: next,
      k: function () { select(idx - 1); }, ArrowUp: function () { select(idx - 1); },
      c: function () { submit("confirmed"); }, r: function () { submit("rejected"); },
      u: function () { submit("unsure"); }, l: function () { submit("relabelled"); },
      z: undo, h: toggleHistory, n: function () { note.focus(); },
      "?": function () { help.showModal(); },
      Escape: function () { reset(); say(out, ""); },
    };

    function onInputKey(ev) {
      const field = ev.target;
      if (ev.key === "Escape") {
        field.blur();
      } else if (ev.key === "Enter" && (field === relabel || field === note)) {
        field.blur();
        if (field === relabel) submit("relabelled");
        else if (waiting) submit(waiting);
      } else {
        return;
      }
      ev.preventDefault();
    }

    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || help.open) return;
      if (ev.target.matches("input, select, textarea")) {
        onInputKey(ev);
        return;
      }
      // Shift is forgiven: the legend shows capitals, as keyboards do.
      const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
      const digit = /^[1-9]$/.test(key) ? Number(key) : 0;
      if (digit && digit <= reasonButtons.length) {
        pickReason(reasonButtons[digit - 1].dataset.reason);
      } else if (keys[key]) {
        keys[key]();
      } else {
        return;
      }
      ev.preventDefault();
    });

    // A phone has no room to keep the filters open; a laptop shows them always (see the CSS).
    const filterBox = document.querySelector("details.filter-box");
    if (filterBox && window.matchMedia("(max-width: 40rem)").matches) filterBox.open = false;
    select(idx, true);  // no jump on load: the filters stay in view
  }
})();
