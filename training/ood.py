"""Give an exported classifier its out-of-domain outputs and statistics — no torch needed.

**Graph surgery.** Every bearwatch graph ends ``… → classifier layer → Softmax
→ probs``. The tensor feeding that final classifier layer is the pooled
penultimate feature vector, and the Softmax's input is the logits. They are
found by walking back from the ``probs`` output: through ``Identity``/``Cast``
nodes to the ``Softmax``; its input is ``logits``; the node producing the logits
is either a ``Gemm`` (input 0 is the features) or an ``Add`` of a bias to a
``MatMul`` (the MatMul's non-constant input is the features). Both tensors
are then exposed as extra graph outputs ``features`` ``[N, D]`` and ``logits``
``[N, C]`` through ``Identity`` nodes, so the original node names are left
alone. The export calls this on every new model; ``bearwatch ood-calibrate``
calls it on an old one.

**Statistics.** The features of in-domain images, run through the runtime's
own preprocessing and ONNX Runtime, become a kNN bank (or class means and a
shared precision); the threshold is calibrated on held-out in-domain images so
about 95 % of them pass (``monitor.model.features``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from monitor.model.features import DEFAULT_TPR, FeatureStats, calibrate, fit_knn, fit_mahalanobis
from monitor.model.metadata import PREFIX, ModelMetadata
from monitor.model.preprocess import file_to_input

logger = logging.getLogger(__name__)

FEATURES, LOGITS, PROBS = "features", "logits", "probs"
FEATURE_STATS_KEY = PREFIX + "feature_stats"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_PASS_THROUGH = ("Identity", "Cast")
MAX_BANK = 2000  # training images in the kNN bank: ~2 MB of float16 at D = 512


class SurgeryError(ValueError):
    """The graph does not end in a recognisable classifier layer and Softmax."""


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def find_penultimate(model: onnx.ModelProto) -> tuple[str, str, int]:
    """Locate (features tensor, logits tensor, feature dimension) by walking back from ``probs``.

    Raises:
        SurgeryError: when the path from ``probs`` is not Softmax ← Gemm or Softmax ← Add ← MatMul.
    """
    graph = model.graph
    if not graph.output:
        raise SurgeryError("the graph has no outputs")
    producers = _producers(graph)
    inits = {t.name: t for t in graph.initializer}
    name = graph.output[0].name
    node = producers.get(name)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Softmax":
        raise SurgeryError(f"output {name!r} is not produced by a Softmax")
    logits = node.input[0]
    head = producers.get(logits)
    if head is not None and head.op_type == "Gemm":
        features, weight = head.input[0], inits.get(head.input[1])
        trans_b = next((a.i for a in head.attribute if a.name == "transB"), 0)
        dim_axis = 1 if trans_b else 0
    elif head is not None and head.op_type == "Add":
        matmul = next(
            (
                producers[i]
                for i in head.input
                if i in producers and producers[i].op_type == "MatMul"
            ),
            None,
        )
        if matmul is None:
            raise SurgeryError("the logits come from an Add that is not bias + MatMul")
        features = next(i for i in matmul.input if i not in inits)
        weight = next((inits[i] for i in matmul.input if i in inits), None)
        dim_axis = 0
    else:
        kind = "a graph input" if head is None else head.op_type
        raise SurgeryError(
            f"the Softmax's input comes from {kind}, not a Gemm or MatMul classifier layer"
        )
    if weight is None:
        raise SurgeryError("the classifier layer's weight is not a constant; cannot tell D")
    return features, logits, int(weight.dims[dim_axis])


def add_ood_outputs(model: onnx.ModelProto) -> int:
    """Expose ``features`` and ``logits`` as graph outputs (in place); returns D.

    A model that already has both outputs is left as it is.
    """
    features, logits, dim = find_penultimate(model)
    if {FEATURES, LOGITS} <= {o.name for o in model.graph.output}:
        return dim
    probs_dims = model.graph.output[0].type.tensor_type.shape.dim
    batch: str | int = (
        (probs_dims[0].dim_param or probs_dims[0].dim_value) if probs_dims else "batch"
    )
    n_classes = probs_dims[1].dim_value if len(probs_dims) > 1 else None
    for src, dst, width in ((features, FEATURES, dim), (logits, LOGITS, n_classes)):
        model.graph.node.append(helper.make_node("Identity", [src], [dst], name=f"bearwatch_{dst}"))
        model.graph.output.append(
            helper.make_tensor_value_info(dst, onnx.TensorProto.FLOAT, [batch, width])
        )
    return dim


def set_feature_stats(model: onnx.ModelProto, stats: FeatureStats | None) -> None:
    """Write (or remove, for None) the ``bearwatch.feature_stats`` metadata entry in place."""
    import json

    keep = [p for p in model.metadata_props if p.key != FEATURE_STATS_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    if stats is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = FEATURE_STATS_KEY, json.dumps(stats.to_json(), sort_keys=True)


def save_atomic(model: onnx.ModelProto, out_path: Path) -> Path:
    """Check and write ``model`` beside ``out_path``, then rename it into place."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx.part", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        onnx.save(model, os.fspath(tmp))
        tmp.chmod(0o644)
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


