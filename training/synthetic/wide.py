"""Wide campsite frames (1080p-like) with distant, edge and partly hidden subjects, and the sets made from them.

Real cameras deliver 16:9 frames in which a bear is often 5–15 % of the frame
high, at an edge, or half behind a tree. ``render_wide`` paints such a frame
with the same backdrop, subjects and camera as ``scenes``, and returns where
every subject is visible. Two writers use it:

* :func:`write_slices` — **slice-aided training data**: each wide frame is cut
  into the regions the runtime's view plan would look at
  (``monitor.capture.view.static_plan`` for the whole frame and the tiles, plus
  a motion-style square around each subject) and turned into model inputs by
  ``monitor.model.preprocess.regions_to_inputs`` — the runtime's own code — so
  a tile at runtime is in the training domain. A crop is labelled by what is
  visible in it; a crop showing only a sliver of a subject is left out.
* :func:`write_eval_set` — the seeded **evaluation set** for
  ``bearwatch view-eval``: whole wide frames (day and IR night; bears 5–15 %
  high anywhere including the edges; people; empty scenes), each with a
  background frame of the same scene without the subject (for the motion plan).

:func:`write_clips` writes 1080p check clips (an edge bear, a distant bear,
an edge bear at night, each with an empty twin of the same scene).

CLI: ``python -m training.synthetic.wide slices|eval|clips --out DIR ...``.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from monitor.capture.view import static_plan
from monitor.config.camera import ViewConfig
from monitor.model.preprocess import regions_to_inputs
from monitor.model.regions import PixelBox, fit_square
from training.synthetic.backdrop import make_backdrop
from training.synthetic.camera import sample_camera
from training.synthetic.subjects import Bear, Person, Subject, draw_occluder, sample_subject

WIDE = (1920, 1080)
MIN_HEIGHT, MAX_HEIGHT = 0.05, 0.15  # subject height as a share of the frame's
SLICE_LABELS = ("bear", "empty", "person")
MIN_VISIBLE_SHARE = 0.6  # a crop is a subject's when it shows this much of it ...
MAX_SLIVER_SHARE = 0.05  # ... and an empty one when it shows no more than this
MIN_SUBJECT_PX = 10  # a subject fewer input pixels high than this is not labelled (nor its crop)


@dataclass(frozen=True, slots=True)
class Visible:
    """Where one subject shows in a wide frame, after occluders and the frame edge."""

    label: str
    mask: np.ndarray  # bool (H, W)
    box: PixelBox  # bounding box of ``mask``
    pixels: int


@dataclass(frozen=True, slots=True)
class WideFrame:
    """One wide frame, its background (same scene and camera, no subject) and its subjects."""

    image: np.ndarray  # BGR uint8
    background: np.ndarray  # BGR uint8
    night: bool
    subjects: tuple[Visible, ...]

    @property
    def label(self) -> str:
        labels = {s.label for s in self.subjects}
        return "bear" if "bear" in labels else "person" if labels else "empty"


def _sized(
    subject: Subject, rng: np.random.Generator, size: tuple[int, int], horizon: int
) -> Subject:
    """Scale a subject to 5–15 % of the frame height and put it anywhere on the ground, edges included."""
    w, h = size
    frac = rng.uniform(MIN_HEIGHT, MAX_HEIGHT)
    target = frac * h
    x0, y0, x1, y1 = subject.bbox()
    factor = target / max(1.0, y1 - y0)
    if isinstance(subject, Bear):
        subject = replace(subject, length=subject.length * factor)
    elif isinstance(subject, Person):
        subject = replace(subject, height=subject.height * factor)
    # smaller is further away: nearer the horizon
    depth = (MAX_HEIGHT - frac) / (MAX_HEIGHT - MIN_HEIGHT)
    ground = h - horizon
    foot = h - 0.03 * h - depth * 0.75 * ground + rng.uniform(-0.05, 0.05) * ground
    subject = replace(subject, foot_y=float(min(h - 2, max(horizon + target * 0.3, foot))))
    x0, _, x1, _ = subject.bbox()
    width = x1 - x0
    roll = rng.random()
    if roll < 0.15:  # at the left edge, partly outside
        left = -rng.uniform(0.0, 0.3) * width
    elif roll < 0.30:
        left = w - width + rng.uniform(0.0, 0.3) * width
    elif roll < 0.45:  # wholly inside an edge fifth
        left = (
            rng.uniform(0, w / 5 - width)
            if rng.random() < 0.5
            else rng.uniform(4 * w / 5, w - width)
        )
    else:
        left = rng.uniform(0, max(1.0, w - width))
    return replace(subject, x=subject.x + left - x0)


def render_wide(
    labels: Sequence[str],
    rng: np.random.Generator,
    size: tuple[int, int] = WIDE,
    night: bool = False,
    *,
    occlusion: float = 0.3,
) -> WideFrame:
    """Render a wide frame with the given subjects (``bear``/``person``; none: an empty scene).

    Args:
        labels: one entry per subject to paint.
        rng: the generator; the frame is a pure function of its state.
        size: (width, height).
        night: IR night mode.
        occlusion: probability that a subject is partly hidden behind a trunk, bush or rock.

    Returns:
        The frame, its subject-free background and where each subject is visible.
    """
    scene_rng, subject_rng, camera_rng = rng.spawn(3)
    backdrop = make_backdrop(scene_rng, size)
    canvas = backdrop.image.copy()
    visible: list[tuple[str, np.ndarray]] = []
    for label in labels:
        subject = _sized(
            sample_subject(label, subject_rng, size, backdrop.horizon_y),
            subject_rng,
            size,
            backdrop.horizon_y,
        )
        before = canvas.copy()
        subject.draw(canvas)
        mask = (canvas != before).any(axis=2)
        for _, other in visible:
            other &= ~mask  # a later subject in front hides an earlier one
        visible.append((label, mask))
        if subject_rng.random() < occlusion:
            before = canvas.copy()
            draw_occluder(canvas, subject_rng, subject.bbox())
            kept = (canvas == before).all(axis=2)
            for _, m in visible:
                m &= kept
    camera = sample_camera(camera_rng, night, video=True)
    union = np.logical_or.reduce([m for _, m in visible]) if visible else None
    developed = camera.develop(canvas, backdrop.horizon_y, union, backdrop.image)
    image = camera.expose(developed, camera_rng)
    background = camera.expose(
        camera.develop(backdrop.image.copy(), backdrop.horizon_y), camera_rng
    )
    subjects = []
    for label, mask in visible:
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        subjects.append(Visible(label, mask, box, int(len(xs))))
    return WideFrame(image, background, night, tuple(subjects))


def crop_label(frame: WideFrame, box: PixelBox, input_side: int) -> str | None:
    """What a crop shows: a subject it shows enough of, ``empty``, or None (ambiguous: left out)."""
    x0, y0, x1, y1 = box
    scale = input_side / max(x1 - x0, y1 - y0)
    seen: set[str] = set()
    for s in frame.subjects:
        inside = int(s.mask[y0:y1, x0:x1].sum())
        share = inside / s.pixels
        if inside == 0 or (share <= MAX_SLIVER_SHARE and inside * scale * scale < 16):
            continue  # not there, or a negligible sliver
        tall = (min(y1, s.box[3]) - max(y0, s.box[1])) * scale
        if share < MIN_VISIBLE_SHARE or tall < MIN_SUBJECT_PX:
            return None
        seen.add(s.label)
    if len(seen) > 1:
        return None
    return seen.pop() if seen else "empty"


def slice_boxes(
    frame: WideFrame, view: ViewConfig, input_side: int, rng: np.random.Generator
) -> list[tuple[PixelBox, str]]:
    """The crops a camera with ``view`` would look at, plus a motion-style square per subject."""
    h, w = frame.image.shape[:2]
    plan = static_plan(view, w, h, (input_side, input_side))
    boxes = [(b, k) for b, k in zip(plan.boxes, plan.kinds, strict=True)]
    for s in frame.subjects:
        x0, y0, x1, y1 = s.box
        margin = rng.uniform(0.1, 0.5)
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        grown = (
            max(0, int(x0 - mx)),
            max(0, int(y0 - my)),
            min(w, int(x1 + mx)),
            min(h, int(y1 + my)),
        )
        boxes.append((fit_square(grown, input_side, w, h), "motion"))
    return boxes


def write_slices(
    out_dir: str | Path,
    scenes: int,
    seed: int,
    input_side: int = 128,
    size: tuple[int, int] = WIDE,
    night_fraction: float = 0.3,
    empty_per_subject: float = 1.5,
) -> dict[str, int]:
    """Write slice-aided training crops as ``out_dir/<label>/<label>_<scene>_<k>.png``.

    Scene ``i`` comes from its own generator seeded by ``(seed, i)``: a third
    have a bear, a third a person, a sixth both, a sixth nobody. Its crops are
    the runtime's regions (``auto`` at this input size: the letterboxed whole
    frame and the tiles) plus a motion-style square around each subject, made
    model-sized by the runtime's own preprocessing and labelled by what they
    show. Empty crops, the majority, are kept at most ``empty_per_subject``
    times the subject crops (a seeded choice). ``slices.csv`` lists path,
    label, night, kind (full/tile/motion) and scene.

    Returns:
        Crops written per label.
    """
    root = Path(out_dir)
    for label in SLICE_LABELS:
        (root / label).mkdir(parents=True, exist_ok=True)
    view = ViewConfig(
        plan="auto", auto_adds="tiles"
    )  # every plan's regions: full, tiles (+ motion below)
    rows: list[tuple[str, str, int, str, int]] = []
    counts = dict.fromkeys(SLICE_LABELS, 0)
    pending_empty: list[tuple[np.ndarray, str, int, str, int]] = []
    for i in range(scenes):
        rng = np.random.default_rng([seed, i])
        kind = i % 6
        labels = [["bear"], ["person"], ["bear"], ["person"], ["bear", "person"], []][kind]
        night = bool(rng.random() < night_fraction)
        frame = render_wide(labels, rng, size, night)
        boxes = slice_boxes(frame, view, input_side, rng)
        inputs = regions_to_inputs(frame.image, [b for b, _ in boxes], (input_side, input_side))
        for k, ((box, how), x) in enumerate(zip(boxes, inputs, strict=True)):
            found = crop_label(frame, box, input_side)
            if found is None:
                continue
            label = found
            if label == "empty":
                pending_empty.append((x, how, int(night), f"{i}_{k}", i))
                continue
            _write(root, label, f"{label}_{i}_{k}.png", x)
            rows.append((f"{label}/{label}_{i}_{k}.png", label, int(night), how, i))
            counts[label] += 1
    keep = int(empty_per_subject * (counts["bear"] + counts["person"]))
    order = np.random.default_rng([seed, 1 << 30]).permutation(len(pending_empty))[:keep]
    for j in sorted(order.tolist()):
        x, how, night_flag, name, scene = pending_empty[j]
        _write(root, "empty", f"empty_{name}.png", x)
        rows.append((f"empty/empty_{name}.png", "empty", night_flag, how, scene))
        counts["empty"] += 1
    # slices.csv, not manifest.csv: slices may share a folder with ``python -m training.synthetic``'s set
    with open(root / "slices.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "night", "kind", "scene"))
        writer.writerows(rows)
    return counts


def _write(root: Path, label: str, name: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(root / label / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {root / label / name}")


def write_eval_set(
    out_dir: str | Path,
    frames: int,
    seed: int,
    size: tuple[int, int] = WIDE,
    night_fraction: float = 0.3,
) -> dict[str, int]:
    """Write the evaluation set: ``out_dir/frames/<i>.jpg`` and ``<i>_bg.jpg``, plus ``manifest.csv``.

    Half the frames have a bear (5–15 % of the frame high, anywhere including
    the edges, a third partly hidden), a quarter a person, a quarter nobody;
    ``night_fraction`` of them are IR night frames. ``<i>_bg.jpg`` is the same
    scene through the same camera without the subject (what a motion plan
    compares against). The manifest gives path, background, label, night and
    the bear's visible height share.

    Returns:
        Frames written per label.
    """
    root = Path(out_dir)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    counts = {"bear": 0, "person": 0, "empty": 0}
    rows = []
    for i in range(frames):
        rng = np.random.default_rng([seed, i, 7])
        labels = [["bear"], ["person"], ["bear"], []][i % 4]
        night = bool(rng.random() < night_fraction)
        frame = render_wide(labels, rng, size, night)
        label = frame.label
        for name, image in ((f"{i}.jpg", frame.image), (f"{i}_bg.jpg", frame.background)):
            if not cv2.imwrite(str(root / "frames" / name), image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
                raise OSError(f"could not write {root / 'frames' / name}")
        height = max((s.box[3] - s.box[1] for s in frame.subjects), default=0) / size[1]
        rows.append((f"frames/{i}.jpg", f"frames/{i}_bg.jpg", label, int(night), round(height, 4)))
        counts[label] += 1
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "background", "label", "night", "height"))
        writer.writerows(rows)
    return counts


CLIP_PLACES = ("edge", "distant")


def wide_walk(
    label: str,
    rng: np.random.Generator,
    where: str = "edge",
    n_frames: int = 50,
    size: tuple[int, int] = WIDE,
    night: bool = False,
) -> list[np.ndarray]:
    """A static wide camera while a bear or person walks slowly, or nobody (``empty``).

    ``edge``: a subject 10–12 % of the frame high, wholly inside the left fifth
    the whole time; ``distant``: about a tenth of the frame high, far off near
    the horizon, right of centre. The same seed gives the same backdrop and
    camera for every label, so ``empty`` is the same scene with nobody in it.

    Returns:
        BGR ``uint8`` frames.
    """
    if where not in CLIP_PLACES:
        raise ValueError(f"where must be one of {CLIP_PLACES}, got {where!r}")
    w, h = size
    scene_rng, subject_rng, camera_rng, noise_rng = rng.spawn(4)
    backdrop = make_backdrop(scene_rng, size)
    camera = sample_camera(camera_rng, night, video=True)
    background = camera.develop(backdrop.image.copy(), backdrop.horizon_y)
    if label == "empty":
        return [camera.expose(background, noise_rng) for _ in range(n_frames)]
    subject = sample_subject(label, subject_rng, size, backdrop.horizon_y, side_view=True)
    frac = subject_rng.uniform(0.10, 0.12) if where == "edge" else subject_rng.uniform(0.09, 0.11)
    x0, y0, x1, y1 = subject.bbox()
    factor = frac * h / max(1.0, y1 - y0)
    if isinstance(subject, Bear):
        subject = replace(subject, length=subject.length * factor)
    elif isinstance(subject, Person):
        subject = replace(subject, height=subject.height * factor)
    ground = h - backdrop.horizon_y
    foot = h - 0.08 * h if where == "edge" else backdrop.horizon_y + 0.3 * ground
    subject = replace(subject, foot_y=float(foot), facing=1)
    x0, _, x1, _ = subject.bbox()
    width = x1 - x0
    lo, hi = (0.01 * w, w / 5 - width - 2) if where == "edge" else (0.6 * w, 0.75 * w)
    frames = []
    for i in range(n_frames):
        left = lo + (hi - lo) * i / max(1, n_frames - 1)
        walker = replace(subject, x=subject.x + left - x0, phase=subject.phase + 0.35 * i)
        canvas = backdrop.image.copy()
        before = canvas.copy()
        walker.draw(canvas)
        mask = (canvas != before).any(axis=2)
        frames.append(
            camera.expose(
                camera.develop(canvas, backdrop.horizon_y, mask, backdrop.image), noise_rng
            )
        )
    return frames


def write_clips(
    out_dir: str | Path, seed: int, fps: float = 10.0, seconds: float = 5.0
) -> list[Path]:
    """Write 1080p check clips: ``edge_bear``, ``distant_bear`` (day), ``edge_bear_night`` and their empty scenes (mp4).

    Each bear clip has an ``…_empty`` twin: the same scene and camera with nobody there.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    n = int(fps * seconds)
    for name, where, night in (
        ("edge_bear", "edge", False),
        ("distant_bear", "distant", False),
        ("edge_bear_night", "edge", True),
    ):
        for label, suffix in (("bear", ""), ("empty", "_empty")):
            frames = wide_walk(
                label, np.random.default_rng([seed, len(paths) // 2]), where, n, WIDE, night
            )
            path = root / f"{name}{suffix}.mp4"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, WIDE)
            if not writer.isOpened():
                raise OSError(f"OpenCV cannot write {path}")
            try:
                for f in frames:
                    writer.write(f)
            finally:
                writer.release()
            paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``slices`` (slice-aided training crops) or ``eval`` (the wide evaluation set)."""
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic.wide", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser(
        "slices", help="slice-aided training crops in class folders (for bearwatch train)"
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scenes", type=int, required=True, help="wide frames to slice")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--input-size", type=int, default=128, help="the model input the crops are made for"
    )
    p.add_argument("--night-fraction", type=float, default=0.3)
    p.add_argument("--empty-per-subject", type=float, default=1.5)
    e = sub.add_parser("eval", help="the wide evaluation set for bearwatch view-eval")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--frames", type=int, default=300)
    e.add_argument("--seed", type=int, default=9)
    e.add_argument("--night-fraction", type=float, default=0.3)
    c = sub.add_parser(
        "clips", help="1080p check clips: edge and distant bears, each with its empty twin"
    )
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--seed", type=int, default=5)
    for q in (p, e):
        q.add_argument("--width", type=int, default=WIDE[0])
        q.add_argument("--height", type=int, default=WIDE[1])
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.what == "clips":
        for path in write_clips(args.out, args.seed):
            print(path)
        return 0
    size = (args.width, args.height)
    if args.what == "slices":
        counts = write_slices(
            args.out,
            args.scenes,
            args.seed,
            args.input_size,
            size,
            args.night_fraction,
            args.empty_per_subject,
        )
    else:
        counts = write_eval_set(args.out, args.frames, args.seed, size, args.night_fraction)
    total = sum(counts.values())
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(
        f"wrote {total} {'crops' if args.what == 'slices' else 'frames'} to {args.out} ({detail}) in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
