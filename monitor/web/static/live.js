// bearwatch live pages: short polls (never while the tab is hidden) that add new events and samples, and
// refresh each camera's state and latest frame, without reloading the page.
"use strict";

(function () {
  const root = document.body.dataset.root || "";
  const page = document.body.dataset.page;
  const NEWS_MS = 4000;    // queue and audit: "anything new?"
  const CAMERAS_MS = 3000; // cameras: state and latest frame
  let timer = null;
  let last = null;         // the last answer of /api/live, as a string
  let stopped = false;

  if (page !== "queue" && page !== "audit" && page !== "cameras") return;

  async function getJSON(path) {
    const res = await fetch(root + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.status === 401) { stopped = true; return null; } // signed out: stop asking
    return res.ok ? res.json() : null;
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(tick, ms);
  }

  async function tick() {
    if (document.hidden) return; // picked up again by visibilitychange
    try {
      if (page === "cameras") await cameras();
      else await news();
    } catch (e) { /* the next poll tries again */ }
    schedule(page === "cameras" ? CAMERAS_MS : NEWS_MS);
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(0); });

  async function news() {
    const data = await getJSON("/api/live");
    if (!data) return;
    const sig = [data.latest_event_id, data.pending, data.latest_audit_id].join(":");
    if (sig === last) return;
    const first = last === null;
    last = sig;
    const count = document.getElementById("pending-count");
    if (count && !first) count.textContent = String(data.pending);
    await merge();
  }

  // Fetch this very page again and add the items it lists that this copy does not show yet.
  async function merge() {
    if (new URLSearchParams(window.location.search).has("before_id")) return; // an older page: nothing new lands here
    const res = await fetch(window.location.href, { credentials: "same-origin" });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.querySelector("main ol.queue");
    if (!fresh) return;
    let list = document.querySelector("main ol.queue");
    const added = [];
    if (!list) {
      const empty = document.querySelector("main p.empty");
      if (!empty) return;
      list = document.importNode(fresh, false);
      empty.replaceWith(list);
    }
    // Only items newer than every one shown: an older one the fresh copy lists (it moved up
    // because a verdict took another off the pending list) belongs further down, not on top.
    const newest = Math.max(0, ...Array.from(list.children).map(function (li) { return Number(li.dataset.id) || 0; }));
    const items = Array.from(fresh.children).filter(function (li) { return Number(li.dataset.id) > newest; });
    items.reverse().forEach(function (li) {
      const node = document.importNode(li, true);
      node.classList.add("new");
      list.prepend(node);
      added.push(node);
    });
    if (added.length) {
      document.dispatchEvent(new CustomEvent("bearwatch:added", { detail: added.reverse() }));
      const say = document.getElementById("live-say");
      if (say) say.textContent = added.length + " new";
    }
  }

  function setText(box, key, text) {
    const el = box.querySelector('[data-k="' + key + '"]');
    if (el) el.textContent = text;
    return el;
  }

  function num(x) { return x === null || x === undefined ? "—" : String(x); }

  async function cameras() {
    const data = await getJSON("/api/cameras/live");
    if (!data) return;
    Object.keys(data.cameras).forEach(function (cam) {
      const l = data.cameras[cam];
      const box = document.querySelector('[data-live-camera="' + CSS.escape(cam) + '"]');
      if (!box) return;
      const status = setText(box, "status", l.status || "—");
      if (status) status.className = "badge cam-status " + (l.status || "");
      setText(box, "age", l.seconds_since_frame === null ? "none yet" : l.seconds_since_frame.toFixed(1) + " s ago");
      setText(box, "fps", num(l.fps_in) + " / " + num(l.fps_classified));
      const drops = Object.keys(l.dropped).map(function (k) { return k + " " + l.dropped[k]; });
      setText(box, "dropped", drops.length ? drops.join(", ") : "none");
      setText(box, "drift", (l.drift || "—") + (l.drift_flags.length ? " (" + l.drift_flags.join(", ") + ")" : ""));
      const img = box.querySelector("img[data-src]");
      if (img && l.frame_at && String(l.frame_at) !== img.dataset.at) {
        img.dataset.at = String(l.frame_at);
        img.src = img.dataset.src + "?at=" + encodeURIComponent(l.frame_at);
        img.hidden = false;
        setText(box, "frame", "captured " + new Date(l.frame_at * 1000).toISOString().slice(11, 19) + " UTC");
      }
    });
  }

  schedule(0);
})();
