"""The PyAV (FFmpeg libraries) camera source for RTSP, HTTP and video files.

Why not OpenCV here: ``cv2.VideoCapture.read`` converts every decoded frame to
full-size BGR, sampled or not; this source decodes every frame (or only the
keyframes) and converts nothing until the worker samples one (:meth:`retrieve`
hands back an :class:`~monitor.capture.picture.AvPicture`, still YUV). Every
blocking FFmpeg call is bounded by the camera's open and read timeouts (PyAV's
interrupt callback), RTSP runs over TCP, and a live source probes little so the
first frame after a (re)connect is fresh. Messages name ``cfg.safe_source`` only.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import av.codec.hwaccel

from monitor.capture.decode import KeyframeTracker
from monitor.capture.picture import AvPicture
from monitor.config import CameraConfig
from monitor.errors import SourceError

logger = logging.getLogger(__name__)

# Live sources: FFmpeg's defaults probe up to 5 s of stream before the first
# frame is returned, and those frames come out seconds old. The SDP of an RTSP
# camera already names the codec, so a short probe is enough.
LIVE_OPTIONS = {
    "probesize": "65536",
    "analyzeduration": "200000",  # µs
    "fflags": "nobuffer",
    "max_delay": "200000",  # µs: the RTP reorder buffer
}
TIMESTAMP_RESET_S = 1.0  # a frame this much older than the one before: the stream clock restarted
RTSP_OPTIONS = {"rtsp_transport": "tcp"}  # UDP smears frames on loss and needs open ports


class PyAvSource:
    """A :class:`~monitor.capture.sources.FrameSource` over an opened PyAV container.

    Args:
        container: the opened input.
        cfg: the camera (its ``decode`` mode and ``safe_source``).
        live: not a file: errors mean the stream is lost, never "skip and go on".
        clock: monotonic clock, for the frame-age estimate.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        cfg: CameraConfig,
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._container = container
        self._cfg = cfg
        self._live = live
        self._clock = clock
        self._stream = container.streams.video[0]
        self._stream.thread_type = "SLICE"  # one decoder thread per camera: no frame threads
        self._stream.codec_context.thread_count = 1
        self._codec = self._stream.codec_context
        self._packets: Iterator[av.Packet] = container.demux(self._stream)
        base = self._stream.time_base  # a Fraction: float once, not per packet
        self._base_s = None if base is None else float(base)
        self._pending: deque[av.VideoFrame] = deque()
        self._frame: av.VideoFrame | None = None
        self._ended = False
        self._lost = False
        self._start_s: float | None = None
        self._last_raw_s: float | None = None
        self._shift_s = 0.0
        self._pos_s = 0.0
        self.frame_period_s = _frame_period(self._stream)  # nominal, from the stream's rate
        self._decoded = 0
        self._hw: tuple[int, int] | None = None
        self.keyframes = KeyframeTracker(cfg.decode, cfg.fps, cfg.id, cfg.safe_source)
        self._lag_min_s: float | None = None
        self._lag_s = 0.0
        self.corrupt_frames = 0

    def grab(self) -> bool:
        """Decode the next frame without converting it; False on a bad frame, the end or a stall."""
        while not self._pending:
            if self._ended or self._lost:
                return False
            started = self._clock()
            try:
                packet = next(self._packets)
            except StopIteration:
                self._end()
                continue
            except av.error.InvalidDataError:
                if self._live:
                    self._lost = True
                    return False
                # A damaged stretch of a file: count it, and read on after it.
                self.corrupt_frames += 1
                self._packets = self._container.demux(self._stream)
                return False
            except (av.error.FFmpegError, OSError) as exc:  # a timeout, a reset connection
                logger.debug("camera %s: demux stopped: %s", self._cfg.id, type(exc).__name__)
                if self._live:
                    self._lost = True
                    return False
                self._end()
                continue
            # Measured on a frozen GStreamer server: when the socket timeout fires,
            # the RTSP demuxer hands out the half-received frame, and only the
            # next read fails, doubling the hang. A live packet read that took the
            # whole timeout means the stream stalled: say so at once. (Per packet,
            # not per grab: in keyframe mode one grab reads a whole GOP.)
            if self._live and self._clock() - started >= self._cfg.read_timeout_s:
                self._lost = True
                return False
            if packet.size and not self._decode(packet):
                return False
        self._frame = self._pending.popleft()
        self._decoded += 1
        self._pos_s = self._timeline(self._frame)
        if self._live:
            self._track_lag(self._frame)
        return True

    def retrieve(self) -> AvPicture | None:
        """The frame last grabbed, as a picture to convert (None before the first grab)."""
        return None if self._frame is None else AvPicture(self._frame)

    def position_ms(self) -> float:
        """The stream timestamp of the frame last grabbed, from the stream's start (ms)."""
        return 1000.0 * self._pos_s

    def _timeline(self, frame: av.VideoFrame) -> float:
        """Seconds since the stream's start, continued across a timestamp reset."""
        t_s = self._frame_s(frame)
        if t_s is None:  # no timestamps in the stream: count frames at its nominal rate
            return (self._decoded - 1) * self.frame_period_s
        if self._start_s is None:
            start, base = self._stream.start_time, self._stream.time_base
            self._start_s = float(start * base) if start is not None and base is not None else t_s
        raw = max(0.0, t_s - self._start_s)
        if self._last_raw_s is not None and raw < self._last_raw_s - TIMESTAMP_RESET_S:
            # A camera that restarted its encoder, or concatenated segments: the
            # clock starts over; keep the timeline going one frame on.
            self._shift_s += self._last_raw_s + self.frame_period_s - raw
            logger.info("camera %s: stream timestamps restarted", self._cfg.id)
        self._last_raw_s = raw
        return raw + self._shift_s

    def skip(self) -> bool:
        """After a failed grab: True when a bad frame was skipped and the stream goes on."""
        return not (self._ended or self._lost)

    def age_s(self) -> float | None:
        """How much older than the freshest one seen the last frame was when grabbed (live only).

        The stream clock gives no wall time, but a frame that arrives later
        relative to its timestamp than the best frame of the session sat in a
        buffer for the difference: right after a connect that is FFmpeg's probe.
        """
        return self._lag_s if self._live and self._lag_min_s is not None else None

    def release(self) -> None:
        self._container.close()

    def _decode(self, packet: av.Packet) -> bool:
        """Feed one packet; False (and counted) when the decoder rejects it."""
        key = packet.is_keyframe
        pts = packet.pts if packet.pts is not None else packet.dts
        pts_s = None if pts is None or self._base_s is None else pts * self._base_s
        if not self.keyframes.wants(key, pts_s):
            return True
        try:
            frames = self._codec.decode(packet)
            if key and self.keyframes.active and self._codec.has_b_frames:
                # Only keyframes reach the decoder: drain it so a stream with
                # B-frames does not hold this picture back until the next one.
                # (Not otherwise: the keyframe stays the reference, so a fallback
                # to ``all`` decodes the frames after it instead of dropping them.)
                frames += self._codec.decode(None)
                self._codec.flush_buffers()
        except av.error.FFmpegError:
            self.corrupt_frames += 1
            return False
        for frame in frames:
            if self._hw is not None and (frame.height, frame.width) != self._hw:
                logger.warning(
                    "camera %s: resolution changed from %dx%d to %dx%d",
                    self._cfg.id,
                    self._hw[1],
                    self._hw[0],
                    frame.width,
                    frame.height,
                )
            self._hw = (frame.height, frame.width)
        self._pending.extend(frames)
        return True

    def _end(self) -> None:
        """The input is over: take what the decoder still holds."""
        self._ended = True
        try:
            self._pending.extend(self._codec.decode(None))
        except av.error.FFmpegError:
            self.corrupt_frames += 1

    def _frame_s(self, frame: av.VideoFrame) -> float | None:
        """The frame's stream timestamp in seconds (frames from a codec context carry no time base)."""
        pts = frame.pts if frame.pts is not None else frame.dts
        return None if pts is None or self._base_s is None else pts * self._base_s

    def _track_lag(self, frame: av.VideoFrame) -> None:
        t_s = self._frame_s(frame)
        if t_s is None:
            return
        lag = self._clock() - t_s
        if self._lag_min_s is None or lag < self._lag_min_s:
            self._lag_min_s = lag
        self._lag_s = lag - self._lag_min_s


