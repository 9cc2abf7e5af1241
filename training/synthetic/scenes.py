"""Seeded synthetic campsite scenes (bear / person / empty) as images, datasets and walk-through clips.

Everything here is drawn with OpenCV primitives and NumPy, so sample videos and
tests can use it without the ``train`` extra. Frames are **BGR** ``uint8``
(OpenCV's order, ready for ``cv2.imwrite`` / ``cv2.VideoWriter``);
``render_scene_rgb`` gives RGB for model input.

A scene is built in three independent, seeded layers — backdrop (sky, ground,
trees, tents, rocks), subject (a bear or a person), and camera (lighting,
day or night/IR, blur, noise, JPEG) — each from its own child generator. The
same seed with a different label therefore gives the same backdrop and camera
with only the subject changed, which keeps the classes comparable and lets
tests isolate the subject's pixels. The layers live in ``backdrop``,
``subjects`` (both drawn with ``paint``) and ``camera``; this module composes
them into images, clips and datasets, and holds the CLI
(``python -m training.synthetic``).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from training.synthetic.backdrop import Backdrop, make_backdrop
from training.synthetic.camera import Camera, sample_camera
from training.synthetic.paint import BGR, Box
from training.synthetic.subjects import Bear, Person, Subject, draw_occluder, sample_subject

__all__ = [
    "BGR",
    "LABELS",
    "Backdrop",
    "Bear",
    "Box",
    "Camera",
    "Clip",
    "Person",
    "Subject",
    "camera_backdrop",
    "camera_name",
    "main",
    "make_backdrop",
    "render_scene",
    "render_scene_rgb",
    "sample_camera",
    "sample_subject",
    "walk_through",
    "write_dataset",
]

LABELS: tuple[str, ...] = ("bear", "empty", "person")
_CAMERA_STREAM = 1 << 29  # seeds camera backdrops apart from the per-image streams


# --------------------------------------------------------------------------- images


def _paint(canvas: np.ndarray, subject: Subject) -> np.ndarray:
    """Draw ``subject`` on ``canvas`` in place; return the bool mask of the pixels it changed."""
    before = canvas.copy()
    subject.draw(canvas)
    return (canvas != before).any(axis=2)


def _check_label(label: str) -> None:
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")


def render_scene(
    label: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 160),
    night: bool = False,
    *,
    occlusion: float = 0.3,
    degrade: bool = True,
    backdrop: Backdrop | None = None,
) -> np.ndarray:
    """Render one campsite camera frame containing a bear, a person, or nothing.

    The backdrop, the subject and the camera each come from their own child of
    ``rng``, so the same seed with another label differs only in the subject.

    Args:
        label: ``bear``, ``person`` or ``empty``.
        rng: the generator; the image is a pure function of its state.
        size: (width, height) in pixels.
        night: IR night mode (gray, dark, noisy).
        occlusion: probability of partial occlusion (a trunk, bush or rock in
            front, or the frame edge). Empty scenes get the same foreground
            objects at the same rate, so occluders are no clue to the class.
        degrade: allow blur and JPEG artefacts.
        backdrop: a fixed scene to shoot (one camera's view, see
            :func:`camera_backdrop`) instead of one drawn from ``rng``; it must
            be ``size``.

    Returns:
        BGR ``uint8`` image, ``(height, width, 3)``.

    Raises:
        ValueError: for an unknown label, or a backdrop of another size.
    """
    _check_label(label)
    scene_rng, subject_rng, camera_rng = rng.spawn(3)
    if backdrop is None:
        backdrop = make_backdrop(scene_rng, size)
    elif backdrop.image.shape[:2] != (size[1], size[0]):
        raise ValueError(f"backdrop is {backdrop.image.shape[1::-1]}, the scene {size}")
    canvas = backdrop.image.copy()
    # an occluder in front or the frame edge, never both: enough of the subject must stay visible
    roll = subject_rng.random()
    cut, occlude = roll < occlusion / 3, occlusion / 3 <= roll < occlusion
    # an empty scene still places a (hidden) subject, so its occluder lands somewhere plausible
    kind = "person" if label == "empty" else label
    subject = sample_subject(kind, subject_rng, size, backdrop.horizon_y, edge_cut=cut)
    mask = _paint(canvas, subject) if label != "empty" else None
    if occlude:
        before = canvas.copy()
        draw_occluder(canvas, subject_rng, subject.bbox())
        if mask is not None:
            mask &= (canvas == before).all(axis=2)
    camera = sample_camera(camera_rng, night, degrade=degrade)
    developed = camera.develop(canvas, backdrop.horizon_y, mask, backdrop.image)
    return camera.expose(developed, camera_rng)


def camera_backdrop(seed: int, camera: int, size: tuple[int, int]) -> Backdrop:
    """The fixed view of synthetic camera number ``camera`` (of master ``seed``).

    A real camera sees the same campsite in every frame; a camera-aware
    dataset shoots all of one camera's images on its backdrop, which is what
    makes holding out whole cameras (``bearwatch train --split-by camera``)
    a test of new locations rather than of new frames of known ones.
    """
    return make_backdrop(np.random.default_rng([seed, _CAMERA_STREAM, camera]), size)


def camera_name(camera: int) -> str:
    """The camera id written to manifests for camera number ``camera``."""
    return f"cam-{camera:02d}"


def render_scene_rgb(
    label: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 160),
    night: bool = False,
    *,
    occlusion: float = 0.3,
    degrade: bool = True,
) -> np.ndarray:
    """``render_scene`` in RGB order (the model's input order); same arguments, same pixels."""
    bgr = render_scene(label, rng, size, night, occlusion=occlusion, degrade=degrade)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True, slots=True)
