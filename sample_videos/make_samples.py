"""Make the sample clips in ``sample_videos/`` from ``training.synthetic`` (seeded: reruns give the same scenes).

Run from the repository root, either way::

    python -m sample_videos.make_samples
    python sample_videos/make_samples.py

Each clip is a static camera at 320x240, 10 fps, 8 s (80 frames): 20 empty
frames, a crossing, then at least 15 empty frames, written as MPEG-4 Part 2
(``mp4v``) in ``.mp4`` — the encoder every OpenCV FFmpeg build has (H.264
writing needs an encoder the pip wheels do not ship). Every clip is read back
with ``cv2.VideoCapture`` and all its frames decoded before the script reports
success.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a file: make `training` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.synthetic import Clip, walk_through  # noqa: E402

FPS = 10.0
SIZE = (320, 240)
N_FRAMES = 80
LEAD_IN = 20
LEAD_OUT = 15
MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Spec:
    """One sample clip: file name and what walks through it."""

    name: str
    label: str
    seed: int
    night: bool = False
    count: int = 1


# bear_day and bear_night share a seed, so the night clip is the same bear in the same place.
SPECS: tuple[Spec, ...] = (
    Spec("bear_day.mp4", "bear", seed=7),
    Spec("bear_night.mp4", "bear", seed=7, night=True),
    Spec("people_day.mp4", "person", seed=11, count=2),
    Spec("empty_day.mp4", "empty", seed=13),
)


def make_clip(spec: Spec) -> Clip:
    """Render the frames of one sample clip."""
    return walk_through(
        spec.label,
        np.random.default_rng(spec.seed),
        N_FRAMES,
        SIZE,
        spec.night,
        lead_in=LEAD_IN,
        lead_out=LEAD_OUT,
        count=spec.count,
    )


def write_clip(clip: Clip, path: Path, fps: float = FPS) -> None:
    """Write ``clip`` as an mp4v ``.mp4``.

    Raises:
        RuntimeError: if OpenCV cannot open a writer for ``path``.
    """
    height, width = clip.frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with mp4v")
    try:
        for frame in clip.frames:
            writer.write(frame)
    finally:
        writer.release()


def verify(path: Path, expected_frames: int) -> int:
    """Read ``path`` back with ``cv2.VideoCapture``, decoding every frame.

    Returns:
        The number of frames decoded.

    Raises:
        RuntimeError: if it does not open, decodes a different frame count, or exceeds ``MAX_BYTES``.
    """
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f"cv2.VideoCapture cannot open {path}")
    decoded = 0
    try:
        while True:
            ok, _ = cap.read()
            if not ok:
                break
            decoded += 1
    finally:
        cap.release()
    if decoded != expected_frames:
        raise RuntimeError(f"{path}: decoded {decoded} frames, wrote {expected_frames}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RuntimeError(f"{path}: {size} bytes, over the {MAX_BYTES} byte limit")
    return decoded


def main(argv: list[str] | None = None) -> int:
    """Write and verify every clip in ``SPECS``."""
    parser = argparse.ArgumentParser(description="Regenerate the bearwatch sample clips.")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="default: sample_videos/",
    )
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for spec in SPECS:
        clip = make_clip(spec)
        path = args.out_dir / spec.name
        write_clip(clip, path)
        frames = verify(path, len(clip.frames))
        shown = [i for i, p in enumerate(clip.present) if p]
        span = f"subject in frames {shown[0]}-{shown[-1]}" if shown else "no subject"
        print(f"{path}: {frames} frames, {path.stat().st_size / 1024:.0f} KiB, {span}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
