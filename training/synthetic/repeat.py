"""A repeat-false-alarm clip: a bear carving that never moves, and later a real bear walking through.

A campsite with a wooden bear statue is the textbook repeat false alarm: the
model is right that it looks like a bear, the reviewer rejects it, and it must
not alert again — while a real bear walking past still must. The carving
stands in the right part of the frame for the whole clip; the walker enters
on the left half-way through and crosses the left third.

CLI: ``python -m training.synthetic.repeat --out FILE.mp4 [--seed N]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from training.synthetic.backdrop import make_backdrop
from training.synthetic.camera import sample_camera
from training.synthetic.subjects import Bear, sample_subject

SIZE = (1920, 1080)
CARVING_FUR = (40, 75, 120)  # BGR: weathered wood


def statue_and_walker(
    seed: int, n_frames: int = 100, size: tuple[int, int] = SIZE, walker_from: float = 0.5
) -> list[np.ndarray]:
    """BGR frames: the carving throughout, the walker from ``walker_from`` of the clip on."""
    w, h = size
    scene_rng, statue_rng, walker_rng, camera_rng, noise_rng = np.random.default_rng(seed).spawn(5)
    backdrop = make_backdrop(scene_rng, size)
    camera = sample_camera(camera_rng, False, video=True)
    ground = h - backdrop.horizon_y

    def sized(subject: Bear, frac: float, foot: float, left: float) -> Bear:
        x0, y0, _, y1 = subject.bbox()
        subject = replace(subject, length=subject.length * frac * h / max(1.0, y1 - y0))
        subject = replace(subject, foot_y=foot, facing=1)
        x0, _, _, _ = subject.bbox()
        return replace(subject, x=subject.x + left - x0)

    statue = sample_subject("bear", statue_rng, size, backdrop.horizon_y, side_view=True)
    assert isinstance(statue, Bear)
    statue = replace(statue, fur=CARVING_FUR, head_drop=0.0, phase=0.0)
    statue = sized(statue, 0.16, backdrop.horizon_y + 0.75 * ground, 0.68 * w)
    walker = sample_subject("bear", walker_rng, size, backdrop.horizon_y, side_view=True)
    assert isinstance(walker, Bear)
    walker = sized(walker, 0.14, backdrop.horizon_y + 0.85 * ground, 0.02 * w)
    start = min(n_frames, int(n_frames * walker_from))
    scene = backdrop.image.copy()
    statue.draw(scene)
    frames = []
    for i in range(n_frames):
        canvas = scene.copy()
        mask = None
        if i >= start:
            step = (i - start) / max(1, n_frames - start - 1)
            before = canvas.copy()
            replace(walker, x=walker.x + step * 0.25 * w, phase=walker.phase + 0.35 * i).draw(
                canvas
            )
            mask = (canvas != before).any(axis=2)
        frames.append(
            camera.expose(camera.develop(canvas, backdrop.horizon_y, mask, scene), noise_rng)
        )
    return frames


def write_clip(
    path: str | Path,
    seed: int = 11,
    fps: float = 10.0,
    seconds: float = 10.0,
    size: tuple[int, int] = SIZE,
    walker_from: float = 0.5,
) -> Path:
    """Write the clip as mp4 (mp4v) at ``fps``; ``walker_from`` ≥ 1: the carving alone."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = statue_and_walker(seed, int(fps * seconds), size, walker_from)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {out}")
    try:
        for f in frames:
            writer.write(f)
    finally:
        writer.release()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic.repeat", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="the mp4 to write")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=SIZE[0])
    parser.add_argument("--height", type=int, default=SIZE[1])
    parser.add_argument(
        "--walker-from",
        type=float,
        default=0.5,
        help="share of the clip before the walker appears (1: the carving alone)",
    )
    args = parser.parse_args(argv)
    size = (args.width, args.height)
    print(
        write_clip(
            args.out, args.seed, seconds=args.seconds, size=size, walker_from=args.walker_from
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
