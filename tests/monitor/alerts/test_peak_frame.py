"""An event's peak_score, probabilities and snapshot describe one frame: its best."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from monitor.alerts.stage import AlertStage
from monitor.config import CameraConfig, DecisionConfig
from monitor.frames import Frame, Prediction
from monitor.metrics import Metrics
from monitor.store import ReviewStore

LABELS = ("bear", "empty", "person")
IMAGE = np.zeros((8, 8, 3), dtype=np.uint8)


def probs(bear: float) -> np.ndarray:
    return np.array([bear, 1 - bear - 0.01, 0.01], dtype=np.float32)


def run(tmp_path: Path, scores: list[float]) -> dict[str, object]:
    decision = DecisionConfig(threshold=0.7, window=3, min_hits=2, end_after_s=5.0)
    camera = CameraConfig(id="trail", source=str(tmp_path / "t.mp4"), decision=decision)
    store = ReviewStore(tmp_path / "s.db")
    stage = AlertStage([camera], LABELS, "test-1", store, Metrics())
    stage.start()
    try:
        batch = []
        for seq, bear in enumerate(scores):
            # Each frame's snapshot is a gray level that names the frame.
            shot = np.full((16, 16, 3), 10 * seq, dtype=np.uint8)
            frame = Frame(
                "trail", seq, time.monotonic(), 1_750_000_000.0 + seq, IMAGE, shot, live=False
            )
            batch.append(Prediction(frame, probs(bear), time.monotonic()))
        stage.submit(batch)
        while not stage.idle():
            threading.Event().wait(0.01)
        (event,) = store.list_events(kind="alert")
        return {**event, "jpeg": store.get_snapshot(int(event["id"]))}
    finally:
        stage.stop()
        stage.join(10.0)
        store.close()


def gray(jpeg: object) -> float:
    assert isinstance(jpeg, bytes)
    return float(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE).mean())


def test_a_new_peak_replaces_probs_with_the_snapshot(tmp_path: Path) -> None:
    """Regression: an update stored the new peak's score and snapshot but kept the first
    frame's details.probs, so peak_score and the stored probabilities disagreed."""
    event = run(tmp_path, [0.75, 0.8, 0.99, 0.9, 0.1])
    details = event["details"]
    assert isinstance(details, dict)
    assert event["peak_score"] == np.float32(0.99).item()
    assert details["probs"]["bear"] == round(float(np.float32(0.99)), 4)
    assert details["peak_seq"] == 2
    assert abs(gray(event["jpeg"]) - 20) < 3  # frame 2's snapshot


def test_a_better_return_within_the_cooldown_brings_its_frame(tmp_path: Path) -> None:
    event = run(tmp_path, [0.8, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.95, 0.95, 0.1])
    details = event["details"]
    assert isinstance(details, dict)
    assert event["peak_score"] == np.float32(0.95).item()
    assert details["probs"]["bear"] == round(float(np.float32(0.95)), 4)
    assert details["peak_seq"] == 8
    assert abs(gray(event["jpeg"]) - 80) < 3
