"""Package a trained learner: the model's metadata and drift reference, ``model.onnx``, and the pickle.

Only ``model.onnx`` goes to the edge. The fastai pickle is kept for
re-exporting and further training on the training machine, under a name that
says why it must not travel: unpickling runs arbitrary code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from fastai.vision.all import Learner, imagenet_stats

from monitor.model.image_stats import reference_from_images
from monitor.model.metadata import ModelMetadata
from monitor.model.preprocess import file_to_input
from monitor.model.reference import reference_confidence
from training.export import export_onnx

logger = logging.getLogger(__name__)

MODEL_ONNX = "model.onnx"
LEARNER_PICKLE = "fastai_learner.UNSAFE-pickle.pkl"
RESIZE_METHOD = "crop"  # what datablock.item_transforms uses on validation
_META_METRICS = ("accuracy", "error_rate", "valid_loss", "n_valid", "n_train", "epochs")


def default_model_version(run_name: str, now: datetime | None = None) -> str:
    """``<run name>-<UTC timestamp>``: unique per run and sortable."""
    now = now or datetime.now(UTC)
    return f"{run_name}-{now:%Y%m%dT%H%M%SZ}"


def reference_stats(
    train_files: Sequence[Path], size: int, valid_probs: np.ndarray, max_images: int, seed: int
) -> dict[str, Any]:
    """The drift monitor's reference: image statistics of training images and validation confidence.

    The images go through ``monitor.model.preprocess`` exactly as camera frames will,
    so the live statistics are compared with numbers measured the same way.
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_files), size=min(max_images, len(train_files)), replace=False)
    images = (file_to_input(train_files[i], (size, size), RESIZE_METHOD) for i in sorted(pick))
    reference: dict[str, Any] = dict(reference_from_images(images))
    reference["confidence"] = reference_confidence(valid_probs)
    logger.info("reference statistics from %d training images", len(pick))
    return reference


def build_metadata(
    learn: Learner,
    arch: str,
    size: int,
    model_version: str,
    metrics: Mapping[str, Any],
    reference: Mapping[str, Any],
) -> ModelMetadata:
    """The ``ModelMetadata`` for this learner; labels in ``learn.dls.vocab`` (output) order."""
    mean, std = imagenet_stats  # the Normalize in datablock.batch_transforms
    return ModelMetadata(
        labels=tuple(str(v) for v in learn.dls.vocab),
        input_hw=(size, size),
        resize_method=RESIZE_METHOD,
        model_version=model_version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        arch=arch,
        mean=tuple(mean),  # type: ignore[arg-type]
        std=tuple(std),  # type: ignore[arg-type]
        metrics={k: metrics[k] for k in _META_METRICS if k in metrics},
        reference=reference,
    )


@contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Silence chatty libraries' INFO logs (the exporter's graph passes) for a block."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_artifacts(learn: Learner, meta: ModelMetadata, run_dir: Path) -> Path:
    """Write ``model.onnx`` (through ``training.export``) and the fastai pickle; returns the ONNX path."""
    with quiet_loggers("onnxscript", "onnx_ir"):
        onnx_path = export_onnx(learn.model, meta, run_dir / MODEL_ONNX)
    logger.info("wrote %s (%.1f MB)", onnx_path, onnx_path.stat().st_size / 1e6)
    learn.export(run_dir / LEARNER_PICKLE)
    return onnx_path


README_TXT = """bearwatch training run {name}

model.onnx                     the model to deploy (uint8 RGB NHWC in, probabilities out,
                               labels/input size/reference statistics in its metadata)
model.int8.onnx, int8.json     INT8 model and its FP32-vs-INT8 comparison (with --int8)
parity.json                    ONNX Runtime + monitor preprocessing vs learn.predict
metrics.json                   validation accuracy, error rate, per-class P/R/F1, confusion
confusion_matrix.png, top_losses.png, batch_preview.png   interpretation plots
top_losses.csv, cleaning.html  the images to check for wrong labels or junk, with commands
history.csv, train.log         per-epoch metrics and the run's log
config.yaml, versions.json     the settings and software versions that produced this run
data_scan.json, split.json     images found/skipped, and which went to train / valid
weights.pth, init.json         the network's state dict (tensors only) and its arch, size and
                               labels: what `bearwatch train --init THIS_RUN` fine-tunes from

{pickle}
    The fastai Learner, pickled. Loading a pickle runs arbitrary code, so it is for
    this training machine only (re-export, more training). NEVER copy it to an edge
    box or load one you did not make. The edge runs model.onnx, which is safe to load.
"""


def write_readme(run_dir: Path, name: str) -> None:
    """Explain the run folder's files, and warn about the pickle."""
    (run_dir / "README.txt").write_text(
        README_TXT.format(name=name, pickle=LEARNER_PICKLE), encoding="utf-8"
    )
