"""``bearwatch train --split-by camera`` and ``--init RUN_DIR`` (fine-tuning a finished run), with their refusals."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from monitor.cli.main import main
from training.synthetic import write_dataset

pytestmark = pytest.mark.slow

TINY = ["--no-pretrained", "--epochs", "1", "--batch-size", "8", "--seed", "1",
        "--top-k", "2", "--clean-k", "5"]  # fmt: skip


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def camera_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes from five synthetic cameras, 10 images per class."""
    root = tmp_path_factory.mktemp("cams") / "data"
    write_dataset(root, per_class=10, seed=4, size=(48, 48), cameras=5)
    return root


@pytest.fixture(scope="module")
def base_run(camera_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "base"
    argv = ["train", "--data", str(camera_data), "--out", str(out), "--size", "32",
            "--split-by", "camera", *TINY]  # fmt: skip
    assert main(argv) == 0
    return out


def test_split_by_camera_holds_out_whole_cameras_and_reports_both_accuracies(
    base_run: Path, camera_data: Path
) -> None:
    with (camera_data / "manifest.csv").open(newline="") as fh:
        camera = {r["path"]: r["camera"] for r in csv.DictReader(fh)}
    split = _json(base_run / "split.json")
    held = set(split["held_out"])
    assert split["by"] == "camera" and held
    assert {camera[p] for p in split["valid"]} == held
    assert not {camera[p] for p in split["train"] + split["random_valid"]} & held
    assert not set(split["train"]) & set(split["random_valid"])
    assert len(split["train"]) + len(split["valid"]) + len(split["random_valid"]) == 30
    metrics = _json(base_run / "metrics.json")
    s = metrics["split"]
    assert s["held_out"] == sorted(held)
    assert s["held_out_camera_accuracy"] == metrics["accuracy"]
    assert s["n_held_out"] == metrics["n_valid"] == len(split["valid"])
    assert 0.0 <= s["random_split_accuracy"] <= 1.0
    assert s["n_random_split"] == len(split["random_valid"]) > 0


def test_a_finished_run_leaves_what_init_needs(base_run: Path) -> None:
    info = _json(base_run / "init.json")
    assert info == {"arch": "resnet18", "size": 32, "labels": ["bear", "empty", "person"],
                    "model_version": info["model_version"], "weights": "weights.pth"}  # fmt: skip
    state = torch.load(base_run / "weights.pth", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_init_starts_from_the_runs_weights_and_keeps_its_arch_and_size(
    base_run: Path, camera_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tuned"
    # No --size: the run's 32 px is taken. A vanishing lr keeps the weights where they started.
    argv = ["train", "--data", str(camera_data), "--out", str(out), "--init", str(base_run),
            "--lr", "1e-9", *TINY]  # fmt: skip
    assert main(argv) == 0
    assert _json(out / "init.json")["size"] == 32
    metrics = _json(out / "metrics.json")
    assert metrics["init"]["run"] == str(base_run.resolve())
    before = torch.load(base_run / "weights.pth", weights_only=True)
    after = torch.load(out / "weights.pth", weights_only=True)
    assert torch.allclose(before["0.0.weight"], after["0.0.weight"], atol=1e-6)
    assert torch.allclose(before["1.8.weight"], after["1.8.weight"], atol=1e-6)  # the head too
    with (out / "history.csv").open(newline="") as fh:
        assert {r["phase"] for r in csv.DictReader(fh)} == {"unfrozen"}


def _refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the command refused with (log warnings about the data aside)."""
    assert main(argv) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if " WARNING " not in ln]
    assert len(lines) == 1 and lines[0].startswith("bearwatch train: "), lines
    return lines[0]


def test_init_refuses_what_is_not_a_finished_run(
    base_run: Path, camera_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def attempt(init: Path, *extra: str) -> str:
        argv = ["train", "--data", str(camera_data), "--out", str(tmp_path / "x"),
                "--init", str(init), *TINY, *extra]  # fmt: skip
        return _refusal(argv, capsys)

    assert "no such folder" in attempt(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    assert "is not a bearwatch training run" in attempt(tmp_path / "junk")
    unfinished = tmp_path / "r.incomplete"
    shutil.copytree(base_run, unfinished)
    assert "unfinished or failed run" in attempt(unfinished)
    old = tmp_path / "old"
    shutil.copytree(base_run, old)
    (old / "init.json").unlink()
    assert "made before --init existed" in attempt(old)
    err = attempt(base_run, "--arch", "mobilenet_v3_small")
    assert "is a resnet18 at 32 px; --arch mobilenet_v3_small differs" in err
    assert "--size 64 differs" in attempt(base_run, "--size", "64")
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.incomplete").exists()


def test_init_refuses_a_label_set_change_and_one_class_data(
    base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two = tmp_path / "two"
    write_dataset(two, per_class=3, seed=1, size=(48, 48), labels=("bear", "empty"))
    argv = ["train", "--data", str(two), "--out", str(tmp_path / "x"), "--init", str(base_run),
            *TINY]  # fmt: skip
    err = _refusal(argv, capsys)
    assert "differ from the --init run's (bear, empty, person): missing person" in err
    one = tmp_path / "one"
    write_dataset(one, per_class=3, seed=1, size=(48, 48), labels=("bear",))
    argv[2] = str(one)
    assert "only one class ('bear')" in _refusal(argv, capsys)


def test_split_by_refuses_data_without_the_column(
    camera_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(camera_data, data)
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "x"), "--split-by", "site",
            *TINY]  # fmt: skip
    err = _refusal(argv, capsys)
    assert "--split-by site needs" in err and "its columns are path, label, night, camera" in err
    (data / "manifest.csv").unlink()
    assert "it does not exist" in _refusal(argv, capsys)
