"""Table-driven tests of the pure decision policy."""

from __future__ import annotations

import pytest

from monitor.config import DecisionConfig
from monitor.decide.policy import DecisionPolicy
from monitor.errors import ConfigError

LABELS = ("bear", "empty", "person")


def run(
    scores: list[float], cfg: DecisionConfig, dt: float = 1.0, label: str = "bear"
) -> list[tuple[str, int, float]]:
    """Feed ``scores`` for ``label`` one per ``dt`` seconds; return (kind, number, time) per event."""
    policy = DecisionPolicy("cam", LABELS, cfg)
    out = []
    for i, s in enumerate(scores):
        probs = [0.0, 1.0 - s, 0.0]
        probs[LABELS.index(label)] = s
        out += [(e.kind, e.number, e.at) for e in policy.step(probs, at=i * dt, seq=i)]
    return [o for o in out if o[0] != "update"]


CFG = DecisionConfig(
    threshold=0.7, release_threshold=0.4, window=3, min_hits=2, end_after_s=2.0, cooldown_s=5.0
)


@pytest.mark.parametrize(
    ("name", "scores", "expected"),
    [
        ("nothing", [0.1] * 10, []),
        ("single spike is ignored (k-of-n)", [0.1, 0.9, 0.1, 0.1, 0.1], []),
        ("two hits in window start", [0.1, 0.9, 0.1, 0.9, 0.1], [("start", 1, 3.0)]),
        ("hits too far apart", [0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.9], []),
        (
            "ends after end_after_s without presence",
            [0.9, 0.9, 0.1, 0.1, 0.1, 0.1],
            [("start", 1, 1.0), ("end", 1, 3.0)],
        ),
        (
            "hysteresis: 0.5 keeps it open",
            [0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1],
            [("start", 1, 1.0), ("end", 1, 7.0)],
        ),
        (
            "return within cooldown resumes the same event",
            [0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1],
            [("start", 1, 1.0), ("end", 1, 3.0), ("resume", 1, 6.0), ("end", 1, 8.0)],
        ),
        (
            "return after cooldown is a new event",
            [0.9, 0.9] + [0.1] * 8 + [0.9, 0.9, 0.1, 0.1, 0.1],
            [("start", 1, 1.0), ("end", 1, 3.0), ("start", 2, 11.0), ("end", 2, 13.0)],
        ),
    ],
)
def test_policy_table(
    name: str, scores: list[float], expected: list[tuple[str, int, float]]
) -> None:
    assert run(scores, CFG) == expected, name


def test_event_carries_start_peak_and_best_frame() -> None:
    policy = DecisionPolicy("cam", LABELS, CFG)
    events = []
    for i, s in enumerate([0.1, 0.8, 0.75, 0.95, 0.6, 0.1, 0.1, 0.1]):
        events += policy.step([s, 1 - s, 0.0], at=100.0 + i, seq=i)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "update", "end"]
    start, update, end = events
    assert start.start_at == 101.0  # the first hit in the window, not the triggering frame
    assert update.peak_score == pytest.approx(0.95) and update.peak_seq == 3
    assert end.end_at == 104.0 and end.peak_seq == 3 and end.frames == 4


def test_labels_are_tracked_independently() -> None:
    cfg = DecisionConfig(
        alert_labels=["bear", "person"], threshold=0.6, window=2, min_hits=2, end_after_s=1.0
    )
    policy = DecisionPolicy("cam", LABELS, cfg)
    seen = []
    for i, probs in enumerate([[0.7, 0.0, 0.3], [0.7, 0.0, 0.3], [0.3, 0.0, 0.7], [0.3, 0.0, 0.7]]):
        seen += [(e.kind, e.label, e.number) for e in policy.step(probs, at=float(i), seq=i)]
    assert ("start", "bear", 1) in seen and ("start", "person", 2) in seen


def test_close_ends_open_events() -> None:
    policy = DecisionPolicy("cam", LABELS, CFG)
    for i in range(3):
        policy.step([0.9, 0.1, 0.0], at=float(i), seq=i)
    assert policy.active_labels == ["bear"]
    (end,) = policy.close(at=10.0)
    assert end.kind == "end" and end.end_at == 2.0
    assert policy.active_labels == []


def test_unknown_alert_label_is_rejected() -> None:
    with pytest.raises(ConfigError, match="not in the model's labels"):
        DecisionPolicy("cam", LABELS, DecisionConfig(alert_labels=["moose"]))
