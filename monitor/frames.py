"""Value objects that cross threads: frames, predictions, drops."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled, preprocessed camera frame on its way to the model.

    Attributes:
        camera: the camera id.
        seq: per-camera sequence number (monotonic, starts at 0).
        captured_mono: ``time.monotonic()`` when the frame was read (for latency).
        captured_at: UTC epoch seconds when the frame was read (for events); for a
            file source replayed fast this is the file's own timeline.
        image: the model input, ``uint8`` (H, W, 3) RGB.
        snapshot: a downscaled BGR copy of the original frame for review (or None).
        live: True for live sources (drop-oldest policy), False for files.
        stats: ``monitor.model.image_stats.image_stats`` of ``image`` (for the drift monitor).
        frame_diff: mean absolute gray-level change from the previous frame read
            (0..255, on a small thumbnail), None for the first frame.
        source_hw: the (height, width) the camera actually delivered.
    """

    camera: str
    seq: int
    captured_mono: float
    captured_at: float
    image: np.ndarray
    snapshot: np.ndarray | None = None
    live: bool = True
    stats: Mapping[str, float] | None = None
    frame_diff: float | None = None
    source_hw: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's output for one frame.

    Attributes:
        ood_score: the feature-space out-of-domain score in units of the model's
            calibrated threshold (over 1.0: unfamiliar), or None when it is
            unknown (a model without feature statistics, or non-finite features).
    """

    frame: Frame
    probs: np.ndarray  # float32 (C,)
    decided_mono: float
    candidate_probs: np.ndarray | None = None  # the shadow candidate's output, when one runs
    ood_score: float | None = None


DROP_REASONS = ("superseded", "stale", "no_motion", "error", "shutdown")