class Clip:
    """A static-camera sequence: fixed backdrop, subjects walking across, fresh sensor noise per frame."""

    label: str
    frames: tuple[np.ndarray, ...]  # BGR uint8
    present: tuple[bool, ...]  # per frame: some subject overlaps the frame
    background: np.ndarray  # BGR uint8: the empty scene through the same camera, noise-free


def _plan_walk(
    label: str, rng: np.random.Generator, size: tuple[int, int], horizon_y: int, count: int
) -> list[tuple[Subject, float, float]]:
    """Walkers with start and end centre x: from fully off one edge to fully off the other."""
    w = size[0]
    direction = 1 if rng.random() < 0.5 else -1
    plan: list[tuple[Subject, float, float]] = []
    for k in range(count):
        s = replace(sample_subject(label, rng, size, horizon_y, side_view=True), facing=direction)
        x0, _, x1, _ = s.bbox()
        left_out, right_out = -(x1 - s.x) - 2, w + (s.x - x0) + 2
        gap = 0.6 * (x1 - x0)  # later walkers start further back and finish further on
        if direction > 0:
            plan.append((s, left_out - k * gap, right_out + (count - 1 - k) * gap))
        else:
            plan.append((s, right_out + k * gap, left_out - (count - 1 - k) * gap))
    return plan


def walk_through(
    label: str,
    rng: np.random.Generator,
    n_frames: int = 80,
    size: tuple[int, int] = (320, 240),
    night: bool = False,
    *,
    lead_in: int = 15,
    lead_out: int = 15,
    count: int = 1,
    camera_seed: Sequence[int] | None = None,
) -> Clip:
    """Frames from a fixed camera while a bear or people cross the scene from one side to the other.

    Subjects are outside the frame for the first ``lead_in`` and last
    ``lead_out`` frames; in between they walk across at constant speed, with
    the gait phase tied to the distance walked. The same seed at night gives
    the same backdrop and walkers as by day. Half the backdrops have a near
    tree the walkers pass behind.

    Args:
        label: ``bear``, ``person`` or ``empty`` (no one walks through).
        rng: the generator; the clip is a pure function of its state.
        n_frames: total frames.
        size: (width, height).
        night: IR night mode.
        lead_in: empty frames before the first subject can appear.
        lead_out: empty frames after the last subject has left.
        count: subjects walking through together (staggered, same direction).
        camera_seed: when given, the backdrop, near tree and imaging come
            from this seed rather than from ``rng``: clips with one
            ``camera_seed`` are one camera's footage (fresh walkers and noise
            each, same view).

    Returns:
        The clip.

    Raises:
        ValueError: for an unknown label or a crossing shorter than 2 frames.
    """
    _check_label(label)
    crossing = n_frames - lead_in - lead_out
    if crossing < 2:
        raise ValueError(
            f"n_frames={n_frames} leaves {crossing} frames to cross after lead_in/lead_out"
        )
    scene_rng, subject_rng, camera_rng, noise_rng = rng.spawn(4)
    if camera_seed is not None:
        scene_rng, camera_rng = np.random.default_rng([*camera_seed, _CAMERA_STREAM]).spawn(2)
    backdrop = make_backdrop(scene_rng, size, near_tree=bool(scene_rng.random() < 0.5))
    camera = sample_camera(camera_rng, night, video=True)
    background = camera.develop(backdrop.compose(backdrop.image.copy()), backdrop.horizon_y)
    plan = (
        _plan_walk(label, subject_rng, size, backdrop.horizon_y, count) if label != "empty" else []
    )
    frames: list[np.ndarray] = []
    present: list[bool] = []
    for i in range(n_frames):
        t = min(max((i - lead_in) / (crossing - 1), 0.0), 1.0)
        canvas = backdrop.image.copy()
        mask = np.zeros(canvas.shape[:2], dtype=bool)
        for s, start, end in plan:
            x = start + (end - start) * t
            stride = 0.5 * (s.length if isinstance(s, Bear) else s.height)
            walker = replace(s, x=x, phase=s.phase + abs(x - start) / stride * math.pi)
            x0, _, x1, _ = walker.bbox()
            if x1 > 0 and x0 < size[0]:
                mask |= _paint(canvas, walker)
        present.append(bool(mask.any()))
        if not present[-1]:
            frames.append(camera.expose(background, noise_rng))
            continue
        if backdrop.front_mask is not None:
            mask &= backdrop.front_mask == 0
        developed = camera.develop(
            backdrop.compose(canvas), backdrop.horizon_y, mask, backdrop.image
        )
        frames.append(camera.expose(developed, noise_rng))
    clean = np.clip(background, 0, 255).astype(np.uint8)
    clean = cv2.cvtColor(clean, cv2.COLOR_GRAY2BGR) if clean.ndim == 2 else clean
    return Clip(label, tuple(frames), tuple(present), clean)