def open_pyav(cfg: CameraConfig) -> PyAvSource:
    """Open an RTSP/HTTP stream or a video file with PyAV, within ``cfg.open_timeout_s``.

    Raises:
        SourceError: when it cannot be opened or holds no decodable video; the
            message names ``cfg.safe_source`` only (FFmpeg's own may quote the URL).
    """
    kind = cfg.kind
    live = kind != "file"
    if not live and not Path(cfg.source).is_file():
        raise SourceError(f"video file not found: {cfg.safe_source}")
    options: dict[str, str] = {}
    if live:
        options |= LIVE_OPTIONS
    if kind == "rtsp":
        # The socket timeout too: PyAV's interrupt alone let a frozen server
        # hold a read for twice read_timeout_s (measured on GStreamer, SIGSTOP).
        options |= RTSP_OPTIONS | {"timeout": str(int(cfg.read_timeout_s * 1e6))}
    elif kind == "http":
        options["rw_timeout"] = str(int(cfg.read_timeout_s * 1e6))
    try:
        container = _open_container(cfg, options)
    except (av.error.FFmpegError, OSError) as exc:
        reason = _reason(exc)
        if not live:
            raise SourceError(
                f"cannot decode video file {cfg.safe_source} ({reason})", retry=False
            ) from None
        raise SourceError(
            f"cannot open {cfg.safe_source}: {reason} (open timeout {cfg.open_timeout_s:g} s)"
        ) from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{cfg.safe_source} has no video stream", retry=live)
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.codec is None:
        container.close()
        raise SourceError(f"{cfg.safe_source}: no decoder for its video codec", retry=False)
    return PyAvSource(container, cfg, live=live)


