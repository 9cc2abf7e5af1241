"""Wide synthetic frames, the slice-aided training crops made from them, and the view-plan evaluation."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.config.camera import ViewConfig
from training.synthetic.wide import (
    crop_label,
    render_wide,
    slice_boxes,
    write_eval_set,
    write_slices,
)

SMALL = (640, 360)  # the same geometry as 1080p at a third of the pixels: fast tests


@pytest.mark.parametrize(
    ("labels", "expected"),
    [(["bear"], "bear"), (["person"], "person"), ([], "empty"), (["bear", "person"], "bear")],
)
def test_wide_frames_have_small_subjects_and_a_clean_background(
    labels: list[str], expected: str
) -> None:
    frame = render_wide(labels, np.random.default_rng(3), SMALL)
    assert frame.image.shape == frame.background.shape == (360, 640, 3)
    assert frame.label == expected
    for s in frame.subjects:
        height = (s.box[3] - s.box[1]) / 360
        assert 0.0 < height <= 0.16  # 5–15 % high (less where partly hidden)
    again = render_wide(labels, np.random.default_rng(3), SMALL)
    assert (again.image == frame.image).all()  # seeded


def test_crops_are_labelled_by_what_they_show() -> None:
    frame = render_wide(["bear"], np.random.default_rng(5), SMALL, occlusion=0.0)
    (bear,) = frame.subjects
    boxes = slice_boxes(frame, ViewConfig(auto_adds="tiles"), 64, np.random.default_rng(0))
    kinds = [k for _, k in boxes]
    assert kinds[0] == "full" and "tile" in kinds and kinds[-1] == "motion"
    assert crop_label(frame, boxes[-1][0], 64) == "bear"  # the square around the bear
    x0, y0, x1, y1 = bear.box
    far = (0, 0, 64, 64) if x0 > 128 or y0 > 128 else (576, 0, 640, 64)
    assert crop_label(frame, far, 64) == "empty"


def test_slices_are_model_sized_class_folders(tmp_path: Path) -> None:
    counts = write_slices(tmp_path, scenes=6, seed=1, input_side=64, size=SMALL)
    assert counts["bear"] > 0 and counts["person"] > 0 and counts["empty"] > 0
    assert counts["empty"] <= 1.5 * (counts["bear"] + counts["person"]) + 1
    with (tmp_path / "slices.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(counts.values())
    assert {r["kind"] for r in rows} <= {"full", "tile", "motion"}
    img = cv2.imread(str(tmp_path / rows[0]["path"]))
    assert img.shape == (64, 64, 3)


def test_view_eval_prints_every_plan_side_by_side(tmp_path: Path, color_model: Path) -> None:
    counts = write_eval_set(tmp_path / "set", frames=8, seed=2, size=SMALL)
    assert sum(counts.values()) == 8 and counts["bear"] == 4
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "view-eval", str(tmp_path / "set"), "--model", str(color_model), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["frames"] == 8
    assert list(out["plans"]) == ["centre", "full", "tiles", "motion", "auto", "auto-tiles"]
    plans = out["plans"]
    assert plans["centre"]["regions_per_frame"] == plans["full"]["regions_per_frame"] == 1
    assert plans["auto-tiles"]["regions_per_frame"] == plans["tiles"]["regions_per_frame"] + 1
    assert plans["auto"]["regions_per_frame"] == plans["motion"]["regions_per_frame"] + 1
    assert plans["tiles"]["bears"] == 4 and plans["tiles"]["empty"] == 2
    table = subprocess.run(
        [sys.executable, "-m", "monitor", "view-eval", str(tmp_path / "set"), "--model", str(color_model)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "bear recall" in table.stdout and "motion" in table.stdout


@pytest.mark.parametrize("where", ["edge", "distant"])
def test_check_clips_keep_their_bear_where_they_say_and_have_an_empty_twin(where: str) -> None:
    from training.synthetic.wide import wide_walk

    bear = wide_walk("bear", np.random.default_rng(4), where, n_frames=5, size=SMALL)
    empty = wide_walk("empty", np.random.default_rng(4), where, n_frames=5, size=SMALL)
    for b, e in zip(bear, empty, strict=True):
        changed = np.abs(b.astype(int) - e.astype(int)).max(axis=2) > 40
        ys, xs = np.nonzero(changed)
        assert len(xs) > 0
        height = (ys.max() - ys.min()) / 360
        assert 0.07 <= height <= 0.14
        if where == "edge":
            assert xs.max() < 640 / 5  # wholly inside the left fifth
        else:
            assert xs.min() > 640 / 2
