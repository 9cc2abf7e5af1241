"""Capture workers on real video files, a real RTSP server, and hand-written sources that misbehave."""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.capture.hub import FrameHub
from monitor.capture.picture import BgrPicture
from monitor.capture.sources import FrameSource
from monitor.capture.worker import CaptureWorker
from monitor.config import CameraConfig, ReconnectConfig
from monitor.errors import SourceError
from monitor.frames import Frame
from monitor.metrics import Metrics
from tests.media import scene, write_clip
from tests.rtsp import RtspServer

INPUT_HW = (64, 64)
WALL_START = 1_700_000_000.0
SECRET = "s3cr3t-pw"
FAST_RECONNECT = ReconnectConfig(initial_s=0.05, max_s=0.2, offline_after=2)


def clip_kinds(n: int) -> list[str]:
    """Twenty bears then twenty people: with the blob position, each of 40 frames is unique."""
    return [("bear", "person")[(i // 20) % 2] for i in range(n)]


@functools.cache
def clip_frames(n: int) -> np.ndarray:
    """The frames ``write_clip(path, clip_kinds(n))`` encodes, before JPEG compression."""
    kinds = clip_kinds(n)
    return np.stack(
        [scene(k, seed=i, x_frac=0.1 + 0.3 * ((i % 20) / 20)) for i, k in enumerate(kinds)]
    ).astype(np.int16)


def frame_index(snapshot: np.ndarray | None, clip_len: int = 40) -> int | None:
    """Which frame of a ``clip_kinds(clip_len)`` clip this is (None for one too damaged to tell).

    A decoded frame differs from its original by ~3 grey levels on average
    (JPEG and noise), from any other frame of the clip by more than 4.4.
    """
    assert snapshot is not None
    originals = clip_frames(clip_len)
    errors = np.abs(originals - snapshot.astype(np.int16)).mean(axis=(1, 2, 3))
    best = int(np.argmin(errors))
    return best if errors[best] < 3.6 else None


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def camera(source: str | Path, **overrides: Any) -> CameraConfig:
    settings: dict[str, Any] = {"id": "cam", "source": str(source), "reconnect": FAST_RECONNECT}
    settings.update(overrides)
    return CameraConfig(**settings)


@dataclass
class Rig:
    """A hub, metrics and the workers of one test; the fixture stops and joins them all."""

    hub: FrameHub
    metrics: Metrics
    drops: list[tuple[Frame, str]]
    workers: list[CaptureWorker] = field(default_factory=list)

    def start(self, cfg: CameraConfig, **kwargs: Any) -> CaptureWorker:
        worker = CaptureWorker(cfg, INPUT_HW, "crop", self.hub, self.metrics, **kwargs)
        self.workers.append(worker)
        worker.start()
        return worker

    def count(self, name: str, camera: str = "cam", **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"camera": camera, **labels})
        return value or 0.0

    def collect(self, limit: int = 1000, timeout_s: float = 10.0) -> list[Frame]:
        """Take frames like the batcher would, until every camera closed or ``limit`` frames."""
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout_s
        while len(frames) < limit and not self.hub.all_closed():
            assert time.monotonic() < deadline, f"only {len(frames)} frames in {timeout_s} s"
            self.hub.wait(0.05)
            frames += self.hub.take(limit - len(frames))
        return frames


@pytest.fixture
def rig() -> Iterator[Rig]:
    drops: list[tuple[Frame, str]] = []
    rig = Rig(FrameHub(lambda frame, reason: drops.append((frame, reason))), Metrics(), drops)
    yield rig
    for worker in rig.workers:
        worker.stop()
    for worker in rig.workers:
        assert worker.join(timeout=worker.cfg.open_timeout_s + 2.0), "capture thread hung"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """Four seconds at 10 fps: 40 distinguishable frames."""
    return write_clip(tmp_path / "clip.avi", clip_kinds(40), fps=10.0)


# --- video files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fps", "expected"),
    [
        (10.0, list(range(40))),
        (2.0, list(range(0, 40, 5))),
        (2.5, list(range(0, 40, 4))),
        (3.0, [0, 4, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37]),
        (30.0, list(range(40))),  # faster than the video: every frame, none twice
    ],
)
def test_file_delivers_every_sampled_frame_in_order(
    rig: Rig, clip: Path, fps: float, expected: list[int]
) -> None:
    worker = rig.start(camera(clip, fps=fps, pacing="fast"), wall_clock=lambda: WALL_START)
    frames = rig.collect()
    assert worker.join(timeout=2.0)
    assert [frame_index(f.snapshot) for f in frames] == expected
    assert abs(len(frames) - 4.0 * fps) <= 1 or fps > 10
    assert [f.seq for f in frames] == list(range(len(expected)))
    # Fast replay stamps frames on the file's own timeline.
    assert [f.captured_at - WALL_START for f in frames] == pytest.approx([i / 10 for i in expected])
    assert all(not f.live and f.image.shape == (*INPUT_HW, 3) for f in frames)
    assert worker.status == "ended" and worker.last_error is None
    assert rig.hub.all_closed()
    assert worker.frames_read == 40
    assert rig.count("bearwatch_frames_offered_total") == len(expected)
    assert rig.drops == []


@pytest.mark.parametrize(("width", "expected_hw"), [(160, (120, 160)), (640, (240, 320))])
def test_snapshot_is_downscaled_never_upscaled(
    rig: Rig, clip: Path, width: int, expected_hw: tuple[int, int]
) -> None:
    rig.start(camera(clip, fps=1.0, pacing="fast", snapshot_width=width))
    frames = rig.collect()
    snapshots = [f.snapshot for f in frames if f.snapshot is not None]
    assert len(snapshots) == len(frames) == 4
    assert all(s.shape == (*expected_hw, 3) and not s.flags.writeable for s in snapshots)


def test_loop_replays_the_file_on_a_continuous_timeline(rig: Rig, tmp_path: Path) -> None:
    path = write_clip(tmp_path / "short.avi", clip_kinds(10), fps=10.0)
    worker = rig.start(
        camera(path, fps=10.0, pacing="fast", loop=True), wall_clock=lambda: WALL_START
    )
    frames = rig.collect(limit=25)
    assert [frame_index(f.snapshot, 10) for f in frames] == [*range(10)] * 2 + [*range(5)]
    assert [f.captured_at - WALL_START for f in frames] == pytest.approx(
        [i / 10 for i in range(25)]
    )
    assert worker.status == "online" and not rig.hub.all_closed()
    worker.stop()
    assert worker.join(timeout=1.0)
    rig.hub.drain()  # the last frame may still wait in the slot
    assert rig.hub.all_closed()


def test_realtime_pacing_follows_the_video_clock(rig: Rig, tmp_path: Path) -> None:
    path = write_clip(tmp_path / "second.avi", clip_kinds(10), fps=10.0)
    started = time.monotonic()
    worker = rig.start(camera(path, fps=10.0, pacing="realtime"))
    frames = rig.collect()
    elapsed = time.monotonic() - started
    assert len(frames) == 10 and worker.status == "ended"
    assert elapsed >= 0.8, f"a 1 s video replayed in {elapsed:.2f} s"
    mono = [f.captured_mono for f in frames]
    assert mono[-1] - mono[0] == pytest.approx(0.9, abs=0.15)


@pytest.mark.parametrize("content", ["zero-bytes", "garbage", "no-frames"])
def test_video_without_frames_ends(rig: Rig, tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.avi"
    if content == "no-frames":
        write_clip(path, [])
    else:
        path.write_bytes(b"" if content == "zero-bytes" else os.urandom(4096))
    worker = rig.start(camera(path, pacing="fast"))
    assert rig.collect() == []
    assert worker.join(timeout=2.0)
    assert worker.status == "ended" and rig.hub.all_closed()
    assert worker.last_error is not None and str(path) in worker.last_error
    assert "no readable frames" in worker.last_error or "cannot decode" in worker.last_error
    assert rig.count("bearwatch_camera_reconnects_total") == 0


def test_corrupt_bytes_mid_file_skip_frames_without_crashing(rig: Rig, clip: Path) -> None:
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20_000] = np.random.default_rng(7).bytes(20_000)
    clip.write_bytes(bytes(data))
    worker = rig.start(camera(clip, fps=10.0, pacing="fast"))
    frames = rig.collect()
    assert worker.status == "ended" and rig.hub.all_closed()
    known = [i for f in frames if (i := frame_index(f.snapshot)) is not None]
    assert known == sorted(known), "frames out of order"
    assert known[0] == 0 and known[-1] == 39, "frames before and after the damage"
    lost = 40 - len(known)
    assert lost > 0
    assert rig.count("bearwatch_camera_read_errors_total") > 0 or len(frames) < 40


def test_missing_file_goes_offline_and_keeps_retrying(rig: Rig, tmp_path: Path) -> None:
    path = tmp_path / "not-there.avi"
    worker = rig.start(camera(path))
    assert wait_for(lambda: rig.count("bearwatch_camera_reconnects_total") >= 3, 5.0)
    assert worker.status == "offline" and worker.is_alive()
    assert worker.last_error == f"video file not found: {path}"
    assert rig.count("bearwatch_camera_status", status="offline") == 1
    started = time.monotonic()
    worker.stop()
    assert worker.join(timeout=1.0) and time.monotonic() - started < 1.0


# --- hand-written sources: reconnects and errors without a network -------------------------


class ScriptedSource:
    """Plays a script: an array is a frame, None a failed grab, an exception is raised.

    After the script it blocks each read for ``read_timeout_s`` and fails, as an
    FFmpeg read on a dead stream does.
    """

    def __init__(
        self, script: Sequence[np.ndarray | Exception | None], read_timeout_s: float
    ) -> None:
        self._script = list(script)
        self._read_timeout_s = read_timeout_s
        self._blocked = threading.Event()  # never set: the read's own timeout ends the wait
        self.released = False
        self._frame: np.ndarray | None = None

    def grab(self) -> bool:
        if not self._script:
            self._blocked.wait(self._read_timeout_s)
            return False
        step = self._script.pop(0)
        if isinstance(step, Exception):
            raise step
        self._frame = step
        return step is not None

    def retrieve(self) -> BgrPicture | None:
        return None if self._frame is None else BgrPicture(self._frame)

    def age_s(self) -> float | None:
        return None

    def position_ms(self) -> float:
        return 0.0

    def skip(self) -> bool:
        return False

    def release(self) -> None:
        self.released = True


class ScriptedOpener:
    """Opens sources from a list: a SourceError is raised, a script becomes a ScriptedSource."""

    def __init__(
        self, opens: Sequence[SourceError | Sequence[np.ndarray | Exception | None]]
    ) -> None:
        self._opens = list(opens)
        self.sources: list[ScriptedSource] = []

    def __call__(self, cfg: CameraConfig) -> FrameSource:
        step = self._opens.pop(0) if len(self._opens) > 1 else self._opens[0]
        if isinstance(step, SourceError):
            raise step
        source = ScriptedSource(step, cfg.read_timeout_s)
        self.sources.append(source)
        return source


def frames(n: int) -> list[np.ndarray | Exception | None]:
    return [scene("empty")] * n


def statuses(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if "status" in r.getMessage()]


def test_failed_read_reconnects_and_comes_back_online(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.capture.worker")
    opener = ScriptedOpener([[*frames(3), None], frames(1000)])
    cfg = camera("rtsp://127.0.0.1:1/cam", fps=60.0, read_timeout_s=0.2)
    worker = rig.start(cfg, opener=opener)
    assert wait_for(lambda: worker.frames_read >= 10, 5.0)
    assert worker.status == "online"
    assert statuses(caplog)[:4] == ["starting", "online", "reconnecting", "online"]
    assert rig.count("bearwatch_camera_reconnects_total") == 1
    assert opener.sources[0].released
    assert worker.last_error is not None and "stopped delivering frames" in worker.last_error


def test_failed_opens_go_offline_then_recover(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monitor.capture.worker")
    refused = SourceError("cannot open rtsp://127.0.0.1:1/cam")
    opener = ScriptedOpener([refused, refused, refused, frames(1000)])
    worker = rig.start(camera("rtsp://127.0.0.1:1/cam", read_timeout_s=0.2), opener=opener)
    assert wait_for(lambda: worker.status == "online", 5.0)
    assert statuses(caplog) == ["starting", "reconnecting", "offline", "online"]
    assert rig.count("bearwatch_camera_reconnects_total") == 3


def test_unexpected_error_is_logged_scrubbed_counted_and_survived(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"rtsp://admin:{SECRET}@127.0.0.1:1/cam"
    boom = RuntimeError(f"decoder exploded on {url}")
    opener = ScriptedOpener([[*frames(2), boom], frames(1000)])
    worker = rig.start(camera(url, read_timeout_s=0.2), opener=opener)
    assert wait_for(lambda: len(opener.sources) == 2 and worker.status == "online", 5.0)
    assert rig.count("bearwatch_camera_read_errors_total") == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "Traceback" in errors[0].getMessage() and "decoder exploded" in caplog.text
    assert SECRET not in caplog.text
    assert worker.last_error is not None and SECRET not in worker.last_error
    assert "admin:***@127.0.0.1:1" in worker.last_error


# --- stopping while blocked -------------------------------------------------------------------


def assert_stops_within(worker: CaptureWorker, limit_s: float) -> None:
    started = time.monotonic()
    worker.stop()
    assert worker.join(timeout=limit_s + 1.0)
    assert time.monotonic() - started < limit_s


def test_stops_within_a_second_while_blocked_in_hub_put(rig: Rig, clip: Path) -> None:
    worker = rig.start(camera(clip, fps=10.0, pacing="fast"))
    assert wait_for(lambda: rig.count("bearwatch_frames_offered_total") >= 2, 5.0)
    time.sleep(0.2)  # nobody takes: the second put is blocked
    assert_stops_within(worker, 1.0)
    assert [reason for _, reason in rig.drops] == ["shutdown"]
    assert rig.hub.all_closed() is False  # the first frame still waits for the batcher
    rig.hub.drain()


def test_stops_within_a_second_while_waiting_on_backoff(rig: Rig, tmp_path: Path) -> None:
    slow = ReconnectConfig(initial_s=30.0, max_s=60.0, offline_after=5)
    worker = rig.start(camera(tmp_path / "missing.avi", reconnect=slow))
    assert wait_for(lambda: worker.status == "reconnecting", 5.0)
    assert_stops_within(worker, 1.0)


def test_stops_within_a_second_while_pacing_a_slow_replay(rig: Rig, clip: Path) -> None:
    worker = rig.start(camera(clip, fps=0.25, pacing="realtime"))
    assert rig.collect(limit=1)  # the next sampled frame is 4 s of video away
    assert_stops_within(worker, 1.0)


def test_stops_within_read_timeout_while_a_read_blocks(rig: Rig) -> None:
    opener = ScriptedOpener([frames(1)])
    worker = rig.start(camera("rtsp://127.0.0.1:1/cam", read_timeout_s=0.5), opener=opener)
    assert wait_for(lambda: worker.frames_read == 1, 5.0)
    assert_stops_within(worker, 0.5 + 1.0)


# --- network sources ---------------------------------------------------------------------------


def test_unreachable_rtsp_host_reconnects_then_goes_offline(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    worker = rig.start(camera(f"rtsp://admin:{SECRET}@127.0.0.1:{port}/stream", open_timeout_s=1.0))
    assert wait_for(lambda: worker.status == "reconnecting", 5.0)
    assert wait_for(lambda: worker.status == "offline", 5.0)
    assert rig.count("bearwatch_camera_reconnects_total") >= 1 and worker.is_alive()
    assert worker.last_error is not None
    assert worker.last_error.startswith(f"cannot open rtsp://admin:***@127.0.0.1:{port}/stream")
    assert SECRET not in caplog.text and SECRET not in worker.last_error


def rtsp_camera(url: str, **overrides: Any) -> CameraConfig:
    settings: dict[str, Any] = {
        "fps": 10.0,
        "open_timeout_s": 5.0,
        "read_timeout_s": 1.0,
        "reconnect": ReconnectConfig(initial_s=0.2, max_s=1.0, offline_after=3),
    }
    settings.update(overrides)
    return camera(url, **settings)


@pytest.mark.rtsp
def test_rtsp_frames_arrive_and_newest_wins(rig: Rig, rtsp_server: RtspServer) -> None:
    worker = rig.start(rtsp_camera(rtsp_server.url()))
    assert wait_for(lambda: worker.status == "online", 10.0)
    superseded = lambda: sum(reason == "superseded" for _, reason in rig.drops)  # noqa: E731
    assert wait_for(lambda: superseded() >= 5, 10.0), "nobody takes: old frames must be dropped"
    (frame,) = rig.hub.take(1)
    assert (
        frame.live
        and frame.image.shape == (*INPUT_HW, 3)
        and getattr(frame.snapshot, "shape", None) == (240, 320, 3)
    )
    worker.stop()
    assert worker.join(timeout=2.0)
    left = len(rig.hub.drain())
    assert rig.count("bearwatch_frames_offered_total") == superseded() + 1 + left


@pytest.mark.rtsp
def test_rtsp_server_killed_and_restarted(rig: Rig, rtsp_server: RtspServer) -> None:
    worker = rig.start(rtsp_camera(rtsp_server.url()))
    assert wait_for(lambda: worker.status == "online" and worker.frames_read > 5, 10.0)
    rtsp_server.kill()
    assert wait_for(lambda: worker.status in ("reconnecting", "offline"), 5.0)
    rtsp_server.start()
    read_before = worker.frames_read
    assert wait_for(lambda: worker.status == "online", 20.0)
    assert wait_for(lambda: worker.frames_read > read_before + 5, 5.0)
    assert rig.count("bearwatch_camera_reconnects_total") >= 1


@pytest.mark.rtsp
def test_rtsp_server_frozen_changes_status_within_read_timeout(
    rig: Rig, rtsp_server: RtspServer
) -> None:
    cfg = rtsp_camera(rtsp_server.url(), read_timeout_s=1.0, open_timeout_s=2.0)
    worker = rig.start(cfg)
    assert wait_for(lambda: worker.status == "online" and worker.frames_read > 5, 10.0)
    rtsp_server.freeze()
    try:
        frozen_at = time.monotonic()
        assert wait_for(lambda: worker.status != "online", cfg.read_timeout_s + 2.0)
        hung_s = time.monotonic() - frozen_at
        assert "stopped delivering frames" in (worker.last_error or "")
    finally:
        rtsp_server.thaw()
    print(f"frozen RTSP server noticed after {hung_s:.2f} s")
    assert wait_for(lambda: worker.status == "online", 20.0), "recovers once the server thaws"


@pytest.mark.rtsp
def test_rtsp_credentials_are_used_but_never_shown(
    rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with RtspServer(tmp_path, user="admin", password=SECRET) as server:
        good = rig.start(rtsp_camera(server.url("admin", SECRET), id="good"))
        bad = rig.start(rtsp_camera(server.url("admin", "wrong-pw"), id="bad"))
        assert wait_for(lambda: good.status == "online", 10.0)
        assert wait_for(lambda: bad.status in ("reconnecting", "offline"), 10.0)
        for worker in rig.workers:
            worker.stop()
        for worker in rig.workers:
            assert worker.join(timeout=2.0)
    assert bad.last_error is not None and "rtsp://admin:***@127.0.0.1" in bad.last_error
    assert "wrong-pw" not in bad.last_error
    assert SECRET not in caplog.text and "wrong-pw" not in caplog.text
    out, err = capfd.readouterr()
    assert SECRET not in out + err, "FFmpeg/OpenCV printed the password"
