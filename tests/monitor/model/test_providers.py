"""Execution providers: ``openvino`` and ``auto`` on whatever this environment has installed, and an install that cannot collide."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from monitor.model.onnx import OnnxClassifier, provider_candidates, provider_chain

ROOT = Path(__file__).resolve().parents[3]
HAS_OPENVINO = "OpenVINOExecutionProvider" in ort.get_available_providers()


def test_openvino_falls_back_to_the_cpu_with_one_warning_when_absent(
    color_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The default install has no OpenVINO: asking for it must still give a working classifier."""
    clf = OnnxClassifier(color_model, "openvino", threads=1)
    # Provider warnings only (the colour model also warns that it has no feature statistics).
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "Provider" in r.getMessage()
    ]
    if HAS_OPENVINO:  # an environment built from deploy/requirements-openvino.txt
        assert clf.providers[0] == "OpenVINOExecutionProvider" and not warnings
    else:
        assert clf.providers == ["CPUExecutionProvider"]
        assert len(warnings) == 1 and "onnxruntime-openvino" in warnings[0].getMessage()
    assert clf.predict(np.zeros((2, *clf.input_hw, 3), np.uint8)).shape == (2, 3)


def test_auto_tries_every_installed_provider_and_keeps_one(color_model: Path) -> None:
    candidates = provider_candidates("auto")
    assert candidates[-1] == "cpu" and ("openvino" in candidates) == HAS_OPENVINO
    clf = OnnxClassifier(color_model, "auto", threads=1)
    assert clf.providers[0] in ort.get_available_providers()


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("cpu", "CPUExecutionProvider"),
        ("cuda", "CUDAExecutionProvider"),
        ("openvino", "OpenVINOExecutionProvider"),
    ],
)
def test_every_provider_chain_ends_on_the_cpu(name: str, first: str) -> None:
    chain = provider_chain(name, threads=1)
    head = chain[0] if isinstance(chain[0], str) else chain[0][0]
    assert head == first and chain[-1] == "CPUExecutionProvider"


def test_openvino_requirements_are_pyprojects_with_only_the_runtime_swapped() -> None:
    """onnxruntime and onnxruntime-openvino both install the ``onnxruntime`` module: the
    OpenVINO requirements must name exactly one of them, and otherwise match pyproject."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (ROOT / "deploy" / "requirements-openvino.txt").read_text().splitlines()
    reqs = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not any(
        r.startswith("onnxruntime") and not r.startswith("onnxruntime-openvino") for r in reqs
    )
    swapped = ["onnxruntime-openvino>=1.20" if d.startswith("onnxruntime") else d for d in deps]
    assert reqs == swapped
