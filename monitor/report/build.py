"""The rollout report's numbers: reads the review store and summarises each camera, by day and by night.

The arithmetic lives in ``monitor.report.stats``; this module only decides
which rows go into which figure. Rows belong to the report window and to
day/night by their own time: events by ``start_at``, audit samples by
``captured_at``, statistics and candidate counts by ``at`` (the end of their
period). Night is what the camera saw (``promotion.night_from: pixels``, the
default): an event or audit sample is night when its stored light class is
``night_ir`` or ``low_light``, a statistics row when most of its frames were;
rows stored without a light class, and ``night_from: clock``, fall back to
``promotion.night_hours`` on the configured time zone's clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config import AuditConfig, Config, DecisionConfig, PromotionConfig
from monitor.report.periods import (
    Row,
    estimate_json,
    period_summary,
    precision_series,
    rounded,
)
from monitor.report.source import ReportSource
from monitor.report.stats import (
    Evidence,
    gating_precision,
    is_night,
    precision,
    proportion,
    recommend,
)
from monitor.types import NIGHT_CLASSES

NightRule = Callable[[Row, str], bool]

SCHEMA_VERSION = 1
PERIODS = ("all", "day", "night")
WEEKLY_AFTER_S = 62 * 86400  # longer windows plot precision per week, not per day
THUMBNAILS_PER_CAMERA = 12
RECOVERED = "in_domain"  # the drift state a camera returns to; its event is a recovery


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """What a report is computed with (the config's parts, or their defaults).

    Attributes:
        until: end of the window (exclusive), UTC epoch seconds.
        since: start of the window (inclusive), or None for everything before ``until``.
        promotion: the promotion criteria and night hours.
        timezone: IANA zone of night hours and of the day buckets.
        random_rate: the audit sampler's random share (used when statistics
            rows carry no stratum populations).
        config_modes: camera → mode from the config (the store's changes win).
        alert_labels: camera → alert labels from the config.
        default_alert_labels: for cameras the config does not name.
        site: only this box's rows (events, audit samples, statistics); None: every site.
    """

    until: float
    since: float | None = None
    site: str | None = None
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    timezone: str = "UTC"
    random_rate: float = AuditConfig().random_rate
    config_modes: Mapping[str, str] = field(default_factory=dict)
    alert_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_alert_labels: tuple[str, ...] = tuple(DecisionConfig().alert_labels)


def settings_from_config(cfg: Config | None, since: float | None, until: float) -> ReportSettings:
    """Report settings from a loaded config; without one, PromotionConfig() defaults and UTC."""
    if cfg is None:
        return ReportSettings(until=until, since=since)
    return ReportSettings(
        until=until,
        since=since,
        promotion=cfg.promotion,
        timezone=cfg.timezone,
        random_rate=cfg.audit.random_rate,
        config_modes={c.id: c.mode for c in cfg.cameras},
        alert_labels={c.id: tuple(c.decision.alert_labels) for c in cfg.cameras},
    )


@dataclass(slots=True)
class ReportData:
    """The report: ``summary`` is report.json; the rest feeds plots and thumbnails only."""

    summary: dict[str, Any]
    latency: dict[str, list[tuple[float, float | None, float | None]]]
    thumbnails: dict[int, bytes]


def build_report(store: ReportSource, s: ReportSettings) -> ReportData:
    """Read the window's rows from ``store`` and compute every camera's figures."""
    events: list[Row] = [
        dict(e) for e in store.iter_events(since=s.since, until=s.until, site=s.site)
    ]
    audits = _all_audit_samples(store, s.since, s.until, s.site)
    stats = store.camera_stats(s.since, s.until, site=s.site)
    candidates = store.candidate_summary(s.since, s.until)
    modes = store.camera_modes()
    cameras = sorted(
        {r["camera"] for rows in (events, audits, stats, candidates) for r in rows}
        | set(s.config_modes)
        | set(modes)
    )
    night = night_rule(s)
    width = _bucket_width(s, events)
    out: dict[str, Any] = {}
    thumbnails: dict[int, bytes] = {}
    for cam in cameras:
        mine = [e for e in events if e["camera"] == cam]
        disagreements = store.disagreements_between(cam, s.since, s.until, THUMBNAILS_PER_CAMERA)
        for d in disagreements:
            jpeg = store.get_disagreement_snapshot(int(d["id"])) if d["has_snapshot"] else None
            if jpeg is not None:
                thumbnails[int(d["id"])] = jpeg
        out[cam] = _camera(
            cam,
            alerts=[e for e in mine if e["kind"] == "alert"],
            drift=[e for e in mine if e["kind"] == "drift"],
            audits=[a for a in audits if a["camera"] == cam],
            stats=[r for r in stats if r["camera"] == cam],
            candidates=[c for c in candidates if c["camera"] == cam],
            disagreements=disagreements,
            override=modes.get(cam),
            night=night,
            width=width,
            s=s,
        )
        # The last `bearwatch levers --apply` for the camera, when there is one.
        out[cam]["levers"] = store.score_log.recommendation(cam)
    latency = {
        cam: [
            (r["at"], r["latency_p50_ms"], r["latency_p99_ms"]) for r in stats if r["camera"] == cam
        ]
        for cam in cameras
    }
    return ReportData(_summary(s, width, out), latency, thumbnails)


def _summary(s: ReportSettings, width: str, cameras: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso(datetime.now(UTC).timestamp()),
        "window": {
            "since": iso(s.since),
            "until": iso(s.until),
            "timezone": s.timezone,
            "night_from": s.promotion.night_from,
            "night_hours": s.promotion.night_hours,
            "series_bucket": width,
        },
        "criteria": s.promotion.model_dump(),
        "audit_random_rate": s.random_rate,
        "cameras": cameras,
    }


def _all_audit_samples(
    store: ReportSource, since: float | None, until: float | None, site: str | None = None
) -> list[Row]:
    rows: list[Row] = []
    before: int | None = None
    while True:
        page = store.list_audit_samples(
            since=since, until=until, site=site, limit=1000, before_id=before
        )
        rows += page
        if len(page) < 1000:
            return rows
        before = int(page[-1]["id"])


def _camera(
    cam: str,
    *,
    alerts: list[Row],
    drift: list[Row],
    audits: list[Row],
    stats: list[Row],
    candidates: list[Row],
    disagreements: list[Row],
    override: Mapping[str, Any] | None,
    night: NightRule,
    width: str,
    s: ReportSettings,
) -> dict[str, Any]:
    labels = set(s.alert_labels.get(cam, s.default_alert_labels)) | {e["label"] for e in alerts}
    periods: dict[str, dict[str, Any]] = {}
    for name in PERIODS:
        pick = _period_filter(name, night)
        periods[name] = period_summary(
            alerts=[e for e in alerts if pick(e, "start_at")],
            drift_events=sum(1 for e in drift if e["label"] != RECOVERED and pick(e, "start_at")),
            audits=[a for a in audits if pick(a, "captured_at")],
            stats=[r for r in stats if pick(r, "at")],
            alert_labels=labels,
            random_rate=s.random_rate,
        )
    mode, source = _mode(cam, override, s)
    return {
        "mode": mode,
        "mode_source": source,
        "mode_changed_by": (override or {}).get("changed_by"),
        "mode_reason": (override or {}).get("reason"),
        "mode_changed_at": iso((override or {}).get("changed_at")),
        "alert_labels": sorted(labels),
        "recommendation": _recommendation(mode, periods, s.promotion),
        "periods": periods,
        "precision_series": precision_series(alerts, ZoneInfo(s.timezone), width),
        "drift": _drift(drift),
        "unfamiliar": _unfamiliar(alerts),
        "candidate": [_candidate(c) for c in candidates],
        "disagreements": [_disagreement(d) for d in disagreements],
    }


def _recommendation(
    mode: str, periods: dict[str, dict[str, Any]], criteria: PromotionConfig
) -> dict[str, Any]:
    """The promotion rule applied to the camera's periods (precision gated by the worse one)."""
    lows = {p: (periods[p]["judged"], (periods[p]["precision"] or {}).get("low")) for p in PERIODS}
    low, scope = gating_precision(lows, criteria.min_reviewed)
    recall = periods["all"]["recall"]
    miss_scope = _miss_scope(periods, criteria)
    where = periods[miss_scope]
    evidence = Evidence(
        judged=periods["all"]["judged"],
        precision_low=low,
        precision_scope=scope,
        recall=None if recall is None else recall["value"],
        audit_labelled=periods["all"]["audit"]["labelled"],
        misses_found=where["audit"]["misses_found"],
        misses_labelled=where["audit"]["labelled"],
        misses_scope=miss_scope,
        misses_recall=None if where["recall"] is None else where["recall"]["value"],
    )
    rec = recommend(mode, evidence, criteria)
    return {"code": rec.code, "action": rec.action, "target_mode": rec.target_mode,
            "text": rec.text, "precision_scope": scope, "misses_scope": miss_scope}  # fmt: skip


def _miss_scope(periods: dict[str, dict[str, Any]], criteria: PromotionConfig) -> str:
    """The period whose confirmed misses matter most: night, then day, if either falls short."""
    for name in ("night", "day"):
        p = periods[name]
        recall = None if p["recall"] is None else p["recall"]["value"]
        if p["audit"]["misses_found"] and (recall is None or recall < criteria.min_recall):
            return name
    return "all"


def night_rule(s: ReportSettings) -> NightRule:
    """Whether a row (an event, audit sample or statistics row) is night; its time column is named."""
    clock = partial(is_night, zone=ZoneInfo(s.timezone), night_hours=s.promotion.night_hours)
    if s.promotion.night_from == "clock":
        return lambda row, column: clock(row[column])

    def from_pixels(row: Row, column: str) -> bool:
        if row.get("night_class"):
            return row["night_class"] in NIGHT_CLASSES
        light = row.get("light") or {}
        if light:
            dark = sum(n for cls, n in light.items() if cls in NIGHT_CLASSES)
            return dark * 2 > sum(light.values())
        return clock(row[column])

    return from_pixels


def _period_filter(name: str, night: NightRule) -> NightRule:
    if name == "night":
        return night
    if name == "day":
        return lambda row, column: not night(row, column)
    return lambda row, column: True


def _unfamiliar(alerts: list[Row]) -> dict[str, Any]:
    """Alerts marked unfamiliar (out of the model's domain) and how often reviewers confirmed them."""
    marked = [e for e in alerts if e.get("unfamiliar")]
    counts = Counter(e["review_status"] for e in marked)
    c, r, rl = (counts[k] for k in ("confirmed", "rejected", "relabelled"))
    return {
        "alerts": len(marked),
        "held": sum(1 for e in marked if e.get("held")),
        "pending": counts["pending"],
        "judged": c + r + rl,
        "confirmed": c,
        "precision": estimate_json(precision(c, r, rl)),
    }


def _mode(cam: str, override: Mapping[str, Any] | None, s: ReportSettings) -> tuple[str, str]:
    """The camera's configured mode: a change stored at runtime wins over the config."""
    if override is not None:
        return str(override["mode"]), "store"
    if cam in s.config_modes:
        return s.config_modes[cam], "config"
    return "shadow", "default"


def _bucket_width(s: ReportSettings, events: list[Row]) -> str:
    start = (
        s.since if s.since is not None else min((e["start_at"] for e in events), default=s.until)
    )
    return "week" if s.until - start > WEEKLY_AFTER_S else "day"


def _drift(drift: list[Row]) -> dict[str, Any]:
    """Drift transitions: ``events`` counts those out of the domain (a recovery is not a problem)."""
    bad = [e for e in drift if e["label"] != RECOVERED]
    recent = sorted(drift, key=lambda e: e["start_at"], reverse=True)[:5]
    return {
        "events": len(bad),
        "states": dict(sorted(Counter(e["label"] for e in drift).items())),
        "flags": dict(sorted(Counter(f for e in bad for f in e["drift_flags"]).items())),
        "recent": [
            {"start_at": iso(e["start_at"]), "state": e["label"], "flags": e["drift_flags"],
             "ood_score": rounded(e["ood_score"])}
            for e in recent
        ],
    }  # fmt: skip


def _candidate(c: Row) -> dict[str, Any]:
    frames, agree = int(c["frames"]), int(c["agreements"])
    return {
        "production_version": c["production_version"],
        "candidate_version": c["candidate_version"],
        "frames": frames,
        "agreements": agree,
        "disagreements": frames - agree,
        "agreement": estimate_json(proportion(agree, frames)),
        "production_alerts": int(c["production_alerts"]),
        "candidate_alerts": int(c["candidate_alerts"]),
    }


def _disagreement(d: Row) -> dict[str, Any]:
    return {
        "id": int(d["id"]),
        "at": iso(d["at"]),
        "production_label": d["production_label"],
        "production_score": rounded(d["production_score"]),
        "candidate_label": d["candidate_label"],
        "candidate_score": rounded(d["candidate_score"]),
        "candidate_version": d["candidate_version"],
        "has_snapshot": bool(d["has_snapshot"]),
    }


def iso(epoch: float | None) -> str | None:
    """UTC epoch seconds → ``2024-06-01T12:00:00Z`` (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
