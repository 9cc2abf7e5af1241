"""The ``alerts`` thread: predictions → per-camera decisions → review store (→ observers).

Decisions are cheap, store writes are not: keeping them off the inference
thread means a slow disk never stalls the model. The queue between the two is
bounded but large, and a put that cannot get in is logged and counted, never
silent. Every event is written (and committed) to the store before any
observer — a notifier, later — hears of it.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from monitor.alerts.snapshots import annotate
from monitor.config import CameraConfig
from monitor.decide.audit import AuditSampler
from monitor.decide.camera_stats import StatsRecorder
from monitor.decide.candidate import CandidateTracker
from monitor.decide.drift import DriftChange, DriftMonitor
from monitor.decide.policy import DecisionEvent, DecisionPolicy
from monitor.frames import Frame, Prediction
from monitor.metrics import Metrics
from monitor.records import AuditSample, NewEvent
from monitor.store import ReviewStore
from monitor.store.modes import ModeBook
from monitor.worker import Worker

logger = logging.getLogger(__name__)

Observer = Callable[[DecisionEvent, int | None], None]


@dataclass(slots=True)
class AlertExtras:
    """Optional companions of the alert stage, each None when not configured."""

    drift: DriftMonitor | None = None
    modes: ModeBook | None = None
    audit: AuditSampler | None = None
    candidate: CandidateTracker | None = None
    stats: StatsRecorder | None = None


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
    box: tuple[float, float, float, float] | None = None
    zone: str | None = None


class AlertStage(Worker):
    """Consumes prediction batches in order; owns the decision policies and event rows.

    Args:
        cameras: the cameras' configs (decision policy, rollout mode).
        labels: the model's labels.
        model_version: recorded on every event.
        store: the review store.
        metrics: processed-frame, latency and event counters.
        snapshot_quality: JPEG quality of snapshots.
        clock: monotonic clock for latency.
        extras: drift monitor, rollout modes, audit sampler, shadow candidate and
            statistics recorder — each optional.
    """

    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        labels: Sequence[str],
        model_version: str,
        store: ReviewStore,
        metrics: Metrics,
        snapshot_quality: int = 85,
        clock: Callable[[], float] = time.monotonic,
        extras: AlertExtras | None = None,
    ) -> None:
        super().__init__("alerts")
        extras = extras or AlertExtras()

        self.drift, self.audit, self.candidate, self.stats = (
            extras.drift,
            extras.audit,
            extras.candidate,
            extras.stats,
        )
        self.mode_book = extras.modes or ModeBook({c.id: (c.mode, c.active_hours) for c in cameras})

        self._positive: dict[str, bool] = {}
        self._decided_seq: dict[str, int] = {}
        self.policies = {c.id: DecisionPolicy(c.id, labels, c.decision) for c in cameras}
        self.labels, self.model_version, self.store, self.metrics = (
            tuple(labels),
            model_version,
            store,
            metrics,
        )
        self.snapshot_quality, self.clock = snapshot_quality, clock
        self.observers: list[Observer] = []
        self.events: dict[tuple[str, str, int], EventSummary] = {}
        self.latencies_s: deque[float] = deque(maxlen=200_000)
        self.last_captured_at: dict[str, float] = {}
        self.first_captured_at: dict[str, float] = {}
        self.last_decision_mono: float | None = None
        self._queue: queue.Queue[list[Prediction]] = queue.Queue(maxsize=10_000)

    def submit(self, predictions: list[Prediction]) -> None:
        """Hand a batch over from the inference thread (never blocks for long)."""
        try:
            self._queue.put(predictions, timeout=5.0)
        except queue.Full:
            logger.error("alert queue full for 5 s; %d predictions not decided", len(predictions))
            for p in predictions:
                self.metrics.frames_dropped.labels(camera=p.frame.camera, reason="error").inc()

    def gate_state(self, camera: str, last_seq: int) -> tuple[bool, bool]:
        """For the motion gate: (is the decision on frame ``last_seq`` in?, was the last decision positive?)."""
        return self._decided_seq.get(camera, -1) >= last_seq, self._positive.get(camera, False)

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            self._periodic()
            try:
                batch = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    break
                continue
            try:
                for pred in batch:
                    self._decide(pred)
            except Exception:
                logger.exception("deciding a batch failed")
                self.metrics.batch_errors.inc()
            finally:
                self._queue.task_done()
        self._close_open_events()
        self._flush_periodic(force=True)

    def _periodic(self) -> None:
        """Once a loop: sample camera statuses; write due statistics and candidate comparisons."""
        try:
            if self.stats is not None:
                self.stats.tick(self.clock())
            self._flush_periodic(force=False)
        except Exception:
            logger.exception("writing periodic statistics failed")

    def _flush_periodic(self, force: bool) -> None:
        now, wall = self.clock(), time.time()
        if self.stats is not None and (force or self.stats.due(now)):
            self.store.add_camera_stats(self.stats.rows(now, wall))
        if self.candidate is not None:
            at = max(self.last_captured_at.values(), default=wall)
            for counts, disagreements in self.candidate.flush(at, force=force):
                self.store.add_candidate_comparison(counts, disagreements)

    def _decide(self, pred: Prediction) -> None:
        frame = pred.frame
        now = self.clock()
        self.metrics.frames_processed.labels(camera=frame.camera).inc()
        self.metrics.latency_seconds.labels(camera=frame.camera).observe(now - frame.captured_mono)
        self.latencies_s.append(now - frame.captured_mono)
        self.last_decision_mono = now
        self.last_captured_at[frame.camera] = frame.captured_at
        self.first_captured_at.setdefault(frame.camera, frame.captured_at)
        if self.drift is not None and frame.stats is not None:
            change = self.drift.observe(
                frame.camera,
                frame.captured_at,
                frame.stats,
                float(np.max(pred.probs)),
                frame.frame_diff,
                frame.source_hw,
            )
            if change is not None:
                self._drift_event(change, frame)
        policy = self.policies[frame.camera]
        for ev in policy.step(pred.probs, frame.captured_at, frame.seq):
            self._handle(ev, frame, pred.probs, pred)
        alert_score = max(
            float(pred.probs[self.labels.index(lbl)]) for lbl in policy.cfg.alert_labels
        )
        self._positive[frame.camera] = (
            bool(policy.active_labels) or alert_score >= policy.cfg.release
        )
        self._decided_seq[frame.camera] = frame.seq
        if self.stats is not None:
            self.stats.decided(frame.camera, now - frame.captured_mono)
        if self.audit is not None:
            self._maybe_audit(pred, policy, alert_score)
        if self.candidate is not None and pred.candidate_probs is not None:
            self.candidate.observe(
                frame.camera,
                frame.captured_at,
                pred.probs,
                pred.candidate_probs,
                lambda: self._jpeg(frame.snapshot),
            )

    def _maybe_audit(self, pred: Prediction, policy: DecisionPolicy, alert_score: float) -> None:
        assert self.audit is not None
        frame = pred.frame
        top = int(np.argmax(pred.probs))
        stratum = self.audit.choose(
            frame.camera,
            frame.captured_at,
            float(pred.probs[top]),
            alert_score,
            policy.cfg.threshold,
            in_event=bool(policy.active_labels),
        )
        if stratum is None:
            return
        self.metrics.audit_samples.labels(camera=frame.camera, reason=stratum).inc()
        self.store.add_audit_sample(
            AuditSample(
                camera=frame.camera,
                captured_at=frame.captured_at,
                reason=stratum,
                model_version=self.model_version,
                predicted_label=self.labels[top],
                alert_score=alert_score,
                probs={
                    lbl: round(float(p), 4) for lbl, p in zip(self.labels, pred.probs, strict=True)
                },
                snapshot_jpeg=self._jpeg(frame.snapshot),
            )
        )

    def _close_open_events(self) -> None:
        for cam, policy in self.policies.items():
            for ev in policy.close(self.last_captured_at.get(cam, time.time())):
                self._handle(ev, None, None)

    def _jpeg(self, image: np.ndarray | None) -> bytes | None:
        if image is None:
            return None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.snapshot_quality])
        return buf.tobytes() if ok else None

    def _drift_flags(self, camera: str) -> tuple[str, ...]:
        if self.drift is None:
            return ()
        state, flags = self.drift.state(camera)
        return () if state == "in_domain" else (state, *flags)

    def _new_event(
        self,
        ev: DecisionEvent,
        frame: Frame | None,
        probs: np.ndarray | None,
        pred: Prediction | None = None,
    ) -> NewEvent:
        details: dict[str, object] = {"peak_seq": ev.peak_seq}
        ood: float | None = None
        if self.drift is not None and frame is not None and frame.stats is not None:
            ood, reasons = self.drift.ood_score(
                frame.stats, None if probs is None else float(np.max(probs))
            )
            details["ood_reasons"] = reasons
        if probs is not None:
            details["probs"] = {
                lbl: round(float(p), 4) for lbl, p in zip(self.labels, probs, strict=True)
            }
        return NewEvent(
            camera=ev.camera,
            label=ev.label,
            kind="alert",
            start_at=ev.start_at,
            end_at=ev.end_at,
            peak_score=ev.peak_score,
            model_version=self.model_version,
            mode=self.mode_book.effective(ev.camera, ev.start_at),
            snapshot_jpeg=self._jpeg(_snapshot(frame, pred)),
            drift_flags=self._drift_flags(ev.camera),
            ood_score=ood,
            details=details,
            frames=ev.frames,
            box=None if pred is None else pred.box,
            zone=None if pred is None else pred.zone,
        )

    def _drift_event(self, change: DriftChange, frame: Frame) -> None:
        """A camera's drift state changed: a ``drift`` event for the review queue, and the gauge."""
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
        self.store.add_event(
            NewEvent(
                camera=change.camera,
                label=change.new,
                kind="drift",
                start_at=change.at,
                end_at=change.at,
                peak_score=max(change.statistics.values(), default=0.0),
                model_version=self.model_version,
                mode=self.mode_book.effective(change.camera, change.at),
                snapshot_jpeg=self._jpeg(frame.snapshot),
                drift_flags=change.flags,
                details={
                    "from": change.old,
                    "statistics": dict(change.statistics),
                    "source_hw": frame.source_hw,
                },
                frames=1,
            )
        )

    def _handle(
        self,
        ev: DecisionEvent,
        frame: Frame | None,
        probs: np.ndarray | None,
        pred: Prediction | None = None,
    ) -> None:
        key = (ev.camera, ev.label, ev.number)
        summary = self.events.get(key)
        if ev.kind == "start" or summary is None:
            event_id = self.store.add_event(self._new_event(ev, frame, probs, pred))
            summary = EventSummary(
                event_id, ev.camera, ev.label, ev.start_at, None, ev.peak_score, ev.frames
            )
            self.events[key] = summary
            self.metrics.events.labels(camera=ev.camera, label=ev.label, kind="start").inc()
            logger.info(
                "camera %s: %s event %s started (score %.2f)",
                ev.camera,
                ev.label,
                event_id,
                ev.score,
            )
        elif summary.id is None:
            # The start went to the spill file (store unavailable): adding again
            # with the current state merges into the same row once it replays.
            summary.id = self.store.add_event(self._new_event(ev, frame, probs, pred))
        else:
            self._update(summary, ev, _snapshot(frame, pred), pred)
        summary.peak_score, summary.frames = ev.peak_score, ev.frames
        if pred is not None and ev.kind in ("start", "update"):
            summary.box, summary.zone = pred.box, pred.zone
        summary.end = ev.end_at
        for observer in self.observers:
            try:
                observer(ev, summary.id)
            except Exception:
                logger.exception("an event observer failed for camera %s", ev.camera)

    def _update(
        self,
        summary: EventSummary,
        ev: DecisionEvent,
        snapshot: np.ndarray | None,
        pred: Prediction | None = None,
    ) -> None:
        assert summary.id is not None
        fields: Mapping[str, object]
        if ev.kind == "update":
            fields = {
                "peak_score": ev.peak_score,
                "snapshot_jpeg": self._jpeg(snapshot),
                "frames": ev.frames,
                **({} if pred is None else {"box": pred.box, "zone": pred.zone}),
            }
        elif ev.kind == "resume":
            fields = {"peak_score": ev.peak_score, "frames": ev.frames}
            logger.info(
                "camera %s: %s event %s resumed within cooldown", ev.camera, ev.label, summary.id
            )
        else:
            fields = {"end_at": ev.end_at, "frames": ev.frames, "peak_score": ev.peak_score}
            self.metrics.events.labels(camera=ev.camera, label=ev.label, kind="end").inc()
            logger.info(
                "camera %s: %s event %s ended (peak %.2f)",
                ev.camera,
                ev.label,
                summary.id,
                ev.peak_score,
            )
        self.store.update_event(summary.id, **fields)  # type: ignore[arg-type]


def _snapshot(frame: Frame | None, pred: Prediction | None) -> np.ndarray | None:
    """The frame's snapshot with the peak region drawn (see ``monitor.alerts.snapshots``)."""
    if frame is None:
        return None
    if pred is None:
        return frame.snapshot
    return annotate(frame.snapshot, pred.box, pred.crop)
