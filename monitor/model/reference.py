"""Reference distributions in the model's metadata: how they are summarised and checked (NumPy only).

Kept apart from ``image_stats`` (which needs OpenCV) so the pure decision
side can compare live values against them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

STAT_NAMES = ("brightness", "contrast", "colourfulness", "grayscale", "sharpness")
QUANTILE_LEVELS = tuple(i / 20 for i in range(21))


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
