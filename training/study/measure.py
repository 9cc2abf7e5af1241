"""Score production and the shadow candidate on the same decided frames against the footage's truth, and recommend.

The recorder sits on the real pipeline (``run_replay(recorder=...)``) and
keeps every decided frame's two probability vectors. A frame *alerts* for a
model when its ``bear`` probability reaches the camera's threshold (the
candidate tracker's rule); recall is alerting bear frames over bear frames,
precision bear frames over alerting frames, accuracy the top-1 label against
the truth. ``partial`` and ``hidden`` frames are not scored. Intervals are Wilson 95 %
intervals from the report's own arithmetic; frames of one walk are
correlated, so they are narrower than independent samples would give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.alerts.taps import Decided, Record, ReplayRecorder
from monitor.report.stats import proportion
from training.study.footage import UNSCORED, label_at

ALERT_LABEL = "bear"


@dataclass(slots=True)
class TruthRecorder(ReplayRecorder):
    """A replay recorder that also keeps (camera, captured_at, probs, candidate probs) per frame."""

    decided: list[tuple[str, float, np.ndarray, np.ndarray | None]] = field(default_factory=list)

    def on_decided(self, d: Decided) -> Sequence[Record]:
        cand = None if d.candidate_probs is None else np.array(d.candidate_probs)
        self.decided.append((d.frame.camera, d.frame.captured_at, np.array(d.probs), cand))
        return ReplayRecorder.on_decided(self, d)


def _estimate(successes: int, trials: int) -> dict[str, Any] | None:
    est = proportion(successes, trials)
    if est is None:
        return None
    return {"value": round(est.value, 4), "low": round(est.low, 4), "high": round(est.high, 4),
            "successes": successes, "trials": trials}  # fmt: skip


def score(
    recorder: TruthRecorder,
    truth: Mapping[str, Mapping[str, object]],
    labels: Sequence[str],
    threshold: float,
    candidate: bool,
) -> dict[str, dict[str, Any]]:
    """Recall, precision and accuracy by day and by night for production (or the candidate).

    Returns:
        ``{"day": {...}, "night": {...}}``, each with ``recall``, ``precision``,
        ``accuracy`` (estimates with intervals, None without trials) and ``frames``.
    """
    k = list(labels).index(ALERT_LABEL)
    tallies = {p: {"pos": 0, "hit": 0, "alerts": 0, "true_alerts": 0, "n": 0, "right": 0}
               for p in ("day", "night")}  # fmt: skip
    confusion: dict[str, dict[str, dict[str, int]]] = {"day": {}, "night": {}}
    first: dict[str, float] = {}
    for cam, at, probs, cand in recorder.decided:
        p = cand if candidate else probs
        if p is None:
            continue
        start = first.setdefault(cam, at)
        label = label_at(truth, cam, at - start)
        if label in UNSCORED:
            continue
        t = tallies["night" if truth[cam]["night"] else "day"]
        alert, bear = bool(p[k] >= threshold), label == ALERT_LABEL
        t["pos"] += bear
        t["hit"] += bear and alert
        t["alerts"] += alert
        t["true_alerts"] += bear and alert
        t["n"] += 1
        top = labels[int(np.argmax(p))]
        t["right"] += top == label
        row = confusion["night" if truth[cam]["night"] else "day"].setdefault(label, {})
        row[top] = row.get(top, 0) + 1
    return {
        period: {
            "recall": _estimate(t["hit"], t["pos"]),
            "precision": _estimate(t["true_alerts"], t["alerts"]),
            "accuracy": _estimate(t["right"], t["n"]),
            "frames": t["n"],
            "confusion": {
                truth_label: dict(sorted(row.items()))
                for truth_label, row in sorted(confusion[period].items())
            },
        }
        for period, t in tallies.items()
    }


def flat(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """``night_recall``, ``day_recall``, ``night_precision``… as plain numbers (study.json's top)."""
    out: dict[str, float | None] = {}
    for period in ("night", "day"):
        for what in ("recall", "precision", "accuracy"):
            est = scores[period][what]
            out[f"{period}_{what}"] = None if est is None else est["value"]
    return out


def _value(scores: Mapping[str, Any], period: str, what: str, end: str = "value") -> float:
    est = scores[period][what]
    return float("nan") if est is None else float(est[end])


def recommend(
    before: Mapping[str, Any], after: Mapping[str, Any], max_day_drop: float = 0.01
) -> dict[str, Any]:
    """Promote the candidate for night when its night recall is better beyond doubt and day holds.

    "Beyond doubt": the candidate's night-recall interval lies wholly above
    production's. "Day holds": day accuracy drops by at most ``max_day_drop``
    and the candidate's day-precision interval reaches production's.
    """
    night_better = _value(after, "night", "recall", "low") > _value(
        before, "night", "recall", "high"
    )
    day_drop = _value(before, "day", "accuracy") - _value(after, "day", "accuracy")
    day_holds = day_drop <= max_day_drop and _value(after, "day", "precision", "high") >= _value(
        before, "day", "precision", "low"
    )
    gain = _value(after, "night", "recall") - _value(before, "night", "recall")
    if night_better and day_holds:
        code = "promote-candidate-for-night"
        text = (f"promote the candidate for night cameras: night recall {gain:+.1%} with the 95 % "
                f"intervals apart; day accuracy changes by {-day_drop:+.1%} (allowed -{max_day_drop:.0%})")  # fmt: skip
    elif night_better:
        code = "candidate-better-at-night-only"
        worse = (f"day accuracy {-day_drop:+.1%}" if day_drop > max_day_drop else
                 f"day precision {_value(after, 'day', 'precision'):.1%} vs "
                 f"{_value(before, 'day', 'precision'):.1%}, intervals apart")  # fmt: skip
        text = (f"the candidate is better at night (recall {gain:+.1%}) but worse by day "
                f"({worse}); keep production by day, retrain before promoting")  # fmt: skip
    else:
        code = "keep-production"
        text = (f"keep production: the candidate's night recall ({gain:+.1%}) is not better beyond "
                "the 95 % intervals")  # fmt: skip
    return {"code": code, "text": text, "night_recall_gain": round(gain, 4),
            "day_accuracy_change": round(-day_drop, 4), "max_day_drop": max_day_drop}  # fmt: skip
