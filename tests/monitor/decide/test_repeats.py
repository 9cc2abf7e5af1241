"""Repeat false alarms: region pictures (made in monitor.alerts.repeats), their likeness, box overlap, matching and expiry."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.alerts.repeats import appearance
from monitor.decide.repeats import (
    APPEARANCE_SIDE,
    RejectedSpot,
    RepeatFilter,
    RepeatRules,
    iou,
    likeness,
)


def textured(seed: int, size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return np.kron(base, np.ones((size // 8, size // 8, 1), dtype=np.uint8))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 1, 1), (0, 0, 1, 1), 1.0),
        ((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1), 0.0),
        ((0, 0, 0.5, 1), (0.25, 0, 0.75, 1), 1 / 3),
        ((0.1, 0.1, 0.2, 0.2), (0, 0, 1, 1), 0.01),
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),
    ],
)
def test_iou(a, b, expected) -> None:
    assert iou(a, b) == pytest.approx(expected)


@pytest.mark.parametrize("shape", [(128, 128, 3), (160, 160, 3), (90, 161, 3), (7, 5, 3), (64, 64)])
def test_appearance_is_a_fixed_size_grey_picture(shape) -> None:
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    pic = appearance(img)
    assert len(pic) == APPEARANCE_SIDE**2 * 3


def test_appearance_averages_areas() -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, 16:] = 200
    grid = np.frombuffer(appearance(img), np.uint8).reshape(APPEARANCE_SIDE, APPEARANCE_SIDE, 3)
    assert grid[:, : APPEARANCE_SIDE // 2].max() == 0
    assert grid[:, APPEARANCE_SIDE // 2 :].min() == 200


def test_similarity_ignores_brightness_and_contrast_but_not_content() -> None:
    rock = textured(1)
    brighter = np.clip(rock.astype(np.int16) * 0.8 + 30, 0, 255).astype(np.uint8)
    assert likeness(appearance(rock), appearance(rock))[0] == pytest.approx(1.0)
    assert likeness(appearance(rock), appearance(brighter))[0] > 0.99
    assert likeness(appearance(rock), appearance(textured(2)))[0] < 0.5


def test_likeness_of_flat_pictures() -> None:
    grey = np.full((64, 64, 3), 120, np.uint8)
    assert likeness(appearance(grey), appearance(grey + 5)) == (1.0, 5.0)
    assert likeness(appearance(grey), appearance(grey + 40))[1] == 40.0
    assert likeness(appearance(grey), appearance(textured(3, 64))) == (0.0, float("inf"))
    assert likeness(b"", b"")[0] == -1.0


def spot(
    event_id: int = 7,
    camera: str = "cam",
    label: str = "bear",
    box=(0.1, 0.1, 0.3, 0.3),
    img=None,
    at=1000.0,
):
    picture = appearance(textured(1) if img is None else img)
    return RejectedSpot(event_id, camera, label, box, picture, at)


@pytest.mark.parametrize(
    ("camera", "label", "box", "seed", "at", "expected"),
    [
        ("cam", "bear", (0.1, 0.1, 0.3, 0.3), 1, 2000.0, 7),  # same spot, same look
        ("cam", "bear", (0.12, 0.1, 0.32, 0.3), 1, 2000.0, 7),  # a slightly shifted box
        ("cam", "bear", (0.6, 0.6, 0.8, 0.8), 1, 2000.0, None),  # elsewhere in the frame
        ("cam", "bear", (0.1, 0.1, 0.3, 0.3), 2, 2000.0, None),  # same spot, something else there
        ("cam", "person", (0.1, 0.1, 0.3, 0.3), 1, 2000.0, None),  # another label
        ("other", "bear", (0.1, 0.1, 0.3, 0.3), 1, 2000.0, None),  # another camera
        ("cam", "bear", (0.1, 0.1, 0.3, 0.3), 1, 1000.0 + 3600.0, None),  # expired
    ],
)
def test_match(camera, label, box, seed, at, expected) -> None:
    filt = RepeatFilter(RepeatRules(expire_s=3600.0))
    filt.replace([spot()])
    assert filt.match(camera, label, box, appearance(textured(seed)), at) == expected


def test_best_match_wins_and_replace_swaps_everything() -> None:
    filt = RepeatFilter(RepeatRules())
    blurred = np.clip(
        textured(1).astype(np.int16) + np.random.default_rng(5).integers(-40, 40, (128, 128, 3)),
        0,
        255,
    )
    filt.replace([spot(1, img=blurred.astype(np.uint8)), spot(2)])
    assert filt.match("cam", "bear", (0.1, 0.1, 0.3, 0.3), appearance(textured(1)), 2000.0) == 2
    assert len(filt) == 2
    filt.replace([])  # the rejections were undone
    assert len(filt) == 0
    assert filt.match("cam", "bear", (0.1, 0.1, 0.3, 0.3), appearance(textured(1)), 2000.0) is None


def test_near_is_the_cheap_test_before_pictures() -> None:
    filt = RepeatFilter(RepeatRules(expire_s=60.0))
    filt.replace([spot(4)])
    assert filt.near("cam", "bear", (0.1, 0.1, 0.3, 0.3), 1010.0)
    assert not filt.near("cam", "bear", (0.6, 0.6, 0.8, 0.8), 1010.0)
    assert not filt.near("cam", "person", (0.1, 0.1, 0.3, 0.3), 1010.0)
    assert not filt.near("cam", "bear", (0.1, 0.1, 0.3, 0.3), 1060.0)  # expired


def grass(seed: int = 0, size: int = 160) -> np.ndarray:
    """A letterboxed-looking whole-frame region: bands of sky, treeline and textured ground."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    img[:30], img[30:130], img[130:] = 0, (70, 80, 90), 0  # letterbox bars
    img[30:60] = (150, 160, 170)  # sky
    img[60:130] = (50, 90, 40)
    img[60:130] += rng.integers(0, 25, (70, size, 3), dtype=np.uint8)
    return img


@pytest.mark.parametrize(
    ("change", "like"),
    [
        ("none", True),
        ("sensor noise", True),
        ("brighter", True),
        ("small bear", False),  # 5 % of the frame high, in a whole-frame region
        ("other scene", False),
    ],
)
def test_a_whole_frame_region_is_like_only_while_nothing_new_is_in_it(
    change: str, like: bool
) -> None:
    rejected = grass()
    img = rejected.astype(np.int16)
    rng = np.random.default_rng(9)
    if change == "sensor noise":
        img = img + rng.normal(0, 3, img.shape)
    elif change == "brighter":
        img = img * 1.15 + 10
    elif change == "small bear":
        img[100:108, 40:52] = (90, 60, 40)
    elif change == "other scene":
        img = grass(seed=4).astype(np.int16)[::-1]
    picture = appearance(np.clip(img, 0, 255).astype(np.uint8))
    filt = RepeatFilter(RepeatRules())
    filt.replace([RejectedSpot(3, "cam", "bear", (0, 0, 1, 1), appearance(rejected), 0.0)])
    assert (filt.match("cam", "bear", (0, 0, 1, 1), picture, 10.0) == 3) is like
    ncc, largest = likeness(appearance(rejected), picture)
    assert (ncc >= 0.9 and largest <= 12.0) is like
