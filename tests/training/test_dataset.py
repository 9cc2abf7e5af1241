"""Scanning a data folder: labels from folders, unreadable files skipped and counted, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import make_shapes
from training.dataset import DataError, check_image, scan_images


def test_scan_finds_classes_and_counts(shapes_dir: Path) -> None:
    scan = scan_images(shapes_dir)
    assert scan.labels == ("bear", "empty", "person")
    assert scan.per_class == {"bear": 24, "empty": 24, "person": 24}
    assert len(scan.files) == 72
    assert not scan.corrupt and not scan.not_images


def test_corrupt_and_non_image_files_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_shapes(tmp_path / "data", per_class=4)
    good = (root / "bear" / "000.jpg").read_bytes()
    (root / "bear" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "empty" / "not-a-jpeg.jpg").write_text("this is text, not an image")
    (root / "person" / "notes.txt").write_text("labelling notes")
    (root / "README.md").write_text("top-level files are not in a class")
    (root / "bear" / ".DS_Store").write_bytes(b"\0\1")

    scan = scan_images(root)

    assert len(scan.files) == 12
    assert sorted(p.name for p, _ in scan.corrupt) == ["not-a-jpeg.jpg", "truncated.jpg"]
    assert [p.name for p in scan.not_images] == ["notes.txt"]
    report = scan.report()
    assert report["n_skipped_corrupt"] == 2 and report["n_skipped_not_image"] == 1
    assert "skipped 2 unreadable image(s) and 1 non-image file(s)" in caplog.text


def test_check_image_accepts_a_good_file(shapes_dir: Path) -> None:
    assert check_image(shapes_dir / "bear" / "000.jpg") is None


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("missing", "does not exist; pass --data a folder with one sub-folder of images per class"),
        ("empty", "no readable images under"),
        ("flat", "no readable images under"),
        ("one_class", "only one class ('bear') found under"),
        ("all_corrupt", "(2 unreadable and 0 non-image files skipped)"),
    ],
)
def test_unusable_folders_are_refused_with_one_line(
    tmp_path: Path, layout: str, expected: str
) -> None:
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "flat":
        make_shapes(tmp_path / "src", per_class=2)
        for f in (tmp_path / "src" / "bear").iterdir():
            f.rename(root / f.name)
    elif layout == "one_class":
        make_shapes(root, per_class=3, classes=("bear",))
    elif layout == "all_corrupt":
        for cls in ("bear", "empty"):
            (root / cls).mkdir()
            (root / cls / "x.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError) as info:
        scan_images(root)
    message = str(info.value)
    assert expected in message
    assert str(root) in message
    assert "\n" not in message


def test_bad_data_through_the_cli_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.cli.main import main

    root = tmp_path / "empty-data"
    root.mkdir()
    code = main(["train", "--data", str(root), "--out", str(tmp_path / "run"), "--no-pretrained"])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        err.count("\n") == 1
        and f"no readable images under {root}" in err
        and "Traceback" not in err
    )
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.incomplete").exists()
