"""The inference worker: deadline batching, stale drops, failing batches, prompt stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from monitor.capture.hub import FrameHub
from monitor.config import BatchingConfig
from monitor.frames import Frame, Prediction
from monitor.inference.planning import LatencyModel
from monitor.inference.worker import InferenceWorker
from monitor.metrics import Metrics


class SlowClassifier:
    """Takes ``delay_s`` per batch and fails on the calls listed in ``fail_on`` (1-based)."""

    def __init__(self, delay_s: float = 0.0, fail_on: tuple[int, ...] = ()) -> None:
        self.delay_s, self.fail_on, self.calls, self.sizes = delay_s, fail_on, 0, []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.sizes.append(len(batch))
        if self.calls in self.fail_on:
            raise RuntimeError("simulated inference failure")
        threading.Event().wait(self.delay_s)
        return np.tile(np.array([[0.2, 0.8]], dtype=np.float32), (len(batch), 1))


def frame(cam: str, seq: int, captured_mono: float, live: bool = True) -> Frame:
    return Frame(cam, seq, captured_mono, time.time(), np.zeros((8, 8, 3), np.uint8), None, live)


class Rig:
    def __init__(self, clf: SlowClassifier, max_batch: int = 4, budget_ms: float = 1000.0) -> None:
        self.metrics = Metrics()
        self.hub = FrameHub(
            on_drop=lambda f, r: self.metrics.frames_dropped.labels(camera=f.camera, reason=r).inc()
        )
        self.out: list[Prediction] = []
        self.worker = InferenceWorker(
            self.hub,
            clf,
            BatchingConfig(max_batch=max_batch, latency_budget_ms=budget_ms),
            self.metrics,
            self.out.extend,
        )

    def dropped(self) -> dict[str, float]:
        return self.metrics.counter_totals("bearwatch_frames_dropped", by="reason")


@pytest.fixture
def rig_factory() -> Iterator[list[Rig]]:
    rigs: list[Rig] = []
    yield rigs
    for r in rigs:
        r.worker.stop()
        assert r.worker.join(2.0)


def wait_until(cond, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        threading.Event().wait(0.01)
    return cond()


def test_latency_model_learns_and_extrapolates() -> None:
    lm = LatencyModel(alpha=0.5)
    assert lm.expect(4) == 0.0
    lm.observe(2, 0.02)
    assert lm.expect(4) == pytest.approx(0.04)
    lm.observe(2, 0.04)
    assert lm.expect(2) == pytest.approx(0.03)


def test_file_frames_are_all_processed_in_batches(rig_factory: list[Rig]) -> None:
    clf = SlowClassifier(delay_s=0.01)
    rig = Rig(clf, max_batch=4)
    rig_factory.append(rig)
    stop = threading.Event()
    rig.worker.start()
    rig.hub.register("a")
    for i in range(20):
        assert rig.hub.put(frame("a", i, time.monotonic(), live=False), stop)
    rig.hub.close("a")
    assert wait_until(lambda: len(rig.out) == 20)
    assert [p.frame.seq for p in rig.out] == list(range(20))
    assert max(clf.sizes) <= 4
    assert rig.dropped() == {}


def test_live_frames_past_budget_are_dropped_as_stale(rig_factory: list[Rig]) -> None:
    rig = Rig(SlowClassifier(), max_batch=4, budget_ms=100)
    rig_factory.append(rig)
    stop = threading.Event()
    rig.hub.register("a")
    rig.hub.register("b")
    rig.hub.put(frame("a", 0, time.monotonic() - 1.0), stop)  # already a second old
    rig.hub.put(frame("b", 0, time.monotonic()), stop)
    rig.worker.start()
    assert wait_until(lambda: len(rig.out) == 1)
    assert rig.out[0].frame.camera == "b"
    assert rig.dropped() == {"stale": 1.0}


def test_live_batch_waits_no_longer_than_the_deadline(rig_factory: list[Rig]) -> None:
    """One live frame and max_batch 8: it must run well inside its 200 ms budget, not wait for 7 more."""
    rig = Rig(SlowClassifier(), max_batch=8, budget_ms=200)
    rig_factory.append(rig)
    rig.worker.start()
    rig.hub.register("a")
    t0 = time.monotonic()
    rig.hub.put(frame("a", 0, t0), threading.Event())
    assert wait_until(lambda: len(rig.out) == 1, timeout=2.0)
    assert rig.out[0].decided_mono - t0 < 0.5  # generous: the point is "not forever"


def test_a_failing_batch_is_counted_and_skipped(rig_factory: list[Rig]) -> None:
    clf = SlowClassifier(fail_on=(1,))
    rig = Rig(clf, max_batch=1)
    rig_factory.append(rig)
    rig.worker.start()
    rig.hub.register("a")
    stop = threading.Event()
    rig.hub.put(frame("a", 0, time.monotonic(), live=False), stop)
    rig.hub.put(frame("a", 1, time.monotonic(), live=False), stop)
    assert wait_until(lambda: len(rig.out) == 1)
    assert rig.out[0].frame.seq == 1
    assert rig.dropped() == {"error": 1.0}
    assert rig.metrics.counter_totals("bearwatch_batch_errors") == {"": 1.0}
    assert rig.worker.is_alive()


def test_stop_is_prompt_and_accounts_for_pending_frames(rig_factory: list[Rig]) -> None:
    rig = Rig(SlowClassifier(), max_batch=8, budget_ms=60_000)
    rig_factory.append(rig)
    rig.worker.start()
    rig.hub.register("a")
    rig.hub.put(frame("a", 0, time.monotonic()), threading.Event())
    t0 = time.monotonic()
    rig.worker.stop()
    assert rig.worker.join(1.0)
    assert time.monotonic() - t0 < 1.0
    assert len(rig.out) + rig.dropped().get("shutdown", 0) == 1


class BrightnessClassifier(SlowClassifier):
    """``bear`` = an image's mean brightness: a region's score is set by its pixels."""

    labels = ("bear", "empty")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        super().predict(batch)
        bear = batch.reshape(len(batch), -1).mean(axis=1).astype(np.float32) / 255.0
        return np.stack([bear, 1.0 - bear], axis=1)


def region_frame(cam: str, seq: int, values: list[int], live: bool = False) -> Frame:
    regions = np.stack([np.full((8, 8, 3), v, np.uint8) for v in values])
    boxes = tuple((i / len(values), 0.0, (i + 1) / len(values), 1.0) for i in range(len(values)))
    return Frame(
        cam,
        seq,
        time.monotonic(),
        time.time(),
        regions[0],
        live=live,
        regions=regions,
        boxes=boxes,
        zones=tuple(f"z{i}" for i in range(len(values))),
    )


@pytest.mark.parametrize(
    ("regions_per_frame", "max_batch", "sizes"),
    [
        (3, 4, [3] * 6),  # two frames would be 6 regions: one frame per batch, never split
        (2, 4, [4] * 3),  # two frames per batch
        (10, 4, [4, 4, 2] * 6),  # a frame larger than the batch runs alone, in chunks
        (1, 4, [4, 2]),
    ],
)
def test_a_frames_regions_travel_together(
    rig_factory: list[Rig], regions_per_frame: int, max_batch: int, sizes: list[int]
) -> None:
    clf = BrightnessClassifier()
    rig = Rig(clf, max_batch=max_batch)
    rig_factory.append(rig)
    stop = threading.Event()
    rig.hub.register("a")
    rig.worker.start()
    n = 6
    for i in range(n):
        values = [10 * (r + 1) for r in range(regions_per_frame)]
        values[i % regions_per_frame] = 250  # the peak region moves from frame to frame
        assert rig.hub.put(region_frame("a", i, values), stop)
    rig.hub.close("a")
    assert wait_until(lambda: len(rig.out) == n)
    assert clf.sizes == sizes
    for i, pred in enumerate(rig.out):
        assert pred.frame.seq == i
        assert pred.region == i % regions_per_frame
        assert pred.box == pred.frame.boxes[pred.region] and pred.zone == f"z{pred.region}"
        assert pred.probs[0] == pytest.approx(250 / 255)
        assert pred.crop.mean() == 250
    total = rig.metrics.registry.get_sample_value(
        "bearwatch_regions_per_frame_sum", {"camera": "a"}
    )
    assert total == n * regions_per_frame


def test_many_regions_under_overload_keep_the_budget_and_the_accounting(
    rig_factory: list[Rig],
) -> None:
    """Live cameras with 6 regions a frame and a slow model: every frame is processed or dropped."""
    rig = Rig(SlowClassifier(delay_s=0.02), max_batch=8, budget_ms=150)
    rig_factory.append(rig)
    stop = threading.Event()
    cams = ["a", "b", "c"]
    for c in cams:
        rig.hub.register(c)
    rig.worker.start()
    offered = 0
    for i in range(40):
        for c in cams:
            rig.hub.put(region_frame(c, i, [1] * 6, live=True), stop)
            offered += 1
        threading.Event().wait(0.005)
    for c in cams:
        rig.hub.close(c)
    assert wait_until(lambda: rig.worker.pending == 0 and rig.hub.all_closed())
    rig.worker.stop()
    assert rig.worker.join(2.0)
    dropped = sum(rig.dropped().values())
    assert len(rig.out) + dropped == offered
    assert len(rig.out) > 0 and max(rig.worker.classifier.sizes) <= 8  # type: ignore[attr-defined]
    assert all(p.region_probs is not None and p.region_probs.shape == (6, 2) for p in rig.out)
