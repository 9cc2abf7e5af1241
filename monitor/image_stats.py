"""Per-image statistics shared by the training export (reference) and the drift monitor.

The statistics are computed on the *model input* (after preprocessing), so the
reference from training and the live values from a camera are measured on the
same pixel grid whatever the camera's resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import cv2
import numpy as np

STAT_NAMES = ("brightness", "contrast", "colourfulness", "grayscale", "sharpness")
QUANTILE_LEVELS = tuple(i / 20 for i in range(21))

# A frame whose colourfulness is below this reads as grayscale (IR night mode):
# JPEG chroma noise on a truly gray frame stays well under it.
GRAYSCALE_COLOURFULNESS = 0.02


def image_stats(rgb: np.ndarray) -> dict[str, float]:
    """Measure one RGB ``uint8`` image.

    Returns:
        ``brightness`` (mean luma, 0..1), ``contrast`` (luma std, 0..1),
        ``colourfulness`` (Hasler & Süsstrunk's metric scaled to 0..~1),
        ``grayscale`` (1.0 when the image has no colour, else 0.0) and
        ``sharpness`` (log10 of 1 + the variance of the Laplacian of luma).
    """
    img = rgb.astype(np.float32)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    rg = r - g
    yb = 0.5 * (r + g) - b
    colourfulness = (
        float(
            np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
        )
        / 255.0
    )
    lap = cv2.Laplacian(luma, cv2.CV_32F, ksize=3)
    return {
        "brightness": float(luma.mean() / 255.0),
        "contrast": float(luma.std() / 255.0),
        "colourfulness": colourfulness,
        "grayscale": 1.0 if colourfulness < GRAYSCALE_COLOURFULNESS else 0.0,
        "sharpness": float(np.log10(1.0 + lap.var())),
    }


def summarize(values: Sequence[float] | np.ndarray) -> dict[str, object]:
    """Summarise a distribution as count, mean, std and 21 quantiles (0, 5, …, 100 %)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("cannot summarise an empty distribution")
    return {
        "n": int(arr.size),
        "mean": round(float(arr.mean()), 6),
        "std": round(float(arr.std()), 6),
        "quantiles": [round(float(q), 6) for q in np.quantile(arr, QUANTILE_LEVELS)],
    }


def reference_from_images(images: Iterable[np.ndarray]) -> dict[str, dict[str, object]]:
    """Summarise :func:`image_stats` over many model-input images, per statistic."""
    columns: dict[str, list[float]] = {name: [] for name in STAT_NAMES}
    for rgb in images:
        for name, value in image_stats(rgb).items():
            columns[name].append(value)
    return {name: summarize(vals) for name, vals in columns.items()}


def reference_confidence(probs: np.ndarray) -> dict[str, object]:
    """Summarise the max-probability of each row of a probability matrix."""
    return summarize(np.asarray(probs).max(axis=1))


def validate_reference(ref: Mapping[str, object]) -> None:
    """Raise ``ValueError`` unless ``ref`` has the shape :func:`summarize` produces."""
    for name, summary in ref.items():
        if not isinstance(summary, Mapping) or len(summary.get("quantiles", ())) != len(
            QUANTILE_LEVELS
        ):  # type: ignore[arg-type]
            raise ValueError(f"reference statistic {name!r} needs {len(QUANTILE_LEVELS)} quantiles")
