"""One period's figures from its rows: verdict counts, precision, review time, misses and recall, operations.

Pure: the rows come in as the review store returns them (dicts), the numbers
go out JSON-ready (rounded to 4 digits), and the arithmetic is
``monitor.report.stats``'s. ``monitor.report.build`` decides which rows form a period.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.report.stats import (
    Estimate,
    Stratum,
    estimate_misses,
    estimate_recall,
    percentile,
    precision,
    proportion,
    true_positive_frames,
    unestimable_strata,
    weighted_median,
)

Row = dict[str, Any]
# Display order of audit strata (the sampler's names); unknown reasons sort after them.
STRATA_ORDER = ("random", "low_confidence", "near_threshold")


def period_summary(
    *,
    alerts: list[Row],
    drift_events: int,
    audits: list[Row],
    stats: list[Row],
    alert_labels: set[str],
    random_rate: float,
) -> dict[str, Any]:
    """Verdict counts, precision, review time, the miss/recall estimate and operations of one period."""
    counts = Counter(e["review_status"] for e in alerts)
    c, r, u, rl = (counts[k] for k in ("confirmed", "rejected", "unsure", "relabelled"))
    prec = precision(c, r, rl)
    review_s = [
        max(0.0, e["reviewed_at"] - e["created_at"]) for e in alerts if e["reviewed_at"] is not None
    ]
    audit, strata = _audit(audits, stats, alert_labels, random_rate)
    recall, note = _recall(alerts, prec, strata, audit["labelled"])
    return {
        "alerts": len(alerts),
        "confirmed": c,
        "rejected": r,
        "unsure": u,
        "relabelled": rl,
        "pending": counts["pending"],
        "judged": c + r + rl,
        "precision": estimate_json(prec),
        "review_time_s": {
            "n": len(review_s),
            "median": rounded(percentile(review_s, 50)),
            "p90": rounded(percentile(review_s, 90)),
        },
        "drift_events": drift_events,
        "audit": audit,
        "recall": recall,
        "recall_note": note,
        "operations": operations(stats),
    }


def _audit(
    audits: list[Row], stats: list[Row], alert_labels: set[str], random_rate: float
) -> tuple[dict[str, Any], list[Stratum]]:
    """Per-stratum samples, labels and misses; each stratum's population (see ``stratum_population``)."""
    populations = _stats_populations(stats)
    source = "camera_stats" if any(populations.values()) else "sampling_rate"
    names = sorted(
        {a["reason"] for a in audits} | set(populations),
        key=lambda n: (STRATA_ORDER.index(n) if n in STRATA_ORDER else len(STRATA_ORDER), n),
    )
    strata, out = [], {}
    for name in names:
        rows = [a for a in audits if a["reason"] == name]
        labelled = [a for a in rows if a["label"] is not None]
        misses = sum(1 for a in labelled if a["label"] in alert_labels)
        pop = stratum_population(name, len(rows), populations.get(name), random_rate)
        strata.append(Stratum(name, pop, len(labelled), misses))
        out[name] = {
            "population": rounded(pop),
            "samples": len(rows),
            "labelled": len(labelled),
            "misses": misses,
            "miss_fraction": estimate_json(proportion(misses, len(labelled))),
        }
    return {
        "samples": len(audits),
        "labelled": sum(s.labelled for s in strata),
        "misses_found": sum(s.misses for s in strata),
        "population_source": source,
        "strata": out,
    }, strata


def stratum_population(name: str, stored: int, counted: float | None, random_rate: float) -> float:
    """How many non-alert frames a stratum stands for.

    The daemon counts every eligible frame per stratum into its statistics rows;
    when those counts exist they are used (never below the samples stored: a
    stratum cannot hold fewer frames than were kept from it). Without them the
    size is inferred from the sampling rule: the random stratum keeps
    ``random_rate`` of its frames, targeted strata keep every eligible frame —
    both assuming the per-hour cap was never reached.
    """
    if counted is not None:
        return max(float(counted), float(stored))
    rate = random_rate if name == "random" and random_rate > 0 else 1.0
    return stored / rate


