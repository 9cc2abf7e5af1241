"""The pure deadline planner: how long a batch may wait, and which live frames are already too late."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.frames import Frame
from monitor.inference.planning import LatencyModel, Plan

IMAGE = np.zeros((8, 8, 3), dtype=np.uint8)


def frame(captured: float, live: bool = True, seq: int = 0) -> Frame:
    return Frame("cam", seq, captured, 1_750_000_000.0 + captured, IMAGE, live=live)


def latency(seconds_per_image: float) -> LatencyModel:
    model = LatencyModel()
    model.observe(1, seconds_per_image)
    return model


@pytest.mark.parametrize(
    ("captured", "now", "per_image_s", "left_s"),
    [
        (10.0, 10.0, 0.1, 1.0 - 0.1 * 2 - 0.05),  # two images expected (one waiting + the next)
        (10.0, 10.5, 0.1, 0.5 - 0.2 - 0.05),
        (10.0, 11.0, 0.0, -0.05),  # past the deadline even with free inference
    ],
)
def test_time_left_counts_back_from_the_oldest_live_frame(
    captured: float, now: float, per_image_s: float, left_s: float
) -> None:
    plan = Plan(budget_s=1.0, max_batch=8)
    assert plan.time_left([frame(captured)], now, latency(per_image_s)) == pytest.approx(left_s)


def test_files_alone_may_wait_the_whole_budget() -> None:
    plan = Plan(budget_s=1.0, max_batch=8)
    assert plan.time_left([frame(0.0, live=False)], 99.0, latency(0.1)) == 1.0


@pytest.mark.parametrize(
    ("ages", "live", "stale"),
    [
        ((0.1, 0.5, 0.95), (True, True, True), (0.95,)),  # 0.95 s old + 0.1 s inference > 1 s
        ((0.95,), (False,), ()),  # a file frame is never stale
        ((1.5, 0.2), (True, False), (1.5,)),
    ],
)
def test_live_frames_that_cannot_make_their_deadline_are_split_off(
    ages: tuple[float, ...], live: tuple[bool, ...], stale: tuple[float, ...]
) -> None:
    now = 100.0
    pending = [
        frame(now - age, is_live, i)
        for i, (age, is_live) in enumerate(zip(ages, live, strict=True))
    ]
    keep, dropped = Plan(budget_s=1.0, max_batch=8).split_stale(
        pending, now, latency(0.1 / len(pending))
    )
    assert sorted(round(now - f.captured_mono, 3) for f in dropped) == sorted(stale)
    assert len(keep) + len(dropped) == len(pending)
