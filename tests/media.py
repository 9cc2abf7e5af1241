"""Test media made on the fly: simple scenes the colour model recognises, written as real video files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# BGR, as OpenCV writes them.
BEAR_BGR = (25, 25, 250)  # a strongly red blob
PERSON_BGR = (250, 25, 25)  # a strongly blue blob


def scene(
    kind: str, width: int = 320, height: int = 240, seed: int = 0, x_frac: float = 0.3
) -> np.ndarray:
    """One BGR frame: a gray gradient with sensor noise and an optional coloured blob.

    Args:
        kind: ``empty``, ``bear`` or ``person``.
        width: frame width.
        height: frame height.
        seed: seeds the sensor noise, so frames differ (and a motion gate sees change).
        x_frac: horizontal position of the blob's left edge, 0..1.
    """
    rng = np.random.default_rng(seed)
    # A neutral-gray sky-to-ground gradient: texture for the statistics, no colour for the model.
    ramp = np.linspace(170, 90, height, dtype=np.float32)[:, None, None]
    frame = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)
    noise = rng.integers(-6, 7, size=frame.shape, dtype=np.int16)
    frame = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    if kind != "empty":
        colour = BEAR_BGR if kind == "bear" else PERSON_BGR
        x0 = int(x_frac * width)
        cv2.rectangle(frame, (x0, height // 5), (x0 + width // 2, height - height // 5), colour, -1)
    elif kind not in ("empty",):
        raise ValueError(kind)
    return frame


def write_frames(
    path: Path, frames: Iterable[np.ndarray], fps: float = 10.0, size: tuple[int, int] | None = None
) -> Path:
    """Write BGR frames as a real video file (MJPG in AVI, decodable by OpenCV's FFmpeg backend).

    With no frames and a ``size`` (width, height), a valid container with zero frames is written.
    """
    writer: cv2.VideoWriter | None = None
    if size is not None:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {path}")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    return path


def write_clip(
    path: Path, kinds: Sequence[str], fps: float = 10.0, size: tuple[int, int] = (320, 240)
) -> Path:
    """Write a clip with one scene kind per frame; the blob drifts sideways so there is motion.

    Args:
        path: the output path (``.avi``).
        kinds: one scene kind per frame.
        fps: the container's frame rate.
        size: (width, height).
    """
    frames = (
        scene(kind, size[0], size[1], seed=i, x_frac=0.1 + 0.3 * ((i % 20) / 20))
        for i, kind in enumerate(kinds)
    )
    return write_frames(path, frames, fps, size)


def night(bgr: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same scene as an IR night camera sees it: gray, dark, noisy."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) * 0.35 + 10
    noisy = gray + np.random.default_rng(seed).normal(0, 3, gray.shape)
    return cv2.cvtColor(np.clip(noisy, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def write_h264(
    path: Path,
    frames: int,
    fps: int = 10,
    gop: int = 10,
    size: tuple[int, int] = (320, 240),
    bframes: int = 0,
) -> Path:
    """Write real H.264 (libx264 through PyAV) with a keyframe exactly every ``gop`` frames.

    Frames are :func:`scene` frames (a drifting bear blob) stamped ``i / fps``; the
    container follows the suffix (``.mp4`` with the index up front, ``.ts``, ``.mkv``).
    """
    options = {"movflags": "+faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {
            "preset": "ultrafast",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}",
        }
        for i in range(frames):
            bgr = scene("bear", size[0], size[1], seed=i, x_frac=0.1 + 0.3 * ((i % 20) / 20))
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
