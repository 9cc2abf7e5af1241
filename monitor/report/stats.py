"""The rollout report's arithmetic: intervals, precision, the miss and recall estimates, and the promotion rules.

Everything here is pure (numbers in, numbers out; no store, no clock) so each
figure the report prints can be checked by hand against a table-driven test.

Definitions the report commits to:

* **Precision** of a camera's alerts = confirmed / (confirmed + rejected +
  relabelled). An alert is a true positive when a reviewer confirmed it, and a
  false positive when they rejected it or relabelled it to another label (the
  model named the wrong thing, even when the other label also alerts). Unsure
  and pending alerts are counted but left out: nobody knows what they were.
* **Intervals** are Wilson score intervals at 95 % (z = 1.96). Unlike the normal
  approximation they stay inside [0, 1] and behave at 0/n and n/n.
* **Recall** is estimated in *frames*, because audit samples are frames:
  ``recall = TP / (TP + M)`` where TP is the number of alert-label frames the
  model put inside true alert events and M the estimated alert-label frames it
  did not alert on. See ``estimate_misses`` and ``true_positive_frames``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from monitor.config import PromotionConfig
from monitor.decide.rollout import within_hours
from monitor.types import MODES

Z95 = 1.96


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its interval (low ≤ value ≤ high)."""

    value: float
    low: float
    high: float


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None when there were no trials.

    Args:
        successes: how many of the trials succeeded (0..trials).
        trials: how many there were.
        z: the normal quantile (1.96 for 95 %).

    Raises:
        ValueError: when successes is outside 0..trials.
    """
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..{trials}, got {successes}")
    if trials == 0:
        return None
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials))
    # Clamp float noise at the ends (0/n gives a low bound of -1e-17).
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(successes: int, trials: int) -> Estimate | None:
    """successes / trials with its Wilson interval; None when there were no trials."""
    bounds = wilson_interval(successes, trials)
    if bounds is None:
        return None
    return Estimate(successes / trials, *bounds)


def precision(confirmed: int, rejected: int, relabelled: int) -> Estimate | None:
    """Alert precision: confirmed over confirmed + rejected + relabelled (unsure excluded)."""
    return proportion(confirmed, confirmed + rejected + relabelled)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between order statistics.

    The same rule as NumPy's default (Hyndman & Fan type 7): rank h = (n − 1)·q/100,
    then interpolate between the values either side of h. None for no values.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    if not values:
        return None
    xs = sorted(values)
    h = (len(xs) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float | None:
    """The smallest value whose cumulative weight reaches half the total; None if no weight.

    Used for latency: each stats row carries a period's p50 over ``frames``
    frames, and the median of those medians, weighted by frames, is the best
    single p50 the rows allow (the true p50 lies between the rows' min and max).
    """
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    total = sum(w for _, w in pairs)
    if total <= 0:
        return None
    cumulative = 0.0
    for value, weight in pairs:
        cumulative += weight
        if cumulative >= total / 2:
            return value
    return pairs[-1][0]  # unreachable: the loop reaches the total


def is_night(epoch: float, zone: ZoneInfo, night_hours: str) -> bool:
    """True when ``epoch`` falls in ``night_hours`` ("HH:MM-HH:MM", may wrap) on the local clock."""
    return within_hours(night_hours, datetime.fromtimestamp(epoch, zone))


@dataclass(frozen=True, slots=True)
class Stratum:
    """One audit stratum (random, low_confidence, near_threshold) over a period.

    Attributes:
        name: the stratum.
        population: non-alert frames the stratum stands for (eligible frames).
        labelled: audit samples of this stratum a human labelled.
        misses: of those, how many show an alert label (a frame the model missed).
    """

    name: str
    population: float
    labelled: int
    misses: int


@dataclass(frozen=True, slots=True)
class MissEstimate:
    """Estimated alert-label frames among the non-alert frames, with a conservative interval."""

    misses: float
    low: float
    high: float


def unestimable_strata(strata: Sequence[Stratum]) -> list[str]:
    """Strata that hold frames but no labelled sample: their miss fraction is unknown."""
    return [s.name for s in strata if s.population > 0 and s.labelled == 0]


def estimate_misses(strata: Sequence[Stratum]) -> MissEstimate | None:
    """The stratified estimate of missed frames: Σ population_h · misses_h / labelled_h.

    Assumptions: within each stratum the labelled samples are a uniform random
    draw of that stratum's frames (the sampler keeps targeted frames and a
    random share of the rest, the per-hour cap aside; humans label in no
    particular order), and ``population`` is the stratum's true size. Each
    stratum's Wilson bounds are summed, so the interval is wider than 95 %
    (conservative), not narrower.

    Returns:
        None when a stratum with frames has no labelled sample (see
        ``unestimable_strata``); zero misses when no stratum has frames.
    """
    if unestimable_strata(strata):
        return None
    total = low = high = 0.0
    for s in strata:
        if s.population <= 0:
            continue
        bounds = wilson_interval(s.misses, s.labelled)
        assert bounds is not None  # labelled > 0, checked above
        total += s.population * s.misses / s.labelled
        low += s.population * bounds[0]
        high += s.population * bounds[1]
    return MissEstimate(total, low, high)


def true_positive_frames(
    confirmed_frames: float, unjudged_frames: float, precision_value: float | None
) -> float | None:
    """Alert-label frames inside true alert events, over every alert (reviewed or not).

    Confirmed events count in full; pending and unsure events count by the
    precision measured on judged ones (a ratio estimate), because the misses
    are estimated over all non-alert frames, not only over reviewed time.
    None when there are unjudged frames but no precision to scale them by.
    """
    if unjudged_frames > 0 and precision_value is None:
        return None
    return confirmed_frames + (precision_value or 0.0) * unjudged_frames


def estimate_recall(tp_frames: float, misses: MissEstimate) -> Estimate | None:
    """recall = TP / (TP + M); the interval takes M's bounds (TP's own uncertainty is ignored).

    None when there is nothing to measure (no true positives and no misses).
    With no true positives but misses, recall is 0 and its upper bound is 1
    when the misses' lower bound is 0 (nothing rules out "no bears at all").
    """
    if tp_frames + misses.misses <= 0:
        return None
    value = tp_frames / (tp_frames + misses.misses)
    low = tp_frames / (tp_frames + misses.high) if tp_frames + misses.high > 0 else 0.0
    high = tp_frames / (tp_frames + misses.low) if tp_frames + misses.low > 0 else 1.0
    return Estimate(value, low, high)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a recommendation is based on, for one camera.

    Attributes:
        judged: alerts confirmed, rejected or relabelled (precision's denominator).
        precision_low: the gating Wilson lower bound (see ``gating_precision``).
        precision_scope: which period it came from: "all", "day" or "night".
        recall: the estimated recall (point), or None when it cannot be estimated.
        audit_labelled: labelled audit samples behind the recall estimate.
        misses_found: labelled audit frames that showed an alert label (confirmed misses)
            in ``misses_scope``, out of ``misses_labelled`` labelled there.
        misses_scope: where the misses are worst: "night", "day" or "all".
        misses_recall: the estimated recall in ``misses_scope`` (None: not estimable).
    """

    judged: int
    precision_low: float | None
    precision_scope: str = "all"
    recall: float | None = None
    audit_labelled: int = 0
    misses_found: int = 0
    misses_labelled: int = 0
    misses_scope: str = "all"
    misses_recall: float | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A promotion recommendation: a stable code for scripts and a sentence for people."""

    code: str
    action: str  # "keep", "promote" or "demote"
    target_mode: str
    text: str


def gating_precision(
    lows: dict[str, tuple[int, float | None]], min_reviewed: int
) -> tuple[float | None, str]:
    """The precision lower bound a camera is judged by, and the period it came from.

    Args:
        lows: period ("all", "day", "night") → (judged, Wilson lower bound).
        min_reviewed: periods with fewer judged alerts are not trusted either way.

    Returns:
        The lowest lower bound among "all" and any day/night period with at least
        ``min_reviewed`` judged alerts — a camera that is fine by day but poor at
        night is judged by its nights — and that period's name.
    """
    best: tuple[float | None, str] = (lows.get("all", (0, None))[1], "all")
    for scope in ("day", "night"):
        judged, low = lows.get(scope, (0, None))
        if judged >= min_reviewed and low is not None and (best[0] is None or low < best[0]):
            best = (low, scope)
    return best


def recommend(mode: str, ev: Evidence, c: PromotionConfig) -> Recommendation:
    """The promotion rule for a camera in ``mode``, first match wins.

    ===========  ===========================================  ==============================
    mode         condition                                    code
    ===========  ===========================================  ==============================
    shadow       misses found, recall unknown or < min_recall investigate_shadow_misses
    review       misses found, recall unknown or < min_recall demote_shadow_misses
    active       misses found, recall unknown or < min_recall demote_review_misses
    any          judged < min_reviewed                        keep_<mode>_few_reviews
    shadow       precision low < min_precision_lower          keep_shadow_low_precision
    shadow       otherwise                                    promote_review
    review       precision low < min_precision_lower          demote_shadow_low_precision
    review       labelled audits < min_audit_labelled         keep_review_few_audits
    review       recall cannot be estimated                   keep_review_no_recall
    review       recall < min_recall                          keep_review_low_recall
    review       otherwise                                    promote_active
    active       precision low < min_precision_lower          demote_review_low_precision
    active       enough audits and recall < min_recall        demote_review_low_recall
    active       otherwise                                    keep_active
    ===========  ===========================================  ==============================

    "precision low" is the gating Wilson lower bound (``gating_precision``);
    recall is the point estimate, its interval is shown beside it.

    Misses come first, before the review count: a bear alarm that misses bears
    is the dangerous failure, and a precision that is not yet measured must not
    hide misses that already are (22 labelled misses at night read "too few
    reviews" before this rule existed).

    Raises:
        ValueError: for an unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be shadow, review or active; got {mode!r}")
    if ev.misses_found > 0 and (ev.misses_recall is None or ev.misses_recall < c.min_recall):
        return _misses_rule(mode, ev)
    if ev.judged < c.min_reviewed:
        return _few_reviews(mode, ev, c)
    assert ev.precision_low is not None  # judged > 0
    low_txt = _precision_text(ev)
    precise = ev.precision_low >= c.min_precision_lower
    if mode == "shadow":
        if not precise:
            return Recommendation(
                "keep_shadow_low_precision", "keep", "shadow",
                f"keep in shadow: {low_txt} {_below(ev.precision_low, c.min_precision_lower)}"
                f" < {c.min_precision_lower:.2f}",
            )  # fmt: skip
        return Recommendation(
            "promote_review", "promote", "review",
            f"ready for review: {low_txt} {ev.precision_low:.2f} ≥ {c.min_precision_lower:.2f}",
        )  # fmt: skip
    if not precise:
        target = "shadow" if mode == "review" else "review"
        return Recommendation(
            f"demote_{target}_low_precision", "demote", target,
            f"demote to {target}: {low_txt} fell below {c.min_precision_lower:.2f}"
            f" ({_below(ev.precision_low, c.min_precision_lower)})",
        )  # fmt: skip
    return _recall_rule(mode, ev, c)


def _misses_rule(mode: str, ev: Evidence) -> Recommendation:
    """Confirmed misses with a recall that does not clear the bar: step down and look where they are."""
    where = {"night": " at night", "day": " by day"}.get(ev.misses_scope, "")
    look = "investigate" + (f" {ev.misses_scope}" if ev.misses_scope != "all" else " the misses")
    recall = "—" if ev.misses_recall is None else f"{ev.misses_recall:.2f}"
    facts = (
        f"{ev.misses_found} of {ev.misses_labelled} labelled audit frames{where} were missed"
        f" (estimated recall {recall})"
    )
    if mode == "shadow":
        return Recommendation(
            "investigate_shadow_misses", "investigate", "shadow", f"keep in shadow, {look}: {facts}"
        )
    target = "shadow" if mode == "review" else "review"
    return Recommendation(
        f"demote_{target}_misses", "demote", target, f"demote to {target} / {look}: {facts}"
    )


def _few_reviews(mode: str, ev: Evidence, c: PromotionConfig) -> Recommendation:
    counts = f"{ev.judged} of {c.min_reviewed}"
    if mode == "active":
        return Recommendation(
            "keep_active_few_reviews", "keep", "active",
            f"keep active: too few reviews to judge ({counts})",
        )  # fmt: skip
    return Recommendation(
        f"keep_{mode}_few_reviews", "keep", mode, f"keep in {mode}: too few reviews ({counts})"
    )


def _recall_rule(mode: str, ev: Evidence, c: PromotionConfig) -> Recommendation:
    """Review → active needs recall too; active is demoted on a recall measured too low."""
    enough = ev.audit_labelled >= c.min_audit_labelled and ev.recall is not None
    if mode == "active":
        if enough and ev.recall is not None and ev.recall < c.min_recall:
            return Recommendation(
                "demote_review_low_recall", "demote", "review",
                f"demote to review: estimated recall fell below {c.min_recall:.2f}"
                f" ({_below(ev.recall, c.min_recall)})",
            )  # fmt: skip
        return Recommendation(
            "keep_active", "keep", "active",
            f"keep active: {_precision_text(ev)} {ev.precision_low:.2f} ≥ {c.min_precision_lower:.2f}",
        )  # fmt: skip
    if ev.audit_labelled < c.min_audit_labelled:
        return Recommendation(
            "keep_review_few_audits", "keep", "review",
            f"keep in review: too few labelled audit samples to estimate misses"
            f" ({ev.audit_labelled} of {c.min_audit_labelled})",
        )  # fmt: skip
    if ev.recall is None:
        return Recommendation(
            "keep_review_no_recall", "keep", "review",
            "keep in review: misses cannot be estimated (an audit stratum has no labelled sample)",
        )  # fmt: skip
    if ev.recall < c.min_recall:
        return Recommendation(
            "keep_review_low_recall", "keep", "review",
            f"keep in review: estimated recall {_below(ev.recall, c.min_recall)} < {c.min_recall:.2f}",
        )  # fmt: skip
    return Recommendation(
        "promote_active", "promote", "active",
        f"ready for active: {_precision_text(ev)} {ev.precision_low:.2f} ≥"
        f" {c.min_precision_lower:.2f} and estimated recall {ev.recall:.2f} ≥ {c.min_recall:.2f}"
        f" with {ev.audit_labelled} labelled audit samples",
    )  # fmt: skip


def _below(value: float, threshold: float) -> str:
    """``value`` with two decimals, or up to four where two would round it up to the threshold."""
    for digits in (2, 3, 4):
        text = f"{value:.{digits}f}"
        if float(text) < round(threshold, digits):
            return text
    return f"{value:.4f}"


def _precision_text(ev: Evidence) -> str:
    return "precision lower bound" if ev.precision_scope == "all" else (
        f"{ev.precision_scope} precision lower bound"
    )  # fmt: skip
