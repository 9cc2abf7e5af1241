"""The ONNX model contract as the runtime sees it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.errors import ModelError
from monitor.model.onnx import OnnxClassifier, select_providers
from monitor.model.preprocess import frame_to_input
from tests.media import scene


def test_color_model_loads_with_metadata(color_model: Path) -> None:
    clf = OnnxClassifier(color_model, warmup_batch=4)
    assert clf.labels == ("bear", "empty", "person")
    assert clf.input_hw == (64, 64)
    assert clf.meta.model_version == "color-test-1"
    assert clf.meta.reference is not None and "brightness" in clf.meta.reference


@pytest.mark.parametrize("kind", ["bear", "empty", "person"])
def test_color_model_recognises_scenes(color_model: Path, kind: str) -> None:
    clf = OnnxClassifier(color_model)
    rgb = cv2.cvtColor(scene(kind), cv2.COLOR_BGR2RGB)
    probs = clf.predict(frame_to_input(rgb, clf.input_hw, "crop")[None])
    assert probs.shape == (1, 3)
    assert np.isclose(probs.sum(), 1.0, atol=1e-5)
    assert clf.labels[int(probs.argmax())] == kind
    assert probs.max() > 0.8


def test_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        OnnxClassifier(tmp_path / "nope.onnx")


def test_corrupt_model_is_refused(tmp_path: Path, color_model: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(color_model.read_bytes()[:200])
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxClassifier(bad)


def test_cuda_request_falls_back_to_cpu(caplog: pytest.LogCaptureFixture) -> None:
    import onnxruntime as ort

    providers = select_providers("cuda")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert providers[0] == "CUDAExecutionProvider"
    else:
        assert providers == ["CPUExecutionProvider"]
        assert "CUDA was requested" in caplog.text
