"""The export's parity check: the edge's path (monitor preprocessing + ONNX Runtime) vs ``learn.predict``.

Everything that can silently differ between training and the edge shows up
here: the resize geometry and filter, the normalisation the graph bakes in, the
label order, the exporter itself. The check passes only when top-1 agrees on
every image and no probability differs by more than the tolerance.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
from fastai.vision.all import Learner
from tqdm import tqdm

from monitor.capture.picture import AvPicture
from monitor.model.onnx import OnnxClassifier
from monitor.model.preprocess import file_to_input, load_image
from training.errors import TrainingError

logger = logging.getLogger(__name__)

PARITY_JSON = "parity.json"
_LISTED = 50  # files listed per problem kind; the counts cover all


class ParityError(TrainingError):
    """The exported model does not reproduce the learner."""

    exit_code = 1


def edge_probs(
    onnx_path: Path, files: Sequence[Path], batch: int = 32
) -> tuple[OnnxClassifier, np.ndarray]:
    """Probabilities the way the edge computes them: ``file_to_input`` then ONNX Runtime."""
    clf = OnnxClassifier(onnx_path, warmup_batch=batch)
    out = []
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        x = np.stack([file_to_input(f, clf.input_hw, clf.meta.resize_method) for f in chunk])
        out.append(clf.predict(x))
    return clf, np.concatenate(out)


def camera_probs(clf: OnnxClassifier, files: Sequence[Path], batch: int = 32) -> np.ndarray:
    """Probabilities the way a *camera* frame of the same picture gets them.

    Each image is turned into the 4:2:0 YUV frame an H.264 camera would send,
    then goes through the capture path's own conversion
    (:meth:`monitor.capture.picture.AvPicture.model_input`: crop in YUV,
    libswscale straight to the model input), not through PIL.
    """
    out = []
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        x = np.stack([_camera_input(f, clf) for f in chunk])
        out.append(clf.predict(x))
    return np.concatenate(out)


def _camera_input(path: Path, clf: OnnxClassifier) -> np.ndarray:
    rgb = np.asarray(load_image(path), dtype=np.uint8)
    h, w = rgb.shape[0] & ~1, rgb.shape[1] & ~1  # 4:2:0 needs even sides
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
    yuv = frame.reformat(format="yuv420p")
    return AvPicture(yuv).model_input(clf.input_hw, clf.meta.resize_method)


def fastai_probs(learn: Learner, files: Sequence[Path]) -> np.ndarray:
    """Probabilities from ``learn.predict``, one image at a time, as the book does."""
    rows = []
    with learn.no_bar(), learn.no_logging():
        # A bar for a person watching; none in logs and pipes (stderr not a terminal).
        bar = tqdm(list(files), desc="parity: learn.predict", disable=not sys.stderr.isatty(),
                   leave=False)  # fmt: skip
        for f in bar:
            _, _, probs = learn.predict(f)
            rows.append(probs.numpy())
    return np.stack(rows)


def compare(
    files: Sequence[Path], labels: Sequence[str], ref: np.ndarray, edge: np.ndarray, tol: float
) -> dict[str, Any]:
    """Compare two probability matrices row by row; returns the ``parity.json`` content."""
    diff = np.abs(ref - edge).max(axis=1)
    ref_top, edge_top = ref.argmax(axis=1), edge.argmax(axis=1)
    disagree = np.nonzero(ref_top != edge_top)[0]
    over = np.nonzero(diff > tol)[0]
    n = len(files)
    return {
        "n": n,
        "top1_agreement": float(np.mean(ref_top == edge_top)) if n else 0.0,
        "max_abs_diff": float(diff.max()) if n else 0.0,
        "mean_abs_diff": float(np.abs(ref - edge).mean()) if n else 0.0,
        "tolerance": tol,
        "passed": bool(n and not len(disagree) and not len(over)),
        "reference": "fastai learn.predict (validation transforms)",
        "candidate": "monitor.model.preprocess.file_to_input + monitor.model.onnx.OnnxClassifier",
        "n_top1_disagreements": int(len(disagree)),
        "top1_disagreements": [
            {
                "path": str(files[i]),
                "fastai": labels[ref_top[i]],
                "onnx": labels[edge_top[i]],
                "max_abs_diff": float(diff[i]),
            }
            for i in disagree[:_LISTED]
        ],
        "n_over_tolerance": int(len(over)),
        "over_tolerance": [
            {"path": str(files[i]), "max_abs_diff": float(diff[i])} for i in over[:_LISTED]
        ],
    }


def check_parity(
    learn: Learner, onnx_path: Path, files: Sequence[Path], tol: float
) -> dict[str, Any]:
    """Run both paths over ``files`` and compare them.

    Raises:
        ParityError: when the exported model's labels differ from the learner's.
    """
    clf, edge = edge_probs(onnx_path, files)
    vocab = tuple(str(v) for v in learn.dls.vocab)
    if clf.labels != vocab:
        raise ParityError(f"{onnx_path}: labels {clf.labels} differ from the learner's {vocab}")
    ref = fastai_probs(learn, files)
    report = compare(files, vocab, ref, edge, tol)
    # The camera path is reported beside the gate, not in it: a camera frame
    # has lost colour resolution (4:2:0) that a training JPEG decoded by PIL has not.
    cam = compare(files, vocab, ref, camera_probs(clf, files), tol)
    report["camera_path"] = {
        k: cam[k] for k in ("top1_agreement", "max_abs_diff", "mean_abs_diff", "passed")
    } | {"candidate": "YUV 4:2:0 frame + monitor.capture.picture.AvPicture.model_input"}
    if not cam["passed"]:
        logger.warning(
            "camera path (YUV → swscale) outside the parity tolerance: top-1 %.4f, max |diff| %.2e",
            cam["top1_agreement"],
            cam["max_abs_diff"],
        )
    logger.info(
        "parity over %d images: top-1 agreement %.4f, max |diff| %.2e (tolerance %g)",
        report["n"],
        report["top1_agreement"],
        report["max_abs_diff"],
        tol,
    )
    return report
