"""The ``alerts`` thread: predictions → per-camera decisions → review store → taps and event observers.

Decisions are cheap, store writes are not: keeping them off the inference
thread means a slow disk never stalls the model, and handing them to the
store writer (``monitor.store.writer``) means a slow or locked store never
stalls the decisions either. The queue between inference and the stage is
bounded but large, and a put that cannot get in is logged and counted, never
silent. Every event is written (and committed, or spilled durably) to the
store before any observer — the notifier — hears of it: observers run on the
writer's thread, after the write. Drift, audit, candidate and
statistics are taps (``monitor.alerts.taps``): the stage hands each decided
frame to every tap and stores what they hand back. The stage keeps only the
events still open (or within their cooldown), so its memory stays flat in a
daemon that runs for months.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from monitor.alerts.event_rows import EventRows
from monitor.alerts.familiarity import Familiarity
from monitor.alerts.repeats import RepeatGuard, Suppressed
from monitor.alerts.taps import (
    CandidateComparison,
    DriftTap,
    EventSummary,
    Record,
    ReplayRecorder,
    StatsRows,
    Tap,
    decided_frame,
    memo,
)
from monitor.config import CameraConfig
from monitor.decide.policy import DecisionEvent, DecisionPolicy
from monitor.decide.repeats import RejectedSpot
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
from monitor.store.writer import StoreWriter
from monitor.worker import Worker

logger = logging.getLogger(__name__)

SCORE_FLUSH_S = 5.0  # how often buffered score-log rows reach the disk
# An open event's last frame is written at least this often (camera time), so a
# crash recovery closes it near where it really was, not at its last new peak.
TOUCH_EVERY_S = 5.0
REPEATS_REFRESH_S = 10.0  # how often the rejected spots are read again (a rejection, an undo)

EventKey = tuple[
    str, str, int, int
]  # camera, label, event number, the rejected event it is like (0: none)


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
        last_frame_at: float | None = None,
        box: tuple[float, float, float, float] | None = None,
        zone: str | None = None,
        appearance: str | None = None,
    ) -> bool: ...

    def rejected_spots(self, since: float) -> list[RejectedSpot]: ...

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
        writer: runs the store writes on its own thread; None: they run on this
            one (tests, tools that want the old synchronous order).
        repeats: takes regions like a rejected alert out of each frame's score
            and keeps their events apart as suppressed (None: no suppression).
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
        familiarity: Familiarity | None = None,
        writer: StoreWriter | None = None,
        repeats: RepeatGuard | None = None,
        repeats_expire_s: float = 7 * 86400.0,
    ) -> None:
        super().__init__("alerts", clock)
        self.repeats, self._repeats_expire_s = repeats, repeats_expire_s
        self._repeats_read: float | None = None
        self.writer = writer
        self.mode_book = modes or ModeBook({c.id: (c.mode, c.active_hours) for c in cameras})
        self.drift = drift  # also a tap; kept by name because alerts carry its flags
        self.taps: list[Tap] = ([drift] if drift is not None else []) + list(taps)
        self.decisions = decisions or LastDecisions()
        # Light class and unfamiliar share per camera; marks new alerts (and holds them in active mode).
        self.familiarity = familiarity or Familiarity(None, None, False)
        self.policies = {c.id: DecisionPolicy(c.id, labels, c.decision) for c in cameras}
        self._cooldown_s = {c.id: c.decision.cooldown_s for c in cameras}
        self.labels, self.model_version, self.store, self.metrics = (
            tuple(labels),
            model_version,
            store,
            metrics,
        )
        self.clock = clock
        self.rows = EventRows(
            labels, model_version, self.mode_book, drift, self.familiarity, snapshot_quality
        )
        self.observers: list[Observer] = []
        # Told of an event whose start went to the spill (the store is slow or
        # locked): the spill is durable, so an active camera's alert may go out now.
        self.on_spilled: list[Callable[[NewEvent], None]] = []
        self.recorders: list[ReplayRecorder] = []
        self._open: dict[EventKey, EventSummary] = {}
        self._scores_flushed = clock()
        store.score_log.set_model(labels, model_version)
        self._touched: dict[EventKey, float] = {}  # last_frame_at last written
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
        if self.repeats is not None:
            self._refresh_repeats()  # before the first frame: a replay starts knowing its rejections
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

    def _refresh_repeats(self) -> None:
        """Read the rejected spots again (on the writer's thread when there is one: it is a store read)."""
        assert self.repeats is not None
        guard, since = self.repeats, time.time() - self._repeats_expire_s
        first, self._repeats_read = self._repeats_read is None, self.clock()

        def read() -> None:
            try:
                guard.refresh(self.store.rejected_spots(since))
            except Exception:
                logger.exception("reading rejected alerts for repeat suppression failed")

        if not first and self.writer is not None and self.writer.is_alive():
            self.writer.submit(read)
        else:
            read()

    def _flush_periodic(self, force: bool) -> None:
        now, wall = self.clock(), time.time()
        if (
            self.repeats is not None
            and self._repeats_read is not None
            and now - self._repeats_read >= REPEATS_REFRESH_S
        ):
            self._refresh_repeats()
        for tap in self.taps:
            self._persist(tap.flush(now, wall, force))
        if force or now - self._scores_flushed >= SCORE_FLUSH_S:
            self.store.score_log.flush(wall)
            self._scores_flushed = now

    def _write(self, job: Callable[[], None]) -> None:
        """Run a store write on the writer's thread (or here, without a writer)."""
        if self.writer is None:
            job()
        else:
            self.writer.submit(job)

    def _persist(self, records: Sequence[Record]) -> None:
        """Hand what a tap returned to the writer (each write retries, then spills or logs: never raises)."""
        for record in records:
            if isinstance(record, ScoreRow):
                # A buffered file append: cheap, and never queued behind a slow database.
                self.store.score_log.append(record)
            else:
                self._write(functools.partial(self._store_record, record))

    def _store_record(self, record: Record) -> None:
        if isinstance(record, NewEvent):
            self.store.add_event(record)
        elif isinstance(record, AuditSample):
            self.store.add_audit_sample(record)
        elif isinstance(record, StatsRows):
            self.store.add_camera_stats(list(record.rows))
        elif isinstance(record, CandidateComparison):
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
        suppressed: list[Suppressed] = []
        if self.repeats is not None:
            # Regions like a rejected alert leave the frame's score before anything decides on it.
            pred, suppressed = self.repeats.apply(pred)
        jpeg = memo(lambda: self.rows.jpeg(frame.snapshot))
        light = self.familiarity.observe(pred)
        decided = decided_frame(pred, policy, self.labels, latency_s, jpeg, light)
        if self.drift is not None:
            # Before the frame's events, which carry the new flags.
            self._persist(self.drift.on_decided(decided))
        for ev in policy.step(pred.probs, frame.captured_at, frame.seq):
            self._handle(ev, frame, pred.probs, pred)
        for s in suppressed:
            like = dataclasses.replace(pred, probs=s.probs, region=s.region)
            self._handle(s.event, frame, s.probs, like, suppressed_by=s.spot)
        self._touch_open(frame, pred.probs, policy.cfg.release)
        # The other taps see whether this frame left an event open.
        decided = dataclasses.replace(decided, in_event=bool(policy.active_labels))
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
        if self.repeats is not None:
            for s in self.repeats.close(lambda cam: self.last_captured_at.get(cam, time.time())):
                self._handle(s.event, None, None, suppressed_by=s.spot)

    def _handle(
        self,
        ev: DecisionEvent,
        frame: Frame | None,
        probs: np.ndarray | None,
        pred: Prediction | None = None,
        suppressed_by: int | None = None,
    ) -> None:
        """Decide what the event's row becomes here; write it (then tell observers) on the writer."""
        key = (ev.camera, ev.label, ev.number, suppressed_by or 0)
        summary = self._open.get(key)
        job: Callable[[], None]
        if ev.kind == "start" or summary is None:
            new = self.rows.new_event(ev, frame, probs, pred, suppressed_by)
            summary = EventSummary(
                None, ev.camera, ev.label, ev.start_at, None, ev.peak_score, ev.frames,
                new.unfamiliar, new.ood_score, suppressed_by=suppressed_by,
            )  # fmt: skip
            self._open[key] = summary
            kind = "start" if suppressed_by is None else "suppressed"
            self.metrics.events.labels(camera=ev.camera, label=ev.label, kind=kind).inc()
            job = functools.partial(self._store_start, ev, summary, new)
        else:
            if ev.kind == "end":
                self.metrics.events.labels(camera=ev.camera, label=ev.label, kind="end").inc()
            fields = self.rows.changes(ev, frame, probs, pred)
            job = functools.partial(
                self._store_change,
                ev,
                summary,
                fields,
                lambda: self.rows.new_event(ev, frame, probs, pred, suppressed_by),
            )
        summary.peak_score, summary.frames = ev.peak_score, ev.frames
        if pred is not None and ev.kind in ("start", "update"):
            summary.box, summary.zone = pred.box, pred.zone
        summary.end = ev.end_at
        if ev.kind == "end":
            self._forget_cooled(ev.camera, ev.end_at)
        self._write(functools.partial(self._stored, key, ev, summary, job))

    def _touch_open(self, frame: Frame, probs: np.ndarray, release: float) -> None:
        """Write the time of an open event's latest frame with its label present, every ``TOUCH_EVERY_S``."""
        for key, summary in self._open.items():
            if summary.camera != frame.camera or summary.end is not None:
                continue
            if float(probs[self.labels.index(summary.label)]) < release:
                continue
            if frame.captured_at - self._touched.get(key, summary.start) < TOUCH_EVERY_S:
                continue
            self._touched[key] = frame.captured_at
            self._write(functools.partial(self._store_touch, summary, frame.captured_at))

    def _store_touch(self, summary: EventSummary, at: float) -> None:
        if summary.id is not None:  # a spilled start: its next change re-adds it anyway
            self.store.update_event(summary.id, last_frame_at=at)

    def _store_start(self, ev: DecisionEvent, summary: EventSummary, new: NewEvent) -> None:
        summary.id = self.store.add_event(new)
        if summary.id is None and new.suppressed_by is None:
            for hook in self.on_spilled:
                try:
                    hook(new)
                except Exception:
                    logger.exception("a spilled-event hook failed for camera %s", ev.camera)
        logger.info(
            "camera %s: %s event %s started (score %.2f)%s",
            ev.camera,
            ev.label,
            summary.id,
            ev.score,
            f" — suppressed: like rejected #{new.suppressed_by}" if new.suppressed_by else
            " — unfamiliar scene, held for review" if new.held else
            " — unfamiliar scene" if new.unfamiliar else "",
        )  # fmt: skip

    def _store_change(
        self,
        ev: DecisionEvent,
        summary: EventSummary,
        fields: Mapping[str, object],
        new: Callable[[], NewEvent],
    ) -> None:
        if summary.id is None:
            # The start went to the spill file (store unavailable): adding again
            # with the current state merges into the same row once it replays.
            summary.id = self.store.add_event(new())
        else:
            self.store.update_event(summary.id, last_frame_at=ev.at, **fields)  # type: ignore[arg-type]
        if ev.kind == "resume":
            logger.info(
                "camera %s: %s event %s resumed within cooldown", ev.camera, ev.label, summary.id
            )
        elif ev.kind == "end":
            logger.info(
                "camera %s: %s event %s ended (peak %.2f)",
                ev.camera, ev.label, summary.id, ev.peak_score,
            )  # fmt: skip

    def _stored(
        self,
        key: EventKey,
        ev: DecisionEvent,
        summary: EventSummary,
        job: Callable[[], None],
    ) -> None:
        """On the writer: the write, then the recorders and observers (stored before anyone hears)."""
        job()
        for recorder in self.recorders:
            recorder.on_event(key, summary)
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
            self._touched.pop(key, None)