# --------------------------------------------------------------------------- dataset


def write_dataset(
    out_dir: str | Path,
    per_class: int,
    seed: int,
    size: tuple[int, int] = (160, 160),
    night_fraction: float = 0.3,
    *,
    labels: Sequence[str] = LABELS,
    jpeg_quality: int = 92,
    cameras: int = 0,
) -> dict[str, int]:
    """Write ``out_dir/<label>/<label>_<i>.jpg`` for each label, like the fastai book's bear folders.

    Image ``i`` of a label comes from its own generator seeded by
    ``(seed, label index, i)``, so any single image can be regenerated. Exactly
    ``round(per_class * night_fraction)`` images per label are night shots (a
    seeded choice). A ``manifest.csv`` (path, label, night) is written beside
    the folders for day/night breakdowns. Existing files with the same names are
    overwritten; nothing else in ``out_dir`` is touched.

    With ``cameras`` > 0 the images are shot by that many synthetic cameras,
    each with its own fixed backdrop (:func:`camera_backdrop`); image ``i``
    of every label is camera ``i % cameras``'s. The manifest's ``camera``
    column names it (``cam-00`` …); without cameras every image is its own
    scene and its camera id is its own name.

    Args:
        out_dir: destination folder (created if missing).
        per_class: images per label.
        seed: master seed.
        size: (width, height) in pixels.
        night_fraction: share of night/IR images, 0..1.
        labels: which labels to write (a subset of ``LABELS``).
        jpeg_quality: JPEG quality of the written files.
        cameras: synthetic cameras sharing the images (0: a new scene per image).

    Returns:
        Images written per label.

    Raises:
        ValueError: for a bad label, count or fraction.
    """
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    if cameras < 0:
        raise ValueError(f"cameras must be >= 0, got {cameras}")
    if not 0.0 <= night_fraction <= 1.0:
        raise ValueError(f"night_fraction must be within 0..1, got {night_fraction}")
    for label in labels:
        _check_label(label)
    root = Path(out_dir)
    counts: dict[str, int] = {}
    rows: list[tuple[str, str, int, str]] = []
    n_night = round(per_class * night_fraction)
    views = [camera_backdrop(seed, k, size) for k in range(cameras)]
    for label in labels:
        index = LABELS.index(label)
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        night_set = set(
            np.random.default_rng([seed, index, 1 << 30]).permutation(per_class)[:n_night].tolist()
        )
        for i in range(per_class):
            night = i in night_set
            view = views[i % cameras] if cameras else None
            rng = np.random.default_rng([seed, index, i])
            image = render_scene(label, rng, size, night, backdrop=view)
            name = f"{label}_{i}.jpg"
            if not cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                raise OSError(f"could not write {folder / name}")
            camera = camera_name(i % cameras) if cameras else f"{label}_{i}"
            rows.append((f"{label}/{name}", label, int(night), camera))
        counts[label] = per_class
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "night", "camera"))
        writer.writerows(rows)
    return counts


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WxH, got {text!r}") from None
    if len(dims) not in (1, 2) or min(dims) < 32:
        raise argparse.ArgumentTypeError(f"size must be N or WxH with sides >= 32, got {text!r}")
    return (dims[0], dims[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write a synthetic bear/person/empty dataset in fastai's folder-per-class layout."""
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Write seeded synthetic campsite images to OUT/<class>/<class>_<i>.jpg "
        f"for the classes {', '.join(LABELS)}, plus OUT/manifest.csv (path,label,night,camera).",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (created if missing)"
    )
    parser.add_argument("--per-class", required=True, type=int, help="images per class")
    parser.add_argument(
        "--seed", required=True, type=int, help="master seed; same seed, same images"
    )
    parser.add_argument(
        "--size", type=_parse_size, default=(160, 160), help="N (square) or WxH; default 160"
    )
    parser.add_argument(
        "--night-fraction", type=float, default=0.3, help="share of night/IR images; default 0.3"
    )
    parser.add_argument(
        "--cameras",
        type=int,
        default=0,
        help="shoot the images with N fixed camera views (manifest column camera); "
        "default 0: a new scene per image",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        counts = write_dataset(
            args.out, args.per_class, args.seed, args.size, args.night_fraction,
            cameras=args.cameras,
        )  # fmt: skip
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - started
    n_night = round(args.per_class * args.night_fraction)
    for label, n in counts.items():
        print(f"{args.out / label}: {n} images ({n_night} night)")
    w, h = args.size
    print(f"wrote {sum(counts.values())} images of {w}x{h} (seed {args.seed}) in {elapsed:.1f} s")
    return 0
