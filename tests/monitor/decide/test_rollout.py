"""Rollout modes: active hours, runtime overrides from the store, and the mode recorded on events."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.decide.rollout import parse_hours, within_hours
from monitor.store import ReviewStore
from monitor.store.modes import ModeBook

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("hours", "hhmm", "inside"),
    [
        (None, "03:00", True),
        ("06:00-20:00", "06:00", True),
        ("06:00-20:00", "19:59", True),
        ("06:00-20:00", "20:00", False),
        ("06:00-20:00", "05:59", False),
        ("20:00-06:00", "23:30", True),  # wraps past midnight
        ("20:00-06:00", "02:00", True),
        ("20:00-06:00", "06:00", False),
        ("20:00-06:00", "12:00", False),
        ("08:00-08:00", "17:00", True),  # a full day
    ],
)
def test_within_hours(hours: str | None, hhmm: str, inside: bool) -> None:
    h, m = (int(x) for x in hhmm.split(":"))
    assert within_hours(hours, datetime(2026, 6, 1, h, m, tzinfo=UTC)) is inside


@pytest.mark.parametrize("bad", ["6-20", "06:00", "25:00-01:00x", ""])
def test_parse_hours_rejects_other_shapes(bad: str) -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_hours(bad)


def epoch(hhmm: str, tz: str = "UTC") -> float:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(2026, 6, 1, h, m, tzinfo=ZoneInfo(tz)).timestamp()


def test_outside_active_hours_a_camera_is_shadow() -> None:
    book = ModeBook({"gate": ("active", "06:00-20:00"), "shed": ("review", None)})
    assert book.effective("gate", epoch("12:00")) == "active"
    assert book.effective("gate", epoch("22:00")) == "shadow"
    assert book.effective("shed", epoch("22:00")) == "review"
    assert book.effective("unknown", epoch("12:00")) == "shadow"


def test_active_hours_follow_the_configured_time_zone() -> None:
    book = ModeBook({"gate": ("active", "06:00-20:00")}, timezone="America/Denver")
    assert book.effective("gate", epoch("12:00", "America/Denver")) == "active"
    assert book.effective("gate", epoch("21:00", "America/Denver")) == "shadow"


def test_a_runtime_change_in_the_store_wins_over_the_config(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "s.db")
    t = [0.0]
    try:
        book = ModeBook(
            {"gate": ("shadow", None)}, load=store.camera_modes, refresh_s=5.0, clock=lambda: t[0]
        )
        assert book.configured("gate") == ("shadow", None)
        store.set_camera_mode("gate", "review", "ranger-ann", "two weeks of clean shadow runs")
        assert book.configured("gate") == ("shadow", None)  # cached until the refresh interval
        t[0] = 6.0
        assert book.configured("gate") == ("review", None)
        (change,) = store.mode_history("gate")
        assert (change["old_mode"], change["new_mode"], change["changed_by"]) == (
            None,
            "review",
            "ranger-ann",
        )
        store.set_camera_mode("gate", "active", "ranger-bob", "precision 0.95", "06:00-20:00")
        t[0] = 12.0
        assert book.configured("gate") == ("active", "06:00-20:00")
        assert [c["new_mode"] for c in store.mode_history("gate")] == ["active", "review"]
    finally:
        store.close()


@pytest.mark.parametrize(("by", "reason"), [("", "why"), ("ann", " ")])
def test_a_mode_change_needs_who_and_why(tmp_path: Path, by: str, reason: str) -> None:
    store = ReviewStore(tmp_path / "s.db")
    try:
        with pytest.raises(ValueError, match="who"):
            store.set_camera_mode("gate", "active", by, reason)
        with pytest.raises(ValueError, match="mode must be one of"):
            store.set_camera_mode("gate", "live", "ann", "why")
    finally:
        store.close()
