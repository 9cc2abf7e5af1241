"""Tests for the synthetic campsite generator, its dataset writer and walk-through clips, and the committed sample videos."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.synthetic import (
    LABELS,
    main,
    render_scene,
    render_scene_rgb,
    walk_through,
    write_dataset,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = ("bear_day.mp4", "bear_night.mp4", "people_day.mp4", "empty_day.mp4")


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("night", [False, True])
@pytest.mark.parametrize("label", LABELS)
def test_same_seed_same_image_other_seed_other_image(label: str, night: bool) -> None:
    a = render_scene(label, rng(5), (96, 80), night)
    b = render_scene(label, rng(5), (96, 80), night)
    c = render_scene(label, rng(6), (96, 80), night)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shape_dtype_and_rgb_order() -> None:
    bgr = render_scene("bear", rng(1), (200, 120))
    rgb = render_scene_rgb("bear", rng(1), (200, 120))
    assert bgr.shape == (120, 200, 3) and bgr.dtype == np.uint8
    assert np.array_equal(rgb, bgr[..., ::-1])


def test_unknown_label_is_rejected() -> None:
    with pytest.raises(ValueError, match="wolf"):
        render_scene("wolf", rng(0))


@pytest.mark.parametrize("label", LABELS)
def test_night_is_gray_and_darker_than_day(label: str) -> None:
    for seed in range(5):
        day = render_scene(label, rng(seed), (128, 96), night=False)
        night = render_scene(label, rng(seed), (128, 96), night=True)
        assert np.array_equal(night[..., 0], night[..., 1]) and np.array_equal(
            night[..., 1], night[..., 2]
        )
        assert np.ptp(day.astype(int), axis=2).mean() > 5  # day frames are in colour
        assert night.mean() < day.mean() - 20


def _subject_box(label: str, seed: int, gray: bool) -> tuple[int, int]:
    """(width, height) of what ``label`` adds to the same seed's empty scene."""
    size = (192, 192)
    with_subject = render_scene(label, rng(seed), size, occlusion=0.0, degrade=False)
    empty = render_scene("empty", rng(seed), size, occlusion=0.0, degrade=False)
    if gray:
        with_subject = cv2.cvtColor(with_subject, cv2.COLOR_BGR2GRAY)
        empty = cv2.cvtColor(empty, cv2.COLOR_BGR2GRAY)
    diff = np.abs(with_subject.astype(int) - empty.astype(int))
    changed = (diff.max(axis=-1) if diff.ndim == 3 else diff) > 12
    ys, xs = np.nonzero(changed)
    assert len(xs) > 150, f"{label} seed {seed}: subject barely visible"
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


@pytest.mark.parametrize("gray", [False, True])
def test_bears_are_wide_and_people_tall_even_in_gray(gray: bool) -> None:
    """The classes differ by silhouette, not only colour: a classifier must survive grayscale and IR."""
    for seed in range(8):
        w, h = _subject_box("bear", seed, gray)
        assert w > 1.2 * h, f"bear seed {seed}: {w}x{h}"
        w, h = _subject_box("person", seed, gray)
        assert h > 2.0 * w, f"person seed {seed}: {w}x{h}"


def test_same_seed_other_label_changes_only_the_subject() -> None:
    bear = render_scene("bear", rng(3), (128, 128), occlusion=0.0, degrade=False)
    empty = render_scene("empty", rng(3), (128, 128), occlusion=0.0, degrade=False)
    changed = (bear != empty).any(axis=2)
    assert 0.02 < changed.mean() < 0.6


