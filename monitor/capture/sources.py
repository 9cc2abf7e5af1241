"""Camera sources: the ``FrameSource`` protocol, and the opener that picks a backend.

RTSP, HTTP and files go through PyAV (``monitor.capture.pyav_source``: decode
without converting, keyframe mode, bounded timeouts); webcams through OpenCV's
V4L2 backend (:class:`OpenCvSource`), which PyAV's wheels do not do as well.
Errors are redacted: only ``cfg.safe_source`` is ever put in a message.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

import cv2

from monitor.capture.picture import BgrPicture, Picture
from monitor.capture.pyav_source import open_pyav
from monitor.config import CameraConfig
from monitor.config.base import split_authority
from monitor.errors import SourceError

# RTSP over UDP smears frames when packets are lost and needs extra firewall
# ports, so ask for TCP. OpenCV offers no per-capture way to pass FFmpeg options:
# it reads this variable at every open. Set once at import, before any capture
# thread exists, so no thread races FFmpeg's getenv(); setdefault keeps an
# operator's own value. Only the RTSP demuxer reads the option.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


class FrameSource(Protocol):
    """An opened camera or video file, used by exactly one capture thread.

    ``grab`` decodes the next frame *without converting it* and returns False on a
    failure, the end of a file or a stall; ``retrieve`` hands the frame last
    grabbed over as a :class:`Picture` (called for sampled frames only, so the
    others are never converted); ``position_ms`` is the stream timestamp of the
    frame last grabbed (files); after a failed grab, ``skip`` returns True when
    an unreadable frame was passed over and reading can go on, False when
    nothing is left or the stream is lost; ``age_s`` estimates how stale the last
    live frame was when grabbed (None when unknown).
    """

    def grab(self) -> bool: ...
    def retrieve(self) -> Picture | None: ...
    def position_ms(self) -> float: ...
    def skip(self) -> bool: ...
    def age_s(self) -> float | None: ...
    def release(self) -> None: ...


Opener = Callable[[CameraConfig], FrameSource]


class OpenCvSource:
    """A :class:`FrameSource` over an opened ``cv2.VideoCapture`` (``live``: not a file)."""

    def __init__(self, cap: cv2.VideoCapture, *, live: bool, read_timeout_s: float) -> None:
        self._cap = cap
        self._live = live
        self._read_timeout_s = read_timeout_s
        self._skip_to = 0

    def grab(self) -> bool:
        started = time.monotonic()
        if not self._cap.grab():
            return False
        # Measured with OpenCV 5.0 on a frozen RTSP server: the first read after
        # the freeze returns a (stale) frame once the interrupt callback fires,
        # and only the next read fails, doubling the hang. A live read that took
        # the whole timeout means the stream stalled; report it at once.
        return not (self._live and time.monotonic() - started >= self._read_timeout_s)

    def retrieve(self) -> Picture | None:
        ok, frame = self._cap.retrieve()
        return BgrPicture(frame) if ok and frame is not None else None

    def position_ms(self) -> float:
        return float(self._cap.get(cv2.CAP_PROP_POS_MSEC))

    def skip(self) -> bool:
        if self._live:
            return False
        # After a failed read a seek "succeeds" without moving POS_FRAMES, so
        # the target is tracked here; it only ever moves forward.
        self._skip_to = max(self._skip_to, int(self._cap.get(cv2.CAP_PROP_POS_FRAMES))) + 1
        if self._skip_to >= self._cap.get(cv2.CAP_PROP_FRAME_COUNT):
            return False
        return bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, self._skip_to))

    def age_s(self) -> float | None:
        return None

    def release(self) -> None:
        self._cap.release()


def open_source(cfg: CameraConfig) -> FrameSource:
    """Open a camera: PyAV for RTSP, HTTP and files, OpenCV (V4L2) for webcams.

    Raises:
        SourceError: when it cannot be opened; the message names ``cfg.safe_source`` only.
    """
    if cfg.kind == "webcam":
        return open_opencv(cfg)
    return open_pyav(cfg)


def open_opencv(cfg: CameraConfig) -> FrameSource:
    """Open a camera with OpenCV: FFmpeg for RTSP, HTTP and files (bounded by the camera's
    open and read timeouts), V4L2 for webcams.

    Raises:
        SourceError: when it cannot be opened; the message names ``cfg.safe_source`` only.
    """
    kind = cfg.kind
    if kind == "file" and not Path(cfg.source).is_file():
        raise SourceError(f"video file not found: {cfg.safe_source}")
    try:
        cap = _video_capture(cfg)
    except cv2.error as exc:
        # `from None`: OpenCV's message may quote the raw URL.
        raise SourceError(
            f"OpenCV cannot open {cfg.safe_source}: {scrub(str(exc).strip(), cfg)}"
        ) from None
    if not cap.isOpened():
        cap.release()
        if kind == "file":
            raise SourceError(
                f"cannot decode video file {cfg.safe_source} (not a video, or an unsupported codec)",
                retry=False,
            )
        raise SourceError(
            f"cannot open {cfg.safe_source}: unreachable, refused, unauthorised or not a "
            f"stream (open timeout {cfg.open_timeout_s:g} s)"
        )
    return OpenCvSource(cap, live=kind != "file", read_timeout_s=cfg.read_timeout_s)


def _video_capture(cfg: CameraConfig) -> cv2.VideoCapture:
    if cfg.kind == "webcam":
        # V4L2 takes no open/read timeout parameters; a stalled webcam read is
        # bounded by OpenCV's V4L2 select timeout and caught by the stall check.
        device: int | str = int(cfg.source) if cfg.source.isdigit() else cfg.source
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        return cv2.VideoCapture(device, backend)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000)]
    params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000)]
    # One decoder thread per camera: cameras share few cores, and FFmpeg's
    # default (a thread per core, per camera) oversubscribes an edge box.
    params += [cv2.CAP_PROP_N_THREADS, 1]
    return cv2.VideoCapture(cfg.source, cv2.CAP_FFMPEG, params)


def scrub(text: str, cfg: CameraConfig) -> str:
    """Remove the camera's raw URL and password from ``text`` (an error message or traceback)."""
    text = text.replace(cfg.source, cfg.safe_source)
    parts = split_authority(cfg.source)
    password = parts[1].partition(":")[2] if parts is not None and parts[1] else ""
    for secret in {password, unquote(password)} - {""}:
        text = text.replace(secret, "***")
    return text
