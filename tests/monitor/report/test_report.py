"""The rollout report: its arithmetic against hand-computed values, and `bearwatch report` on a seeded store."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from monitor.cli.report import InputError, parse_when
from monitor.config import PromotionConfig
from monitor.records import AuditSample, CameraStats, CandidateCounts, Disagreement, NewEvent
from monitor.report.periods import operations, stratum_population
from monitor.report.stats import (
    Evidence,
    MissEstimate,
    Stratum,
    estimate_misses,
    estimate_recall,
    gating_precision,
    is_night,
    percentile,
    precision,
    recommend,
    true_positive_frames,
    weighted_median,
    wilson_interval,
)
from monitor.store import ReviewStore
from tests.media import scene

EDMONTON = ZoneInfo("America/Edmonton")  # UTC-6 in June
APPROX = 5e-4  # hand computations below are carried to 4 decimals

# --- pure arithmetic -------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        # p = k/n, c = z²/n; centre = (p + c/2)/(1 + c); half = z/(1 + c)·√(p(1−p)/n + c/(4n)).
        (8, 10, (0.4902, 0.9433)),  # the example
        (50, 100, (0.4038, 0.5962)),  # c = .038416: centre .5, half 1.88749 · .050951
        (0, 10, (0.0, 0.2775)),  # centre = half = .19208/1.38416
        (10, 10, (0.7225, 1.0)),
        (1, 2, (0.0945, 0.9055)),
        (0, 3, (0.0, 0.5615)),
        (9, 12, (0.4677, 0.9111)),  # c = .320133: centre .689374, half .221684
        (5, 10, (0.2366, 0.7634)),
    ],
)
def test_wilson_interval(k: int, n: int, expected: tuple[float, float]) -> None:
    got = wilson_interval(k, n)
    assert got is not None
    assert got == pytest.approx(expected, abs=APPROX)


def test_wilson_interval_of_nothing_is_undefined_and_bad_counts_are_refused() -> None:
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="within 0..3"):
        wilson_interval(4, 3)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((8, 1, 1), (0.8, 0.4902, 0.9433)),  # a relabel counts against precision like a reject
        ((8, 2, 0), (0.8, 0.4902, 0.9433)),
        ((0, 3, 0), (0.0, 0.0, 0.5615)),
        ((0, 0, 0), None),  # nothing judged: no precision at all, not 0
    ],
)
def test_precision(counts: tuple[int, int, int], expected: tuple[float, ...] | None) -> None:
    est = precision(*counts)
    if expected is None:
        assert est is None
    else:
        assert est is not None
        assert (est.value, est.low, est.high) == pytest.approx(expected, abs=APPROX)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([5.0], 90, 5.0),
        ([1, 2, 3, 4], 50, 2.5),  # rank 1.5
        ([10, 20, 30, 40, 50], 90, 46.0),  # rank 3.6 → 40 + .6·10
        ([10, 20, 30, 40, 50], 0, 10.0),
        ([10, 20, 30, 40, 50], 100, 50.0),
        ([3, 1, 2], 50, 2.0),  # unsorted input
        ([60 * i for i in range(1, 11)], 90, 546.0),  # rank 8.1 → 540 + .1·60
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize(
    ("values", "weights", "expected"),
    [
        ([40, 50, 80], [100, 300, 50], 50),  # cumulative 100, 400 ≥ 225
        ([80, 40, 50], [50, 100, 300], 50),  # order of rows does not matter
        ([10, 20], [1, 1], 10),  # exactly half: the lower one
        ([10, 20], [1, 3], 20),
        ([10], [0], None),
        ([], [], None),
    ],
)
def test_weighted_median(values: list[float], weights: list[float], expected: float | None) -> None:
    assert weighted_median(values, weights) == expected


@pytest.mark.parametrize(
    ("hh", "mm", "night"),
    [(5, 59, True), (6, 0, False), (12, 0, False), (19, 59, False), (20, 0, True), (0, 0, True)],
)
def test_night_is_read_on_the_local_clock(hh: int, mm: int, night: bool) -> None:
    epoch = datetime(2024, 6, 3, hh, mm, tzinfo=EDMONTON).timestamp()
    assert is_night(epoch, EDMONTON, "20:00-06:00") is night
    # The same instant in UTC is six hours later: 05:59 local is 11:59 UTC, a day.
    utc_hour = (hh + 6) % 24
    assert is_night(epoch, ZoneInfo("UTC"), "20:00-06:00") is (utc_hour not in range(6, 20))


# (name, stored, counted by the daemon, random rate) → frames the stratum stands for
@pytest.mark.parametrize(
    ("name", "stored", "counted", "rate", "expected"),
    [
        ("random", 11, None, 0.1, 110.0),  # 11 kept at 10 % → 110 frames
        ("near_threshold", 4, None, 0.1, 4.0),  # targeted strata keep every eligible frame
        ("random", 3, 500, 0.1, 500.0),  # the daemon's count wins
        ("random", 30, 20, 0.1, 30.0),  # but never below what was kept
        ("random", 5, None, 0.0, 5.0),  # a zero rate cannot divide
    ],
)
def test_stratum_population(
    name: str, stored: int, counted: float | None, rate: float, expected: float
) -> None:
    assert stratum_population(name, stored, counted, rate) == expected


def test_estimate_misses_is_stratified_with_summed_bounds() -> None:
    strata = [Stratum("random", 100, 10, 1), Stratum("near_threshold", 4, 4, 2)]
    est = estimate_misses(strata)
    # 100·1/10 + 4·2/4; bounds 100·W(1,10) + 4·W(2,4) = 100·(.01787, .40416) + 4·(.15003, .84997)
    assert est is not None
    assert (est.misses, est.low, est.high) == pytest.approx((12.0, 2.3890, 43.8154), abs=2e-3)


@pytest.mark.parametrize(
    ("strata", "expected"),
    [
        ([], (0.0, 0.0, 0.0)),
        ([Stratum("random", 0, 0, 0)], (0.0, 0.0, 0.0)),  # an empty stratum adds nothing
        ([Stratum("random", 50, 5, 0), Stratum("low_confidence", 3, 0, 0)], None),  # unlabelled
    ],
)
def test_estimate_misses_edges(strata: list[Stratum], expected: tuple[float, ...] | None) -> None:
    est = estimate_misses(strata)
    assert (None if est is None else (est.misses, est.low, est.high)) == expected


@pytest.mark.parametrize(
    ("confirmed", "unjudged", "prec", "expected"),
    [(50, 10, 1.0, 60.0), (50, 10, 0.5, 55.0), (50, 0, None, 50.0), (50, 10, None, None)],
)
def test_true_positive_frames(
    confirmed: float, unjudged: float, prec: float | None, expected: float | None
) -> None:
    assert true_positive_frames(confirmed, unjudged, prec) == expected


@pytest.mark.parametrize(
    ("tp", "misses", "expected"),
    [
        # 60/(60+12); 60/(60+43.8154); 60/(60+2.389)
        (60, MissEstimate(12, 2.389, 43.8154), (0.8333, 0.5779, 0.9617)),
        (10, MissEstimate(0, 0, 0), (1.0, 1.0, 1.0)),
        (0, MissEstimate(5, 0, 10), (0.0, 0.0, 1.0)),  # missed everything it saw
        (0, MissEstimate(0, 0, 0), None),  # nothing to catch
    ],
)
def test_estimate_recall(
    tp: float, misses: MissEstimate, expected: tuple[float, ...] | None
) -> None:
    est = estimate_recall(tp, misses)
    got = None if est is None else (est.value, est.low, est.high)
    assert got == (None if expected is None else pytest.approx(expected, abs=APPROX))


@pytest.mark.parametrize(
    ("lows", "min_reviewed", "expected"),
    [
        ({"all": (30, 0.86), "day": (20, 0.9), "night": (10, 0.6)}, 10, (0.6, "night")),
        ({"all": (30, 0.86), "day": (20, 0.9), "night": (10, 0.6)}, 30, (0.86, "all")),
        ({"all": (30, 0.86), "day": (30, 0.8), "night": (0, None)}, 30, (0.8, "day")),
        ({"all": (0, None), "day": (0, None), "night": (0, None)}, 10, (None, "all")),
    ],
)
def test_gating_precision_judges_a_camera_by_its_worse_period(
    lows: dict[str, tuple[int, float | None]], min_reviewed: int, expected: tuple[Any, str]
) -> None:
    assert gating_precision(lows, min_reviewed) == expected


CRITERIA = PromotionConfig(
    min_reviewed=30, min_precision_lower=0.8, min_recall=0.9, min_audit_labelled=50
)


@pytest.mark.parametrize(
    ("mode", "evidence", "code", "text"),
    [
        ("shadow", Evidence(12, 0.5), "keep_shadow_few_reviews",
         "keep in shadow: too few reviews (12 of 30)"),
        ("shadow", Evidence(40, 0.72), "keep_shadow_low_precision",
         "keep in shadow: precision lower bound 0.72 < 0.80"),
        ("shadow", Evidence(40, 0.7996), "keep_shadow_low_precision",  # not "0.80 < 0.80"
         "keep in shadow: precision lower bound 0.7996 < 0.80"),
        ("shadow", Evidence(40, 0.62, "night"), "keep_shadow_low_precision",
         "keep in shadow: night precision lower bound 0.62 < 0.80"),
        ("shadow", Evidence(40, 0.86), "promote_review",
         "ready for review: precision lower bound 0.86 ≥ 0.80"),
        ("review", Evidence(5, None), "keep_review_few_reviews",
         "keep in review: too few reviews (5 of 30)"),
        ("review", Evidence(40, 0.7), "demote_shadow_low_precision",
         "demote to shadow: precision lower bound fell below 0.80 (0.70)"),
        ("review", Evidence(40, 0.85, recall=0.95, audit_labelled=12), "keep_review_few_audits",
         "keep in review: too few labelled audit samples to estimate misses (12 of 50)"),
        ("review", Evidence(40, 0.85, recall=None, audit_labelled=60), "keep_review_no_recall",
         "keep in review: misses cannot be estimated (an audit stratum has no labelled sample)"),
        ("review", Evidence(40, 0.85, recall=0.85, audit_labelled=60), "keep_review_low_recall",
         "keep in review: estimated recall 0.85 < 0.90"),
        ("review", Evidence(40, 0.85, recall=0.8995, audit_labelled=60), "keep_review_low_recall",
         "keep in review: estimated recall 0.899 < 0.90"),
        ("review", Evidence(40, 0.85, recall=0.95, audit_labelled=60), "promote_active",
         "ready for active: precision lower bound 0.85 ≥ 0.80 and estimated recall 0.95 ≥ 0.90"
         " with 60 labelled audit samples"),
        ("active", Evidence(3, None), "keep_active_few_reviews",
         "keep active: too few reviews to judge (3 of 30)"),
        ("active", Evidence(40, 0.7), "demote_review_low_precision",
         "demote to review: precision lower bound fell below 0.80 (0.70)"),
        ("active", Evidence(40, 0.85, recall=0.8, audit_labelled=60), "demote_review_low_recall",
         "demote to review: estimated recall fell below 0.90 (0.80)"),
        ("active", Evidence(40, 0.85, recall=0.8, audit_labelled=10), "keep_active",
         "keep active: precision lower bound 0.85 ≥ 0.80"),  # too few audits to judge recall
        ("active", Evidence(40, 0.85, recall=0.95, audit_labelled=60), "keep_active",
         "keep active: precision lower bound 0.85 ≥ 0.80"),
        # Confirmed misses lead, whatever the review count.
        ("shadow", Evidence(24, None, misses_found=22, misses_labelled=22, misses_scope="night"),
         "investigate_shadow_misses", "keep in shadow, investigate night: 22 of 22 labelled audit frames"
         " at night were missed (estimated recall —)"),
        ("review", Evidence(5, None, misses_found=3, misses_labelled=40, misses_recall=0.6),
         "demote_shadow_misses", "demote to shadow / investigate the misses: 3 of 40 labelled"
         " audit frames were missed (estimated recall 0.60)"),
        ("active", Evidence(40, 0.85, misses_found=2, misses_labelled=9, misses_scope="day",
                            misses_recall=0.5), "demote_review_misses",
         "demote to review / investigate day: 2 of 9 labelled audit frames by day were missed"
         " (estimated recall 0.50)"),
        # Misses with a recall that clears the bar: the other rules decide.
        ("active", Evidence(40, 0.85, recall=0.95, audit_labelled=60, misses_found=1,
                            misses_labelled=60, misses_recall=0.95), "keep_active",
         "keep active: precision lower bound 0.85 ≥ 0.80"),
    ],
)  # fmt: skip
def test_recommendation_rules(mode: str, evidence: Evidence, code: str, text: str) -> None:
    rec = recommend(mode, evidence, CRITERIA)
    assert (rec.code, rec.text) == (code, text)
    assert rec.action == code.split("_")[0]
    assert rec.target_mode in ("shadow", "review", "active")


def test_recommendation_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode must be"):
        recommend("paused", Evidence(40, 0.9), CRITERIA)


def test_operations_from_stats_rows() -> None:
    rows = [_stats_row(60, 60, 100, 0, 40, 90), _stats_row(60, 30, 50, 2, 80, 200),
            _stats_row(60, 60, 300, 0, 50, 120), _stats_row(60, 0, 0, 1, None, None)]  # fmt: skip
    assert operations(rows) == {
        "stats_rows": 4, "frames": 450, "uptime": 0.625, "reconnects": 3,
        "latency_p50_ms": 50.0, "latency_p99_ms": 200.0,
    }  # fmt: skip
    assert operations([])["uptime"] is None


def _stats_row(period: float, online: float, frames: int, rec: int, p50: Any, p99: Any) -> dict:  # type: ignore[type-arg]
    return {"period_s": period, "online_s": online, "frames": frames, "reconnects": rec,
            "latency_p50_ms": p50, "latency_p99_ms": p99}  # fmt: skip


NOW = 1_000_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        ("2w", NOW - 14 * 86400),
        ("2024-06-03", 1_717_394_400.0),  # local midnight in Edmonton = 06:00 UTC
        ("2024-06-03T20:00", 1_717_466_400.0),  # 20:00 local = 02:00 UTC next day
        ("2024-06-03T20:00+00:00", 1_717_444_800.0),  # an offset wins over the zone
    ],
)
def test_parse_when(text: str, expected: float) -> None:
    assert parse_when(text, EDMONTON, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7x", "2024-13-01", ""])
def test_parse_when_refuses_garbage(text: str) -> None:
    with pytest.raises(InputError, match="bad date"):
        parse_when(text, EDMONTON, NOW)


# --- a seeded store through `bearwatch report` ----------------------------------

CONFIG = """\
timezone: America/Edmonton
model: {path: model.onnx}
cameras:
  - {id: gate, source: "0", mode: shadow}
  - {id: creek, source: "1", mode: shadow}
  - {id: lodge, source: "2", mode: active}
