"""The PyAV capture path on real H.264 (libx264, a known keyframe interval): decode modes, bad input, RTSP."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from prometheus_client import generate_latest

from monitor.capture.picture import AvPicture
from monitor.capture.pyav_source import open_pyav
from monitor.config import CameraConfig
from monitor.errors import SourceError
from monitor.model.preprocess import frame_to_input
from tests.media import write_h264
from tests.monitor.capture import test_capture
from tests.monitor.capture.test_capture import (
    INPUT_HW,
    SECRET,
    WALL_START,
    Rig,
    camera,
    rtsp_camera,
    wait_for,
)
from tests.rtsp import RtspServer

rig = test_capture.rig  # the same fixture: a hub, metrics, and workers stopped and joined after

FPS = 10
GOP = 10  # a keyframe every second


def offsets(frames: list) -> list[float]:  # type: ignore[type-arg]
    return [round(f.captured_at - WALL_START, 3) for f in frames]


def replay(rig: Rig, path: Path, **overrides: object) -> list:  # type: ignore[type-arg]
    worker = rig.start(camera(path, pacing="fast", **overrides), wall_clock=lambda: WALL_START)
    frames = rig.collect()
    assert worker.join(timeout=2.0)
    assert worker.status == "ended" and worker.last_error is None
    return frames


@pytest.mark.parametrize("bframes", [0, 2])
def test_keyframe_mode_yields_one_frame_per_keyframe(
    rig: Rig, tmp_path: Path, bframes: int
) -> None:
    """Six seconds, a keyframe each second: six frames, on the keyframes' timestamps (B-frames or not)."""
    clip = write_h264(tmp_path / "gop.mp4", 6 * FPS, FPS, GOP, bframes=bframes)
    frames = replay(rig, clip, fps=10.0, decode="keyframes")
    assert offsets(frames) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert rig.workers[0].frames_read == 6, "non-key frames must never be decoded"
    assert all(f.image.shape == (*INPUT_HW, 3) and f.source_hw == (240, 320) for f in frames)


def test_all_mode_samples_on_the_stream_clock(rig: Rig, tmp_path: Path) -> None:
    clip = write_h264(tmp_path / "gop.mp4", 6 * FPS, FPS, GOP)
    frames = replay(rig, clip, fps=2.5, decode="all")
    assert offsets(frames) == pytest.approx([i * 0.4 for i in range(15)])
    assert rig.workers[0].frames_read == 60
    assert [f.seq for f in frames] == list(range(15))


@pytest.mark.parametrize(("fps", "decoded"), [(1.0, 10 + 1 + 4), (5.0, 60)])
def test_auto_mode_keeps_only_keyframes_when_they_are_frequent_enough(
    rig: Rig, tmp_path: Path, fps: float, decoded: int
) -> None:
    """Keyframes each second: at 1 fps ``auto`` switches to keyframes once it measured the interval
    (the first GOP and the second keyframe decoded in full); at 5 fps it decodes everything."""
    clip = write_h264(tmp_path / "gop.mp4", 6 * FPS, FPS, GOP)
    frames = replay(rig, clip, fps=fps, decode="auto")
    assert rig.workers[0].frames_read == decoded
    assert offsets(frames) == pytest.approx([i / fps for i in range(int(6 * fps))])


