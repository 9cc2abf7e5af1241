"""``bearwatch ood-eval``: the metrics, and the command on two real image folders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.cli.main import main
from monitor.tools.ood_eval import auroc, fpr_at_tpr
from tests.conftest import scene_inputs
from tests.media import photo_frames


@pytest.mark.parametrize(
    ("inside", "outside", "expected"),
    [
        ([0.1, 0.2, 0.3], [0.4, 0.5], 1.0),  # every foreign image scores higher
        ([0.4, 0.5], [0.1, 0.2, 0.3], 0.0),
        ([0.5, 0.5], [0.5, 0.5], 0.5),  # ties count half
        ([0.1, 0.6], [0.5, 0.7], 0.75),
    ],
)
def test_auroc(inside: list[float], outside: list[float], expected: float) -> None:
    assert auroc(np.array(inside), np.array(outside)) == pytest.approx(expected)


def test_fpr_at_95_tpr_is_the_share_of_foreign_images_that_still_pass() -> None:
    inside = np.linspace(0.0, 1.0, 101)  # the cut at the 95th percentile is 0.95
    assert fpr_at_tpr(inside, np.array([0.5, 0.9, 0.96, 2.0])) == pytest.approx(0.5)


def test_ood_eval_on_two_folders(
    ood_color_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, away, report = tmp_path / "in", tmp_path / "out", tmp_path / "report"
    home.mkdir()
    away.mkdir()
    for i, rgb in enumerate(scene_inputs(60, seed0=90_000)):
        cv2.imwrite(str(home / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    for i, bgr in enumerate(photo_frames(40, every=1)):
        cv2.imwrite(str(away / f"{i}.jpg"), bgr)
    args = ["ood-eval", "--model", str(ood_color_model), "--in", str(home), "--out", str(away)]
    assert main([*args, "--report", str(report), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["scores"]) == {"msp", "energy", "feature"}
    assert result["scores"]["feature"]["auroc"] >= 0.95
    assert result["scores"]["feature"]["fpr_at_95_tpr"] <= 0.2
    assert result["score_cost"]["score_share_of_model"] > 0
    assert (report / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((report / "ood_eval.json").read_text())["scores"] == result["scores"]
    assert main([*args, "--report", str(report)]) == 0
    assert "feature" in capsys.readouterr().out


def test_ood_eval_names_an_empty_folder(
    ood_color_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "ood-eval",
        "--model",
        str(ood_color_model),
        "--in",
        str(tmp_path),
        "--out",
        str(tmp_path),
    ]
    assert main([*args, "--report", str(tmp_path / "r")]) == 2
    assert "no images" in capsys.readouterr().err