def _open_container(cfg: CameraConfig, options: dict[str, str]) -> av.container.InputContainer:
    timeout = (cfg.open_timeout_s, cfg.read_timeout_s)
    hwaccel = _hwaccel(cfg)
    if hwaccel is not None:
        try:
            return av.open(cfg.source, options=options, timeout=timeout, hwaccel=hwaccel)
        except av.error.FFmpegError as exc:
            container = av.open(cfg.source, options=options, timeout=timeout)
            # The source opens without it: the device is the problem, not the camera.
            _hwaccel_broken.add(cfg.hwaccel)
            _warn_hwaccel(cfg, f"failed to start ({_reason(exc)})")
            return container
    return av.open(cfg.source, options=options, timeout=timeout)


def _reason(exc: BaseException) -> str:
    """FFmpeg's reason for a failure, without the URL it may quote."""
    if isinstance(exc, av.error.FFmpegError):
        return str(exc.strerror or type(exc).__name__)
    return type(exc).__name__


_hwaccel_warned: set[str] = set()  # cameras warned about already (one warning each)
_hwaccel_broken: set[str] = set()  # device types that failed to start in this process


def _hwaccel(cfg: CameraConfig) -> av.codec.hwaccel.HWAccel | None:
    """The camera's opt-in hardware decoder, or None (one warning when the device is absent)."""
    if cfg.hwaccel == "none":
        return None
    available = av.codec.hwaccel.hwdevices_available()
    if cfg.hwaccel not in available:
        _warn_hwaccel(
            cfg, f"is not built into FFmpeg here (it offers: {', '.join(available) or 'none'})"
        )
        return None
    if cfg.hwaccel in _hwaccel_broken:
        _warn_hwaccel(cfg, "failed to start")
        return None
    # FFmpeg decodes in software itself when the device cannot take this codec.
    return av.codec.hwaccel.HWAccel(device_type=cfg.hwaccel, allow_software_fallback=True)


def _warn_hwaccel(cfg: CameraConfig, why: str) -> None:
    if cfg.id in _hwaccel_warned:
        return
    _hwaccel_warned.add(cfg.id)
    logger.warning("camera %s: hwaccel %s %s; decoding on the CPU", cfg.id, cfg.hwaccel, why)


def _frame_period(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return 1.0 / float(rate) if rate else 1.0 / 25.0
