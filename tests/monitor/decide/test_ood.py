"""Unfamiliar alerts and the drift monitor's unfamiliar-share signal (pure), on real model scores."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.alerts.familiarity import Familiarity
from monitor.decide.drift import DriftMonitor, DriftSettings
from monitor.decide.night import NightSettings, NightTracker
from monitor.decide.ood import UnfamiliarSettings, UnfamiliarTracker
from monitor.frames import Frame, Prediction
from monitor.model.image_stats import image_stats
from monitor.model.onnx import OnnxClassifier
from monitor.model.preprocess import frame_to_input
from tests.conftest import scene_inputs
from tests.media import photo_frames

FPS = 2.0


@pytest.fixture(scope="module")
def model(ood_color_model: Path) -> OnnxClassifier:
    return OnnxClassifier(ood_color_model)


def _inputs(frames: list[np.ndarray], hw: tuple[int, int]) -> np.ndarray:
    return np.stack(
        [frame_to_input(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), hw, "crop") for f in frames]
    )


def _feed(
    mon: DriftMonitor, model: OnnxClassifier, batch: np.ndarray, t0: float = 0.0
) -> list[float]:
    """Feed frames at 2 fps; returns the times at which the camera's drift state changed."""
    probs, scores = model.classify(batch)
    assert scores is not None
    changes = []
    for i, (x, p, s) in enumerate(zip(batch, probs, scores, strict=True)):
        at = t0 + i / FPS
        change = mon.observe("cam", at, image_stats(x), float(p.max()), 5.0, ood_score=float(s))
        if change is not None:
            changes.append(at)
    return changes


def _monitor(model: OnnxClassifier) -> DriftMonitor:
    assert model.meta.reference is not None and model.feature_stats is not None
    return DriftMonitor(
        model.meta.reference, DriftSettings(), unfamiliar_rate=1 - model.feature_stats.tpr
    )


def test_foreign_footage_leaves_in_domain_within_30_seconds(model: OnnxClassifier) -> None:
    mon = _monitor(model)
    assert _feed(mon, model, np.stack(scene_inputs(60, seed0=70_000))) == []  # 30 s at home
    changes = _feed(mon, model, _inputs(photo_frames(60), model.input_hw), t0=30.0)
    assert changes and changes[0] - 30.0 <= 30.0
    state, flags = mon.state("cam")
    assert state == "shifted" and "unfamiliar scenes" in flags


def test_ten_minutes_in_domain_raise_no_drift(model: OnnxClassifier) -> None:
    mon = _monitor(model)
    assert _feed(mon, model, np.stack(scene_inputs(1200, seed0=80_000))) == []  # 600 s at 2 fps
    assert mon.state("cam") == ("in_domain", ())


@pytest.mark.parametrize(
    ("scores", "unfamiliar", "share"),
    [
        ([0.5, 0.7, 0.9], False, 0.0),
        ([1.5, 2.0], False, None),  # too few frames to judge
        ([1.5, 2.0, 0.2], True, 2 / 3),
        ([1.5, None, float("nan"), 0.2, 0.3], False, 1 / 3),  # unknown frames are left out
        ([2.0] * 10 + [0.1] * 6, False, 0.4),  # only the last 10 count
    ],
)
def test_an_alert_is_unfamiliar_when_most_recent_frames_are(
    scores: list[float | None], unfamiliar: bool, share: float | None
) -> None:
    tracker = UnfamiliarTracker(UnfamiliarSettings(window=10, min_share=0.5, min_frames=3))
    for s in scores:
        tracker.observe("cam", s)
    assert tracker.unfamiliar("cam") is unfamiliar
    assert tracker.share("cam") == (None if share is None else pytest.approx(share))


def _prediction(score: float | None) -> Prediction:
    frame = Frame(
        "cam",
        0,
        0.0,
        0.0,
        np.zeros((4, 4, 3), np.uint8),
        stats={"colourfulness": 0.2, "brightness": 0.5},
    )
    return Prediction(frame, np.array([0.9, 0.05, 0.05], np.float32), 0.0, ood_score=score)


@pytest.mark.parametrize(
    ("mode", "hold", "score", "unfamiliar", "held"),
    [
        ("active", True, 3.0, True, True),  # an active camera waits for a person
        ("active", False, 3.0, True, False),  # ood.hold_unfamiliar: false notifies at once
        ("review", True, 3.0, True, False),  # review mode waits anyway
        ("shadow", True, 3.0, True, False),
        ("active", True, 0.4, False, False),
    ],
)
def test_an_active_camera_holds_an_unfamiliar_alert(
    mode: str, hold: bool, score: float, unfamiliar: bool, held: bool
) -> None:
    fam = Familiarity(UnfamiliarTracker(UnfamiliarSettings()), NightTracker(NightSettings()), hold)
    for _ in range(5):
        fam.observe(_prediction(score))
    marks = fam.event_fields("cam", mode, (), 0.1, [])
    assert (marks.unfamiliar, marks.held) == (unfamiliar, held)
    assert marks.ood_score == score and marks.night_class == "day"
    assert bool(marks.details["ood_reasons"]) is unfamiliar


def test_without_feature_statistics_the_image_score_is_kept() -> None:
    fam = Familiarity(None, None, True)
    fam.observe(_prediction(None))
    marks = fam.event_fields("cam", "active", (), 0.3, ["dark"])
    assert (marks.unfamiliar, marks.held, marks.ood_score) == (False, False, 0.3)
    assert marks.details["ood_reasons"] == ["dark"]