def test_keyframe_mode_without_keyframes_falls_back_to_all_with_one_warning(
    rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = write_h264(tmp_path / "one-key.mp4", 14 * 5, fps=5, gop=1000)  # one keyframe, at 0
    frames = replay(rig, clip, fps=1.0, decode="keyframes")
    warnings = [r.getMessage() for r in caplog.records if "no keyframe" in r.getMessage()]
    assert len(warnings) == 1 and "decoding every frame instead" in warnings[0]
    times = offsets(frames)
    assert times[0] == 0.0 and all(t > 10.0 for t in times[1:]) and len(times) >= 3


def test_resolution_change_mid_stream_keeps_delivering(rig: Rig, tmp_path: Path) -> None:
    """Two MPEG-TS segments back to back, 320x240 then 160x120, as a camera reconfigured."""
    first = write_h264(tmp_path / "a.ts", 20, FPS, GOP, size=(320, 240))
    second = write_h264(tmp_path / "b.ts", 20, FPS, GOP, size=(160, 120))
    both = tmp_path / "both.ts"
    both.write_bytes(first.read_bytes() + second.read_bytes())
    frames = replay(rig, both, fps=10.0)
    sizes = [f.source_hw for f in frames]
    assert (240, 320) in sizes and (120, 160) in sizes
    assert sizes.index((120, 160)) > sizes.index((240, 320))
    assert all(f.image.shape == (*INPUT_HW, 3) for f in frames)


def test_truncated_file_delivers_what_is_there_then_ends(rig: Rig, tmp_path: Path) -> None:
    clip = write_h264(tmp_path / "cut.mp4", 6 * FPS, FPS, GOP)  # index first (faststart)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    frames = replay(rig, clip, fps=10.0)
    assert 5 < len(frames) < 60
    assert offsets(frames) == sorted(offsets(frames))


@pytest.mark.parametrize("content", ["no-index", "audio-only"])
def test_file_without_decodable_video_ends_with_a_clear_error(
    rig: Rig, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "bad.mp4"
    if content == "no-index":  # the index (moov) written last, and the end cut off
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for i in range(20):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), "rgb24")
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        path.write_bytes(path.read_bytes()[:-2000])
    else:
        with av.open(str(path), "w") as out:
            audio = out.add_stream("aac", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
            frame.sample_rate = 8000
            out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    worker = rig.start(camera(path, pacing="fast"))
    assert rig.collect() == []
    assert worker.join(timeout=2.0)
    assert worker.status == "ended" and worker.last_error is not None
    assert str(path) in worker.last_error
    assert rig.count("bearwatch_camera_reconnects_total") == 0


def test_absent_hardware_decoder_falls_back_to_the_cpu_with_one_warning(
    rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """VAAPI is not in PyAV's wheels: the camera decodes on the CPU and says so once."""
    clip = write_h264(tmp_path / "gop.mp4", 2 * FPS, FPS, GOP)
    cfg = camera(clip, pacing="fast", fps=10.0, loop=True, hwaccel="vaapi")
    worker = rig.start(cfg)
    assert len(rig.collect(limit=50)) == 50  # two and a half passes: the source reopened twice
    worker.stop()
    assert worker.join(timeout=2.0)
    rig.hub.drain()
    warnings = [r.getMessage() for r in caplog.records if "hwaccel" in r.getMessage()]
    assert len(warnings) == 1 and "decoding on the CPU" in warnings[0]


def test_model_input_from_yuv_agrees_with_the_pil_preprocessing(tmp_path: Path) -> None:
    """The capture path (YUV crop → swscale) against ``frame_to_input`` (RGB → PIL): the same picture."""
    clip = write_h264(tmp_path / "gop.mp4", 10, FPS, GOP, size=(640, 360))
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            for hw, method in (((64, 64), "crop"), ((96, 128), "squish"), ((224, 224), "crop")):
                ours = AvPicture(frame).model_input(hw, method).astype(np.int16)
                pil = frame_to_input(frame.to_ndarray(format="rgb24"), hw, method)
                assert ours.shape == pil.shape == (*hw, 3)
                assert np.abs(ours - pil).mean() < 2.0


@pytest.mark.rtsp
def test_rtsp_h264_first_frame_after_a_reconnect_is_fresh(
    rig: Rig, rtsp_server: RtspServer
) -> None:
    """Frame age after a kill and restart of the GStreamer server, and on /metrics."""
    worker = rig.start(rtsp_camera(rtsp_server.url()))
    assert wait_for(lambda: worker.status == "online" and worker.frames_read > 5, 10.0)
    rtsp_server.kill()
    assert wait_for(lambda: worker.status in ("reconnecting", "offline"), 5.0)
    rtsp_server.start()
    assert wait_for(lambda: worker.status == "online", 20.0)
    assert "bearwatch_camera_frame_age_seconds" in generate_latest(rig.metrics.registry).decode()
    # The source itself, opened as the worker reopens it: how old was the first frame?
    source = open_pyav(CameraConfig(id="probe", source=rtsp_server.url(), read_timeout_s=2.0))
    try:
        lags = []
        for _ in range(30):
            assert source.grab()
            lags.append(time.monotonic() - source.position_ms() / 1000.0)
    finally:
        source.release()
    first_age = lags[0] - min(lags)
    # A measurement (the goal is <= 0.5 s; FFmpeg's default probing made it ~3 s), not a timed assertion.
    print(f"first frame after connect was {first_age:.3f} s older than the freshest")


@pytest.mark.rtsp
def test_rtsp_frozen_server_fails_a_pyav_read_within_its_timeout(rtsp_server: RtspServer) -> None:
    source = open_pyav(
        CameraConfig(id="probe", source=rtsp_server.url(), read_timeout_s=1.0, open_timeout_s=5.0)
    )
    try:
        assert all(source.grab() for _ in range(5))
        rtsp_server.freeze()
        started = time.monotonic()
        # What was already buffered still comes out, a half-sent frame may fail to decode.
        while source.grab() or source.skip():
            pass
        hung_s = time.monotonic() - started
    finally:
        rtsp_server.thaw()
        source.release()
    print(f"frozen server: read failed after {hung_s:.2f} s (read timeout 1 s)")


class SilentServer:
    """A TCP server that accepts connections, reads what it is sent, and never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="silent-server")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self._conns.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        for conn in self._conns:
            conn.close()
        self._sock.close()


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_a_server_that_accepts_and_never_sends_fails_the_open_within_its_timeout(
    scheme: str,
) -> None:
    with SilentServer() as server:
        url = f"{scheme}://admin:{SECRET}@127.0.0.1:{server.port}/stream"
        cfg = CameraConfig(id="mute", source=url, open_timeout_s=1.0, read_timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(SourceError) as err:
            open_pyav(cfg)
        took = time.monotonic() - started
    message = str(err.value)
    assert message.startswith(f"cannot open {scheme}://admin:***@127.0.0.1:{server.port}/stream")
    assert SECRET not in message and err.value.retry
    print(f"{scheme}: a silent server failed the open after {took:.2f} s (open timeout 1 s)")


@pytest.mark.rtsp
def test_rtsp_keyframe_mode_with_keyframes_further_apart_than_the_read_timeout(
    rig: Rig, rtsp_server: RtspServer
) -> None:
    """Regression: the stall rule timed a whole grab, and a keyframe-mode grab waits a whole
    GOP (1 s here) for its keyframe, so a 0.5 s read timeout reconnected for ever."""
    cfg = rtsp_camera(rtsp_server.url(), decode="keyframes", fps=10.0, read_timeout_s=0.5)
    worker = rig.start(cfg)
    assert wait_for(lambda: worker.frames_read >= 4, 15.0)
    assert worker.status == "online"
    assert rig.count("bearwatch_camera_reconnects_total") == 0
