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


def package_photos() -> list[np.ndarray]:
    """Real photographs that ship inside installed packages (BGR): nothing the project drew.

    matplotlib (a runtime dependency) ships ``grace_hopper.jpg``; scikit-learn,
    when installed, ships ``china.jpg`` and ``flower.jpg``.
    """
    import matplotlib

    paths = [Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]
    try:
        from sklearn import datasets

        paths += sorted((Path(datasets.__file__).parent / "images").glob("*.jpg"))
    except ImportError:
        pass
    photos = [cv2.imread(str(p)) for p in paths]
    return [p for p in photos if p is not None]


def photo_frames(
    n: int, size: tuple[int, int] = (320, 240), seed: int = 0, every: int = 4
) -> list[np.ndarray]:
    """``n`` BGR frames of random crops of :func:`package_photos`, a new crop every ``every`` frames.

    Between crops the view pans a few pixels a frame, so there is motion.
    """
    rng = np.random.default_rng(seed)
    photos = package_photos()
    frames: list[np.ndarray] = []
    while len(frames) < n:
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        scale = rng.uniform(0.35, 0.9)
        cw, ch = int(w * scale), int(w * scale * size[1] / size[0])
        ch = min(ch, h)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        for step in range(every):
            dx = min(x + 3 * step, w - cw)
            frames.append(cv2.resize(photo[y : y + ch, dx : dx + cw], size))
    return frames[:n]


def wide_clip(
    path: Path,
    blob: tuple[float, float, float, float] | None,
    n_frames: int = 24,
    fps: float = 10.0,
    size: tuple[int, int] = (1920, 1080),
    lead_in: int = 4,
) -> Path:
    """A wide clip (1080p by default) with one small red "bear" blob walking 8 px a frame.

    Args:
        path: the output path (``.avi``).
        blob: the blob's normalised (x0, y0, x1, y1) in the first frame; None: an empty scene.
        n_frames: frames in the clip.
        lead_in: empty frames before the blob appears.
        fps: the container's frame rate.
        size: (width, height).
    """
    w, h = size

    def frames() -> Iterable[np.ndarray]:
        for i in range(n_frames):
            frame = scene("empty", w, h, seed=i)
            if blob is not None and i >= lead_in:
                dx = 8 * (i - lead_in)
                x0, y0, x1, y1 = blob
                p0 = (int(x0 * w) + dx, int(y0 * h))
                p1 = (int(x1 * w) + dx, int(y1 * h))
                cv2.rectangle(frame, p0, p1, BEAR_BGR, -1)
            yield frame

    return write_frames(path, frames(), fps, size)


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
