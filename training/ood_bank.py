"""Images that show a model what the runtime shows it, for ``bearwatch ood-calibrate``'s feature bank.

The runtime never hands the model a bare training image: the view plan
letterboxes whole frames (16:9 and 4:3 cameras), cuts tiles and motion
squares, and everything has been through a video codec. A bank of training
images alone calls those views unfamiliar. This writes the two views the
scene set lacks, as model-sized JPEGs in class folders:

* ``letterboxed/``: seeded 16:9 scenes, each letterboxed whole;
* ``walks/``: frames of seeded walk-through clips (the sample clips' kind,
  other seeds), encoded as mp4v and decoded again, each letterboxed whole,
  in the folder of the clip's label (the empty lead-in and lead-out too: a
  bank needs the view, not the label).

``--labelled-walks`` writes the same kind of frames for *training* instead,
into ``walks_labelled/``: each frame in the folder of what it shows (a bear
clip's empty lead-in is ``empty``), frames within two of a subject entering
or leaving left out, 4:3 and 16:9 clips alike.

Usage: ``python -m training.ood_bank --out DIR --seed 7 [--size 128]``; put DIR
beside the scene set and the slice-aided crops as ``--images`` of ``ood-calibrate``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from monitor.model.preprocess import regions_to_inputs
from training.synthetic import render_scene, walk_through

LABELS = ("bear", "person", "empty")


def _coded(frames: Sequence[np.ndarray], fps: float = 10.0) -> list[np.ndarray]:
    """The frames after an mp4v round trip, as a camera's clip would be."""
    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
        for frame in frames:
            writer.write(frame)
        writer.release()
        cap = cv2.VideoCapture(str(path))
        out = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            out.append(frame)
        cap.release()
    return out


def _save(bgr: np.ndarray, size: int, path: Path) -> None:
    h, w = bgr.shape[:2]
    rgb = regions_to_inputs(bgr, [(0, 0, w, h)], (size, size))[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def write_bank(out: Path, seed: int, size: int = 128, scenes: int = 600, clips: int = 60) -> int:
    """Write the letterboxed scenes and walk-through frames; returns how many images."""
    rng = np.random.default_rng(seed)
    n = 0
    for i in range(scenes):
        label = LABELS[i % 3]
        night = rng.random() < 0.3
        bgr = render_scene(
            label, np.random.default_rng(int(rng.integers(2**31))), (640, 360), night
        )
        _save(bgr, size, out / "letterboxed" / label / f"scene{seed}_{i}.jpg")
        n += 1
    for i in range(clips):
        label, night = LABELS[i % 3], (i // 3) % 2 == 1
        clip_rng = np.random.default_rng(seed * 1000 + i)
        clip = walk_through(label, clip_rng, 80, (320, 240), night, lead_in=20, lead_out=15,
                            count=2 if label == "person" else 1)  # fmt: skip
        for j, frame in enumerate(_coded(clip.frames)[::2]):
            _save(frame, size, out / "walks" / label / f"walk{seed}_{i}_{j}.jpg")
            n += 1
    return n


def write_labelled_walks(out: Path, seed: int, size: int = 160, clips: int = 60) -> int:
    """Walk-through frames labelled by what each shows (for training); returns how many images."""
    n = 0
    for i in range(clips):
        label, night = LABELS[i % 3], (i // 3) % 2 == 1
        wh = (320, 240) if (i // 6) % 2 == 0 else (640, 360)
        clip_rng = np.random.default_rng(seed * 1000 + i)
        clip = walk_through(label, clip_rng, 80, wh, night, lead_in=20, lead_out=15,
                            count=2 if label == "person" else 1)  # fmt: skip
        present = clip.present
        for j, frame in enumerate(_coded(clip.frames)):
            near = present[max(0, j - 2) : j + 3]
            if j % 2 or any(p != present[j] for p in near):
                continue  # every other frame; none where a subject is just entering or leaving
            shows = label if present[j] else "empty"
            _save(frame, size, out / "walks_labelled" / shows / f"walk{seed}_{i}_{j}.jpg")
            n += 1
    return n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.ood_bank", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, required=True, help="seed; same seed, same images")
    parser.add_argument(
        "--size", type=int, default=128, help="the model's input side (default 128)"
    )
    parser.add_argument(
        "--scenes", type=int, default=600, help="letterboxed 16:9 scenes (default 600)"
    )
    parser.add_argument("--clips", type=int, default=60, help="walk-through clips (default 60)")
    parser.add_argument(
        "--labelled-walks",
        action="store_true",
        help="write only walks_labelled/: walk-through frames labelled by what they show, for training",
    )
    args = parser.parse_args(argv)
    if args.labelled_walks:
        n = write_labelled_walks(args.out, args.seed, args.size, args.clips)
    else:
        n = write_bank(args.out, args.seed, args.size, args.scenes, args.clips)
    print(f"wrote {n} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