def _stats_populations(stats: list[Row]) -> dict[str, float]:
    """Stratum populations summed over statistics rows that carry them (``audit`` column)."""
    total: dict[str, float] = {}
    for row in stats:
        audit = row.get("audit")
        if isinstance(audit, str):
            audit = json.loads(audit) if audit else None
        for name, n in ((audit or {}).get("population") or {}).items():
            total[name] = total.get(name, 0.0) + float(n)
    return total


def _recall(
    alerts: list[Row], prec: Estimate | None, strata: list[Stratum], labelled: int
) -> tuple[dict[str, Any] | None, str | None]:
    if labelled == 0:
        return None, "no labelled audit samples"
    missing = unestimable_strata(strata)
    misses = estimate_misses(strata)
    if misses is None:
        return None, "no labelled sample in stratum " + ", ".join(missing)
    confirmed = sum(e["frames"] for e in alerts if e["review_status"] == "confirmed")
    unjudged = sum(e["frames"] for e in alerts if e["review_status"] in ("pending", "unsure"))
    tp = true_positive_frames(confirmed, unjudged, None if prec is None else prec.value)
    if tp is None:
        return None, "no judged alerts to tell how many alert frames were true"
    recall = estimate_recall(tp, misses)
    if recall is None:
        return None, "no alert-label frames: nothing was there to miss"
    return {
        **(estimate_json(recall) or {}),
        "tp_frames": rounded(tp),
        "estimated_misses": rounded(misses.misses),
        "estimated_misses_low": rounded(misses.low),
        "estimated_misses_high": rounded(misses.high),
    }, None


def operations(stats: list[Row]) -> dict[str, Any]:
    """Frames, uptime, reconnects and capture→decision latency from statistics rows.

    p50 is the frame-weighted median of the rows' p50s; p99 is the largest
    row p99, an upper bound on the window's p99 (no row has more than 1 % of
    its frames above its own p99, so neither does their union above the max).
    """
    period = sum(r["period_s"] for r in stats)
    with_p50 = [r for r in stats if r["latency_p50_ms"] is not None]
    p99s = [r["latency_p99_ms"] for r in stats if r["latency_p99_ms"] is not None]
    return {
        "stats_rows": len(stats),
        "frames": sum(int(r["frames"]) for r in stats),
        "uptime": rounded(sum(r["online_s"] for r in stats) / period) if period > 0 else None,
        "reconnects": sum(int(r["reconnects"]) for r in stats),
        "latency_p50_ms": rounded(
            weighted_median(
                [r["latency_p50_ms"] for r in with_p50], [r["frames"] for r in with_p50]
            )
        ),
        "latency_p99_ms": rounded(max(p99s)) if p99s else None,
    }


def precision_series(alerts: Iterable[Row], zone: ZoneInfo, width: str) -> list[dict[str, Any]]:
    """Precision per local day (or ISO week) of the alerts' start, for the trend plot."""
    buckets: dict[str, Counter[str]] = {}
    for e in alerts:
        local = datetime.fromtimestamp(e["start_at"], zone)
        if width == "week":
            year, week, _ = local.isocalendar()
            key = f"{year}-W{week:02d}"
        else:
            key = local.date().isoformat()
        buckets.setdefault(key, Counter())[e["review_status"]] += 1
    out = []
    for key in sorted(buckets):
        n = buckets[key]
        est = precision(n["confirmed"], n["rejected"], n["relabelled"])
        out.append(
            {
                "bucket": key,
                "alerts": sum(n.values()),
                "judged": n["confirmed"] + n["rejected"] + n["relabelled"],
                "confirmed": n["confirmed"],
                "precision": estimate_json(est),
            }
        )
    return out


def estimate_json(est: Estimate | None) -> dict[str, float] | None:
    if est is None:
        return None
    return {"value": round(est.value, 4), "low": round(est.low, 4), "high": round(est.high, 4)}


def rounded(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)
