"""The feature statistics: encoding, scoring, calibration and the errors they raise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.model.features import FeatureStats, calibrate, fit_knn, fit_mahalanobis

RNG = np.random.default_rng(7)
TRAIN = RNG.normal(0.0, 1.0, (400, 16)).astype(np.float32) + 3.0
VALID = RNG.normal(0.0, 1.0, (200, 16)).astype(np.float32) + 3.0
LABELS = np.arange(400) % 4


def _fitted(method: str) -> FeatureStats:
    if method == "knn":
        return calibrate(fit_knn(TRAIN, components=8), VALID)
    return calibrate(fit_mahalanobis(TRAIN, LABELS), VALID)


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_statistics_round_trip_through_json(method: str) -> None:
    stats = _fitted(method)
    back = FeatureStats.from_json(json.loads(json.dumps(stats.to_json())))
    assert (back.method, back.dim, back.threshold, back.tpr) == (
        stats.method,
        stats.dim,
        stats.threshold,
        stats.tpr,
    )
    np.testing.assert_allclose(back.scores(VALID), stats.scores(VALID), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_the_calibrated_threshold_passes_95_percent_of_validation(method: str) -> None:
    assert np.mean(_fitted(method).scores(VALID) <= 1.0) == pytest.approx(0.95, abs=0.01)


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_far_features_score_over_the_threshold(method: str) -> None:
    far = RNG.normal(0.0, 1.0, (50, 16)).astype(np.float32) * 4.0 - 6.0
    assert np.all(_fitted(method).scores(far) > 1.0)


def test_non_finite_rows_score_nan_and_the_rest_still_score() -> None:
    x = VALID[:4].copy()
    x[1, 3] = np.nan
    x[2, 0] = np.inf
    scores = _fitted("knn").scores(x)
    assert np.isnan(scores[1]) and np.isnan(scores[2])
    assert np.isfinite(scores[0]) and np.isfinite(scores[3])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dim": 15}, "knn projection must be"),
        ({"threshold": 0.0}, "threshold must be a positive"),
        ({"method": "lof"}, "method must be one of"),
        ({"k": 0}, "k must be in"),
    ],
)
def test_malformed_statistics_are_refused(change: dict[str, object], message: str) -> None:
    value = {**_fitted("knn").to_json(), **change}
    with pytest.raises(ValueError, match=message):
        FeatureStats.from_json(value)


def test_non_finite_statistics_are_refused() -> None:
    bank = np.ones((4, 16), dtype=np.float32)
    bank[2, 5] = np.nan
    with pytest.raises(ValueError, match="'bank' holds non-finite values"):
        FeatureStats("knn", dim=16, threshold=1.0, bank=bank)


def test_features_of_the_wrong_width_are_refused() -> None:
    with pytest.raises(ValueError, match=r"features must be \(N, 16\)"):
        _fitted("mahalanobis").scores(np.zeros((2, 12), dtype=np.float32))


def test_a_knn_bank_is_capped_and_stays_small() -> None:
    many = RNG.normal(0.0, 1.0, (5000, 512)).astype(np.float32)
    stats = fit_knn(many, max_bank=2000)
    assert stats.bank is not None and stats.bank.shape == (2000, 64)
    assert len(json.dumps(stats.to_json())) < 3_000_000
