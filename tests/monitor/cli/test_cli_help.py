"""The command line explains itself: --version, every option with help and its default, clear refusals."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from monitor.cli.main import build_parser
from monitor.cli.printouts import format_bench
from monitor.store import ReviewStore
from monitor.tools.bench import FASTAI_MISSING, fastai_rate

ROOT = Path(__file__).resolve().parents[3]


def bearwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)  # fmt: skip


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every parser, sub-commands and their actions included, with its command line."""
    parser, _ = build_parser()
    out, todo = [], [("bearwatch", parser)]
    while todo:
        name, p = todo.pop()
        out.append((name, p))
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {sub}", child) for sub, child in action.choices.items()]
    return out


def test_version() -> None:
    proc = bearwatch("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"bearwatch {version('bearwatch')}"


@pytest.mark.parametrize(
    ("name", "parser"), _parsers(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_option_has_help_that_shows_its_default(
    name: str, parser: argparse.ArgumentParser
) -> None:
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(
            action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction
        ):
            continue
        flag = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"{name} {flag}: no help text"
        default = action.default
        if default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
            assert shown in text and "default" in text, f"{name} {flag}: default {shown} not shown"


def test_help_of_replay_names_defaults() -> None:
    proc = bearwatch("replay", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "alert score that starts an event (default: 0.7)" in text
    assert "(default: None)" not in text


@pytest.fixture
def store_with_gate(tmp_path: Path) -> Path:
    path = tmp_path / "bw.db"
    store = ReviewStore(path)
    store.set_camera_mode("gate", "review", "ann", "first week")
    store.close()
    return path


def test_mode_set_refuses_an_unknown_camera_unless_new(store_with_gate: Path) -> None:
    """Regression: `mode set` without --config accepted a misspelled camera, and the daemon applied it."""
    proc = bearwatch("mode", "set", "--store", str(store_with_gate), "gaet", "active",
                     "--by", "ann", "--reason", "typo")  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "mode: camera gaet is unknown to this store; did you mean gate? pass --new to add it"
    )
    store = ReviewStore(store_with_gate)
    assert set(store.camera_modes()) == {"gate"}
    store.close()
    proc = bearwatch("mode", "set", "--store", str(store_with_gate), "shed", "shadow",
                     "--by", "ann", "--reason", "new camera", "--new")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = bearwatch("mode", "set", "--store", str(store_with_gate), "gate", "active",
                     "--by", "ann", "--reason", "two clean weeks")  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_check_config_lists_unset_variables_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CAM_PASSWORD"}
    proc = bearwatch("check-config", "deploy/example.yaml", env=env)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "deploy/example.yaml: environment variables not set: CAM_PASSWORD (used in"
        " cameras[0].source); export them or put NAME=value lines in /etc/bearwatch/env"
    ]


def test_the_readme_check_config_example_passes_with_the_variables_it_documents() -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"^((?:[A-Z_]+=\S+ )+)\.venv/bin/bearwatch check-config (\S+)$", readme, re.M)
    assert m, "the README shows check-config with the variables it needs"
    variables = dict(pair.split("=", 1) for pair in m.group(1).split())
    env = {k: v for k, v in os.environ.items() if k not in variables} | variables
    proc = bearwatch("check-config", m.group(2), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{m.group(2)}: OK")


def test_bench_says_why_a_figure_is_missing() -> None:
    value, why = fastai_rate("", 128, 3, 1)
    assert value is None and why is not None
    assert FASTAI_MISSING.startswith("fastai/torch not installed")
    result = {
        "model_version": "m1", "input_hw": [64, 64], "batch": 8, "threads": 1,
        "raw_ort_img_s": 100.0, "pipeline_img_s": 50.0, "pipeline_frames": 80, "ratio": 0.5,
        "fastai_img_s": None, "pipeline_vs_fastai": None,
        "missing": {"fastai_img_s": FASTAI_MISSING, "pipeline_vs_fastai": FASTAI_MISSING},
        "overload": {"offered": 10, "offered_rate": 5.0, "processed": 8, "dropped": {"stale": 2},
                     "accounted": True, "p50_ms": 1.0, "p99_ms": 2.0, "budget_ms": 500.0},
        "motion_gate": {"cpu_ratio": 0.2, "with_gate": {"classified": 3, "offered": 60}},
    }  # fmt: skip
    text = format_bench(result)
    assert re.search(r"^fastai learn.predict +— \(fastai/torch not installed", text, re.M)
    assert "None" not in text
