"""Which alerts are *unfamiliar*: the recent share of frames whose feature score is over the threshold.

One frame over the model's calibrated threshold means little: by
construction about 5 % of in-domain frames are. A camera whose recent frames
are mostly over it is looking at something the model has not seen, and an
alert raised there should wait for a person. So an alert is unfamiliar when,
of the camera's last ``window`` scored frames, at least ``min_share`` were
over the threshold (and at least ``min_frames`` were scored at all).
Frames scored as unknown (no statistics, non-finite features) are left out.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UnfamiliarSettings:
    """Validated by ``monitor.config.OodConfig``."""

    window: int = 10
    min_share: float = 0.5
    min_frames: int = 3


class UnfamiliarTracker:
    """Per-camera window of "over the threshold?" flags."""

    def __init__(self, settings: UnfamiliarSettings) -> None:
        self.settings = settings
        self._recent: dict[str, deque[bool]] = {}

    def observe(self, camera: str, ood_score: float | None) -> None:
        """Add one frame's score (units of the threshold; None: unknown, ignored)."""
        if ood_score is None or ood_score != ood_score:  # None or NaN
            return
        recent = self._recent.get(camera)
        if recent is None:
            recent = self._recent[camera] = deque(maxlen=self.settings.window)
        recent.append(ood_score > 1.0)

    def share(self, camera: str) -> float | None:
        """The share of recent scored frames over the threshold, or None with too few."""
        recent = self._recent.get(camera)
        if not recent or len(recent) < self.settings.min_frames:
            return None
        return sum(recent) / len(recent)

    def unfamiliar(self, camera: str) -> bool:
        share = self.share(camera)
        return share is not None and share >= self.settings.min_share
