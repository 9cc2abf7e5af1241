"""Wires one data path: capture threads → frame hub → inference worker → alert stage → store.

Start order is consumers first (alerts, inference, then captures) so no frame
arrives before something can take it; stop order is the reverse, producers
first, each with a bounded drain, and every thread still alive after its
timeout is named in a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from monitor.alerts.familiarity import Familiarity
from monitor.alerts.latest import LatestFrames
from monitor.alerts.repeats import RepeatGuard
from monitor.alerts.stage import AlertStage
from monitor.alerts.taps import AuditTap, CandidateTap, DriftTap, ScoreLogTap, StatsTap, Tap
from monitor.capture.hub import FrameHub
from monitor.capture.rate import KEEPING_UP
from monitor.capture.worker import CaptureWorker
from monitor.config import CameraConfig, Config
from monitor.decide.audit import AuditSampler
from monitor.decide.camera_stats import StatsRecorder
from monitor.decide.candidate import CandidateTracker
from monitor.decide.drift import DriftMonitor, DriftSettings
from monitor.decide.night import NightSettings, NightTracker
from monitor.decide.ood import UnfamiliarSettings, UnfamiliarTracker
from monitor.decide.regions import RegionScorer
from monitor.decide.repeats import RepeatFilter, RepeatRules
from monitor.errors import ModelError
from monitor.frames import Frame, LastDecisions
from monitor.inference.worker import InferenceWorker
from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.records import CameraHealth, HealthReport
from monitor.service.supervisor import Supervised
from monitor.store import ReviewStore
from monitor.store.modes import ModeBook
from monitor.store.writer import StoreWriter
from monitor.worker import Deadline

logger = logging.getLogger(__name__)

STATS_PERIOD_S = 60.0  # how often per-camera operating statistics go to the store


class Pipeline:
    """All workers for one config, sharing one classifier, store and metrics."""

    def __init__(
        self,
        cfg: Config,
        classifier: OnnxClassifier,
        store: ReviewStore,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        *,
        capture: bool = True,
    ) -> None:
        self.cfg, self.classifier, self.store, self.metrics, self.clock = (
            cfg,
            classifier,
            store,
            metrics,
            clock,
        )
        # Files may decode up to a batch ahead while the model works (live: one frame, newest wins).
        self.hub = FrameHub(on_drop=self._count_drop, file_depth=cfg.batching.max_batch)

        meta = classifier.meta
        cameras = [c for c in cfg.cameras if c.enabled]
        self.modes = ModeBook(
            {c.id: (c.mode, c.active_hours) for c in cameras}, cfg.timezone, load=store.camera_modes
        )
        self.candidate = self._load_candidate()
        self.latest = LatestFrames()  # what each camera sees now, for the cameras page
        self.captures: dict[str, CaptureWorker] = {}
        self.decisions = LastDecisions()
        # Decisions never wait on the store: the alert stage hands its writes over.
        self.writer = StoreWriter(store, metrics, clock=clock)
        self.alerts = AlertStage(
            cameras,
            meta.labels,
            meta.model_version,
            store,
            metrics,
            cfg.store.snapshot_quality,
            clock=clock,
            modes=self.modes,
            drift=self._drift_tap(),
            taps=self._taps(cameras),
            decisions=self.decisions,
            familiarity=self._familiarity(),
            writer=self.writer,
            repeats=self._repeats(cameras, meta.labels),
            repeats_expire_s=cfg.repeats.expire_hours * 3600.0,
        )
        self.inference = self._new_inference()
        # capture=False: no capture threads; the caller feeds ``hub`` itself (the overload benchmark).
        self.captures = {c.id: self._new_capture(c.id) for c in cameras} if capture else {}
        self.started_mono: float | None = None

    def _repeats(
        self, cameras: Sequence[CameraConfig], labels: Sequence[str]
    ) -> RepeatGuard | None:
        """The repeat false-alarm guard (``repeats:``), or None when it is switched off."""
        rc = self.cfg.repeats
        if not rc.enabled:
            return None
        rules = RepeatRules(rc.iou_min, rc.similarity_min, rc.change_max, rc.expire_hours * 3600.0)
        return RepeatGuard(RepeatFilter(rules), labels, {c.id: c.decision for c in cameras})

    def _load_candidate(self) -> OnnxClassifier | None:
        """The shadow candidate model, if configured (a broken one refuses the start, like production)."""
        cc = self.cfg.candidate
        if cc is None:
            return None
        candidate = OnnxClassifier(
            cc.path, self.cfg.model.providers, cc.threads, self.cfg.batching.max_batch
        )
        if candidate.input_hw != self.classifier.input_hw or (
            candidate.meta.resize_method != self.classifier.meta.resize_method
        ):
            raise ModelError(
                f"candidate {cc.path} takes {candidate.input_hw} ({candidate.meta.resize_method}) but production "
                f"takes {self.classifier.input_hw} ({self.classifier.meta.resize_method}); they must see the same frames"
            )
        logger.info(
            "shadow candidate %s runs beside %s",
            candidate.meta.model_version,
            self.classifier.meta.model_version,
        )
        return candidate

    def _candidate_tracker(self, cameras: list[CameraConfig]) -> CandidateTracker | None:
        if self.candidate is None or self.cfg.candidate is None:
            return None
        return CandidateTracker(
            self.classifier.labels,
            self.candidate.labels,
            {c.id: (c.decision.alert_labels, c.decision.threshold) for c in cameras},
            (self.classifier.meta.model_version, self.candidate.meta.model_version),
            self.cfg.candidate.report_every_s,
            self.cfg.candidate.max_disagreements_per_hour,
        )

    def _taps(self, cameras: list[CameraConfig]) -> list[Tap]:
        """Audit sampling, the shadow candidate and operating statistics, as configured."""
        meta, cfg = self.classifier.meta, self.cfg
        sampler = AuditSampler(cfg.audit, cfg.audit.seed) if cfg.audit.enabled else None
        taps: list[Tap] = []
        if sampler is not None:
            taps.append(AuditTap(sampler, tuple(meta.labels), meta.model_version, self.metrics))
        tracker = self._candidate_tracker(cameras)
        if tracker is not None:
            taps.append(
                CandidateTap(
                    tracker, lambda: max(self.alerts.last_captured_at.values(), default=None)
                )
            )
        recorder = StatsRecorder(
            [c.id for c in cameras],
            self.metrics,
            lambda: {cid: w.status for cid, w in self.captures.items()},
            STATS_PERIOD_S,
            sampler,
        )
        taps.append(StatsTap(recorder))
        if cfg.store.score_log:
            taps.append(ScoreLogTap())
        taps.append(self.latest)
        return taps

    def _drift_tap(self) -> DriftTap | None:
        monitor = self._drift_monitor()
        if monitor is None:
            return None
        return DriftTap(monitor, self.classifier.meta.model_version, self.modes, self.metrics)

    def _drift_monitor(self) -> DriftMonitor | None:
        meta, dc = self.classifier.meta, self.cfg.drift
        if not dc.enabled:
            return None
        if meta.reference is None:
            logger.warning(
                "drift monitoring is disabled: model %s was exported without reference statistics",
                self.classifier.path,
            )
            return None
        settings = DriftSettings(
            window=dc.window,
            min_samples=dc.min_samples,
            enter=dc.enter,
            exit=dc.exit,
            frozen_after_s=dc.frozen_after_s,
            degraded_frames=dc.degraded_frames,
        )
        return DriftMonitor(
            meta.reference,
            settings,
            input_hw=meta.input_hw,
            unfamiliar_rate=self._unfamiliar_rate(),
        )

    def _unfamiliar_rate(self) -> float | None:
        """The share of in-domain frames over the OOD threshold; None: no feature score."""
        stats = self.classifier.feature_stats
        return None if stats is None or not self.cfg.ood.enabled else 1.0 - stats.tpr

    def _familiarity(self) -> Familiarity:
        oc, nc = self.cfg.ood, self.cfg.night
        tracker = None
        if self._unfamiliar_rate() is not None:
            tracker = UnfamiliarTracker(UnfamiliarSettings(oc.window, oc.min_share, oc.min_frames))
        night = NightTracker(
            NightSettings(nc.gray_colourfulness, nc.low_light_brightness, nc.switch_after)
        )
        return Familiarity(tracker, night, oc.hold_unfamiliar)

    def _new_inference(self) -> InferenceWorker:
        worker = InferenceWorker(
            self.hub,
            self.classifier,
            self.cfg.batching,
            self.metrics,
            self.alerts.submit,
            clock=self.clock,
            candidate=self.candidate,
            scorer=RegionScorer(
                self.classifier.labels, {c.id: c.decision for c in self.cfg.cameras}
            ),
        )
        worker.calibrate(tuple(sorted({1, self.cfg.batching.max_batch})), self.classifier.input_hw)
        return worker

    def _new_capture(self, camera_id: str) -> CaptureWorker:
        cam = next(c for c in self.cfg.cameras if c.id == camera_id)
        meta = self.classifier.meta
        return CaptureWorker(
            cam,
            meta.input_hw,
            meta.resize_method,
            self.hub,
            self.metrics,
            gate_state=self.decisions.gate_state,
            max_batch=self.cfg.batching.max_batch,
        )

    def _count_drop(self, frame: Frame, reason: str) -> None:
        self.metrics.frames_dropped.labels(camera=frame.camera, reason=reason).inc()

    def start(self) -> None:
        self.writer.start()
        self.alerts.start()
        self.inference.start()
        for worker in self.captures.values():
            worker.start()
        self.started_mono = self.clock()
        logger.info(
            "pipeline started: %d camera(s), model %s, batch ≤ %d, budget %.0f ms",
            len(self.captures),
            self.classifier.meta.model_version,
            self.cfg.batching.max_batch,
            self.cfg.batching.latency_budget_ms,
        )

    def finished(self) -> bool:
        """True when every camera has ended (files) and all frames are decided."""
        return (
            self.hub.all_closed()
            and self.inference.pending == 0
            and self.alerts.idle()
            and self.writer.idle()
            and not any(w.is_alive() for w in self.captures.values())
        )

    def restart_capture(self, camera_id: str) -> None:
        """Replace a capture worker whose thread died (the supervisor calls this)."""
        self.captures[camera_id] = worker = self._new_capture(camera_id)
        worker.start()

    def restart_inference(self) -> None:
        """Replace a crashed inference worker (its frames were already counted as dropped)."""
        self.inference = self._new_inference()
        self.inference.start()

    def supervised(self) -> list[Supervised]:
        """Every thread of the data path, for the supervisor.

        Captures and inference restart from their factories; a stuck
        inference call cannot be interrupted, so it makes the process give up
        rather than run a second model thread beside it. The alert stage owns
        the open events and is not restarted.
        """
        stuck_s = self.cfg.supervisor.stuck_after_s
        items = [
            Supervised(
                f"capture:{cam_id}",
                lambda c=cam_id: self.captures[c],  # type: ignore[misc]
                lambda c=cam_id: self.restart_capture(c),  # type: ignore[misc]
            )
            for cam_id in self.captures
        ]
        items.append(
            Supervised(
                "inference",
                lambda: self.inference,
                self.restart_inference,
                stuck_after_s=stuck_s,
                restart_when_stuck=False,
            )
        )
        items.append(Supervised("alerts", lambda: self.alerts))
        items.append(Supervised("store-writer", lambda: self.writer))
        return items

    def stop(self, deadline: Deadline | float = 5.0) -> list[str]:
        """Stop producers, drain, stop consumers, all within one deadline; returns the threads that would not stop.

        Args:
            deadline: the shutdown budget shared with the rest of the daemon (seconds, or a ``Deadline``).
        """
        if not isinstance(deadline, Deadline):
            deadline = Deadline(deadline, self.clock)
        stuck: list[str] = []
        for worker in self.captures.values():
            worker.stop()
        for cam_id, worker in self.captures.items():
            if not worker.join(deadline.remaining(floor_s=0.1)):
                stuck.append(f"capture:{cam_id}")
        while not deadline.expired() and (self.inference.pending or not self.hub.all_closed()):
            if not self.inference.is_alive():
                break
            self.inference.stop_event.wait(0.02)
            if not any(w.is_alive() for w in self.captures.values()):
                break
        self.inference.stop()
        if not self.inference.join(deadline.remaining(floor_s=0.1)):
            stuck.append("inference")
        self.alerts.stop()
        if not self.alerts.join(deadline.remaining(floor_s=0.5)):
            stuck.append("alerts")
        # Last: the stage's final writes (events closed at stop) are queued by now.
        self.writer.stop()
        if not self.writer.join(deadline.remaining(floor_s=0.5)):
            stuck.append("store-writer")
        return stuck

    def _drift_health(self, camera: str) -> dict[str, Any] | None:
        tap = self.alerts.drift
        if tap is None:
            return None
        state, flags = tap.monitor.state(camera)
        return {"state": state, "flags": list(flags), "statistics": tap.monitor.statistics(camera)}

    def health(self) -> HealthReport:
        """Per-camera status, capacity and the last successful inference, for ``/healthz``.

        Degraded (``ok`` False) when a worker is down, the store is failing,
        or no camera is online (all offline, reconnecting or ended).
        """
        now = self.clock()
        last_inf = self.inference.last_inference_mono
        cams = {cam_id: self._camera_health(w, now) for cam_id, w in self.captures.items()}
        workers = {
            "inference": self.inference.is_alive(),
            "alerts": self.alerts.is_alive(),
            "store-writer": self.writer.is_alive(),
        }
        problems = [f"worker {name} is not running" for name, alive in workers.items() if not alive]
        if self.store.spilling:
            problems.append("the review store is failing (writes are being spilled)")
        if self.store.disk_low:
            problems.append(
                "the disk beside the review store is full (events are stored without snapshots)"
            )
        if not any(c["status"] == "online" for c in cams.values()):
            problems.append("no camera is online")
        warnings = [
            f"camera {cid} reads {c['read_fps']:.1f} of {c['target_fps']:g} frames/s asked"
            for cid, c in cams.items()
            if c["keeping_up"] is False and c["read_fps"] is not None
        ] + [
            f"camera {cid} replays at {c['replay_speed']:.2f}x real time"
            for cid, c in cams.items()
            if c["replay_speed"] is not None and c["replay_speed"] < KEEPING_UP
        ]
        return {
            "ok": not problems,
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "warnings": warnings,
            "model_version": self.classifier.meta.model_version,
            "providers": list(self.classifier.providers),
            "store_healthy": self.store.healthy,
            "store_backlog": self.writer.backlog,
            "store_size_bytes": self.store.size_bytes_cached,
            "workers": workers,
            "seconds_since_inference": None if last_inf is None else round(now - last_inf, 3),
            "cameras": cams,
        }

    def _camera_health(self, w: CaptureWorker, now: float) -> CameraHealth:
        read_fps, speed = w.read_fps, w.replay_speed
        live = w.cfg.kind != "file"
        return {
            "status": w.status,
            "source": w.cfg.safe_source,
            "seconds_since_frame": None
            if w.last_frame_mono is None
            else round(now - w.last_frame_mono, 3),
            "last_error": w.last_error,
            "drift": self._drift_health(w.cfg.id),
            "target_fps": w.cfg.fps,
            "read_fps": None if read_fps is None else round(read_fps, 2),
            "frames_missed": w.frames_missed,
            "keeping_up": None
            if read_fps is None or not live or w.status != "online"
            else read_fps >= KEEPING_UP * w.cfg.fps,
            "replay_speed": None if speed is None else round(speed, 3),
        }
