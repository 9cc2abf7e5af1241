"""The run folder appears only when a run finished; failures stay under a name that says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.errors import TrainingError
from training.run_folder import FAILED_TXT, MARKER, RunFolder


def test_a_run_is_staged_then_renamed(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    staging = folder.start()
    assert staging == tmp_path / "run.incomplete" and (staging / MARKER).exists()
    assert not (tmp_path / "run").exists()
    (staging / "model.onnx").write_bytes(b"x")
    assert folder.finish() == (tmp_path / "run").resolve()
    assert (tmp_path / "run" / "model.onnx").exists() and not (tmp_path / "run" / MARKER).exists()
    assert not staging.exists()


def test_a_failed_run_keeps_its_staging_name_and_says_why(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.start()
    folder.fail("ParityError: it differs")
    assert not (tmp_path / "run").exists()
    assert (tmp_path / "run.incomplete" / FAILED_TXT).read_text() == "ParityError: it differs\n"


def test_leftovers_of_a_crashed_run_are_replaced(tmp_path: Path) -> None:
    RunFolder(tmp_path / "run").start()
    (tmp_path / "run.incomplete" / "stale.txt").write_text("old")
    staging = RunFolder(tmp_path / "run").start()
    assert list(p.name for p in staging.iterdir()) == [MARKER]


def test_a_finished_run_is_kept_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("previous run")
    with pytest.raises(
        TrainingError, match="already exists; choose another --out or pass --overwrite"
    ):
        RunFolder(tmp_path / "run").start()
    folder = RunFolder(tmp_path / "run", overwrite=True)
    folder.start()
    # The old run stays in place until the new one has finished.
    assert (tmp_path / "run" / "old.txt").exists()
    folder.finish()
    assert not (tmp_path / "run" / "old.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_foreign_folder_with_the_staging_name_is_not_deleted(tmp_path: Path) -> None:
    (tmp_path / "run.incomplete").mkdir()
    (tmp_path / "run.incomplete" / "precious.txt").write_text("not ours")
    with pytest.raises(TrainingError, match="is not a bearwatch run"):
        RunFolder(tmp_path / "run").start()
    assert (tmp_path / "run.incomplete" / "precious.txt").exists()
