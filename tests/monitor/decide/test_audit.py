"""Audit sampling strata, the per-hour cap and the population counts the miss estimate needs."""

from __future__ import annotations

import pytest

from monitor.config import AuditConfig
from monitor.decide.audit import AuditSampler, audit_counts_total

CFG = AuditConfig(random_rate=0.0, low_confidence=0.6, near_threshold_margin=0.15, max_per_hour=100)


@pytest.mark.parametrize(
    ("top", "alert", "in_event", "expected"),
    [
        (0.95, 0.02, False, None),  # confident empty frame, random rate 0
        (0.5, 0.3, False, "low_confidence"),
        (0.6, 0.6, False, "near_threshold"),  # threshold 0.7, margin 0.15
        (0.9, 0.56, False, "near_threshold"),
        (0.9, 0.9, False, None),  # a hit: it may become an alert, not an audit sample
        (0.5, 0.3, True, None),  # inside an open event
    ],
)
def test_strata(top: float, alert: float, in_event: bool, expected: str | None) -> None:
    assert AuditSampler(CFG, seed=1).choose("cam", 0.0, top, alert, 0.7, in_event) == expected


def test_random_stratum_samples_at_its_rate_and_counts_its_population() -> None:
    sampler = AuditSampler(AuditConfig(random_rate=0.1, max_per_hour=100_000), seed=3)
    kept = sum(
        sampler.choose("cam", float(i), 0.99, 0.01, 0.7, False) == "random" for i in range(5000)
    )
    assert 400 <= kept <= 600
    counts = sampler.take_counts("cam")
    assert counts["population"]["random"] == 5000 and counts["sampled"]["random"] == kept
    assert sampler.take_counts("cam")["population"]["random"] == 0  # reset after taking


def test_the_hourly_cap_limits_what_is_kept_not_what_is_counted() -> None:
    sampler = AuditSampler(AuditConfig(random_rate=1.0, max_per_hour=5), seed=0)
    kept = [sampler.choose("cam", float(i), 0.99, 0.01, 0.7, False) for i in range(20)]
    assert sum(k is not None for k in kept) == 5
    assert sampler.choose("cam", 3601.0, 0.99, 0.01, 0.7, False) == "random"  # a new hour
    counts = sampler.take_counts("cam")
    assert counts["population"]["random"] == 21 and counts["sampled"]["random"] == 6


def test_disabled_sampler_keeps_nothing() -> None:
    sampler = AuditSampler(AuditConfig(enabled=False))
    assert sampler.choose("cam", 0.0, 0.3, 0.6, 0.7, False) is None


def test_counts_add_up() -> None:
    a = {"population": {"random": 3}, "sampled": {"random": 1}}
    b = {"population": {"random": 2, "low_confidence": 1}, "sampled": {}}
    total = audit_counts_total([a, b])
    assert total["population"]["random"] == 5 and total["population"]["low_confidence"] == 1
    assert total["sampled"]["random"] == 1


def test_seeded_random_stratum_per_camera_ignores_how_cameras_interleave() -> None:
    """Replays feed cameras from their own threads; a seeded sampler must keep the same frames
    whichever camera's frame arrives first (the study's rerun took other audit frames)."""
    cfg = AuditConfig(random_rate=0.3, max_per_hour=100_000)
    a, b = AuditSampler(cfg, seed=5), AuditSampler(cfg, seed=5)
    kept_a = [a.choose(cam, float(i), 0.95, 0.01, 0.7, False) for i in range(50) for cam in "xy"]
    kept_b = [b.choose(cam, float(i), 0.95, 0.01, 0.7, False) for cam in "yx" for i in range(50)]
    by_a = {(cam, i): kept_a[2 * i + k] for i in range(50) for k, cam in enumerate("xy")}
    by_b = {(cam, i): kept_b[50 * k + i] for k, cam in enumerate("yx") for i in range(50)}
    assert by_a == by_b and "random" in by_a.values()
