"""Issue 10 in the report: unfamiliar alerts per camera with their precision, and night from pixels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import PromotionConfig
from monitor.records import CameraStats, NewEvent
from monitor.report.build import ReportSettings, build_report, night_rule
from monitor.store import ReviewStore

NOON = 1_717_243_200.0  # 2024-06-01T12:00:00Z: day by the clock
MIDNIGHT = NOON + 12 * 3600


def alert(start_at: float, **extra: Any) -> NewEvent:
    return NewEvent(camera="gate", label="bear", kind="alert", start_at=start_at, end_at=None,
                    peak_score=0.9, model_version="m-1", mode="active", **extra)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "r.db")
    ids = [
        s.add_event(alert(NOON + i, unfamiliar=True, held=True, night_class="day"))
        for i in range(4)
    ]
    s.add_event(alert(NOON + 10, night_class="night_ir"))  # IR at noon: night
    s.add_event(alert(NOON + 11, night_class="low_light"))
    s.add_event(alert(MIDNIGHT, night_class="day"))  # a lit scene at midnight: day
    s.add_event(alert(MIDNIGHT + 10))  # no light class (an older row): the clock decides
    for event_id, verdict in zip(ids, ["confirmed", "rejected", "rejected"], strict=False):
        s.set_verdict(
            event_id, verdict, "ana", reason_code=None if verdict == "confirmed" else "other"
        )
    yield s
    s.close()


def test_unfamiliar_alerts_are_counted_with_their_precision(store: ReviewStore) -> None:
    report = build_report(store, ReportSettings(until=MIDNIGHT + 3600, since=NOON - 3600))
    got = report.summary["cameras"]["gate"]["unfamiliar"]
    assert {k: got[k] for k in ("alerts", "held", "pending", "judged", "confirmed")} == {
        "alerts": 4, "held": 4, "pending": 1, "judged": 3, "confirmed": 1,
    }  # fmt: skip
    assert got["precision"]["value"] == pytest.approx(1 / 3, abs=1e-4)


@pytest.mark.parametrize(("night_from", "night", "day"), [("pixels", 3, 5), ("clock", 2, 6)])
def test_day_and_night_follow_the_pixels_or_the_clock(
    store: ReviewStore, night_from: str, night: int, day: int
) -> None:
    promotion = PromotionConfig(night_from=night_from)  # type: ignore[arg-type]
    s = ReportSettings(until=MIDNIGHT + 3600, since=NOON - 3600, promotion=promotion)
    periods = build_report(store, s).summary["cameras"]["gate"]["periods"]
    assert (periods["night"]["alerts"], periods["day"]["alerts"]) == (night, day)
    events = {e["start_at"]: e for e in store.list_events()}
    rule = night_rule(s)
    by_pixels = night_from == "pixels"
    assert rule(events[NOON + 10], "start_at") is by_pixels  # IR at noon
    assert rule(events[MIDNIGHT], "start_at") is not by_pixels  # lit at midnight
    assert rule(events[MIDNIGHT + 10], "start_at") is True  # no class: the clock


@pytest.mark.parametrize(
    ("light", "night"),
    [({"night_ir": 50, "day": 10}, True), ({"day": 50, "low_light": 10}, False), ({}, False)],
)
def test_a_statistics_row_is_night_when_most_of_its_frames_were(
    tmp_path: Path, light: dict[str, int], night: bool
) -> None:
    row = CameraStats("gate", NOON, 60.0, 60.0, sum(light.values()), 0, None, None, light=light)
    store = ReviewStore(tmp_path / "s.db")
    try:
        store.add_camera_stats([row])
        (stored,) = store.camera_stats()
    finally:
        store.close()
    assert (
        night_rule(ReportSettings(until=NOON + 1))(stored, "at") is night
    )  # noon: day by the clock
