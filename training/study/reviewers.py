"""Simulated reviewers: people who know the truth, working through the review web's own HTTP API.

They use what the review page uses: the real app on a real loopback server,
a session cookie, the page's CSRF token, ``GET /api/events`` and
``/api/audit``, ``POST …/verdict`` and ``…/label``. Only the decisions are
simulated, from the footage's truth:

* an alert is confirmed when a bear shows (even partly) at any frame of the
  event, else rejected — ``wrong-class`` when a person does, ``not-an-animal``
  on an empty scene; night cameras' verdicts carry ``night-ir``;
* an audit sample is labelled with what its frame shows (a sliver counts as
  its subject, a subject all but hidden as an empty scene).

The budget is spread so no camera or stratum is starved: alerts round-robin
over cameras in time order, audit samples round-robin over strata, then
cameras, oldest first.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest
from typing import Any

from monitor.decide.audit import STRATA
from monitor.metrics import Metrics
from monitor.store import ReviewStore
from monitor.web.app import WebServer, create_app
from training.study.footage import HIDDEN, PARTIAL, label_at

Truth = Mapping[str, Mapping[str, object]]
REVIEWER = "study-reviewer"


class ApiClient:
    """A browser-like client of the review web: one session, its CSRF token, JSON in and out."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = self._opener.open(base + "/", timeout=30).read().decode()
        found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
        if not found:
            raise RuntimeError("the review page carries no CSRF token")
        self._csrf = found.group(1)

    def get(self, path: str) -> Any:
        with self._opener.open(self.base + path, timeout=30) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": self._csrf},
            method="POST",
        )
        with self._opener.open(req, timeout=30) as resp:
            return json.loads(resp.read())

    def pages(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every row of a ``before_id``-paginated list."""
        rows: list[dict[str, Any]] = []
        before: int | None = None
        while True:
            sep = "&" if "?" in path else "?"
            page = self.get(path + (f"{sep}before_id={before}" if before else ""))
            rows += page[key]
            before = page.get("next_before_id")
            if not before:
                return rows


def _round_robin(groups: Iterable[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for tier in zip_longest(*groups) for row in tier if row is not None]


def _by(rows: Sequence[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row[key]), []).append(row)
    return out


def _event_truth(ev: Mapping[str, Any], truth: Truth, first: Mapping[str, float]) -> set[str]:
    """What shows at any frame of the event (a sliver counts as its walk's subject)."""
    cam = str(ev["camera"])
    start = float(ev["start_at_epoch"]) - first[cam]
    end = float(ev["end_at_epoch"] or ev["start_at_epoch"]) - first[cam]
    fps = float(truth[cam]["fps"])  # type: ignore[arg-type]
    n = int(round((end - start) * fps)) + 1
    return {_shows(truth, cam, start + i / fps) for i in range(n)}


def verdict_for(seen: set[str], night: bool) -> dict[str, Any]:
    """The verdict a reviewer who sees ``seen`` gives an alert (bear alerts)."""
    if "bear" in seen:
        return {"status": "confirmed", "reason_code": "night-ir" if night else "clear"}
    if "person" in seen:
        return {"status": "rejected", "reason_code": "wrong-class"}
    return {"status": "rejected", "reason_code": "night-ir" if night else "not-an-animal"}


def review(
    store: ReviewStore,
    truth: Truth,
    first: Mapping[str, float],
    labels: Sequence[str],
    verdicts: int,
    audit_labels: int,
) -> dict[str, Any]:
    """Serve the review web for ``store`` on loopback and spend the budget; returns what was done.

    Args:
        truth: the footage's per-frame truth (``footage.write_footage``).
        first: per camera, the captured time of its first frame (the file's start).
        labels: the model's labels (the page's label choices).
        verdicts: alerts to judge at most.
        audit_labels: audit samples to label at most.
    """
    server = WebServer(
        create_app(store, Metrics(), lambda: {"ok": True}, labels=labels), "127.0.0.1", 0
    )
    server.start()
    try:
        api = ApiClient(f"http://127.0.0.1:{server.port}")
        events = api.pages("/api/events?kind=alert&limit=200", "events")
        events.sort(key=lambda e: (e["camera"], e["start_at_epoch"], e["id"]))
        spent: Counter[str] = Counter()
        for ev in _round_robin(_by(events, "camera").values())[:verdicts]:
            night = bool(truth[ev["camera"]]["night"])
            body = verdict_for(_event_truth(ev, truth, first), night)
            api.post(f"/api/events/{ev['id']}/verdict", body)
            spent[f"{body['status']}:{body['reason_code']}"] += 1
        samples = api.pages("/api/audit?labelled=false&limit=200", "samples")
        samples.sort(key=lambda s: (s["camera"], s["captured_at_epoch"], s["id"]))
        strata = _by(samples, "reason")
        queue = _round_robin(
            _round_robin(_by(strata.get(s, []), "camera").values()) for s in STRATA
        )
        labelled: Counter[str] = Counter()
        shown: Counter[str] = Counter()
        for s in queue[:audit_labels]:
            label = _shows(truth, s["camera"], float(s["captured_at_epoch"]) - first[s["camera"]])
            api.post(f"/api/audit/{s['id']}/label", {"label": label})
            labelled[s["reason"]] += 1
            shown[label] += 1
    finally:
        server.stop(5.0)
    return {
        "alerts": len(events),
        "audit_samples": len(samples),
        "verdicts": dict(sorted(spent.items())),
        "verdicts_spent": sum(spent.values()),
        "audit_labels_by_stratum": {s: labelled[s] for s in STRATA},
        "audit_labels_by_label": dict(sorted(shown.items())),
        "audit_labels_spent": sum(labelled.values()),
        "audit_available_by_stratum": {s: len(strata.get(s, [])) for s in STRATA},
    }


def _shows(truth: Truth, cam: str, offset_s: float) -> str:
    """What a person sees in the frame: a sliver is its walk's subject (the next frames say which)."""
    seen = label_at(truth, cam, offset_s)
    if seen == HIDDEN:
        return "empty"
    if seen != PARTIAL:
        return seen
    fps = float(truth[cam]["fps"])  # type: ignore[arg-type]
    for step in range(1, 40):
        for sign in (1, -1):
            near = label_at(truth, cam, offset_s + sign * step / fps)
            if near in ("bear", "person"):
                return near
    return "empty"
