"""``bearwatch levers``: what other decision settings would have done on a camera's logged scores, and which to use.

Reads the score log and the human labels from the store, replays the scores
through the real policy for a bounded grid of settings (``monitor.decide.levers``),
and recommends one against a stated objective. It changes nothing: ``--apply``
writes a config fragment for a person to merge, and records the
recommendation for the review page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.config import DecisionConfig
from monitor.decide.levers import (
    MAX_GRID,
    AuditLabel,
    LeverInputs,
    Outcome,
    Recommendation,
    Review,
    Setting,
    compress,
    evaluate,
    grid,
    recommend,
)
from monitor.errors import UsageError
from monitor.report.periods import stratum_population
from monitor.store import ReviewStore

FALSE_STATUSES = ("rejected", "relabelled")


@dataclass(frozen=True, slots=True)
class LeverReport:
    camera: str
    label: str
    frames: int
    days: float
    labelled: int
    settings_tried: int
    recommendation: Recommendation

    def as_json(self) -> dict[str, Any]:
        rec = self.recommendation
        return {
            "camera": self.camera,
            "label": self.label,
            "frames": self.frames,
            "days": round(self.days, 4),
            "labels_used": self.labelled,
            "settings_tried": self.settings_tried,
            "objective": "at most N false alerts a day, then the highest recall",
            "current": rec.current.as_json(),
            "recommended": rec.recommended.as_json(),
            "pareto": [o.as_json() for o in rec.front],
            "warning": rec.warning,
        }


def load_inputs(
    store: ReviewStore,
    camera: str,
    label: str,
    since: float | None = None,
    until: float | None = None,
    random_rate: float = 0.01,
) -> LeverInputs:
    """The camera's logged scores for ``label`` and every human label in the range.

    Raises:
        UsageError: when the camera has no score log in the range, or the log lacks ``label``.
    """
    chunks = [s for s in store.score_log.read(camera, since, until)]
    if not chunks:
        known = ", ".join(store.score_log.cameras()) or "none"
        raise UsageError(
            f"camera {camera} has no score log in that range (cameras with one: {known})"
        )
    usable = [s for s in chunks if label in s.labels]
    if not usable:
        raise UsageError(f"the score log of camera {camera} has no label {label!r}")
    at = np.concatenate([s.at for s in usable])
    scores = np.concatenate([s.scores[:, s.labels.index(label)] for s in usable])
    order = np.argsort(at, kind="stable")
    at, scores = at[order], scores[order]
    lo, hi = float(at[0]), float(at[-1]) + 1.0
    reviews = []
    for ev in store.iter_events(camera=camera, kind="alert", since=lo, until=hi):
        status = ev["review_status"]
        if ev["label"] != label or status not in ("confirmed", *FALSE_STATUSES):
            continue
        is_true = status == "confirmed" or (status == "relabelled" and ev["relabel"] == label)
        end = ev["end_at"] if ev["end_at"] is not None else ev["start_at"]
        reviews.append(Review(float(ev["start_at"]), float(end), is_true))
    samples = _all_audits(store, camera, lo, hi)
    populations: dict[str, float] = {}
    for row in store.camera_stats(lo, hi):
        if row["camera"] == camera:
            for name, n in ((row.get("audit") or {}).get("population") or {}).items():
                populations[name] = populations.get(name, 0.0) + float(n)
    audits = []
    for name in {s["reason"] for s in samples}:
        rows = [s for s in samples if s["reason"] == name]
        labelled = [s for s in rows if s["label"] is not None]
        if not labelled:
            continue
        weight = stratum_population(name, len(rows), populations.get(name), random_rate) / len(
            labelled
        )
        audits += [
            AuditLabel(float(s["captured_at"]), s["label"] == label, weight) for s in labelled
        ]
    return LeverInputs(
        camera, label, at, scores, tuple(reviews), tuple(sorted(audits, key=lambda a: a.at))
    )


def _all_audits(
    store: ReviewStore, camera: str, since: float, until: float
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    before = None
    while True:
        page = store.list_audit_samples(
            camera=camera, since=since, until=until, limit=1000, before_id=before
        )
        out += page
        if len(page) < 1000:
            return out
        before = int(page[-1]["id"])


def frames_per_visit(inputs: LeverInputs) -> float:
    """The median number of logged frames a confirmed visit spans (1 without any)."""
    spans = [
        int(np.count_nonzero((inputs.at >= r.start) & (inputs.at <= r.end)))
        for r in inputs.reviews
        if r.true
    ]
    return float(np.median(spans)) if spans else 1.0


def run_levers(
    inputs: LeverInputs,
    current: DecisionConfig,
    *,
    max_false_per_day: float = 2.0,
    review_s: float = 15.0,
    settings: Sequence[Setting] | None = None,
) -> LeverReport:
    """Evaluate the grid (or ``settings``) and recommend one.

    Raises:
        UsageError: when the grid is larger than ``MAX_GRID``.
    """
    now = Setting.of(current)
    tried = list(settings) if settings is not None else grid(now)
    if now not in tried:
        tried.insert(0, now)
    if len(tried) > MAX_GRID:
        raise UsageError(f"{len(tried)} settings is more than levers tries at once ({MAX_GRID})")
    fpv = frames_per_visit(inputs)
    small = compress(inputs, tried)
    outcomes = [evaluate(small, s, review_s, fpv) for s in tried]
    by_setting = {o.setting: o for o in outcomes}
    rec = recommend(outcomes, by_setting[now], max_false_per_day, inputs.labelled)
    return LeverReport(
        inputs.camera,
        inputs.label,
        int(inputs.at.size),
        inputs.days,
        inputs.labelled,
        len(tried),
        rec,
    )


def _cells(o: Outcome) -> list[str]:
    s = o.setting

    def num(x: float | None, fmt: str = "{:.2f}") -> str:
        return "—" if x is None else fmt.format(x)

    recall = num(o.recall)
    if o.recall_low is not None:
        recall += f" ({o.recall_low:.2f}–{o.recall_high:.2f})"
    return [
        f"{s.threshold:.2f}/{s.release:.2f}",
        f"{s.min_hits} of {s.window}",
        f"{s.end_after_s:g} s",
        f"{o.alerts_per_day:.1f}",
        num(o.false_alerts_per_day, "{:.1f}"),
        recall,
        f"{o.missed_visits:.1f}",
        f"{o.review_minutes_per_day:.1f}",
        num(o.time_to_first_alert_s, "{:.1f} s"),
    ]


HEADERS = [
    "threshold/release",
    "k of n",
    "end after",
    "alerts/day",
    "false/day",
    "recall (95 %)",
    "missed visits",
    "review min/day",
    "first alert",
]


def format_table(report: LeverReport) -> str:
    """The answer a ranger reads: current beside recommended, then the Pareto front."""
    rec = report.recommendation
    rows = [["current", *_cells(rec.current)], ["recommended", *_cells(rec.recommended)]]
    rows += [["front", *_cells(o)] for o in rec.front]
    table = [["", *HEADERS], *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [
        f"camera {report.camera}, label {report.label}: {report.frames} frames over "
        f"{report.days:.2f} days, {report.labelled} labels, {report.settings_tried} settings tried"
    ]
    for i, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if rec.warning:
        lines.append(f"warning: {rec.warning}")
    if rec.recommended.setting == rec.current.setting:
        lines.append("recommendation: keep the current setting")
    return "\n".join(lines)


def config_fragment(report: LeverReport) -> str:
    """A YAML fragment with the recommended decision settings, for a person to merge into the config."""
    import yaml

    body = {
        "cameras": [
            {
                "id": report.camera,
                "decision": {
                    "alert_labels": [report.label],
                    **report.recommendation.recommended.setting.as_config(),
                },
            }
        ]
    }
    head = (
        f"# bearwatch levers: recommended decision settings for camera {report.camera}\n"
        "# merge into your config by hand; bearwatch never edits a live config\n"
    )
    return head + yaml.safe_dump(body, sort_keys=False)


def save_recommendation(store: ReviewStore, report: LeverReport) -> Path:
    """Record the recommendation beside the score log, where the review page shows it."""
    return store.score_log.save_recommendation(report.camera, json.dumps(report.as_json()))
