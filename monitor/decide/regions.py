"""Pure scoring over a frame's regions: the frame's score per alert label is its best region's.

k-of-n, hysteresis and cooldown (``monitor.decide.policy``) keep counting
*frames*: this module turns the (regions × classes) output of one frame into
the one row of probabilities the policy steps on, and says which region it
came from (the event keeps that region's box and zone).

A zone's own threshold is honoured by calibrating that region's alert scores
before taking the maximum: the zone threshold maps onto the camera's
threshold, linearly below and above it, so one policy with one threshold and
one hysteresis serves every zone, and a score at a zone's threshold is a hit
exactly as a score at the camera's threshold is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from monitor.config import DecisionConfig


def calibrate(score: float, zone_threshold: float | None, threshold: float) -> float:
    """Map a region's score so that ``zone_threshold`` lands on ``threshold`` (monotone, 0→0, 1→1)."""
    if zone_threshold is None or zone_threshold == threshold:
        return score
    if score < zone_threshold:
        return score * threshold / zone_threshold
    if zone_threshold >= 1.0:
        return 1.0
    return threshold + (score - zone_threshold) * (1.0 - threshold) / (1.0 - zone_threshold)


class RegionScorer:
    """Collapses each frame's region probabilities for its camera's alert labels.

    Args:
        labels: the model's labels, in output order.
        decisions: each camera's decision settings (alert labels, threshold).
    """

    def __init__(self, labels: Sequence[str], decisions: Mapping[str, DecisionConfig]) -> None:
        self._labels = tuple(labels)
        self._cams = {
            cam: (
                [self._labels.index(lbl) for lbl in d.alert_labels if lbl in self._labels],
                d.threshold,
            )
            for cam, d in decisions.items()
        }
        # Unknown camera (a bench or a test): every label but "empty" may alert.
        self._default = ([i for i, lbl in enumerate(self._labels) if lbl != "empty"], 0.5)

    def collapse(
        self,
        camera: str,
        region_probs: np.ndarray,
        zone_thresholds: Sequence[float | None] = (),
    ) -> tuple[np.ndarray, int]:
        """One frame's (R, C) probabilities → (the row the policy steps on, the peak region).

        The row is the peak region's probabilities with each alert label set to
        its best (calibrated) score over all regions; the peak region is the
        one with the highest alert score.
        """
        if region_probs.shape[0] == 1 and not any(t is not None for t in zone_thresholds):
            return region_probs[0], 0
        alert, threshold = self._cams.get(camera, self._default)
        scores = region_probs[:, alert].astype(np.float64) if alert else region_probs[:, :0]
        for r, zt in enumerate(zone_thresholds):
            if zt is not None:
                scores[r] = [calibrate(float(s), zt, threshold) for s in scores[r]]
        if scores.shape[1] == 0:
            return region_probs[0], 0
        peak = int(np.argmax(scores.max(axis=1)))
        row = region_probs[peak].astype(np.float32, copy=True)
        row[alert] = scores.max(axis=0)
        return row, peak
