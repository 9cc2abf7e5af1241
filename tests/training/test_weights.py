"""Pretrained weights offline: a local state dict works, a wrong one is named, no weights at all is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monitor.cli.main import main
from training.config import TrainConfig
from training.datablock import build_dataloaders
from training.dataset import scan_images
from training.learner import build_learner
from training.weights import WeightsError, read_weights_file


def test_a_valid_state_dict_is_loaded_into_the_body(
    shapes_dir: Path, resnet18_weights: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(data=shapes_dir, out=tmp_path / "run", size=32, weights=resnet18_weights)
    state = read_weights_file(resnet18_weights, "resnet18")
    learn = build_learner(
        build_dataloaders(cfg, scan_images(shapes_dir).files), cfg, state, tmp_path
    )
    body = learn.model[0]
    # fastai cuts resnet after layer4: body[0] is conv1, body[7] is layer4.
    assert torch.equal(body[0].weight, state["conv1.weight"])
    assert torch.equal(body[7][1].bn2.running_var, state["layer4.1.bn2.running_var"])
    # Pretrained bodies start frozen (fine_tune's first phase trains the head only).
    assert not body[0].weight.requires_grad


@pytest.mark.parametrize("kind", ["garbage", "wrong_arch", "not_a_state_dict", "missing"])
def test_unusable_weight_files_are_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "weights.pth"
    if kind == "garbage":
        path.write_bytes(b"definitely not a torch file")
    elif kind == "wrong_arch":
        import torchvision

        torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), path)
    elif kind == "not_a_state_dict":
        torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError) as info:
        read_weights_file(path, "resnet18")
    message = str(info.value)
    assert str(path) in message and "--no-pretrained" in message and "\n" not in message


def test_default_pretrained_without_cached_weights_is_one_clear_line(
    shapes_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An empty torch hub cache, and a proxy on a closed port so a networked CI box is offline too.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    out = tmp_path / "run"

    code = main(
        ["train", "--data", str(shapes_dir), "--out", str(out), "--size", "32", "--epochs", "1"]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert "--weights FILE" in err and "--no-pretrained" in err
    assert "Traceback" not in err
    assert not out.exists() and not out.with_name("run.incomplete").exists()


def test_wrong_weights_through_the_cli_exit_2(
    shapes_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_text("nope")
    code = main(
        ["train", "--data", str(shapes_dir), "--out", str(tmp_path / "run"), "--weights", str(bad)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot read weights file {bad}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
