"""Camera sources: the ``FrameSource`` protocol and its OpenCV implementation.

RTSP, HTTP MJPEG and files go through OpenCV's FFmpeg backend with bounded
open and read timeouts; webcams through V4L2. Errors are redacted: only
``cfg.safe_source`` is ever put in a message.
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
import numpy as np

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

    ``read`` returns the next BGR frame, or ``(False, None)`` on a failure, the end of
    a file or a stall; ``position_ms`` is the video timestamp of the frame last read
    (files only); ``skip`` moves past an unreadable frame of a file and returns
    False when nothing is left (always False for live sources).
    """

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def position_ms(self) -> float: ...
    def skip(self) -> bool: ...
    def release(self) -> None: ...


Opener = Callable[[CameraConfig], FrameSource]


class OpenCvSource:
    """A :class:`FrameSource` over an opened ``cv2.VideoCapture`` (``live``: not a file)."""

    def __init__(self, cap: cv2.VideoCapture, *, live: bool, read_timeout_s: float) -> None:
        self._cap = cap
        self._live = live
        self._read_timeout_s = read_timeout_s
        self._skip_to = 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        started = time.monotonic()
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return False, None
        # Measured with OpenCV 5.0 on a frozen RTSP server: the first read after
        # the freeze returns a (stale) frame once the interrupt callback fires,
        # and only the next read fails, doubling the hang. A live read that took
        # the whole timeout means the stream stalled; report it at once.
        if self._live and time.monotonic() - started >= self._read_timeout_s:
            return False, None
        return True, frame

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

    def release(self) -> None:
        self._cap.release()


def open_source(cfg: CameraConfig) -> FrameSource:
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
