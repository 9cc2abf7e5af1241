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


class LastDecisions:
    """Per camera: the sequence number of the last decided frame and whether that decision was positive.

    The alert stage writes it, the motion gate (in the capture thread) reads
    it; the pipeline owns it, so capture never looks into the alert stage.
    Each update is one dict assignment of an immutable tuple, so a reader
    never sees half of it.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, bool]] = {}

    def record(self, camera: str, seq: int, positive: bool) -> None:
        self._last[camera] = (seq, positive)

    def gate_state(self, camera: str, last_seq: int) -> tuple[bool, bool]:
        """(is the decision on frame ``last_seq`` in?, was the camera's last decision positive?)."""
        seq, positive = self._last.get(camera, (-1, False))
        return seq >= last_seq, positive
