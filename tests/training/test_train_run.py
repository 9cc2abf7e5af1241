"""One real training run through `bearwatch train`, inspected file by file; then quantize and a failing run."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from monitor.cli.main import main
from monitor.model.onnx import OnnxClassifier
from monitor.model.preprocess import file_to_input
from monitor.model.reference import STAT_NAMES
from training.config import TrainConfig
from training.datablock import build_datablock
from training.dataset import scan_images

pytestmark = pytest.mark.slow

EXPECTED_FILES = {
    "README.txt",
    "batch_preview.png",
    "cleaning.html",
    "config.yaml",
    "confusion_matrix.png",
    "data_scan.json",
    "fastai_learner.UNSAFE-pickle.pkl",
    "history.csv",
    "init.json",
    "int8.json",
    "metrics.json",
    "model.int8.onnx",
    "model.onnx",
    "parity.json",
    "split.json",
    "top_losses.csv",
    "top_losses.png",
    "train.log",
    "versions.json",
    "weights.pth",
}


@pytest.fixture(scope="module")
def data_dir(shapes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shapes plus one truncated JPEG and one stray text file, which the run must skip and count."""
    root = tmp_path_factory.mktemp("train-data") / "data"
    shutil.copytree(shapes_dir, root)
    good = (root / "bear" / "000.jpg").read_bytes()
    (root / "bear" / "broken.jpg").write_bytes(good[: len(good) // 3])
    (root / "person" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def run(data_dir: Path, resnet18_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train once (fine_tune from a local weights file, INT8 on) and share the run folder."""
    out = tmp_path_factory.mktemp("runs") / "shapes-run"
    argv = ["train", "--data", str(data_dir), "--out", str(out), "--weights", str(resnet18_weights)]
    argv += ["--size", "32", "--epochs", "2", "--batch-size", "16", "--seed", "3", "--camera-aug"]
    argv += [
        "--int8",
        "--calib-images",
        "30",
        "--bench-seconds",
        "0.3",
        "--model-version",
        "test-1",
    ]
    argv += ["--top-k", "4", "--clean-k", "20"]
    assert main(argv) == 0
    return out


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_the_run_folder_holds_everything_and_nothing_half_done(run: Path) -> None:
    names = {p.name for p in run.iterdir()}
    assert EXPECTED_FILES <= names
    assert not {".bearwatch-run", "FAILED.txt"} & names
    assert not [n for n in names if n.endswith((".part", ".data", ".raw"))]
    assert not run.with_name(run.name + ".incomplete").exists()


def test_metrics_are_consistent(run: Path) -> None:
    m = _json(run / "metrics.json")
    cm = np.array(m["confusion_matrix"]["matrix"])
    assert m["confusion_matrix"]["labels"] == ["bear", "empty", "person"]
    assert cm.sum() == m["n_valid"] == len(_json(run / "split.json")["valid"])
    assert m["accuracy"] == pytest.approx(1 - m["error_rate"])
    assert m["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    for i, label in enumerate(m["confusion_matrix"]["labels"]):
        row = m["per_class"][label]
        assert row["support"] == cm[i].sum() and row["predicted"] == cm[:, i].sum()
        assert 0.0 <= row["precision"] <= 1.0 and 0.0 <= row["recall"] <= 1.0
    assert sum(c["count"] for c in m["most_confused"]) == cm.sum() - np.trace(cm)
    assert m["valid_loss"] > 0 and m["n_train"] + m["n_valid"] == 72


def test_unreadable_and_stray_files_were_skipped_and_counted(run: Path) -> None:
    scan = _json(run / "data_scan.json")
    assert scan["n_skipped_corrupt"] == 1 and scan["skipped_corrupt"][0]["path"].endswith(
        "broken.jpg"
    )
    assert scan["n_skipped_not_image"] == 1 and scan["skipped_not_image"][0].endswith("notes.txt")
    metrics = _json(run / "metrics.json")
    assert (metrics["n_skipped_corrupt"], metrics["n_skipped_not_image"]) == (1, 1)


@pytest.mark.parametrize("name", ["confusion_matrix.png", "top_losses.png", "batch_preview.png"])
def test_plots_are_real_pngs(run: Path, name: str) -> None:
    with Image.open(run / name) as im:
        assert im.format == "PNG"
        assert min(im.size) > 100


def test_history_has_the_frozen_and_unfrozen_epochs(run: Path) -> None:
    with (run / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["phase"] for r in rows] == ["frozen", "unfrozen", "unfrozen"]
    assert {"epoch", "train_loss", "valid_loss", "error_rate", "accuracy"} <= set(rows[0])


def test_cleaning_aid_lists_the_worst_images(run: Path) -> None:
    with (run / "top_losses.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20
    losses = [float(r["loss"]) for r in rows]
    assert losses == sorted(losses, reverse=True)
    assert {r["split"] for r in rows} <= {"train", "valid"}
    assert all(Path(r["path"]).is_file() for r in rows)
    page = (run / "cleaning.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 20
    assert "mv " in page and "rm " in page and "train again" in page


def test_split_is_the_seeded_random_splitter(run: Path, data_dir: Path) -> None:
    files = list(scan_images(data_dir).files)
    cfg = TrainConfig(data=data_dir, out=run, seed=3)
    _, valid_idx = build_datablock(cfg).splitter(files)
    expected = sorted(str(files[i].relative_to(data_dir)) for i in valid_idx)
    assert _json(run / "split.json")["valid"] == expected


def test_exported_model_loads_with_its_metadata(run: Path) -> None:
    clf = OnnxClassifier(run / "model.onnx", warmup_batch=2)
    meta = clf.meta
    assert clf.labels == ("bear", "empty", "person")
    assert clf.input_hw == (32, 32) and meta.resize_method == "crop"
    assert meta.model_version == "test-1" and meta.arch == "resnet18" and meta.created_at
    assert meta.reference is not None
    assert set(STAT_NAMES) | {"confidence"} <= set(meta.reference)
    # Issue 10: the head's penultimate features and their statistics, calibrated on validation.
    assert clf.feature_stats is not None and clf.feature_stats.method == "knn"
    assert clf.feature_stats.dim == 512 and clf.feature_stats.tpr == 0.95
    probs, scores = clf.classify(np.zeros((2, 32, 32, 3), dtype=np.uint8))
    assert probs.shape == (2, 3) and scores is not None and scores.shape == (2,)
    metrics = _json(run / "metrics.json")
    assert meta.metrics["accuracy"] == pytest.approx(metrics["accuracy"])
    assert meta.metrics["n_valid"] == metrics["n_valid"]


def test_parity_holds(run: Path) -> None:
    parity = _json(run / "parity.json")
    assert parity["passed"] is True
    assert parity["n"] == _json(run / "metrics.json")["n_valid"]
    assert parity["top1_agreement"] == 1.0
    assert parity["max_abs_diff"] <= 0.02 and parity["tolerance"] == 0.02


def test_int8_model_agrees_with_fp32(run: Path, data_dir: Path) -> None:
    report = _json(run / "int8.json")
    assert report["fp32"]["images_per_s"] > 0 and report["int8"]["images_per_s"] > 0
    assert report["int8"]["size_mb"] < report["fp32"]["size_mb"] / 3
    fp32 = OnnxClassifier(run / "model.onnx")
    int8 = OnnxClassifier(run / "model.int8.onnx")
    assert int8.labels == fp32.labels and int8.meta.model_version == "test-1-int8"
    files = [data_dir / p for p in _json(run / "split.json")["valid"]]
    x = np.stack([file_to_input(f, fp32.input_hw, "crop") for f in files])
    agreement = float(np.mean(fp32.predict(x).argmax(1) == int8.predict(x).argmax(1)))
    assert agreement >= 0.85
    assert report["top1_agreement"] == pytest.approx(agreement)


def test_pickle_is_named_unsafe_and_explained(run: Path) -> None:
    readme = (run / "README.txt").read_text()
    assert "fastai_learner.UNSAFE-pickle.pkl" in readme and "NEVER copy it to an edge" in readme
    versions = _json(run / "versions.json")
    assert {"python", "torch", "fastai", "onnxruntime"} <= set(versions)


def test_quantize_command_uses_the_runs_split(run: Path, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "not-yet" / "q.int8.onnx"
    argv = [
        "quantize",
        "--model",
        str(run / "model.onnx"),
        "--data",
        str(data_dir),
        "--out",
        str(out),
    ]
    assert (
        main(
            argv + ["--calib-images", "20", "--bench-seconds", "0.2", "--quant-format", "qoperator"]
        )
        == 0
    )
    report = _json(out.parent / "int8.json")
    assert (
        report["format"] == "qoperator"
        and report["n_valid"] == _json(run / "metrics.json")["n_valid"]
    )
    assert OnnxClassifier(out).labels == ("bear", "empty", "person")


def test_existing_run_folder_is_not_overwritten(
    run: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--data", str(data_dir), "--out", str(run), "--no-pretrained"])
    assert code == 2
    assert f"run folder {run} already exists" in capsys.readouterr().err


def test_failed_parity_leaves_no_finished_run(
    shapes_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A zero tolerance cannot pass (float32 graphs differ in the last bits): the run must fail loudly."""
    out = tmp_path / "strict"
    argv = [
        "train",
        "--data",
        str(shapes_dir),
        "--out",
        str(out),
        "--no-pretrained",
        "--size",
        "32",
    ]
    code = main(argv + ["--epochs", "1", "--parity-tol", "0", "--parity-max", "5"])
    assert code == 1
    assert "parity check failed" in capsys.readouterr().err
    assert not out.exists()
    staging = tmp_path / "strict.incomplete"
    parity = _json(staging / "parity.json")
    assert parity["passed"] is False and parity["n"] == 5 and parity["n_over_tolerance"] > 0
    assert "ParityError" in (staging / "FAILED.txt").read_text()
