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
        image: the frame's centre square at model input size, ``uint8`` (H, W, 3)
            RGB — what the model saw before view plans; the drift monitor's image
            statistics are taken from it, so they stay comparable with the
            model's reference statistics. When ``regions`` is None it is also
            the one model input.
        snapshot: a downscaled BGR copy of the original frame for review (or None).
        live: True for live sources (drop-oldest policy), False for files.
        stats: ``monitor.model.image_stats.image_stats`` of ``image`` (for the drift monitor).
        frame_diff: mean absolute gray-level change from the previous frame read
            (0..255, on a small thumbnail), None for the first frame.
        source_hw: the (height, width) the camera actually delivered.
        regions: the view plan's model inputs for this frame, ``uint8``
            (R, H, W, 3) RGB; they travel (and are batched) together.
        boxes: per region, its normalised box ``(x0, y0, x1, y1)`` in the frame.
        zones: per region, the include zone it lies in (None: no zones).
        zone_thresholds: per region, its zone's own alert threshold (None: the camera's).
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
    regions: np.ndarray | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    zones: tuple[str | None, ...] = ()
    zone_thresholds: tuple[float | None, ...] = ()

    @property
    def inputs(self) -> np.ndarray:
        """What the model classifies for this frame: (R, H, W, 3)."""
        return self.image[None] if self.regions is None else self.regions

    @property
    def region_count(self) -> int:
        return 1 if self.regions is None else int(self.regions.shape[0])


FULL_BOX = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's output for one frame: the frame's scores and the region they came from.

    Attributes:
        frame: the frame.
        probs: float32 (C,): the peak region's class probabilities (for a
            single-region frame, the frame's).
        decided_mono: when the batch finished.
        candidate_probs: the shadow candidate's output on the same region, when one runs.
        region_probs: float32 (R, C), every region's probabilities (None: one region).
        region: index of the peak region.
        ood_score: the feature-space out-of-domain score in units of the model's
            calibrated threshold (over 1.0: unfamiliar), or None when it is
            unknown (a model without feature statistics, or non-finite features).
    """

    frame: Frame
    probs: np.ndarray  # float32 (C,)
    decided_mono: float
    candidate_probs: np.ndarray | None = None  # the shadow candidate's output, when one runs
    ood_score: float | None = None
    region_probs: np.ndarray | None = None
    region: int = 0

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The peak region's normalised box (the whole frame for a single-region frame)."""
        boxes = self.frame.boxes
        return boxes[self.region] if self.region < len(boxes) else FULL_BOX

    @property
    def zone(self) -> str | None:
        zones = self.frame.zones
        return zones[self.region] if self.region < len(zones) else None

    @property
    def crop(self) -> np.ndarray:
        """The peak region as the model saw it (RGB, model input size)."""
        return self.frame.inputs[min(self.region, self.frame.region_count - 1)]


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
