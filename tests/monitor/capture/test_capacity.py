"""Capacity made visible: frames a live source never delivered, the read rate, a real-time file's actual speed."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from monitor.capture.picture import BgrPicture
from monitor.capture.rate import RateWindow, missed_slots
from monitor.capture.sources import FrameSource
from monitor.config import CameraConfig
from tests.monitor.capture.test_capture import Rig, camera, rig, wait_for  # noqa: F401

FRAME = np.full((48, 64, 3), 128, np.uint8)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class PacedSource:
    """Delivers ``n`` frames, each read taking ``read_s`` of the fake clock; then blocks like a stalled stream."""

    def __init__(self, clock: FakeClock, n: int, read_s: float, frame_ms: float = 0.0) -> None:
        self._clock, self._left, self._read_s, self._frame_ms = clock, n, read_s, frame_ms
        self._pos_ms = -frame_ms
        self._blocked = threading.Event()

    def grab(self) -> bool:
        if self._left == 0:
            self._blocked.wait(1.0)
            return False
        self._left -= 1
        self._clock.t += self._read_s
        self._pos_ms += self._frame_ms
        return True

    def retrieve(self) -> BgrPicture:
        return BgrPicture(FRAME)

    def age_s(self) -> float | None:
        return None

    def position_ms(self) -> float:
        return self._pos_ms

    def skip(self) -> bool:
        return False

    def release(self) -> None:
        pass


@pytest.mark.parametrize(
    ("next_s", "t_s", "expected"), [(None, 5.0, 0), (1.0, 1.05, 0), (1.0, 1.1, 1), (1.0, 1.35, 3)]
)
def test_missed_slots(next_s: float | None, t_s: float, expected: int) -> None:
    assert missed_slots(next_s, t_s, 0.1) == expected


def test_rate_window_needs_a_span_then_measures() -> None:
    w = RateWindow(window_s=10.0, min_span_s=2.0)
    w.add(0.0, 0.0)
    w.add(1.0, 5.0)
    assert w.rate() is None
    for t in range(2, 30):
        w.add(float(t), 5.0 * t)
    assert w.rate() == pytest.approx(5.0)


def test_a_live_source_below_its_fps_counts_missed_frames(rig: Rig) -> None:  # noqa: F811
    """Bug: at 8 cameras x 30 fps the box read 72 of 240 frames/s and no counter showed the 70 % shortfall."""
    clock = FakeClock()
    source = PacedSource(clock, n=51, read_s=0.2)  # 5 frames/s delivered
    cfg = camera("rtsp://127.0.0.1:1/cam", fps=10.0, read_timeout_s=5.0)

    def opener(_: CameraConfig) -> FrameSource:
        return source

    worker = rig.start(cfg, opener=opener, clock=clock)
    assert wait_for(lambda: worker.frames_read == 51, 10.0)
    assert worker.frames_missed == 50  # one 0.1 s slot lost before every frame after the first
    assert rig.count("bearwatch_frames_missed_total") == 50
    assert worker.read_fps == pytest.approx(5.0, rel=0.05)
    assert rig.count("bearwatch_camera_read_fps") == pytest.approx(5.0, rel=0.05)


def test_a_realtime_file_reports_its_actual_speed(rig: Rig) -> None:  # noqa: F811
    """Bug: "realtime" file cameras silently ran at 57 % speed; now replay_speed says so."""
    clock = FakeClock()
    source = PacedSource(clock, n=60, read_s=0.2, frame_ms=100.0)  # a 10 fps video decoded at 5
    cfg = camera("clip.mp4", fps=10.0, pacing="realtime")

    def opener(_: CameraConfig) -> FrameSource:
        return source

    worker = rig.start(cfg, opener=opener, clock=clock)
    frames = rig.collect(limit=1000)
    assert len(frames) == 60
    assert worker.replay_speed == pytest.approx(0.5, rel=0.05)
    assert rig.count("bearwatch_camera_replay_speed") == pytest.approx(0.5, rel=0.05)
