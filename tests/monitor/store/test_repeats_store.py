"""Repeat false alarms in the store, on SQLite and on a real PostgreSQL server.

A rejected alert with a picture becomes a rejected spot (until the rejection
is undone or expires); an event like it is stored with ``suppressed_by``,
listed apart and never due in the outbox, even for an active camera.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.alerts.repeats import appearance
from monitor.store import ReviewStore
from tests.monitor.store.test_postgres_store import bearwatch, pg_store
from tests.monitor.store.test_review_store import T0, event

PICTURE = base64.b64encode(appearance(np.full((32, 32, 3), 90, np.uint8))).decode("ascii")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReviewStore]:
    if request.param == "sqlite":
        s = ReviewStore(tmp_path / "store.db")
    else:
        url = request.getfixturevalue("pg_url")
        proc = bearwatch("db", "upgrade", "--store", url)
        assert proc.returncode == 0, proc.stderr
        s = pg_store(url, tmp_path)
    try:
        yield s
    finally:
        s.close()


def due_ids(store: ReviewStore) -> set[int]:
    rows = store.due_notifications("mqtt", since=0.0, max_attempts=5, retry_before=T0 + 1e9, now=T0)
    return {int(r["id"]) for r in rows}


def test_a_rejection_with_a_picture_is_a_spot_until_undone(store: ReviewStore) -> None:
    first = store.add_event(event(mode="active", box=(0.6, 0.5, 0.8, 0.8), appearance=PICTURE))
    no_picture = store.add_event(event(mode="active", start_at=T0 + 5))
    assert first is not None and no_picture is not None
    assert store.rejected_spots(since=0.0) == []
    assert store.set_verdict(first, "rejected", "ranger", "not-an-animal", reviewed_at=T0 + 10)
    assert store.set_verdict(no_picture, "rejected", "ranger", "not-an-animal", reviewed_at=T0 + 10)
    spots = store.rejected_spots(since=0.0)
    assert [(s.event_id, s.camera, s.label, s.box) for s in spots] == [
        (first, "gate", "bear", (0.6, 0.5, 0.8, 0.8))
    ]
    assert spots[0].appearance == base64.b64decode(PICTURE) and spots[0].rejected_at == T0 + 10
    assert store.rejected_spots(since=T0 + 11) == []  # expired
    assert store.set_verdict(first, "pending", "ranger", "undo", restores={})
    assert store.rejected_spots(since=0.0) == []


def test_a_suppressed_event_is_stored_apart_and_never_due(store: ReviewStore) -> None:
    alert = store.add_event(event(mode="active", appearance=PICTURE))
    repeat = store.add_event(event(mode="active", start_at=T0 + 60, suppressed_by=7))
    assert alert is not None and repeat is not None
    row = store.get_event(repeat)
    assert row is not None and row["suppressed_by"] == 7 and "appearance" not in row
    assert [r["id"] for r in store.list_events(suppressed=True)] == [repeat]
    assert [r["id"] for r in store.list_events(suppressed=False)] == [alert]
    assert {r["id"] for r in store.list_events()} == {alert, repeat}
    assert store.count_events(suppressed=True) == 1
    assert due_ids(store) == {alert}
    # A picture follows the event's new peak.
    assert store.update_event(alert, peak_score=0.97, appearance=PICTURE[::-1])
