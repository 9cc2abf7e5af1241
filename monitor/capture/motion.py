"""A cheap per-camera motion gate: skip inference on a static scene, but re-check on schedule.

Frames are shrunk to a 64-pixel-wide, blurred gray thumbnail and compared with
the thumbnail of the last frame that *was* classified (not the previous frame:
a bear walking slowly changes little per frame but a lot since the last
check). The gate never skips while the last decision for the camera was
positive, and always lets a frame through after ``recheck_s`` — a bear
standing still must not be missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

THUMB_WIDTH = 64


def thumbnail(bgr: np.ndarray) -> np.ndarray:
    """A small blurred gray version of a BGR frame, as int16 for differencing."""
    h, w = bgr.shape[:2]
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
    gray = cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return cv2.GaussianBlur(gray, (3, 3), 0).astype(np.int16)


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What the gate said about one frame."""

    run: bool
    changed_fraction: float
    reason: str  # "motion", "positive", "recheck", "first" or "no_motion"


class MotionGate:
    """Decides per frame whether the model needs to see it.

    Args:
        pixel_threshold: gray-level change (0..255) that counts a pixel as changed.
        min_changed_fraction: share of changed pixels that counts as motion.
        recheck_s: longest time between two classified frames.
    """

    def __init__(self, pixel_threshold: int, min_changed_fraction: float, recheck_s: float) -> None:
        self.pixel_threshold, self.min_changed_fraction, self.recheck_s = (
            pixel_threshold,
            min_changed_fraction,
            recheck_s,
        )
        self._ref: np.ndarray | None = None
        self._last_run: float | None = None

    def check(
        self, thumb: np.ndarray, now: float, last_positive: Callable[[], bool]
    ) -> GateDecision:
        """Judge one frame's thumbnail (see :func:`thumbnail`) at time ``now`` (seconds).

        ``last_positive`` is asked only when the frame shows no motion: finding
        out may mean waiting for the model's decision on an earlier frame.
        """
        if self._ref is None or self._ref.shape != thumb.shape or self._last_run is None:
            return self._ran(thumb, now, 1.0, "first")
        changed = float(np.mean(np.abs(thumb - self._ref) > self.pixel_threshold))
        if changed >= self.min_changed_fraction:
            return self._ran(thumb, now, changed, "motion")
        if now - self._last_run >= self.recheck_s:
            return self._ran(thumb, now, changed, "recheck")
        if last_positive():
            return self._ran(thumb, now, changed, "positive")
        return GateDecision(False, changed, "no_motion")

    def _ran(self, thumb: np.ndarray, now: float, changed: float, reason: str) -> GateDecision:
        self._ref, self._last_run = thumb, now
        return GateDecision(True, changed, reason)
