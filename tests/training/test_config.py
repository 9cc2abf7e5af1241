"""Training settings: defaults < YAML file < flags, strict keys, ranges, and the CLI without torch imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training.config import ConfigError, make_config, read_config_file


def test_flags_override_the_file_which_overrides_defaults(tmp_path: Path) -> None:
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text("data: /data/x\nout: /runs/a\nepochs: 9\nsize: 96\ncamera_aug: true\n")
    cfg = make_config(read_config_file(cfg_file), {"size": 64, "epochs": None, "pretrained": False})
    assert cfg.data == Path("/data/x") and cfg.out == Path("/runs/a")
    assert (cfg.epochs, cfg.size, cfg.camera_aug, cfg.pretrained) == (9, 64, True, False)
    assert cfg.arch == "resnet18" and cfg.valid_pct == 0.2


def test_unknown_keys_in_the_file_are_named(tmp_path: Path) -> None:
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text("data: /d\nepochz: 3\n")
    with pytest.raises(ConfigError, match="unknown setting\\(s\\) epochz"):
        read_config_file(cfg_file)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"valid_pct": 0.0}, "valid_pct must be between"),
        ({"size": 4}, "size must be between"),
        ({"arch": "vgg99"}, "arch 'vgg99' is not supported"),
        ({"quant_format": "fp8"}, "quant_format 'fp8' is not supported"),
        ({"weights": "w.pth", "pretrained": False}, "contradict each other"),
        ({"data": None}, "--data is required"),
    ],
)
def test_invalid_settings_are_refused(override: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"data": "/d", "out": "/o", **override}
    with pytest.raises(ConfigError, match=message):
        make_config({}, values)


def test_registering_the_commands_does_not_import_torch() -> None:
    """The edge box runs `bearwatch --help` through this entry point without torch installed."""
    code = (
        "import argparse, sys; from training.cli import register; "
        "p = argparse.ArgumentParser(); register(p.add_subparsers()); "
        "print(sorted(m for m in ('torch', 'fastai', 'onnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_help_lists_the_issue_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """`bearwatch train --help` works through the bearwatch.commands entry point."""
    from monitor.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    flags = ["--data", "--out", "--config", "--arch", "--epochs", "--size", "--valid-pct", "--seed"]
    flags += ["--weights", "--no-pretrained", "--int8", "--camera-aug", "--model-version"]
    for flag in flags:
        assert flag in help_text


@pytest.mark.parametrize(
    "argv",
    [["train", "--data", "d", "--out", "o"], ["quantize", "--model", "m.onnx", "--data", "d"]],
)
def test_without_the_training_extra_the_commands_say_how_to_install_it(argv: list[str]) -> None:
    """An edge box has no torch: the command prints one line and exits 2 instead of a traceback."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['fastai'] = None; "
        f"from monitor.cli.main import main; sys.exit(main({argv!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == f"bearwatch {argv[0]} needs the training extra: pip install 'bearwatch[train]'"
    )
