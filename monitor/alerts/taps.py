"""Taps: what runs beside the decisions — drift, audit samples, shadow candidate, statistics, replay summaries — behind one protocol.

Each tap sees every decided frame (``on_decided``) and a periodic tick
(``flush``) and answers with records for the store; the alert stage writes
them, so no tap touches the store, a thread or the clock. The taps wrap the
pure per-camera logic of ``monitor.decide``; what they add is the record
they hand back (and, for drift, the metric and the log line).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from monitor.decide.audit import AuditSampler
from monitor.decide.camera_stats import StatsRecorder
from monitor.decide.candidate import CandidateTracker
from monitor.decide.drift import DriftChange, DriftMonitor
from monitor.decide.policy import DecisionPolicy
from monitor.frames import Frame, Prediction
from monitor.metrics import Metrics
from monitor.records import AuditSample, CameraStats, CandidateCounts, Disagreement, NewEvent
from monitor.store.modes import ModeBook
from monitor.store.score_log import NIGHT_CLASSES, ScoreRow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CandidateComparison:
    """A period's production-vs-candidate counts and the disagreements kept, for one camera."""

    counts: CandidateCounts
    disagreements: Sequence[Disagreement]


@dataclass(frozen=True, slots=True)
class StatsRows:
    """One period's operating statistics, all cameras."""

    rows: Sequence[CameraStats]


Record = NewEvent | AuditSample | StatsRows | CandidateComparison | ScoreRow


@dataclass(frozen=True, slots=True)
class Decided:
    """One frame after its decision, as every tap sees it.

    Attributes:
        frame: the frame.
        probs: the model's probabilities.
        candidate_probs: the shadow candidate's, when one runs.
        alert_score: the best score among the camera's alert labels.
        threshold: the camera's alert threshold.
        in_event: True while an event is open on the camera.
        latency_s: capture → decision.
        jpeg: encodes the frame's snapshot (called only by a tap that keeps it).
        ood_score: the frame's out-of-domain score (None: the model has no feature score).
        light: the camera's light class from pixels (``day``, ``night_ir``, ``low_light``; None: unknown).
    """

    frame: Frame
    probs: np.ndarray
    candidate_probs: np.ndarray | None
    alert_score: float
    threshold: float
    in_event: bool
    latency_s: float
    jpeg: Callable[[], bytes | None]
    ood_score: float | None = None
    light: str | None = None


class Tap(Protocol):
    """Something that watches decided frames and may hand records back to be stored."""

    def on_decided(self, d: Decided) -> Sequence[Record]: ...

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]: ...


@dataclass(slots=True)
class DriftTap:
    """Domain shift per camera; a state change becomes a ``drift`` event (and the gauge, and a warning)."""

    monitor: DriftMonitor
    model_version: str
    modes: ModeBook
    metrics: Metrics

    def on_decided(self, d: Decided) -> Sequence[Record]:
        frame = d.frame
        if frame.stats is None:
            return ()
        change = self.monitor.observe(
            frame.camera,
            frame.captured_at,
            frame.stats,
            float(np.max(d.probs)),
            frame.frame_diff,
            frame.source_hw,
            ood_score=d.ood_score,
        )
        return () if change is None else (self._event(change, frame, d.jpeg(), d.light),)

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        return ()

    def flags(self, camera: str) -> tuple[str, ...]:
        """The camera's drift flags for an alert: empty while in domain."""
        state, flags = self.monitor.state(camera)
        return () if state == "in_domain" else (state, *flags)

    def _event(
        self, change: DriftChange, frame: Frame, jpeg: bytes | None, light: str | None
    ) -> NewEvent:
        for state in ("in_domain", "shifted", "degraded"):
            self.metrics.drift_state.labels(camera=change.camera, state=state).set(
                int(state == change.new)
            )
        for signal, value in change.statistics.items():
            self.metrics.drift_statistic.labels(camera=change.camera, signal=signal).set(value)
        logger.warning(
            "camera %s: drift %s -> %s (%s)",
            change.camera,
            change.old,
            change.new,
            ", ".join(change.flags) or "-",
        )
        return NewEvent(
            camera=change.camera,
            label=change.new,
            kind="drift",
            start_at=change.at,
            end_at=change.at,
            peak_score=max(change.statistics.values(), default=0.0),
            model_version=self.model_version,
            mode=self.modes.effective(change.camera, change.at),
            snapshot_jpeg=jpeg,
            drift_flags=change.flags,
            details={
                "from": change.old,
                "statistics": dict(change.statistics),
                "source_hw": frame.source_hw,
            },
            frames=1,
            night_class=light,
        )


