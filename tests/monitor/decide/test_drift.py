"""The drift monitor (pure) on real frame statistics against a reference from the export path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.decide.drift import DriftMonitor, DriftSettings, _Reference, tail_distance
from monitor.model.image_stats import image_stats
from monitor.model.onnx import OnnxClassifier
from monitor.model.preprocess import frame_to_input
from monitor.model.reference import summarize
from tests.media import night, scene


def frame_stats(bgr: np.ndarray, hw: tuple[int, int]) -> dict[str, float]:
    return image_stats(frame_to_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), hw, "crop"))


@pytest.fixture(scope="module")
def model(color_model: Path) -> OnnxClassifier:
    return OnnxClassifier(color_model)


def feed(
    mon: DriftMonitor,
    model: OnnxClassifier,
    frames: list[np.ndarray],
    t0: float = 0.0,
    fps: float = 2.0,
):  # type: ignore[no-untyped-def]
    changes = []
    prev = None
    for i, bgr in enumerate(frames):
        x = frame_to_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), model.input_hw, "crop")
        conf = float(model.predict(x[None]).max())
        diff = None if prev is None else float(np.mean(np.abs(bgr.astype(np.int16) - prev)))
        prev = bgr.astype(np.int16)
        change = mon.observe("cam", t0 + i / fps, image_stats(x), conf, diff)
        if change:
            changes.append(change)
    return changes


def test_tail_distance_is_zero_inside_and_large_outside() -> None:
    ref = _Reference(summarize(np.linspace(0.3, 0.7, 500)))
    assert tail_distance(ref, np.full(50, 0.5), "both")[0] == 0.0  # narrow but inside: not a shift
    d, tail = tail_distance(ref, np.full(50, 0.1), "both")
    assert d > 0.9 and tail == "low"
    assert tail_distance(ref, np.full(50, 0.1), "high")[0] == 0.0


def test_ten_minutes_in_domain_raise_no_drift(model: OnnxClassifier) -> None:
    assert model.meta.reference is not None
    mon = DriftMonitor(model.meta.reference, DriftSettings())
    kinds = ["empty"] * 5 + ["bear"] * 3 + ["empty"] * 4 + ["person"] * 3
    frames = [
        scene(kinds[i % len(kinds)], seed=i, x_frac=(i % 7) / 10) for i in range(1200)
    ]  # 10 min at 2 fps
    assert feed(mon, model, frames) == []
    assert mon.state("cam") == ("in_domain", ())


def test_day_to_night_is_flagged_within_60_seconds(model: OnnxClassifier) -> None:
    assert model.meta.reference is not None
    mon = DriftMonitor(model.meta.reference, DriftSettings())
    day = [scene("empty", seed=i) for i in range(120)]
    nights = [night(scene("empty", seed=1000 + i)) for i in range(120)]  # 60 s at 2 fps
    changes = feed(mon, model, day + nights)
    assert changes, "night frames were never flagged"
    first = changes[0]
    assert first.new == "shifted" and first.old == "in_domain"
    assert 60.0 <= first.at <= 120.0  # after the switch at 60 s, within 60 s of night frames
    assert first.flags and set(first.flags) <= {
        "grayscale/IR",
        "dark",
        "washed-out colour",
        "low contrast",
    }
    assert first.statistics  # the numbers that triggered it
    score, reasons = mon.ood_score(frame_stats(nights[0], model.input_hw))
    assert score > 0.5 and reasons


def test_back_to_day_recovers_with_hysteresis(model: OnnxClassifier) -> None:
    assert model.meta.reference is not None
    mon = DriftMonitor(model.meta.reference, DriftSettings(window=20, min_samples=10))
    frames = [night(scene("empty", seed=i)) for i in range(40)] + [
        scene("empty", seed=100 + i) for i in range(60)
    ]
    changes = feed(mon, model, frames)
    assert [c.new for c in changes] == ["shifted", "in_domain"]


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("black frames", lambda i: np.zeros((240, 320, 3), np.uint8)),
        ("uniform frames (lens covered?)", lambda i: np.full((240, 320, 3), 140, np.uint8)),
        ("frozen image", lambda i: scene("empty", seed=7)),
    ],
)
def test_degraded_feeds(model: OnnxClassifier, name: str, make) -> None:  # type: ignore[no-untyped-def]
    assert model.meta.reference is not None
    mon = DriftMonitor(model.meta.reference, DriftSettings(frozen_after_s=20.0))
    changes = feed(
        mon, model, [scene("empty", seed=i) for i in range(20)] + [make(i) for i in range(80)]
    )
    assert changes and changes[0].new == "degraded"
    assert changes[0].flags == (name,)


def test_ood_score_is_low_for_training_like_frames(model: OnnxClassifier) -> None:
    assert model.meta.reference is not None
    mon = DriftMonitor(model.meta.reference, DriftSettings())
    score, reasons = mon.ood_score(frame_stats(scene("bear", seed=3), model.input_hw), 0.95)
    assert score < 0.25 and reasons == []
