"""Scoring a frame over its regions: the best region's score, zone thresholds calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.config import DecisionConfig
from monitor.decide.regions import RegionScorer, calibrate

LABELS = ("bear", "empty", "person")


@pytest.mark.parametrize(
    ("score", "zone", "threshold", "expected"),
    [
        (0.5, None, 0.7, 0.5),
        (0.5, 0.5, 0.7, 0.7),  # at the zone's threshold: at the camera's
        (0.25, 0.5, 0.7, 0.35),
        (1.0, 0.5, 0.7, 1.0),
        (0.0, 0.9, 0.7, 0.0),
        (0.9, 0.9, 0.7, 0.7),  # a stricter zone
        (0.8, 0.9, 0.7, pytest.approx(0.8 * 0.7 / 0.9)),
    ],
)
def test_calibrate_maps_the_zone_threshold_onto_the_cameras(
    score: float, zone: float | None, threshold: float, expected: float
) -> None:
    assert calibrate(score, zone, threshold) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("rows", "zone_thresholds", "alert", "peak", "scores"),
    [
        ([[0.1, 0.9, 0.0]], (), ["bear"], 0, [0.1, 0.9, 0.0]),
        ([[0.1, 0.9, 0.0], [0.8, 0.2, 0.0], [0.3, 0.7, 0.0]], (), ["bear"], 1, [0.8, 0.2, 0.0]),
        # two alert labels: each takes its best region; the peak is the best of all
        ([[0.6, 0.1, 0.3], [0.1, 0.0, 0.9]], (), ["bear", "person"], 1, [0.6, 0.0, 0.9]),
        # a lenient zone (0.4) lifts its region's 0.5 above the other region's 0.6
        ([[0.6, 0.4, 0.0], [0.5, 0.5, 0.0]], (None, 0.4), ["bear"], 1, [0.75, 0.5, 0.0]),
    ],
)
def test_the_frame_score_is_the_best_regions(
    rows: list[list[float]],
    zone_thresholds: tuple[float | None, ...],
    alert: list[str],
    peak: int,
    scores: list[float],
) -> None:
    scorer = RegionScorer(LABELS, {"cam": DecisionConfig(alert_labels=alert, threshold=0.7)})
    probs, got = scorer.collapse("cam", np.array(rows, np.float32), zone_thresholds)
    assert got == peak
    assert probs.tolist() == pytest.approx(scores)