@dataclass(slots=True)
class AuditTap:
    """Frames the model did not alert on, sampled by stratum for humans to label."""

    sampler: AuditSampler
    labels: tuple[str, ...]
    model_version: str
    metrics: Metrics

    def on_decided(self, d: Decided) -> Sequence[Record]:
        frame = d.frame
        top = int(np.argmax(d.probs))
        stratum = self.sampler.choose(
            frame.camera,
            frame.captured_at,
            float(d.probs[top]),
            d.alert_score,
            d.threshold,
            in_event=d.in_event,
        )
        if stratum is None:
            return ()
        self.metrics.audit_samples.labels(camera=frame.camera, reason=stratum).inc()
        sample = AuditSample(
            camera=frame.camera,
            captured_at=frame.captured_at,
            reason=stratum,
            model_version=self.model_version,
            predicted_label=self.labels[top],
            alert_score=d.alert_score,
            probs={lbl: round(float(p), 4) for lbl, p in zip(self.labels, d.probs, strict=True)},
            snapshot_jpeg=d.jpeg(),
            night_class=d.light,
        )
        return (sample,)

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        return ()


@dataclass(slots=True)
class CandidateTap:
    """The shadow candidate's agreement with production, flushed per period."""

    tracker: CandidateTracker
    last_captured_at: Callable[[], float | None]

    def on_decided(self, d: Decided) -> Sequence[Record]:
        if d.candidate_probs is not None:
            frame = d.frame
            self.tracker.observe(
                frame.camera, frame.captured_at, d.probs, d.candidate_probs, d.jpeg
            )
        return ()

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        at = self.last_captured_at()
        return [
            CandidateComparison(counts, disagreements)
            for counts, disagreements in self.tracker.flush(wall if at is None else at, force=force)
        ]


@dataclass(slots=True)
class StatsTap:
    """Per-camera uptime, reconnects and latency, one row per camera and period."""

    recorder: StatsRecorder

    def on_decided(self, d: Decided) -> Sequence[Record]:
        self.recorder.decided(d.frame.camera, d.latency_s, d.light)
        return ()

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        self.recorder.tick(now_mono)
        if force or self.recorder.due(now_mono):
            return (StatsRows(self.recorder.rows(now_mono, wall)),)
        return ()


@dataclass(slots=True)
class ScoreLogTap:
    """Every decided frame's scores, for ``bearwatch levers`` to replay under other settings."""

    def on_decided(self, d: Decided) -> Sequence[Record]:
        night = NIGHT_CLASSES.index(d.light) if d.light in NIGHT_CLASSES else -1
        return (ScoreRow(d.frame.camera, d.frame.captured_at, d.probs, d.ood_score, night),)

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        return ()


@dataclass(slots=True)
class EventSummary:
    """What a replay prints about one event."""

    id: int | None
    camera: str
    label: str
    start: float
    end: float | None
    peak_score: float
    frames: int
    unfamiliar: bool = False
    ood_score: float | None = None
    box: tuple[float, float, float, float] | None = None
    zone: str | None = None
    suppressed_by: int | None = None  # like this rejected event: stored, never notified


@dataclass(slots=True)
class ReplayRecorder:
    """What a replay or a benchmark reports: every event's summary and the decision latencies.

    Registered by the tool that wants it (a daemon keeps none of this), so a
    long-running stage holds nothing that grows with the number of events.
    """

    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    first_captured_at: dict[str, float] = field(default_factory=dict)
    events: dict[tuple[str, str, int, int], EventSummary] = field(default_factory=dict)

    def on_decided(self, d: Decided) -> Sequence[Record]:
        self.latencies_s.append(d.latency_s)
        self.first_captured_at.setdefault(d.frame.camera, d.frame.captured_at)
        return ()

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        return ()

    def on_event(self, key: tuple[str, str, int, int], summary: EventSummary) -> None:
        self.events[key] = EventSummary(
            summary.id,
            summary.camera,
            summary.label,
            summary.start,
            summary.end,
            summary.peak_score,
            summary.frames,
            summary.unfamiliar,
            summary.ood_score,
            summary.box,
            summary.zone,
            summary.suppressed_by,
        )


def memo(fn: Callable[[], bytes | None]) -> Callable[[], bytes | None]:
    """Encode a snapshot at most once per frame, however many taps keep it."""
    done: list[bytes | None] = []

    def once() -> bytes | None:
        if not done:
            done.append(fn())
        return done[0]

    return once


def decided_frame(
    pred: Prediction,
    policy: DecisionPolicy,
    labels: Sequence[str],
    latency_s: float,
    jpeg: Callable[[], bytes | None],
    light: str | None,
) -> Decided:
    alert_score = max(float(pred.probs[labels.index(lbl)]) for lbl in policy.cfg.alert_labels)
    return Decided(
        frame=pred.frame,
        probs=pred.probs,
        candidate_probs=pred.candidate_probs,
        alert_score=alert_score,
        threshold=policy.cfg.threshold,
        in_event=bool(policy.active_labels),
        latency_s=latency_s,
        jpeg=jpeg,
        ood_score=pred.ood_score,
        light=light,
    )
