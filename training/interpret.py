"""Interpretation written to the run folder: confusion matrix, top losses, a batch preview, metrics.

Everything is drawn with matplotlib's non-interactive Agg backend (the CLI
selects it before fastai imports pyplot), so a training box without a display
produces the same files as a notebook would show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from fastai.vision.all import ClassificationInterpretation, Learner

logger = logging.getLogger(__name__)

CONFUSION_PNG = "confusion_matrix.png"
TOP_LOSSES_PNG = "top_losses.png"
BATCH_PREVIEW_PNG = "batch_preview.png"
DPI = 80  # small files: these are for a quick look and for committing next to a model


@dataclass(frozen=True)
class Predictions:
    """One prediction pass of the learner over a labelled split (fastai's own pipeline).

    Attributes:
        files: the images, in loader order.
        probs: (N, C) softmax probabilities.
        targets: (N,) true class indices.
        losses: (N,) per-image cross-entropy.
        vocab: class names in output order.
    """

    files: tuple[Path, ...]
    probs: np.ndarray
    targets: np.ndarray
    losses: np.ndarray
    vocab: tuple[str, ...]

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)


def predict_split(learn: Learner, files: list[Path] | None = None) -> Predictions:
    """Predict the validation split, or labelled ``files`` through the validation transforms."""
    if files is None:
        dl = learn.dls.valid.new(shuffle=False, drop_last=False)
    else:
        dl = learn.dls.test_dl(files, with_labels=True)
    probs, targets, losses = learn.get_preds(dl=dl, with_loss=True)
    return Predictions(
        files=tuple(Path(p) for p in dl.items),
        probs=probs.numpy(),
        targets=targets.numpy(),
        losses=losses.numpy(),
        vocab=tuple(str(v) for v in learn.dls.vocab),
    )


def confusion(preds: Predictions) -> np.ndarray:
    """Confusion matrix: rows are actual classes, columns predicted, in vocab order."""
    n = len(preds.vocab)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (preds.targets, preds.predicted), 1)
    return cm


def classification_metrics(preds: Predictions) -> dict[str, Any]:
    """Accuracy, error rate, loss, per-class precision/recall/F1 and the most confused pairs."""
    cm = confusion(preds)
    n = int(cm.sum())
    correct = int(np.trace(cm))
    per_class = {}
    for i, label in enumerate(preds.vocab):
        tp, actual, predicted = int(cm[i, i]), int(cm[i].sum()), int(cm[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "support": actual,
            "predicted": predicted,
        }
    confused = [
        {"actual": preds.vocab[i], "predicted": preds.vocab[j], "count": int(cm[i, j])}
        for i, j in zip(*np.nonzero(cm), strict=True)
        if i != j
    ]
    confused.sort(key=lambda row: -int(row["count"]))
    return {
        "accuracy": correct / n,
        "error_rate": (n - correct) / n,
        "valid_loss": float(preds.losses.mean()),
        "n_valid": n,
        "per_class": per_class,
        "confusion_matrix": {"labels": list(preds.vocab), "matrix": cm.tolist()},
        "most_confused": confused,
    }


def save_plots(learn: Learner, run_dir: Path, top_k: int) -> None:
    """Write the confusion matrix, top losses and an augmented training batch as PNGs."""
    interp = ClassificationInterpretation.from_learner(learn)
    n_classes = len(learn.dls.vocab)
    side = max(3.0, 1.0 + 0.6 * n_classes)
    interp.plot_confusion_matrix(figsize=(side, side))
    _save_current(run_dir / CONFUSION_PNG)

    k = min(top_k, len(interp.losses))
    ncols = min(k, 3)
    nrows = -(-k // ncols)
    # fastai titles each image prediction/actual/loss/probability, like the book.
    interp.plot_top_losses(k, nrows=nrows, ncols=ncols, figsize=(3.2 * ncols, 3.4 * nrows))
    _save_current(run_dir / TOP_LOSSES_PNG)

    learn.dls.train.show_batch(max_n=min(16, learn.dls.train.bs), figsize=(8, 8))
    _save_current(run_dir / BATCH_PREVIEW_PNG)


def _save_current(path: Path) -> None:
    fig = plt.gcf()
    try:
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    finally:
        plt.close("all")
    logger.info("wrote %s", path)
