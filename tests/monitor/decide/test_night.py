"""Night from pixels (pure): a frame's light class and each camera's hysteresis."""

from __future__ import annotations

import cv2
import pytest

from monitor.decide.night import NightSettings, NightTracker, frame_light
from monitor.model.image_stats import image_stats
from monitor.model.preprocess import frame_to_input
from tests.media import night, scene

S = NightSettings()


def _stats(bgr):  # type: ignore[no-untyped-def]
    return image_stats(frame_to_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (64, 64), "crop"))


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (
            {"colourfulness": 0.005, "brightness": 0.6},
            "night_ir",
        ),  # IR illuminator: bright but gray
        ({"colourfulness": 0.005, "brightness": 0.1}, "night_ir"),
        ({"colourfulness": 0.2, "brightness": 0.1}, "low_light"),
        ({"colourfulness": 0.2, "brightness": 0.5}, "day"),
    ],
)
def test_frame_light_class(stats: dict[str, float], expected: str) -> None:
    assert frame_light(stats, S) == expected


def test_an_ir_night_frame_is_night_and_a_day_frame_is_day() -> None:
    """The same test scenes the IR night clips are made of, whatever the clock says."""
    assert frame_light(_stats(night(scene("bear", seed=1), seed=1)), S) == "night_ir"
    assert frame_light(_stats(scene("bear", seed=1)), S) == "day"


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        (["day"] * 3, ["day"] * 3),
        (["day", "night_ir", "day", "night_ir"], ["day"] * 4),  # single gray frames do not flip it
        (["day"] + ["night_ir"] * 5, ["day"] * 5 + ["night_ir"]),  # five in a row do
        (["night_ir"] + ["day"] * 4 + ["night_ir"], ["night_ir"] * 6),  # a run must be unbroken
    ],
)
def test_a_camera_changes_class_only_after_a_run(sequence: list[str], expected: list[str]) -> None:
    stats = {
        "day": {"colourfulness": 0.2, "brightness": 0.5},
        "night_ir": {"colourfulness": 0.0, "brightness": 0.3},
    }
    tracker = NightTracker(S)
    assert [tracker.observe("cam", stats[s]) for s in sequence] == expected
    assert tracker.observe("other", None) is None
