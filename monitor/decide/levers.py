"""Pull the levers on paper: replay a camera's logged scores through the real decision policy under other settings.

The Drivetrain approach of the fastai book: the objective (catch bears without
burying the ranger in false alerts), the levers (threshold, k-of-n window,
release threshold, end-after, cooldown), the data that links them (every
frame's score, from the score log, and what humans said: verdicts on events,
labels on audit frames), and a model of what each lever setting does — here
the exact policy the daemon runs, so the predicted alert count of a setting
is what a replay under it would give.

How predictions are scored against the labels (all approximations are named):

* A simulated event is *true* when it overlaps a confirmed event or covers an
  audit frame labelled with the alert label; *false* when it overlaps only
  rejected events or audit frames of other labels; otherwise *unknown*, and
  unknown events count as false in the share measured on the known ones.
* A bear *visit* is a confirmed event, or an audit frame labelled with the
  alert label, which stands for ``weight`` frames of its stratum (the
  report's stratified estimate), turned into visits by the median number of
  frames a confirmed visit spans. Recall = caught visits / all visits, with a
  Wilson interval on those counts (rounded) — wide, as it should be, with few labels.

Frames whose score is below every release threshold in the grid are
compressed away except those that can still change the state (the first
``window`` after a high frame, and those within ``end_after_s`` of one): the
result is identical to feeding every frame, and weeks replay in seconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.config import DecisionConfig
from monitor.decide.policy import DecisionPolicy

MAX_GRID = 2000
OVERLAP_S = 1.0  # frames this close to an event's ends count as inside it


@dataclass(frozen=True, slots=True)
class Review:
    """A reviewed event of the camera: its interval and whether it was the alert label."""

    start: float
    end: float
    true: bool


@dataclass(frozen=True, slots=True)
class AuditLabel:
    """A labelled audit frame: its time, whether it shows the alert label, and the frames it stands for."""

    at: float
    positive: bool
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class LeverInputs:
    """Everything a prediction needs for one camera and alert label."""

    camera: str
    label: str
    at: np.ndarray  # float64 (N,), ascending
    scores: np.ndarray  # float32 (N,): the alert label's score per frame
    reviews: tuple[Review, ...] = ()
    audits: tuple[AuditLabel, ...] = ()

    @property
    def days(self) -> float:
        """The span the log covers, in days (at least one hour, so a short replay is not divided by ~0)."""
        if self.at.size == 0:
            return 1.0 / 24
        return max((float(self.at[-1]) - float(self.at[0])) / 86400.0, 1.0 / 24)

    @property
    def labelled(self) -> int:
        return len(self.reviews) + len(self.audits)


@dataclass(frozen=True, slots=True)
class Setting:
    """One point on the lever grid (the decision settings ``levers`` may change)."""

    threshold: float
    release: float
    window: int
    min_hits: int
    end_after_s: float
    cooldown_s: float

    @classmethod
    def of(cls, cfg: DecisionConfig) -> Setting:
        return cls(
            cfg.threshold, cfg.release, cfg.window, cfg.min_hits, cfg.end_after_s, cfg.cooldown_s
        )

    def decision(self, label: str) -> DecisionConfig:
        return DecisionConfig(
            alert_labels=[label],
            threshold=self.threshold,
            release_threshold=self.release,
            window=self.window,
            min_hits=self.min_hits,
            end_after_s=self.end_after_s,
            cooldown_s=self.cooldown_s,
        )

    def as_config(self) -> dict[str, float | int]:
        """The ``decision:`` keys of a camera's config for this setting."""
        return {
            "threshold": round(self.threshold, 4),
            "release_threshold": round(self.release, 4),
            "window": self.window,
            "min_hits": self.min_hits,
            "end_after_s": self.end_after_s,
            "cooldown_s": self.cooldown_s,
        }


