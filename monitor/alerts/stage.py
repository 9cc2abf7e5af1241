"""The ``alerts`` thread: predictions → per-camera decisions → review store → taps and event observers.

Decisions are cheap, store writes are not: keeping them off the inference
thread means a slow disk never stalls the model. The queue between the two is
bounded but large, and a put that cannot get in is logged and counted, never
silent. Every event is written (and committed) to the store before any
observer — the notifier — hears of it. Drift, audit, candidate and
statistics are taps (``monitor.alerts.taps``): the stage hands each decided
frame to every tap and stores what they hand back. The stage keeps only the
events still open (or within their cooldown), so its memory stays flat in a
daemon that runs for months.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import cv2
import numpy as np

from monitor.alerts.taps import (
    Decided,
    DriftTap,
    EventSummary,
    Record,
    ReplayRecorder,
    StatsRows,
    Tap,
)
from monitor.config import CameraConfig
from monitor.decide.policy import DecisionEvent, DecisionPolicy
from monitor.frames import Frame, LastDecisions, Prediction
from monitor.metrics import Metrics
from monitor.records import (
    AuditSample,
    CameraStats,
    CandidateCounts,
    Disagreement,
    NewEvent,
)
from monitor.store.modes import ModeBook
from monitor.store.score_log import ScoreLog, ScoreRow
from monitor.worker import Worker

logger = logging.getLogger(__name__)

SCORE_FLUSH_S = 5.0  # how often buffered score-log rows reach the disk


class AlertSink(Protocol):
    """What the alert stage asks of the review store: writes that retry and spill, never raise."""

    score_log: ScoreLog

    def add_event(self, ev: NewEvent) -> int | None: ...

    def update_event(
        self,
        event_id: int,
        *,
        end_at: float | None = None,
        peak_score: float | None = None,
        snapshot_jpeg: bytes | None = None,
        frames: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool: ...

    def add_audit_sample(self, sample: AuditSample) -> int | None: ...

    def add_camera_stats(self, rows: list[CameraStats]) -> None: ...

    def add_candidate_comparison(
        self, counts: CandidateCounts, disagreements: list[Disagreement]
    ) -> None: ...


Observer = Callable[[DecisionEvent, int | None], None]


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
        store: AlertSink,
        metrics: Metrics,
        snapshot_quality: int = 85,
        clock: Callable[[], float] = time.monotonic,
        *,
        modes: ModeBook | None = None,
        drift: DriftTap | None = None,
        taps: Sequence[Tap] = (),
        decisions: LastDecisions | None = None,
    ) -> None:
        super().__init__("alerts", clock)
        self.mode_book = modes or ModeBook({c.id: (c.mode, c.active_hours) for c in cameras})
        self.drift = drift  # also a tap; kept by name because alerts carry its flags
        self.taps: list[Tap] = ([drift] if drift is not None else []) + list(taps)
        self.decisions = decisions or LastDecisions()
        self.policies = {c.id: DecisionPolicy(c.id, labels, c.decision) for c in cameras}
        self._cooldown_s = {c.id: c.decision.cooldown_s for c in cameras}
        self.labels, self.model_version, self.store, self.metrics = (
            tuple(labels),
            model_version,
            store,
            metrics,
        )
        self.snapshot_quality, self.clock = snapshot_quality, clock
        self.observers: list[Observer] = []
        self.recorders: list[ReplayRecorder] = []
        self._open: dict[tuple[str, str, int], EventSummary] = {}
        self._scores_flushed = clock()
        store.score_log.set_model(labels, model_version)
        self.last_captured_at: dict[str, float] = {}
        self.last_decision_mono: float | None = None
        self._queue: queue.Queue[list[Prediction]] = queue.Queue(maxsize=10_000)

    def record_to(self, recorder: ReplayRecorder) -> ReplayRecorder:
        """Register a recorder (replay, bench) for event summaries and latencies; returns it."""
        self.taps.append(recorder)
        self.recorders.append(recorder)
        return recorder

    @property
    def open_events(self) -> int:
        """Events kept in memory: open, or ended but within their camera's cooldown."""
        return len(self._open)

    def submit(self, predictions: list[Prediction]) -> None:
        """Hand a batch over from the inference thread (never blocks for long)."""
        try:
            self._queue.put(predictions, timeout=5.0)
        except queue.Full:
            logger.error("alert queue full for 5 s; %d predictions not decided", len(predictions))
            for p in predictions:
                self.metrics.frames_dropped.labels(camera=p.frame.camera, reason="error").inc()

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            self.beat()
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
        """Once a loop: let every tap flush what is due (statistics, candidate comparisons)."""
        try:
            self._flush_periodic(force=False)
        except Exception:
            logger.exception("writing periodic statistics failed")

    def _flush_periodic(self, force: bool) -> None:
        now, wall = self.clock(), time.time()
        for tap in self.taps:
            self._persist(tap.flush(now, wall, force))
        if force or now - self._scores_flushed >= SCORE_FLUSH_S:
            self.store.score_log.flush(wall)
            self._scores_flushed = now

    def _persist(self, records: Sequence[Record]) -> None:
        """Store what a tap handed back (each write retries, then spills or logs: never raises)."""
        for record in records:
            if isinstance(record, NewEvent):
                self.store.add_event(record)
            elif isinstance(record, AuditSample):
                self.store.add_audit_sample(record)
            elif isinstance(record, ScoreRow):
                self.store.score_log.append(record)
            elif isinstance(record, StatsRows):
                self.store.add_camera_stats(list(record.rows))
            else:
                self.store.add_candidate_comparison(record.counts, list(record.disagreements))

    def _decide(self, pred: Prediction) -> None:
        frame = pred.frame
        now = self.clock()
        latency_s = now - frame.captured_mono
        self.metrics.frames_processed.labels(camera=frame.camera).inc()
        self.metrics.latency_seconds.labels(camera=frame.camera).observe(latency_s)
        self.last_decision_mono = now
        self.last_captured_at[frame.camera] = frame.captured_at
        policy = self.policies[frame.camera]
        jpeg = _memo(lambda: self._jpeg(frame.snapshot))
        drift_records = (
            ()
            if self.drift is None
            else self.drift.on_decided(_decided(pred, policy, self.labels, latency_s, jpeg))
        )
        self._persist(drift_records)  # before the frame's events, which carry the new flags
        for ev in policy.step(pred.probs, frame.captured_at, frame.seq):
            self._handle(ev, frame, pred.probs)
        decided = _decided(pred, policy, self.labels, latency_s, jpeg)
        self.decisions.record(
            frame.camera, frame.seq, decided.in_event or decided.alert_score >= policy.cfg.release
        )
        for tap in self.taps:
            if tap is not self.drift:
                self._persist(tap.on_decided(decided))

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
        return () if self.drift is None else self.drift.flags(camera)

    def _new_event(
        self, ev: DecisionEvent, frame: Frame | None, probs: np.ndarray | None
    ) -> NewEvent:
        details: dict[str, object] = {"peak_seq": ev.peak_seq}
        ood: float | None = None
        if self.drift is not None and frame is not None and frame.stats is not None:
            ood, reasons = self.drift.monitor.ood_score(
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
            snapshot_jpeg=self._jpeg(None if frame is None else frame.snapshot),
            drift_flags=self._drift_flags(ev.camera),
            ood_score=ood,
            details=details,
            frames=ev.frames,
        )

    def _handle(self, ev: DecisionEvent, frame: Frame | None, probs: np.ndarray | None) -> None:
        key = (ev.camera, ev.label, ev.number)
        summary = self._open.get(key)
        if ev.kind == "start" or summary is None:
            event_id = self.store.add_event(self._new_event(ev, frame, probs))
            summary = EventSummary(
                event_id, ev.camera, ev.label, ev.start_at, None, ev.peak_score, ev.frames
            )
            self._open[key] = summary
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
            summary.id = self.store.add_event(self._new_event(ev, frame, probs))
        else:
            self._update(summary, ev, None if frame is None else frame.snapshot)
        summary.peak_score, summary.frames = ev.peak_score, ev.frames
        summary.end = ev.end_at
        for recorder in self.recorders:
            recorder.on_event(key, summary)
        if ev.kind == "end":
            self._forget_cooled(ev.camera, ev.end_at)
        for observer in self.observers:
            try:
                observer(ev, summary.id)
            except Exception:
                logger.exception("an event observer failed for camera %s", ev.camera)

    def _forget_cooled(self, camera: str, now_at: float | None) -> None:
        """Drop the camera's ended events whose cooldown is over: no ``resume`` can reach them now."""
        if now_at is None:
            return
        horizon = now_at - self._cooldown_s.get(camera, 0.0) - 1.0
        for key in [
            k
            for k, e in self._open.items()
            if e.camera == camera and e.end is not None and e.end < horizon
        ]:
            del self._open[key]

    def _update(
        self, summary: EventSummary, ev: DecisionEvent, snapshot: np.ndarray | None
    ) -> None:
        assert summary.id is not None
        fields: Mapping[str, object]
        if ev.kind == "update":
            fields = {
                "peak_score": ev.peak_score,
                "snapshot_jpeg": self._jpeg(snapshot),
                "frames": ev.frames,
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


def _memo(fn: Callable[[], bytes | None]) -> Callable[[], bytes | None]:
    """Encode a snapshot at most once per frame, however many taps keep it."""
    done: list[bytes | None] = []

    def once() -> bytes | None:
        if not done:
            done.append(fn())
        return done[0]

    return once


def _decided(
    pred: Prediction,
    policy: DecisionPolicy,
    labels: Sequence[str],
    latency_s: float,
    jpeg: Callable[[], bytes | None],
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
    )
