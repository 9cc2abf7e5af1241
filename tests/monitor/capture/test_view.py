"""A camera's view planner on bad input: resolution changes, tiny frames, plans bigger than a batch."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from monitor.capture.view import ViewPlanner
from monitor.config.camera import MotionRegionsConfig, ViewConfig, ZoneConfig


def frame(w: int, h: int, value: int = 120) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def test_a_resolution_change_recomputes_the_plan_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    planner = ViewPlanner("gate", ViewConfig(auto_adds="tiles"), (128, 128), max_batch=32)
    with caplog.at_level(logging.INFO, logger="monitor.capture.view"):
        a = planner.prepare(frame(1920, 1080), 0.0)
        for t in range(3):
            b = planner.prepare(frame(1280, 720), 1.0 + t)
    assert a is not None and b is not None
    assert len(a.inputs) == 16 and len(b.inputs) == 1 + 6
    changes = [r for r in caplog.records if "resolution changed" in r.getMessage()]
    assert len(changes) == 1 and "1920x1080 to 1280x720" in changes[0].getMessage()


@pytest.mark.parametrize("plan", ["auto", "full", "tiles", "motion"])
def test_a_frame_smaller_than_the_model_input_is_upscaled(plan: str) -> None:
    planner = ViewPlanner("tiny", ViewConfig(plan=plan), (64, 64))  # type: ignore[arg-type]
    view = planner.prepare(frame(40, 30), 0.0)
    assert view is not None and view.inputs.shape[1:] == (64, 64, 3)
    assert view.centre.shape == (64, 64, 3)


def test_a_plan_bigger_than_the_batch_is_warned_with_its_cost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    planner = ViewPlanner("wide", ViewConfig(plan="tiles"), (128, 128), max_batch=8, fps=2.0)
    with caplog.at_level(logging.WARNING, logger="monitor.capture.view"):
        planner.prepare(frame(1920, 1080), 0.0)
        planner.prepare(frame(1920, 1080), 1.0)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "15 regions per frame" in warning and "max_batch 8" in warning
    assert "2 batches" in warning and "30 model images/s" in warning


def test_zones_mask_what_the_model_sees_and_name_the_region() -> None:
    view = ViewConfig(
        plan="tiles",
        zones=[
            ZoneConfig(name="meadow", polygon=[[0, 0], [0.5, 0], [0.5, 1], [0, 1]], threshold=0.5)
        ],
    )
    out = ViewPlanner("z", view, (128, 128)).prepare(frame(1920, 1080, 200), 0.0)
    assert out is not None
    assert all(b[0] < 0.5 for b in out.boxes)  # tiles wholly outside the zone are not looked at
    assert set(out.zones) == {"meadow"} and set(out.zone_thresholds) == {0.5}
    right_edge = [x for x, b in zip(out.inputs, out.boxes, strict=True) if b[2] > 0.5]
    assert right_edge and all(x[:, -4:].max() == 0 for x in right_edge)  # outside: black


def test_motion_regions_follow_a_mover_and_the_whole_frame_returns_on_schedule() -> None:
    planner = ViewPlanner(
        "m", ViewConfig(plan="motion", motion=MotionRegionsConfig(full_every_s=3.0)), (128, 128)
    )
    kinds = []
    for i in range(8):
        img = frame(1920, 1080)
        if i >= 2:
            x = 200 + 40 * i
            img[500:600, x : x + 80] = (20, 20, 230)
        view = planner.prepare(img, i * 0.5)
        kinds.append(() if view is None else view.kinds)
    assert kinds[0] == ("full",)  # the first frame: the whole frame
    assert kinds[1] == ()  # nothing moved, no pass due: nothing to look at (dropped as no_motion)
    assert all("motion" in k for k in kinds[2:])
    assert kinds[6][0] == "full"  # 3 s later


def test_auto_adds_motion_regions_to_the_whole_frame_on_a_large_frame() -> None:
    planner = ViewPlanner("auto", ViewConfig(), (128, 128))
    kinds = []
    for i in range(4):
        img = frame(1920, 1080)
        if i >= 1:
            img[500:600, 300 + 40 * i : 380 + 40 * i] = (20, 20, 230)
        view = planner.prepare(img, i * 0.5)
        assert view is not None  # the whole frame, every frame
        kinds.append(view.kinds)
    assert kinds[0] == ("full",) and all(k[0] == "full" and "motion" in k for k in kinds[1:])
    small = ViewPlanner("small", ViewConfig(), (128, 128)).prepare(frame(320, 240), 0.0)
    assert small is not None and small.kinds == ("full",)