@dataclass(frozen=True, slots=True)
class SimEvent:
    start_at: float  # the event's start (its first hit)
    alert_at: float  # when the policy raised it
    end_at: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a setting would have done over the logged period (per day where it says so)."""

    setting: Setting
    alerts: int
    true_alerts: int
    false_alerts: int
    unknown_alerts: int
    alerts_per_day: float
    false_alerts_per_day: float | None
    visits: float
    missed_visits: float
    recall: float | None
    recall_low: float | None
    recall_high: float | None
    review_minutes_per_day: float
    time_to_first_alert_s: float | None
    events: tuple[SimEvent, ...] = field(default=(), repr=False)

    def as_json(self) -> dict[str, object]:
        return {
            "settings": self.setting.as_config(),
            "alerts": self.alerts,
            "alerts_per_day": _r(self.alerts_per_day),
            "false_alerts_per_day": _r(self.false_alerts_per_day),
            "true_alerts": self.true_alerts,
            "false_alerts": self.false_alerts,
            "unknown_alerts": self.unknown_alerts,
            "visits": _r(self.visits),
            "missed_visits": _r(self.missed_visits),
            "recall": _r(self.recall),
            "recall_interval": None
            if self.recall_low is None
            else [_r(self.recall_low), _r(self.recall_high)],
            "review_minutes_per_day": _r(self.review_minutes_per_day),
            "time_to_first_alert_s": _r(self.time_to_first_alert_s),
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def grid(current: Setting, *, wide: bool = True) -> list[Setting]:
    """The settings to try: the current one, and thresholds × k-of-n × end-after around it.

    Release keeps the current gap below the threshold; cooldown stays as set
    (it merges re-appearances, it does not change what is caught).
    """
    thresholds = sorted({round(t, 2) for t in np.arange(0.4, 0.951, 0.05)} | {current.threshold})
    kn = sorted({(1, 1), (2, 3), (3, 5), (4, 6), (5, 8), (current.min_hits, current.window)})
    ends = sorted({current.end_after_s, 3.0, 10.0}) if wide else [current.end_after_s]
    gap = max(0.0, current.threshold - current.release)
    out = [current]
    for t, (k, n), e in itertools.product(thresholds, kn, ends):
        s = Setting(t, max(0.01, round(t - gap, 4)), n, k, e, current.cooldown_s)
        if s != current:
            out.append(s)
    return out


def compress(inputs: LeverInputs, settings: Sequence[Setting]) -> LeverInputs:
    """Drop frames that cannot change any setting's state (see the module docstring); exact."""
    if inputs.at.size == 0 or not settings:
        return inputs
    low = min(s.release for s in settings)
    window = max(s.window for s in settings)
    end_after = max(s.end_after_s for s in settings)
    high = inputs.scores >= low
    keep = high.copy()
    idx = np.flatnonzero(high)
    if idx.size:
        # the first `window` frames after each high frame flush the k-of-n window
        for k in range(1, window + 1):
            j = idx + k
            keep[j[j < keep.size]] = True
        # frames within end_after (and the first beyond) decide when an event ends
        last_high = np.maximum.accumulate(np.where(high, np.arange(high.size), -1))
        has = last_high >= 0
        since = np.where(has, inputs.at - inputs.at[np.maximum(last_high, 0)], np.inf)
        keep |= has & (since <= end_after)
        beyond = has & (since > end_after)
        first_beyond = beyond & ~np.concatenate(([False], beyond[:-1]))
        keep |= first_beyond
    return LeverInputs(
        inputs.camera,
        inputs.label,
        inputs.at[keep],
        inputs.scores[keep],
        inputs.reviews,
        inputs.audits,
    )


def simulate(inputs: LeverInputs, setting: Setting) -> list[SimEvent]:
    """The events the real policy raises on the logged scores under ``setting``."""
    policy = DecisionPolicy(inputs.camera, [inputs.label], setting.decision(inputs.label))
    starts: dict[int, tuple[float, float]] = {}
    ends: dict[int, float] = {}
    one = np.zeros(1, dtype=np.float32)
    for seq, (at, score) in enumerate(zip(inputs.at.tolist(), inputs.scores.tolist(), strict=True)):
        one[0] = score
        for ev in policy.step(one, at, seq):
            if ev.kind == "start":
                starts[ev.number] = (ev.start_at, ev.at)
            elif ev.kind == "end" and ev.end_at is not None:
                ends[ev.number] = ev.end_at
            elif ev.kind == "resume":
                ends.pop(ev.number, None)
    if inputs.at.size:
        for ev in policy.close(float(inputs.at[-1])):
            if ev.end_at is not None:
                ends[ev.number] = ev.end_at
    return [
        SimEvent(start, alert, ends.get(n, float(inputs.at[-1])))
        for n, (start, alert) in sorted(starts.items())
    ]


def _covers(ev: SimEvent, start: float, end: float) -> bool:
    return ev.start_at - OVERLAP_S <= end and ev.end_at + OVERLAP_S >= start


