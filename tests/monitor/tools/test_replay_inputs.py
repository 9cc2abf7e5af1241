"""``bearwatch replay`` on bad input: files without decodable frames and invalid flags, each one named line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import write_clip

REPO = Path(__file__).resolve().parents[3]


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "replay", "--providers", "cpu", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["empty", "text", "truncated"])
def test_a_file_with_no_decodable_frames_exits_2(
    tmp_path: Path, color_model: Path, kind: str
) -> None:
    """Bug: replay exited 0 with "0 frames" on a truncated, empty or non-video file."""
    bad = tmp_path / f"{kind}.mp4"
    if kind == "text":
        bad.write_text("not a video\n")
    elif kind == "truncated":
        clip = write_clip(tmp_path / "whole.mp4", ["bear"] * 20)
        bad.write_bytes(clip.read_bytes()[:2000])
    else:
        bad.write_bytes(b"")
    proc = replay(str(bad), "--model", str(color_model))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"replay: {bad}: no decodable video frames" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--threshold", "3"], "replay: --threshold: Input should be less than or equal to 1"),
        (["--fps", "0"], "replay: --fps: Input should be greater than 0"),
        (["--min-hits", "9"], "replay: --min-hits (9) cannot exceed --window (5)"),
        (["--end-after-s", "-1"], "replay: --end-after-s: Input should be greater than 0"),
    ],
)
def test_invalid_flags_name_the_flag_in_one_line(
    tmp_path: Path, color_model: Path, flags: list[str], expected: str
) -> None:
    """Bug: invalid replay flags printed raw pydantic dumps without naming the flag."""
    clip = write_clip(tmp_path / "c.avi", ["empty"] * 5)
    proc = replay(str(clip), "--model", str(color_model), *flags)
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.startswith("replay:")]
    assert lines == [expected] or (len(lines) == 1 and lines[0].startswith(expected)), proc.stderr
    assert "validation error" not in proc.stderr and "pydantic" not in proc.stderr


def test_a_model_path_that_is_a_directory_is_called_a_directory(
    tmp_path: Path,
) -> None:
    """Bug: a model path that is a directory was reported as "does not exist"."""
    clip = write_clip(tmp_path / "c.avi", ["empty"] * 5)
    proc = replay(str(clip), "--model", str(tmp_path))
    assert proc.returncode == 2
    assert "is a directory" in proc.stderr and "does not exist" not in proc.stderr
