"""The alert stage in a daemon that runs for months: nothing in it grows with the number of frames or events."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

from monitor.alerts.stage import AlertStage
from monitor.alerts.taps import ReplayRecorder
from monitor.config import CameraConfig, DecisionConfig
from monitor.frames import Frame, Prediction
from monitor.metrics import Metrics
from monitor.store import ReviewStore

LABELS = ("bear", "empty", "person")
BEAR = np.array([0.95, 0.03, 0.02], dtype=np.float32)
EMPTY = np.array([0.02, 0.96, 0.02], dtype=np.float32)
IMAGE = np.zeros((8, 8, 3), dtype=np.uint8)


def feed(stage: AlertStage, start: int, count: int, t0: float) -> None:
    """Frames at 10 fps: 10 with a bear, then 20 empty — an event every 3 s of camera time."""
    batch: list[Prediction] = []
    for seq in range(start, start + count):
        frame = Frame("trail", seq, time.monotonic(), t0 + seq / 10.0, IMAGE, live=False)
        batch.append(Prediction(frame, BEAR if seq % 30 < 10 else EMPTY, time.monotonic()))
        if len(batch) == 500:
            stage.submit(batch)
            batch = []
    if batch:
        stage.submit(batch)
    while not stage.idle():
        threading.Event().wait(0.01)


def test_memory_stays_flat_over_100k_frames_with_events(tmp_path: Path) -> None:
    decision = DecisionConfig(threshold=0.7, window=3, min_hits=2, end_after_s=1.0, cooldown_s=2.0)
    camera = CameraConfig(id="trail", source=str(tmp_path / "trail.mp4"), decision=decision)
    store = ReviewStore(tmp_path / "s.db")
    stage = AlertStage([camera], LABELS, "test-1", store, Metrics())
    stage.start()
    t0 = 1_750_000_000.0
    try:
        feed(stage, 0, 20_000, t0)  # warm: caches, the store's first pages
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        feed(stage, 20_000, 80_000, t0)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        events = store.count_events(kind="alert")
    finally:
        stage.stop()
        stage.join(10.0)
        store.close()
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    assert events >= 3000  # the stream really had events
    assert stage.open_events <= 2  # only the open one and one within its cooldown
    assert grown < 2_000_000, f"{grown} bytes more after 80k frames and {events} events"


def test_a_replay_recorder_sees_every_event(tmp_path: Path) -> None:
    """Replay and bench take their summaries from a recorder they register, not from the stage."""
    decision = DecisionConfig(threshold=0.7, window=3, min_hits=2, end_after_s=1.0, cooldown_s=2.0)
    camera = CameraConfig(id="trail", source=str(tmp_path / "trail.mp4"), decision=decision)
    store = ReviewStore(tmp_path / "s.db")
    stage = AlertStage([camera], LABELS, "test-1", store, Metrics())
    recorder = stage.record_to(ReplayRecorder())
    stage.start()
    try:
        feed(stage, 0, 300, 1_750_000_000.0)
    finally:
        stage.stop()
        stage.join(10.0)
        store.close()
    assert len(recorder.events) == 10
    assert len(recorder.latencies_s) == 300
    assert all(e.end is not None for e in recorder.events.values())
