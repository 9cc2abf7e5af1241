"""Issue 10: the export's features output and statistics, the graph surgery that adds them, and bad artifacts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper

from monitor.errors import ModelError
from monitor.model.features import fit_knn
from monitor.model.metadata import ModelMetadata
from monitor.model.onnx import OnnxClassifier
from monitor.model.preprocess import frame_to_input
from monitor.tools.ood_eval import auroc
from tests.conftest import (
    COLOR_INPUT_HW,
    COLOR_LABELS,
    _build_texture_color_net,
    scene_inputs,
)
from tests.media import photo_frames
from training.export import export_onnx
from training.ood import (
    FEATURE_STATS_KEY,
    SurgeryError,
    calibrate_model,
    embed_stats,
    find_penultimate,
    save_atomic,
    set_feature_stats,
)

META = ModelMetadata(labels=COLOR_LABELS, input_hw=COLOR_INPUT_HW, model_version="tc-1")


def _photos(n: int) -> np.ndarray:
    return np.stack(
        [
            frame_to_input(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), COLOR_INPUT_HW, "crop")
            for f in photo_frames(n, every=1)
        ]
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(_build_texture_color_net(), META, tmp_path_factory.mktemp("x") / "m.onnx")


def test_the_export_has_probs_features_and_logits(exported: Path) -> None:
    model = onnx.load(exported)
    assert [o.name for o in model.graph.output] == ["probs", "features", "logits"]
    clf = OnnxClassifier(exported)
    batch = np.stack(scene_inputs(5))
    probs, features, logits = clf.session.run(None, {"image": batch})
    assert features.shape == (5, 12) and logits.shape == probs.shape == (5, 3)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, probs, atol=1e-5)
    assert find_penultimate(model)[2] == 12


def test_feature_statistics_round_trip_through_the_export(tmp_path: Path) -> None:
    stats = fit_knn(np.random.default_rng(0).normal(size=(50, 12)).astype(np.float32))
    meta = ModelMetadata(labels=COLOR_LABELS, input_hw=COLOR_INPUT_HW, feature_stats=stats)
    path = export_onnx(_build_texture_color_net(), meta, tmp_path / "m.onnx")
    clf = OnnxClassifier(path)
    assert clf.feature_stats is not None
    assert json.dumps(clf.feature_stats.to_json(), sort_keys=True) == json.dumps(
        stats.to_json(), sort_keys=True
    )


def test_embedded_statistics_pass_95_percent_and_separate_photographs(
    ood_color_model: Path,
) -> None:
    clf = OnnxClassifier(ood_color_model)
    assert clf.feature_stats is not None and clf.feature_stats.tpr == 0.95
    _, valid = clf.classify(np.stack(scene_inputs(200, seed0=10_000)))  # the calibration images
    assert valid is not None and np.mean(valid <= 1.0) == pytest.approx(0.95, abs=0.01)
    _, held_out = clf.classify(np.stack(scene_inputs(300, seed0=50_000)))
    _, foreign = clf.classify(_photos(120))
    assert held_out is not None and foreign is not None
    assert np.mean(held_out <= 1.0) >= 0.9
    assert np.mean(foreign > 1.0) >= 0.95
    assert auroc(held_out, foreign) >= 0.95


def _strip_ood_outputs(src: Path, dst: Path) -> Path:
    """An artifact as exported before issue 10: the probs output only, no statistics."""
    model = onnx.load(src)
    keep = [o for o in model.graph.output if o.name == "probs"]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    nodes = [n for n in model.graph.node if not n.name.startswith("bearwatch_")]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    set_feature_stats(model, None)
    return save_atomic(model, dst)


def test_ood_calibrate_upgrades_an_old_model_without_torch(exported: Path, tmp_path: Path) -> None:
    old = _strip_ood_outputs(exported, tmp_path / "old.onnx")
    images = tmp_path / "in"
    images.mkdir()
    for i, rgb in enumerate(scene_inputs(60)):
        cv2.imwrite(str(images / f"s{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    stats = calibrate_model(old, images, tmp_path / "new.onnx")
    assert stats.dim == 12
    clf = OnnxClassifier(tmp_path / "new.onnx")
    assert clf.feature_stats is not None
    _, scores = clf.classify(_photos(20))
    assert scores is not None and np.all(scores > 1.0)


def test_a_graph_without_a_classifier_layer_is_named(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["probs"])],
        "bare",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("probs", onnx.TensorProto.FLOAT, ["n", 3])],
    )
    with pytest.raises(SurgeryError, match="not a Gemm or MatMul classifier layer"):
        find_penultimate(helper.make_model(graph))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("make", "why"),
    [
        ("features_without_stats", "has a features output but no bearwatch.feature_stats"),
        ("stats_without_features", "has bearwatch.feature_stats but no features output"),
        ("neither", "was exported without features and feature statistics"),
    ],
)
def test_a_half_equipped_model_loads_with_one_warning(
    make: str, why: str, ood_color_model: Path, exported: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    path = tmp_path / "m.onnx"
    if make == "features_without_stats":
        path = exported
    elif make == "neither":
        _strip_ood_outputs(exported, path)
    else:
        model = onnx.load(ood_color_model)
        keep = [o for o in model.graph.output if o.name != "features"]
        del model.graph.output[:]
        model.graph.output.extend(keep)
        save_atomic(model, path)
    with caplog.at_level(logging.WARNING):
        clf = OnnxClassifier(path)
        probs, scores = clf.classify(np.stack(scene_inputs(4)))
    assert scores is None and probs.shape == (4, 3)
    assert len(_warnings(caplog)) == 1 and why in _warnings(caplog)[0]


@pytest.mark.parametrize("declared", ["static", "symbolic"])
def test_statistics_of_the_wrong_width_refuse_the_start(
    declared: str, ood_color_model: Path, tmp_path: Path
) -> None:
    """Also when the graph declares the width symbolically: the check runs the graph once."""
    model = onnx.load(ood_color_model)
    if declared == "symbolic":
        out = next(o for o in model.graph.output if o.name == "features")
        out.type.tensor_type.shape.dim[1].dim_param = "d"
    set_feature_stats(model, fit_knn(np.random.default_rng(0).normal(size=(40, 5))))
    save_atomic(model, tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="features output has 12 values but .* is for 5"):
        OnnxClassifier(tmp_path / "m.onnx")


def test_malformed_statistics_name_the_key(ood_color_model: Path, tmp_path: Path) -> None:
    model = onnx.load(ood_color_model)
    entry = next(p for p in model.metadata_props if p.key == FEATURE_STATS_KEY)
    entry.value = json.dumps({"method": "knn", "dim": 12})
    save_atomic(model, tmp_path / "m.onnx")
    with pytest.raises(
        ModelError, match="bearwatch.feature_stats: feature statistics lack 'threshold'"
    ):
        OnnxClassifier(tmp_path / "m.onnx")


def test_nan_features_are_scored_unknown_with_one_warning(
    ood_color_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Features divided by zero: NaN or inf, while the probabilities stay fine."""
    model = onnx.load(ood_color_model)
    ident = next(n for n in model.graph.node if n.name == "bearwatch_features")
    model.graph.initializer.append(helper.make_tensor("zero", onnx.TensorProto.FLOAT, [], [0.0]))
    model.graph.node.append(helper.make_node("Div", [ident.input[0], "zero"], ["broken"]))
    ident.input[0] = "broken"
    onnx.save(model, tmp_path / "m.onnx")
    with caplog.at_level(logging.WARNING):
        clf = OnnxClassifier(tmp_path / "m.onnx")
        for _ in range(3):
            probs, scores = clf.classify(np.stack(scene_inputs(4)))
    assert scores is not None and not np.isfinite(scores).any()
    assert np.isfinite(probs).all()
    assert sum("non-finite features" in m for m in _warnings(caplog)) == 1


def test_embed_stats_rewrites_the_file_in_place(exported: Path, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(exported.read_bytes())
    stats = embed_stats(path, scene_inputs(40), scene_inputs(20, seed0=900))
    assert OnnxClassifier(path).feature_stats is not None and stats.dim == 12