@dataclass(frozen=True, slots=True)
class Outputs:
    """What a model with OOD outputs says about a set of images."""

    probs: np.ndarray
    features: np.ndarray
    logits: np.ndarray


def run_outputs(
    model: onnx.ModelProto | Path, images: Sequence[np.ndarray], batch: int = 32
) -> Outputs:
    """Probabilities, features and logits of preprocessed ``uint8`` HxWx3 images (ONNX Runtime, CPU)."""
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else os.fspath(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    in_name = session.get_inputs()[0].name
    parts: list[list[np.ndarray]] = [[], [], []]
    for i in range(0, len(images), batch):
        chunk = np.stack(images[i : i + batch])
        for part, out in zip(
            parts, session.run([PROBS, FEATURES, LOGITS], {in_name: chunk}), strict=True
        ):
            part.append(np.asarray(out, dtype=np.float32))
    probs, features, logits = (np.concatenate(p) for p in parts)
    return Outputs(probs, features, logits)


def fit_stats(
    train: Outputs,
    valid: Outputs,
    method: str = "knn",
    tpr: float = DEFAULT_TPR,
    k: int = 1,
    max_bank: int = MAX_BANK,
) -> FeatureStats:
    """Statistics from training outputs, threshold calibrated on validation outputs.

    Mahalanobis uses the model's own predictions as class labels, so the same
    code serves a labelled training run and an unlabelled image folder.
    """
    if method == "knn":
        stats = fit_knn(train.features, k=k, max_bank=max_bank)
    elif method == "mahalanobis":
        stats = fit_mahalanobis(train.features, train.probs.argmax(axis=1))
    else:
        raise ValueError(f"method must be knn or mahalanobis, got {method!r}")
    return calibrate(stats, valid.features, tpr)


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def split_files(
    files: Sequence[Path], valid_share: float = 0.3, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """A seeded split of one in-domain folder into (bank, calibration) files."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    n_valid = max(1, int(round(valid_share * len(files))))
    valid = sorted(files[i] for i in order[:n_valid])
    train = sorted(files[i] for i in order[n_valid:])
    return train, valid


def embed_stats(
    onnx_path: Path,
    train_images: Sequence[np.ndarray],
    valid_images: Sequence[np.ndarray],
    method: str = "knn",
    tpr: float = DEFAULT_TPR,
) -> FeatureStats:
    """Compute feature statistics of an exported model on preprocessed images and embed them in the file.

    The training run calls this right after the export with its own training
    and validation images, so the statistics come from the exact graph and
    preprocessing the edge runs.
    """
    model = onnx.load(os.fspath(onnx_path))
    add_ood_outputs(model)
    stats = fit_stats(
        run_outputs(model, train_images), run_outputs(model, valid_images), method, tpr
    )
    set_feature_stats(model, stats)
    save_atomic(model, onnx_path)
    logger.info(
        "feature statistics (%s, D=%d) from %d training images; threshold %.4f passes %.0f %% "
        "of %d validation images",
        method,
        stats.dim,
        len(train_images),
        stats.threshold,
        100 * tpr,
        len(valid_images),
    )
    return stats


def calibrate_model(
    model_in: Path,
    images: Path,
    out: Path,
    method: str = "knn",
    tpr: float = DEFAULT_TPR,
    valid_images: Path | None = None,
) -> FeatureStats:
    """``bearwatch ood-calibrate``: add the outputs to an existing model and embed statistics.

    Args:
        model_in: an exported bearwatch model (with or without the OOD outputs).
        images: in-domain images: the bank (and, without ``valid_images``, a
            seeded 30 % of them calibrate the threshold instead).
        out: where the upgraded model goes (may equal ``model_in``).
        method: ``knn`` or ``mahalanobis``.
        tpr: the share of in-domain calibration images that must pass.
        valid_images: held-out in-domain images for the threshold.

    Raises:
        SurgeryError: when the graph's classifier layer cannot be found.
        ValueError: when a folder holds no images.
    """
    model = onnx.load(os.fspath(model_in))
    props = {p.key: p.value for p in model.metadata_props if p.key != FEATURE_STATS_KEY}
    meta = ModelMetadata.from_props(props, str(model_in))
    dim = add_ood_outputs(model)
    files = image_files(images)
    if valid_images is None:
        train_files, valid_files = split_files(files)
    else:
        train_files, valid_files = files, image_files(valid_images)
    if not train_files or not valid_files:
        raise ValueError(f"{images}: need in-domain images for both the bank and the threshold")
    load = [file_to_input(p, meta.input_hw, meta.resize_method) for p in train_files]
    held = [file_to_input(p, meta.input_hw, meta.resize_method) for p in valid_files]
    stats = fit_stats(run_outputs(model, load), run_outputs(model, held), method, tpr)
    logger.info(
        "feature statistics (%s, D=%d) from %d images; threshold %.4f passes %.0f %% of %d held-out images",
        method,
        dim,
        len(load),
        stats.threshold,
        100 * tpr,
        len(held),
    )
    set_feature_stats(model, stats)
    save_atomic(model, out)
    return stats