def evaluate(
    inputs: LeverInputs, setting: Setting, review_s: float = 15.0, frames_per_visit: float = 1.0
) -> Outcome:
    """Score one setting against the labels (see the module docstring for how)."""
    events = simulate(inputs, setting)
    true = false = unknown = 0
    for ev in events:
        hit = any(r.true and _covers(ev, r.start, r.end) for r in inputs.reviews) or any(
            a.positive and _covers(ev, a.at, a.at) for a in inputs.audits
        )
        miss = any(not r.true and _covers(ev, r.start, r.end) for r in inputs.reviews) or any(
            not a.positive and _covers(ev, a.at, a.at) for a in inputs.audits
        )
        if hit:
            true += 1
        elif miss:
            false += 1
        else:
            unknown += 1
    days = inputs.days
    false_est: float | None
    if true + false:
        false_est = false + unknown * false / (true + false)
    else:
        false_est = None
    caught = missed = 0.0
    delays = []
    for r in (r for r in inputs.reviews if r.true):
        found = [ev for ev in events if _covers(ev, r.start, r.end)]
        if found:
            caught += 1
            delays.append(max(0.0, min(ev.alert_at for ev in found) - r.start))
        else:
            missed += 1
    fpv = max(1.0, frames_per_visit)
    for a in (a for a in inputs.audits if a.positive):
        if any(_covers(ev, a.at, a.at) for ev in events):
            caught += a.weight / fpv
        else:
            missed += a.weight / fpv
    visits = caught + missed
    recall = low = high = None
    if visits > 0:
        recall = caught / visits
        low, high = _wilson(round(caught), max(1, round(visits)))
    return Outcome(
        setting=setting,
        alerts=len(events),
        true_alerts=true,
        false_alerts=false,
        unknown_alerts=unknown,
        alerts_per_day=len(events) / days,
        false_alerts_per_day=None if false_est is None else false_est / days,
        visits=visits,
        missed_visits=missed,
        recall=recall,
        recall_low=low,
        recall_high=high,
        review_minutes_per_day=len(events) * review_s / 60.0 / days,
        time_to_first_alert_s=float(np.median(delays)) if delays else None,
        events=tuple(events),
    )


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    k = min(k, n)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pareto(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Settings no other beats on both recall (higher) and false alerts a day (lower), by false alerts."""
    scored = [o for o in outcomes if o.recall is not None and o.false_alerts_per_day is not None]
    front = []
    for o in scored:
        assert o.recall is not None and o.false_alerts_per_day is not None
        dominated = any(
            p.recall is not None
            and p.false_alerts_per_day is not None
            and p.recall >= o.recall
            and p.false_alerts_per_day <= o.false_alerts_per_day
            and (p.recall > o.recall or p.false_alerts_per_day < o.false_alerts_per_day)
            for p in scored
        )
        if not dominated:
            front.append(o)
    unique = {(o.recall, o.false_alerts_per_day): o for o in front}
    return sorted(unique.values(), key=lambda o: (o.false_alerts_per_day, -(o.recall or 0)))


@dataclass(frozen=True, slots=True)
class Recommendation:
    current: Outcome
    recommended: Outcome
    front: tuple[Outcome, ...]
    warning: str | None


def recommend(
    outcomes: Sequence[Outcome], current: Outcome, max_false_per_day: float, labelled: int
) -> Recommendation:
    """The objective: at most ``max_false_per_day`` false alerts a day, then the highest recall.

    Ties go to fewer alerts (less review work), then to the current setting.
    With fewer than 5 labels nothing is recommended: the current setting stays.
    """
    front = tuple(pareto(outcomes))
    if labelled < 5:
        return Recommendation(
            current,
            current,
            front,
            f"too few labels to say anything ({labelled}; review events and label audit frames first)",
        )
    meets = [
        o
        for o in outcomes
        if o.false_alerts_per_day is not None and o.false_alerts_per_day <= max_false_per_day
    ]
    warning = None
    if not meets:
        warning = f"no setting keeps false alerts at or under {max_false_per_day:g} a day; showing the fewest"
        meets = [o for o in outcomes if o.false_alerts_per_day is not None] or [current]
        best = min(meets, key=lambda o: (o.false_alerts_per_day or 0.0, -(o.recall or 0.0)))
        return Recommendation(current, best, front, warning)
    best = max(
        meets,
        key=lambda o: (o.recall or 0.0, -o.alerts_per_day, o.setting == current.setting),
    )
    return Recommendation(current, best, front, warning)