def test_write_dataset_makes_fastai_class_folders_of_valid_jpegs(tmp_path: Path) -> None:
    counts = write_dataset(tmp_path, per_class=4, seed=0, size=(64, 48), night_fraction=0.5)
    assert counts == {"bear": 4, "empty": 4, "person": 4}
    for label in LABELS:
        files = sorted((tmp_path / label).iterdir())
        assert [f.name for f in files] == [f"{label}_{i}.jpg" for i in range(4)]
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            assert img is not None and img.shape == (48, 64, 3)
    with open(tmp_path / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    for label in LABELS:
        assert sum(int(r["night"]) for r in rows if r["label"] == label) == 2
    for r in rows:
        img = cv2.imread(str(tmp_path / r["path"]), cv2.IMREAD_COLOR).astype(int)
        spread = np.ptp(img, axis=2).mean()
        assert (spread < 2) if r["night"] == "1" else (spread > 3), r


def test_write_dataset_is_reproducible(tmp_path: Path) -> None:
    write_dataset(tmp_path / "a", per_class=2, seed=9, size=(48, 48))
    write_dataset(tmp_path / "b", per_class=2, seed=9, size=(48, 48))
    for label in LABELS:
        for i in range(2):
            name = f"{label}/{label}_{i}.jpg"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cli_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--per-class", "2", "--seed", "1", "--size", "64x48"]) == 0
    out = capsys.readouterr().out
    assert "wrote 6 images of 64x48" in out
    assert len(list(tmp_path.glob("*/*.jpg"))) == 6


def test_cli_rejects_a_bad_size() -> None:
    with pytest.raises(SystemExit):
        main(["--out", "x", "--per-class", "1", "--seed", "1", "--size", "big"])


def test_importing_the_generator_does_not_import_torch() -> None:
    """Sample-video and test tooling use this module without the train extra."""
    code = "import sys, training.synthetic; sys.exit('torch' in sys.modules or 'fastai' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


@pytest.mark.parametrize(("label", "night"), [("bear", False), ("bear", True), ("person", False)])
def test_walk_through_subject_only_in_middle_frames(label: str, night: bool) -> None:
    clip = walk_through(
        label, rng(4), n_frames=40, size=(160, 120), night=night, lead_in=8, lead_out=8
    )
    assert len(clip.frames) == 40 and clip.frames[0].shape == (120, 160, 3)
    changed = [
        float((np.abs(f.astype(int) - clip.background.astype(int)).max(axis=2) > 25).mean())
        for f in clip.frames
    ]
    for i in (*range(8), *range(32, 40)):
        assert changed[i] == 0.0 and not clip.present[i], i
    assert changed[20] > 0.003 and clip.present[20]
    assert max(changed[12:28]) > 0.01
    assert sum(clip.present) >= 16


def test_walk_through_same_seed_day_and_night_share_the_walk() -> None:
    day = walk_through("bear", rng(2), n_frames=30, size=(96, 72), lead_in=5, lead_out=5)
    night = walk_through(
        "bear", rng(2), n_frames=30, size=(96, 72), night=True, lead_in=5, lead_out=5
    )
    assert day.present == night.present


def test_empty_walk_through_background_differs_only_by_noise() -> None:
    clip = walk_through("empty", rng(8), n_frames=10, size=(160, 120), lead_in=4, lead_out=4)
    assert not any(clip.present)
    first = clip.frames[0].astype(int)
    for frame in clip.frames[1:]:
        diff = np.abs(frame.astype(int) - first)
        assert 0 < diff.mean() < 4 and diff.max() < 40


def test_walk_through_with_two_walkers_and_too_short_crossing() -> None:
    clip = walk_through(
        "person", rng(1), n_frames=30, size=(96, 72), lead_in=5, lead_out=5, count=2
    )
    assert not clip.present[0] and not clip.present[-1] and any(clip.present)
    with pytest.raises(ValueError, match="frames to cross"):
        walk_through("bear", rng(1), n_frames=10, lead_in=5, lead_out=4)


@pytest.mark.parametrize("name", SAMPLES)
def test_committed_sample_video_decodes(name: str) -> None:
    path = REPO / "sample_videos" / name
    assert path.is_file(), f"{path} missing: run python -m sample_videos.make_samples"
    assert path.stat().st_size <= 2 * 1024 * 1024
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    frames = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (240, 320, 3)
            frames += 1
    finally:
        cap.release()
    assert frames > 30


def test_write_dataset_with_cameras_fills_the_camera_column_and_shares_each_view(
    tmp_path: Path,
) -> None:
    """Images of one synthetic camera share its backdrop; the manifest names the camera."""
    write_dataset(tmp_path, per_class=6, seed=3, size=(64, 48), night_fraction=0.0, cameras=3)
    with open(tmp_path / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted({r["camera"] for r in rows}) == ["cam-00", "cam-01", "cam-02"]
    assert sum(r["camera"] == "cam-01" for r in rows) == 6  # two per class

    def empty(i: int) -> np.ndarray:
        return cv2.imread(str(tmp_path / "empty" / f"empty_{i}.jpg")).astype(np.float32)

    same = np.abs(empty(0) - empty(3)).mean()  # both cam-00
    other = np.abs(empty(0) - empty(1)).mean()  # cam-00 vs cam-01
    assert same < other


def test_write_dataset_without_cameras_gives_every_image_its_own_camera(tmp_path: Path) -> None:
    write_dataset(tmp_path, per_class=2, seed=1, size=(48, 48))
    with open(tmp_path / "manifest.csv", newline="") as fh:
        cameras = [r["camera"] for r in csv.DictReader(fh)]
    assert len(set(cameras)) == len(cameras) == 6


def test_walk_through_with_a_camera_seed_keeps_the_view_and_changes_the_walkers() -> None:
    a = walk_through("bear", np.random.default_rng(1), 24, (64, 48), lead_in=4, lead_out=4,
                     camera_seed=(7, 0))  # fmt: skip
    b = walk_through("bear", np.random.default_rng(2), 24, (64, 48), lead_in=4, lead_out=4,
                     camera_seed=(7, 0))  # fmt: skip
    c = walk_through("bear", np.random.default_rng(1), 24, (64, 48), lead_in=4, lead_out=4,
                     camera_seed=(7, 1))  # fmt: skip
    assert np.array_equal(a.background, b.background)
    assert not np.array_equal(a.background, c.background)
    assert any(not np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
