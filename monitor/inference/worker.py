"""Deadline batching across cameras and the inference worker thread.

One worker gathers frames from every camera into a batch until ``max_batch``
frames are waiting, or until waiting longer would make the oldest frame miss
its deadline: captured time + latency budget − the inference time expected for
the batch about to run. Expected times are learned online per batch size, so
the worker adapts to the box it runs on (and to a GPU). A live frame that can
no longer make its deadline is dropped with reason ``stale`` instead of being
classified late — an alert that arrives after the bear has left is noise.
File frames are never dropped: a replay must be deterministic.

A frame may carry several regions (its camera's view plan): they travel
together. ``max_batch`` counts regions, a frame is never split across two
batches (a frame with more regions than ``max_batch`` runs alone, in chunks),
the latency model is learned per region count, and drops and latency stay
per frame, so offered = processed + dropped holds in frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from monitor.capture.hub import FrameHub
from monitor.config import BatchingConfig
from monitor.decide.regions import RegionScorer
from monitor.frames import Frame, Prediction
from monitor.inference.planning import LatencyModel, Plan
from monitor.metrics import Metrics
from monitor.worker import Worker

logger = logging.getLogger(__name__)

PredictionSink = Callable[[list[Prediction]], None]


class Classifier(Protocol):
    """What the worker needs of a model (``monitor.model.onnx.OnnxClassifier`` fits)."""

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ScoringClassifier(Classifier, Protocol):
    """A model that also scores how unfamiliar each frame is (``OnnxClassifier.classify``)."""

    def classify(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


def _ood(scores: np.ndarray | None, i: int) -> float | None:
    if scores is None or not np.isfinite(scores[i]):
        return None
    return round(float(scores[i]), 4)


class InferenceWorker(Worker):
    """The ``inference`` thread: hub → deadline batches → classifier → prediction sink.

    Args:
        hub: where capture threads leave frames.
        classifier: the model.
        cfg: batching settings.
        metrics: counters for batches, drops and inference time.
        sink: receives each batch's predictions (the alert stage's queue).
        clock: monotonic clock (injectable for tests).
        candidate: a shadow candidate model run on the same batches (never notifies).
        scorer: collapses a frame's regions into its scores (default: every
            label but ``empty`` may alert, for benches and tests).
    """

    def __init__(
        self,
        hub: FrameHub,
        classifier: Classifier,
        cfg: BatchingConfig,
        metrics: Metrics,
        sink: PredictionSink,
        clock: Callable[[], float] = time.monotonic,
        candidate: Classifier | None = None,
        scorer: RegionScorer | None = None,
    ) -> None:
        super().__init__("inference", clock)
        self.scorer = scorer or RegionScorer(getattr(classifier, "labels", ()), {})
        self.candidate = candidate
        self.hub, self.classifier, self.cfg, self.metrics, self.sink = (
            hub,
            classifier,
            cfg,
            metrics,
            sink,
        )
        self.clock = clock
        self.latency = LatencyModel()
        self.budget_s = cfg.latency_budget_ms / 1000.0
        self.plan = Plan(self.budget_s, cfg.max_batch)
        self.last_inference_mono: float | None = None
        self.batches = 0
        self._pending: list[Frame] = []

    def calibrate(self, sizes: tuple[int, ...], example_hw: tuple[int, int]) -> None:
        """Seed the latency model by timing a few batches before real frames arrive."""
        for size in sizes:
            batch = np.zeros((size, *example_hw, 3), dtype=np.uint8)
            for _ in range(2):
                t0 = self.clock()
                self.classifier.predict(batch)
                self.latency.observe(size, self.clock() - t0)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _pending_regions(self) -> int:
        return sum(f.region_count for f in self._pending)

    def _next_batch(self) -> list[Frame]:
        """The oldest frames whose regions fit in ``max_batch`` (always at least one frame)."""
        take, regions = 0, 0
        for frame in self._pending:
            if take and regions + frame.region_count > self.cfg.max_batch:
                break
            take += 1
            regions += frame.region_count
        batch = self._pending[:take]
        del self._pending[:take]
        return batch

    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.beat()
                self._cycle()
        finally:
            for frame in self._pending + self.hub.drain():
                self.metrics.frames_dropped.labels(camera=frame.camera, reason="shutdown").inc()
            self._pending.clear()

    def _cycle(self) -> None:
        room = self.cfg.max_batch - self._pending_regions()
        if room > 0:
            self._pending.extend(self.hub.take(room))
            self._pending.sort(key=lambda f: f.captured_mono)
        self._drop_stale()
        if not self._pending:
            self.hub.wait(0.1)
            return
        wait_s = self._time_left()
        full = self._pending_regions() >= self.cfg.max_batch
        if full or wait_s <= 0 or self.hub.all_closed():
            self._run_batch(self._next_batch())
        elif self._only_files():
            # Files hand over one frame per camera at a time; if the next one is
            # not there within a few milliseconds the capture side is the
            # bottleneck (or ended), and waiting longer only adds latency.
            if not self.hub.wait(min(wait_s, 0.005)):
                self._run_batch(self._next_batch())
        else:
            self.hub.wait(min(wait_s, 0.1))

    def _only_files(self) -> bool:
        return not any(f.live for f in self._pending)

    def _time_left(self) -> float:
        """Seconds the batch may still wait before its oldest live frame would be late."""
        return self.plan.time_left(self._pending, self.clock(), self.latency)

    def _drop_stale(self) -> None:
        self._pending, stale = self.plan.split_stale(self._pending, self.clock(), self.latency)
        for frame in stale:
            self.metrics.frames_dropped.labels(camera=frame.camera, reason="stale").inc()

    def _predict(self, model: Classifier, batch: np.ndarray) -> np.ndarray:
        """Run ``batch`` in chunks of ``max_batch`` (one frame may hold more regions than that)."""
        size = self.cfg.max_batch
        if len(batch) <= size:
            return model.predict(batch)
        return np.concatenate(
            [model.predict(batch[i : i + size]) for i in range(0, len(batch), size)]
        )

    def _classify(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and OOD scores per region (None: the model has no feature score)."""
        if not isinstance(self.classifier, ScoringClassifier):
            return self._predict(self.classifier, batch), None
        size = self.cfg.max_batch
        parts = [self.classifier.classify(batch[i : i + size]) for i in range(0, len(batch), size)]
        probs = np.concatenate([p for p, _ in parts])
        scores = [o for _, o in parts if o is not None]
        return probs, np.concatenate(scores) if len(scores) == len(parts) else None

    def _run_batch(self, frames: list[Frame]) -> None:
        batch = np.concatenate([f.inputs for f in frames])
        t0 = self.clock()
        try:
            # The OOD score is computed here, right after the model, so it costs
            # one small matrix product per batch and rides on every Prediction.
            probs, ood = self._classify(batch)
        except Exception:
            # One bad batch must not take the worker down: log, count, skip.
            logger.exception("inference failed for a batch of %d frames; skipping it", len(frames))
            self.metrics.batch_errors.inc()
            for f in frames:
                self.metrics.frames_dropped.labels(camera=f.camera, reason="error").inc()
            return
        elapsed = self.clock() - t0
        self.latency.observe(len(batch), elapsed)
        self.metrics.inference_seconds.observe(elapsed)
        self.metrics.batch_size.observe(len(batch))
        self.last_inference_mono = done = self.clock()
        self.batches += 1
        cand = self._run_candidate(batch)
        out, start = [], 0
        for f in frames:
            n = f.region_count
            self.metrics.regions_per_frame.labels(camera=f.camera).observe(n)
            rows = probs[start : start + n]
            frame_probs, peak = self._collapse(f, rows)
            out.append(
                Prediction(
                    frame=f,
                    probs=frame_probs,
                    decided_mono=done,
                    candidate_probs=None if cand is None else cand[start + peak],
                    region_probs=rows if n > 1 else None,
                    region=peak,
                    ood_score=_ood(ood, start + peak),
                )
            )
            start += n
        self.sink(out)

    def _collapse(self, frame: Frame, rows: np.ndarray) -> tuple[np.ndarray, int]:
        return self.scorer.collapse(frame.camera, rows, frame.zone_thresholds)

    def _run_candidate(self, batch: np.ndarray) -> np.ndarray | None:
        if self.candidate is None:
            return None
        try:
            return self._predict(self.candidate, batch)
        except Exception:
            # The candidate is on trial: its failure must never cost production a frame.
            logger.exception("the shadow candidate failed on a batch of %d frames", len(batch))
            self.metrics.batch_errors.inc()
            return None