audit: {random_rate: 0.1}
promotion: {min_reviewed: 10, min_precision_lower: 0.45, min_recall: 0.8, min_audit_labelled: 10}
"""


def local(day: int, hh: int, mm: int = 0) -> float:
    return datetime(2024, 6, day, hh, mm, tzinfo=EDMONTON).timestamp()


def jpeg(kind: str = "bear", seed: int = 0) -> bytes:
    ok, buf = cv2.imencode(".jpg", scene(kind, seed=seed), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


def alert(
    store: ReviewStore,
    camera: str,
    start: float,
    status: str | None = None,
    *,
    after_s: float = 60.0,
    relabel: str | None = None,
    frames: int = 1,
    kind: str = "alert",
    label: str = "bear",
    flags: tuple[str, ...] = (),
) -> int:
    """Add an event and (optionally) a verdict given ``after_s`` after it was stored."""
    ev = NewEvent(camera=camera, label=label, kind=kind, start_at=start, end_at=start + 30,
                  peak_score=0.9, model_version="color-test-1", mode="shadow",
                  snapshot_jpeg=jpeg(), drift_flags=flags, frames=frames)  # fmt: skip
    event_id = store.add_event(ev)
    assert event_id is not None
    if status is not None:
        created = store.get_event(event_id)["created_at"]  # type: ignore[index]
        assert store.set_verdict(event_id, status, "ranger-ann", relabel=relabel,
                                 reviewed_at=created + after_s)  # fmt: skip
    return event_id


def audit(store: ReviewStore, camera: str, at: float, reason: str, label: str | None) -> None:
    sample = AuditSample(camera, at, reason, "color-test-1", "empty", 0.1, {"bear": 0.1},
                         jpeg("bear" if label == "bear" else "empty"))  # fmt: skip
    sample_id = store.add_audit_sample(sample)
    assert sample_id is not None
    if label is not None:
        assert store.label_audit_sample(sample_id, label, "ranger-bob")


def seed_gate(store: ReviewStore) -> None:
    """Shadow: 10 day alerts (8 confirmed, 2 rejected) and 4 night ones of every other kind."""
    starts = [local(3, 6, 0)] + [local(3, 10) + 600 * k for k in range(9)]  # 06:00 is day
    for i, start in enumerate(starts):
        alert(store, "gate", start, "confirmed" if i < 8 else "rejected", after_s=60 * (i + 1))
    alert(store, "gate", local(3, 20, 0), "confirmed", after_s=3600)  # 20:00 is night
    alert(store, "gate", local(3, 23, 30), "relabelled", after_s=3600, relabel="person")
    alert(store, "gate", local(4, 2, 0), "unsure", after_s=3600)
    alert(store, "gate", local(4, 5, 59))  # pending, still night
    alert(store, "gate", local(2, 12, 0), "confirmed")  # before the window
    alert(store, "gate", local(5, 0, 0), "rejected")  # --until is exclusive
    alert(store, "gate", local(3, 21), kind="drift", label="shifted", flags=("brightness",))
    alert(store, "gate", local(3, 22), kind="drift", label="in_domain")  # a recovery
    alert(store, "gate", local(4, 12), kind="drift", label="degraded", flags=("frozen",))


def seed_creek(store: ReviewStore) -> None:
    """Set to review at runtime; perfect by day, a coin toss by night; a shadow candidate."""
    for k in range(12):
        alert(store, "creek", local(3, 8, 0) + 900 * k, "confirmed")
    for k in range(10):
        alert(store, "creek", local(3, 21, 0) + 600 * k, "confirmed" if k < 5 else "rejected")
    store.set_camera_mode("creek", "review", "ranger-ann", "day precision looks good")
    counts = [CandidateCounts("creek", local(3, 12), "color-test-1", "cand-2", 200, 190, 12, 15),
              CandidateCounts("creek", local(4, 12), "color-test-1", "cand-2", 100, 100, 3, 3),
              CandidateCounts("creek", local(6, 12), "color-test-1", "cand-2", 999, 0, 0, 0)]  # fmt: skip
    dis = [Disagreement("creek", local(3, 12, k), "bear", 0.91, "empty", 0.8, "cand-2",
                        jpeg("bear", seed=k) if k < 2 else None) for k in range(3)]  # fmt: skip
    store.add_candidate_comparison(counts[0], dis)
    store.add_candidate_comparison(counts[1], [])
    later = Disagreement("creek", local(6, 12), "empty", 0.9, "bear", 0.7, "cand-2", jpeg())
    store.add_candidate_comparison(counts[2], [later])  # outside the window


def seed_lodge(store: ReviewStore) -> None:
    """Active: every judged alert right, audit samples in three strata, operating statistics."""
    for k in range(10):
        alert(store, "lodge", local(3, 9, 0) + 600 * k, "confirmed", frames=5)
    for k in range(2):
        alert(store, "lodge", local(4, 10, 0) + 600 * k, frames=5)  # pending
    labels = ["empty"] * 9 + ["bear", None]  # random: 11 kept, 10 labelled, 1 miss
    for k, label in enumerate(labels):
        audit(store, "lodge", local(3, 13, k), "random", label)
    for k, label in enumerate(["bear", "bear", "empty", "empty"]):
        audit(store, "lodge", local(3, 14, k), "near_threshold", label)
    for k in range(2):
        audit(store, "lodge", local(3, 15, k), "low_confidence", "person")
    audit(store, "lodge", local(5, 1, 0), "random", "bear")  # outside the window
    store.add_camera_stats([
        CameraStats("lodge", local(3, 12, 0), 60, 60, 100, 0, 40.0, 90.0),
        CameraStats("lodge", local(3, 12, 1), 60, 30, 50, 2, 80.0, 200.0),
        CameraStats("lodge", local(3, 12, 2), 60, 60, 300, 0, 50.0, 120.0),
        CameraStats("lodge", local(3, 23, 0), 60, 0, 0, 1, None, None),
        CameraStats("lodge", local(6, 12, 0), 60, 60, 9999, 9, 1.0, 9999.0),  # outside
    ])  # fmt: skip


def seed_ridge(store: ReviewStore) -> None:
    """Not in the config; the daemon counted every stratum's frames into its statistics rows."""
    for k in range(4):
        alert(store, "ridge", local(3, 9) + 600 * k, "confirmed", frames=10)
    for k in range(10):
        audit(store, "ridge", local(3, 10, k), "random", "empty")
    for k, label in enumerate(["bear", "empty", "empty", "empty", "empty"]):
        audit(store, "ridge", local(3, 11, k), "near_threshold", label)
    half = {"population": {"random": 500, "near_threshold": 10, "low_confidence": 0},
            "sampled": {"random": 5, "near_threshold": 3, "low_confidence": 0}}  # fmt: skip
    store.add_camera_stats(
        [
            CameraStats("ridge", local(3, h), 3600, 3600, 1000, 0, 30.0, 60.0, audit=half)
            for h in (10, 11)
        ]  # fmt: skip
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("report")
    (d / "bearwatch.yaml").write_text(CONFIG)
    store = ReviewStore(d / "bearwatch.db")
    try:
        seed_gate(store)
        seed_creek(store)
        seed_lodge(store)
        seed_ridge(store)
    finally:
        store.close()
    return d / "bearwatch.db", d / "bearwatch.yaml"


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "report", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def report(seeded: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db, cfg = seeded
    out = tmp_path_factory.mktemp("out") / "report"
    proc = run_report("--store", str(db), "--config", str(cfg), "--since", "2024-06-03",
                      "--until", "2024-06-05", "--out", str(out), "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    on_disk = json.loads((out / "report.json").read_text())
    assert {k: v for k, v in printed.items() if k != "plots"} == {
        k: v for k, v in on_disk.items() if k != "plots"
    }
    return {"json": on_disk, "out": out}


def test_report_window_and_cameras(report: dict[str, Any]) -> None:
    r = report["json"]
    assert r["window"] == {
        "since": "2024-06-03T06:00:00Z", "until": "2024-06-05T06:00:00Z",
        "timezone": "America/Edmonton", "night_from": "pixels", "night_hours": "20:00-06:00",
        "series_bucket": "day",
    }  # fmt: skip
    assert r["criteria"]["min_precision_lower"] == 0.45
    assert list(r["cameras"]) == ["creek", "gate", "lodge", "ridge"]


def test_gate_counts_precision_review_time_and_day_night_split(report: dict[str, Any]) -> None:
    gate = report["json"]["cameras"]["gate"]
    counts = ("alerts", "confirmed", "rejected", "unsure", "relabelled", "pending", "judged")
    got = {p: tuple(gate["periods"][p][k] for k in counts) for p in ("all", "day", "night")}
    assert got == {"all": (14, 9, 2, 1, 1, 1, 12), "day": (10, 8, 2, 0, 0, 0, 10),
                   "night": (4, 1, 0, 1, 1, 1, 2)}  # fmt: skip
    assert gate["periods"]["all"]["precision"] == {"value": 0.75, "low": 0.4677, "high": 0.9111}
    assert gate["periods"]["day"]["precision"] == {"value": 0.8, "low": 0.4902, "high": 0.9433}
    assert gate["periods"]["night"]["precision"] == {"value": 0.5, "low": 0.0945, "high": 0.9055}
    # Review times 60, 120, … 600 s by day and 3600 s three times by night.
    assert gate["periods"]["day"]["review_time_s"] == {"n": 10, "median": 330.0, "p90": 546.0}
    assert gate["periods"]["all"]["review_time_s"] == {"n": 13, "median": 420.0, "p90": 3600.0}
    assert gate["periods"]["all"]["recall"] is None
    assert gate["periods"]["all"]["recall_note"] == "no labelled audit samples"
    assert (gate["mode"], gate["mode_source"]) == ("shadow", "config")
    assert gate["recommendation"] == {
        "code": "promote_review", "action": "promote", "target_mode": "review",
        "text": "ready for review: precision lower bound 0.47 ≥ 0.45", "precision_scope": "all",
        "misses_scope": "all",
    }  # fmt: skip
    assert [(p["bucket"], p["alerts"], p["judged"]) for p in gate["precision_series"]] == [
        ("2024-06-03", 12, 12), ("2024-06-04", 2, 0)
    ]  # fmt: skip
    assert gate["precision_series"][1]["precision"] is None


def test_gate_drift_counts_departures_not_recoveries(report: dict[str, Any]) -> None:
    gate = report["json"]["cameras"]["gate"]
    assert gate["drift"]["events"] == 2
    assert gate["drift"]["states"] == {"degraded": 1, "in_domain": 1, "shifted": 1}
    assert gate["drift"]["flags"] == {"brightness": 1, "frozen": 1}
    assert [gate["periods"][p]["drift_events"] for p in ("all", "day", "night")] == [2, 1, 1]


def test_creek_is_judged_by_its_nights_and_demoted(report: dict[str, Any]) -> None:
    creek = report["json"]["cameras"]["creek"]
    assert (creek["mode"], creek["mode_source"], creek["mode_changed_by"]) == (
        "review", "store", "ranger-ann"
    )  # fmt: skip
    assert creek["periods"]["all"]["precision"] == {"value": 0.7727, "low": 0.5656, "high": 0.8988}
    assert creek["periods"]["day"]["precision"] == {"value": 1.0, "low": 0.7575, "high": 1.0}
    assert creek["periods"]["night"]["precision"] == {"value": 0.5, "low": 0.2366, "high": 0.7634}
    assert creek["recommendation"]["code"] == "demote_shadow_low_precision"
    assert creek["recommendation"]["precision_scope"] == "night"
    assert creek["recommendation"]["text"] == (
        "demote to shadow: night precision lower bound fell below 0.45 (0.24)"
    )


def test_creek_shadow_candidate(report: dict[str, Any]) -> None:
    creek = report["json"]["cameras"]["creek"]
    (cand,) = creek["candidate"]
    low, high = wilson_interval(290, 300)  # type: ignore[misc]
    assert cand == {
        "production_version": "color-test-1", "candidate_version": "cand-2",
        "frames": 300, "agreements": 290, "disagreements": 10,
        "agreement": {"value": 0.9667, "low": round(low, 4), "high": round(high, 4)},
        "production_alerts": 15, "candidate_alerts": 18,
    }  # fmt: skip
    assert [(d["production_label"], d["candidate_label"], d["has_snapshot"])
            for d in creek["disagreements"]] == [("bear", "empty", False), ("bear", "empty", True),
                                                  ("bear", "empty", True)]  # fmt: skip


def test_lodge_recall_estimate_and_operations(report: dict[str, Any]) -> None:
    lodge = report["json"]["cameras"]["lodge"]["periods"]["all"]
    assert lodge["precision"] == {"value": 1.0, "low": 0.7225, "high": 1.0}
    au = lodge["audit"]
    assert (au["samples"], au["labelled"], au["misses_found"], au["population_source"]) == (
        17, 16, 3, "sampling_rate"
    )  # fmt: skip
    assert {k: (s["population"], s["samples"], s["labelled"], s["misses"])
            for k, s in au["strata"].items()} == {
        "random": (110.0, 11, 10, 1), "low_confidence": (2.0, 2, 2, 0),
        "near_threshold": (4.0, 4, 4, 2),
    }  # fmt: skip
    assert list(au["strata"]) == ["random", "low_confidence", "near_threshold"]
    # TP = 10 confirmed · 5 frames + precision 1.0 · 2 pending · 5 frames = 60.
    # M = 110·1/10 + 4·2/4 + 2·0/2 = 13;  low 110·.017874 + 4·.150030 = 2.5664;
    # high 110·.404158 + 4·.849970 + 2·.657628 = 49.1727.
    rec = lodge["recall"]
    assert rec["tp_frames"] == 60.0
    assert rec["estimated_misses"] == 13.0
    assert rec["estimated_misses_low"] == pytest.approx(2.5664, abs=APPROX)
    assert rec["estimated_misses_high"] == pytest.approx(49.1727, abs=2e-3)
    assert rec["value"] == pytest.approx(60 / 73, abs=1e-4)  # 0.8219
    assert rec["low"] == pytest.approx(60 / (60 + 49.1727), abs=APPROX)  # 0.5496
    assert rec["high"] == pytest.approx(60 / (60 + 2.5664), abs=APPROX)  # 0.9590
    assert lodge["operations"] == {
        "stats_rows": 4, "frames": 450, "uptime": 0.625, "reconnects": 3,
        "latency_p50_ms": 50.0, "latency_p99_ms": 200.0,
    }  # fmt: skip
    night = report["json"]["cameras"]["lodge"]["periods"]["night"]["operations"]
    assert (night["uptime"], night["reconnects"], night["latency_p50_ms"]) == (0.0, 1, None)
    assert report["json"]["cameras"]["lodge"]["recommendation"]["text"] == (
        "keep active: precision lower bound 0.72 ≥ 0.45"
    )


def test_ridge_recall_from_the_daemons_stratum_counts(report: dict[str, Any]) -> None:
    ridge = report["json"]["cameras"]["ridge"]
    assert (ridge["mode"], ridge["mode_source"]) == ("shadow", "default")
    au = ridge["periods"]["all"]["audit"]
    assert au["population_source"] == "camera_stats"
    assert {k: (s["population"], s["labelled"], s["misses"]) for k, s in au["strata"].items()} == {
        "random": (1000.0, 10, 0), "low_confidence": (0.0, 0, 0), "near_threshold": (20.0, 5, 1)
    }  # fmt: skip
    # TP = 4 · 10 frames; M = 1000·0/10 + 20·1/5 = 4; W(0,10) = (0, .27754), W(1,5) = (.03622, .62447)
    rec = ridge["periods"]["all"]["recall"]
    assert (rec["tp_frames"], rec["estimated_misses"], rec["value"]) == (40.0, 4.0, 0.9091)
    assert rec["estimated_misses_low"] == pytest.approx(0.7245, abs=2e-3)
    assert rec["estimated_misses_high"] == pytest.approx(290.03, abs=0.05)
    assert rec["low"] == pytest.approx(40 / 330.03, abs=APPROX)  # 0.1212
    assert rec["high"] == pytest.approx(40 / 40.7245, abs=APPROX)  # 0.9822
    assert ridge["recommendation"]["text"] == "keep in shadow: too few reviews (4 of 10)"


def test_report_html_embeds_valid_plots_and_thumbnails(report: dict[str, Any]) -> None:
    out: Path = report["out"]
    plots = report["json"]["plots"]
    assert set(plots) == {"precision_over_time", "day_night", "verdicts", "latency"}
    html = (out / "report.html").read_text()
    for name, file in plots.items():
        image = cv2.imread(str(out / file))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 300, name
        assert f'data-plot="{file}"' in html
    embedded = re.findall(r'src="data:image/(png|jpeg);base64,([^"]+)"', html)
    kinds = [k for k, _ in embedded]
    assert kinds.count("png") == 4 and kinds.count("jpeg") == 2  # two disagreements had frames
    for _, data in embedded:
        decoded = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None
    assert "ready for review: precision lower bound 0.47 ≥ 0.45" in html
    assert "http://" not in html and "https://" not in html  # self-contained: no outside fetches


def test_report_prints_a_summary_without_json(seeded: tuple[Path, Path], tmp_path: Path) -> None:
    db, cfg = seeded
    proc = run_report("--store", str(db), "--config", str(cfg), "--since", "2024-06-03",
                      "--until", "2024-06-05", "--out", str(tmp_path / "r"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        "bearwatch report: 2024-06-03 00:00 → 2024-06-05 00:00 America/Edmonton (night 20:00-06:00)"
    )
    assert any(line.startswith("gate") and "0.75 (0.47–0.91)" in line for line in lines)
    assert lines[-1] == f"report: {tmp_path / 'r' / 'report.html'}"


def test_report_without_config_uses_defaults_and_utc(
    seeded: tuple[Path, Path], tmp_path: Path
) -> None:
    db, _ = seeded
    proc = run_report("--store", str(db), "--out", str(tmp_path / "r"), "--json",
                      "--since", "2024-06-03T06:00+00:00", "--until", "2024-06-05T06:00+00:00")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["window"]["timezone"] == "UTC"
    assert r["criteria"] == PromotionConfig().model_dump()
    gate = r["cameras"]["gate"]
    assert (gate["mode"], gate["mode_source"]) == ("shadow", "default")
    assert gate["periods"]["all"]["alerts"] == 14  # the same window, read in UTC
    assert gate["recommendation"]["text"] == "keep in shadow: too few reviews (12 of 30)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--store", "{d}/missing.db"), "report: no review store at {d}/missing.db"),
        (("--store", "{db}", "--since", "last tuesday"), "report: bad date 'last tuesday'"),
        (("--store", "{db}", "--since", "2024-06-05", "--until", "2024-06-03"),
         "report: --since (2024-06-05) must be before --until (2024-06-03)"),
        (("--store", "{db}", "--config", "{d}/nope.yaml"),
         "report: invalid configuration {d}/nope.yaml: cannot read config file"),
    ],
)  # fmt: skip
def test_report_bad_input_is_one_line_and_exit_2(
    seeded: tuple[Path, Path], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    db, _ = seeded
    fill = {"d": str(tmp_path), "db": str(db)}
    proc = run_report(*(a.format(**fill) for a in args), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr.startswith(message.format(**fill))
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "missing.db").exists()  # a typo must not create a store
