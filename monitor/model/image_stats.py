"""Per-image statistics shared by the training export (reference) and the drift monitor.

The statistics are computed on the *model input* (after preprocessing), so the
reference from training and the live values from a camera are measured on the
same pixel grid whatever the camera's resolution.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from monitor.model.reference import STAT_NAMES, summarize

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


def reference_from_images(images: Iterable[np.ndarray]) -> dict[str, dict[str, object]]:
    """Summarise :func:`image_stats` over many model-input images, per statistic."""
    columns: dict[str, list[float]] = {name: [] for name in STAT_NAMES}
    for rgb in images:
        for name, value in image_stats(rgb).items():
            columns[name].append(value)
    return {name: summarize(vals) for name, vals in columns.items()}
