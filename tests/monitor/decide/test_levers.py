"""Lever simulation: the real policy on logged scores, compression that changes nothing, scoring against labels."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.config import DecisionConfig
from monitor.decide.levers import (
    AuditLabel,
    LeverInputs,
    Review,
    Setting,
    compress,
    evaluate,
    grid,
    pareto,
    recommend,
    simulate,
)
from monitor.decide.policy import DecisionPolicy

T0 = 1_750_000_000.0


def stream(pattern: str, fps: float = 2.0) -> LeverInputs:
    """Scores from a string: '#' a clear bear (0.95), '+' a doubtful one (0.6), '.' nothing (0.05)."""
    value = {"#": 0.95, "+": 0.6, ".": 0.05}
    at = T0 + np.arange(len(pattern)) / fps
    scores = np.array([value[c] for c in pattern], dtype=np.float32)
    return LeverInputs("trail", "bear", at, scores)


def starts_of_the_policy(inputs: LeverInputs, cfg: DecisionConfig) -> int:
    policy = DecisionPolicy("trail", ["bear"], cfg)
    n = 0
    for seq, (at, s) in enumerate(zip(inputs.at, inputs.scores, strict=True)):
        n += sum(ev.kind == "start" for ev in policy.step([s], float(at), seq))
    return n


@pytest.mark.parametrize(
    ("pattern", "threshold", "min_hits", "window", "cooldown_s", "alerts"),
    [
        ("...###......", 0.7, 3, 5, 60.0, 1),
        ("...#.#.#....", 0.7, 3, 5, 60.0, 1),  # 3 of 5 with gaps
        ("...#...#...#", 0.7, 3, 5, 60.0, 0),  # never 3 in a window of 5
        ("...#...#...#", 0.7, 1, 1, 0.0, 3),
        ("..+++.......", 0.7, 1, 1, 0.0, 0),  # doubtful frames under a high threshold
        ("..+++.......", 0.5, 1, 1, 0.0, 1),
        ("##" + "." * 30 + "##", 0.7, 2, 3, 0.0, 2),  # apart: two visits
        ("##" + "." * 30 + "##", 0.7, 2, 3, 60.0, 1),  # within the cooldown: one
    ],
)
def test_simulation_counts_what_the_policy_raises(
    pattern: str, threshold: float, min_hits: int, window: int, cooldown_s: float, alerts: int
) -> None:
    inputs = stream(pattern)
    cfg = DecisionConfig(
        threshold=threshold, min_hits=min_hits, window=window, cooldown_s=cooldown_s, end_after_s=1
    )
    setting = Setting.of(cfg)
    assert len(simulate(inputs, setting)) == alerts == starts_of_the_policy(inputs, cfg)


def test_compression_changes_no_outcome_of_any_setting() -> None:
    rng = np.random.default_rng(3)
    # A camera's day: long quiet stretches, now and then a burst of doubtful or clear frames.
    pattern = "".join(
        "." * int(rng.integers(40, 300)) + "".join(rng.choice(list("..+#"), size=12))
        for _ in range(20)
    )
    inputs = stream(pattern)
    current = Setting.of(DecisionConfig(cooldown_s=5.0, end_after_s=4.0))
    settings = grid(current)
    small = compress(inputs, settings)
    assert len(small.at) < len(inputs.at) / 2
    for s in settings[:: max(1, len(settings) // 25)]:
        full = [(e.start_at, e.alert_at, e.end_at) for e in simulate(inputs, s)]
        fast = [(e.start_at, e.alert_at, e.end_at) for e in simulate(small, s)]
        assert fast == full, s


def test_outcomes_are_scored_against_verdicts_and_audit_labels() -> None:
    pattern = "...####......" + "." * 40 + "..#.#........" + "." * 40 + "+++++........"
    base = stream(pattern)
    t = lambda i: float(base.at[i])  # noqa: E731
    inputs = LeverInputs(
        "trail",
        "bear",
        base.at,
        base.scores,
        reviews=(Review(t(3), t(6), True), Review(t(55), t(57), False)),
        audits=(AuditLabel(t(108), True, weight=1.0),),  # a bear the strict setting missed
    )
    strict = evaluate(
        inputs, Setting.of(DecisionConfig(threshold=0.7, min_hits=2, window=3, cooldown_s=0))
    )
    loose = evaluate(
        inputs, Setting.of(DecisionConfig(threshold=0.5, min_hits=1, window=1, cooldown_s=0))
    )
    assert (strict.alerts, strict.true_alerts, strict.false_alerts) == (2, 1, 1)
    assert strict.missed_visits == pytest.approx(1.0) and strict.recall == pytest.approx(0.5)
    assert loose.true_alerts == 2 and loose.recall == pytest.approx(1.0)
    assert strict.time_to_first_alert_s is not None and strict.time_to_first_alert_s >= 0


def test_the_objective_picks_recall_within_the_false_alert_budget() -> None:
    pattern = ("...####......" + "." * 40 + "..#.#........" + "." * 40 + "+++++........") * 3
    base = stream(pattern)
    n = len(pattern) // 3
    reviews, audits = [], []
    for k in range(3):
        o = k * n
        reviews += [Review(float(base.at[o + 3]), float(base.at[o + 6]), True)]
        reviews += [Review(float(base.at[o + 55]), float(base.at[o + 57]), False)]
        audits += [AuditLabel(float(base.at[o + 108]), True)]
    inputs = LeverInputs("trail", "bear", base.at, base.scores, tuple(reviews), tuple(audits))
    current = Setting.of(DecisionConfig(cooldown_s=0.0))
    outcomes = [evaluate(inputs, s) for s in grid(current)]
    by = {o.setting: o for o in outcomes}
    rec = recommend(outcomes, by[current], max_false_per_day=1e9, labelled=inputs.labelled)
    assert rec.recommended.recall == max(o.recall or 0 for o in outcomes)
    assert rec.warning is None
    front = pareto(outcomes)
    assert front and all(o.recall is not None for o in front)
    none = recommend(outcomes, by[current], max_false_per_day=-1.0, labelled=inputs.labelled)
    assert none.warning is not None and "no setting" in none.warning
    few = recommend(outcomes, by[current], max_false_per_day=2.0, labelled=2)
    assert (
        few.recommended is few.current
        and few.warning is not None
        and "too few labels" in few.warning
    )
