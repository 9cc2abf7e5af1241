"""The review store on a real PostgreSQL server: explicit upgrades, bad input, the outbox lease, a server crash."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor.errors import StoreError
from monitor.metrics import Metrics
from monitor.records import NewEvent
from monitor.store import NEWER, ReviewStore, head_revision
from tests.monitor.store.test_review_store import T0, event, jpeg
from tests.postgres import PASSWORD, PostgresServer


def bearwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def upgraded(pg_url: str) -> str:
    proc = bearwatch("db", "upgrade", "--store", pg_url)
    assert proc.returncode == 0, proc.stderr
    return pg_url


def pg_store(url: str, tmp_path: Path, site: str = "north", **kwargs: Any) -> ReviewStore:
    """A box's store on the server; its spill and score log stay in the test's folder."""
    return ReviewStore(url, site=site, local_path=tmp_path / f"{site}.db", **kwargs)


@pytest.fixture
def box_a(upgraded: str, tmp_path: Path) -> Iterator[ReviewStore]:
    s = pg_store(upgraded, tmp_path)
    yield s
    s.close()


def test_a_fresh_database_is_refused_until_upgraded_explicitly(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as refused:
        pg_store(pg_url, tmp_path)
    message = str(refused.value)
    assert "run `bearwatch db upgrade --store postgresql://bearwatch:***@127.0.0.1" in message
    assert PASSWORD not in message and "\n" not in message

    status = bearwatch("db", "status", "--store", pg_url)
    assert status.returncode == 1 and "no schema" in status.stdout
    assert PASSWORD not in status.stdout + status.stderr
    up = bearwatch("db", "upgrade", "--store", pg_url)
    assert up.returncode == 0 and f"to revision {head_revision()}" in up.stdout, up.stderr
    again = bearwatch("db", "status", "--store", pg_url)
    assert again.returncode == 0 and "up to date" in again.stdout

    store = pg_store(pg_url, tmp_path)
    try:
        assert store.schema_version() == head_revision()
    finally:
        store.close()


def test_events_round_trip_on_postgresql(box_a: ReviewStore) -> None:
    event_id = box_a.add_event(event(snapshot_jpeg=jpeg(), details={"zone": "trail"}))
    assert event_id is not None
    got = box_a.get_event(event_id)
    assert got is not None
    assert (got["site"], got["camera"], got["details"], got["has_snapshot"]) == (
        "north", "gate", {"zone": "trail"}, True,
    )  # fmt: skip
    assert box_a.get_snapshot(event_id) == jpeg()
    assert box_a.add_event(event(end_at=T0 + 9)) == event_id  # the natural key holds
    assert box_a.update_event(event_id, frames=7)
    assert box_a.set_verdict(event_id, "confirmed", "ana")
    assert [v["status"] for v in box_a.verdict_history(event_id)] == ["confirmed"]
    assert box_a.count_events(site="north", status="confirmed") == 1
    box_a.set_camera_mode("gate", "active", "ana", "trial went well")
    assert box_a.camera_modes()["gate"]["mode"] == "active"
    assert box_a.size_bytes() > 0


def test_two_sites_share_one_store_and_one_review_queue(upgraded: str, tmp_path: Path) -> None:
    north, south = pg_store(upgraded, tmp_path), pg_store(upgraded, tmp_path, "south")
    try:
        assert north.add_event(event(camera="gate")) is not None
        assert south.add_event(event(camera="gate")) is not None  # same camera id, other site
        south.set_camera_mode("gate", "review", "bo", "south's own mode")
        assert {e["site"] for e in north.list_events()} == {"north", "south"}
        assert north.event_sites() == ["north", "south"]
        assert [e["site"] for e in north.list_events(site="south")] == ["south"]
        assert (
            "gate" not in north.camera_modes() and south.camera_modes()["gate"]["mode"] == "review"
        )
    finally:
        north.close()
        south.close()


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda u: u.replace(PASSWORD, "wrong-password"), "password authentication failed"),
        (lambda u: u.replace("127.0.0.1:", "127.0.0.1:1").rsplit(":", 1)[0] + ":1/x", "refused"),
        (lambda u: u.replace("127.0.0.1:", "127.0.0.1:x"), "malformed store URL"),
        (lambda u: u.rsplit("/", 1)[0] + "/", "no database name"),
        (lambda u: u.replace("postgresql://", "mysql://"), "not supported"),
    ],
)
def test_bad_store_urls_are_one_clear_line_without_the_password(
    pg_url: str, mangle: Any, expected: str, tmp_path: Path
) -> None:
    with pytest.raises(StoreError) as refused:
        pg_store(mangle(pg_url), tmp_path)
    message = str(refused.value)
    assert expected in message and "\n" not in message
    assert PASSWORD not in message and "wrong-password" not in message


def test_a_newer_schema_is_refused(upgraded: str, tmp_path: Path) -> None:
    with psycopg.connect(upgraded) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff'")
    with pytest.raises(StoreError, match=NEWER):
        pg_store(upgraded, tmp_path)
    status = bearwatch("db", "status", "--store", upgraded)
    assert status.returncode == 2 and NEWER in status.stdout


def claim_all(store: ReviewStore, owner: str, claimed: list[int], lease_s: float = 30.0) -> None:
    """One box's notifier loop: claim a page, 'send' it, record it, until nothing is due."""
    idle = 0
    while idle < 3:
        rows = store.claim_notifications(
            "mqtt", owner, lease_s=lease_s, since=0, max_attempts=3, retry_before=time.time(),
            limit=7,
        )  # fmt: skip
        idle = 0 if rows else idle + 1
        for r in rows:
            claimed.append(int(r["id"]))
            store.record_delivery(int(r["id"]), "mqtt", "active", True)


def test_each_notification_is_claimed_by_exactly_one_box(upgraded: str, tmp_path: Path) -> None:
    boxes = [pg_store(upgraded, tmp_path, f"s{i}") for i in range(3)]
    try:
        for i in range(300):
            assert boxes[i % 3].add_event(
                event(camera=f"cam{i % 5}", start_at=T0 + i, mode="active")
            )
        claimed: list[list[int]] = [[], [], []]
        threads = [
            threading.Thread(target=claim_all, args=(b, f"box{i}", claimed[i]))
            for i, b in enumerate(boxes)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        counts = Counter(i for c in claimed for i in c)
        assert len(counts) == 300 and set(counts.values()) == {1}
        assert all(claimed), "every box took a share"
        assert {d["status"] for d in boxes[0].deliveries()} == {"sent"}
    finally:
        for b in boxes:
            b.close()


def test_a_claim_held_by_a_box_that_died_expires_and_another_box_delivers_it(
    upgraded: str, tmp_path: Path
) -> None:
    dead, alive = pg_store(upgraded, tmp_path, "a"), pg_store(upgraded, tmp_path, "b")
    try:
        event_id = dead.add_event(event(mode="active"))
        kw: dict[str, Any] = {"since": 0, "max_attempts": 3, "retry_before": time.time()}
        assert [r["id"] for r in dead.claim_notifications("mqtt", "dead", lease_s=0.5, **kw)] == [
            event_id
        ]
        # "dead" never records the delivery (killed -9): nobody else may take it yet …
        assert alive.claim_notifications("mqtt", "alive", lease_s=30, **kw) == []
        time.sleep(0.6)
        # … until the lease has expired.
        assert [r["id"] for r in alive.claim_notifications("mqtt", "alive", lease_s=30, **kw)] == [
            event_id
        ]
        alive.record_delivery(int(event_id or 0), "mqtt", "active", True)
        assert dead.claim_notifications("mqtt", "dead", lease_s=30, **kw) == []
        (d,) = alive.deliveries(event_id)
        assert (d["status"], d["attempts"], d["claimed_by"]) == ("sent", 1, None)
    finally:
        dead.close()
        alive.close()


def test_a_database_server_crash_during_an_alert_burst_loses_nothing(
    postgres: PostgresServer, upgraded: str, tmp_path: Path
) -> None:
    """Events written while the server is down are spilled, then replayed in order, none doubled."""
    metrics = Metrics()
    store = pg_store(upgraded, tmp_path, retries=1, backoff_s=0.01, metrics=metrics)
    written: list[int | None] = []
    try:

        def burst() -> None:
            for i in range(200):
                ev = NewEvent(
                    camera="gate", label="bear", kind="alert", start_at=T0 + i, end_at=None,
                    peak_score=0.9, model_version="m", mode="active", snapshot_jpeg=jpeg(),
                )  # fmt: skip
                written.append(store.add_event(ev))
                time.sleep(0.01)

        writer = threading.Thread(target=burst)
        writer.start()
        while len(written) < 50:
            time.sleep(0.01)
        postgres.kill9()
        time.sleep(1.0)
        assert not store.healthy and store.spill_path.exists()
        postgres.restart_after_crash()
        writer.join(60)
        assert store.replay_spill() >= 0
        assert store.healthy and not store.spill_path.exists()
        rows = store.list_events(limit=1000)
        starts = sorted(e["start_at"] for e in rows)
        assert starts == [T0 + i for i in range(200)]  # none lost, none doubled
        assert all(e["has_snapshot"] for e in rows)
        ordered = sorted(rows, key=lambda e: e["id"])
        assert [e["start_at"] for e in ordered] == starts  # replayed in order
    finally:
        store.close()


def test_what_main_added_to_events_round_trips_on_postgresql(
    box_a: ReviewStore, upgraded: str, tmp_path: Path
) -> None:
    """Box and zone, unfamiliar/held/light class, last frame and crash recovery, on the server."""
    from monitor.records import AuditSample, CameraStats

    ev = event(
        mode="active", unfamiliar=True, held=True, night_class="night_ir",
        box=(0.1, 0.2, 0.5, 0.6), zone="meadow",
    )  # fmt: skip
    event_id = box_a.add_event(ev)
    assert event_id is not None
    assert box_a.update_event(event_id, last_frame_at=T0 + 7, box=(0.2, 0.2, 0.6, 0.7), zone="den")
    got = box_a.get_event(event_id)
    assert got is not None
    assert (got["unfamiliar"], got["held"], got["night_class"]) == (True, True, "night_ir")
    assert (got["box"], got["zone"], got["last_frame_at"]) == ([0.2, 0.2, 0.6, 0.7], "den", T0 + 7)
    kw: dict[str, Any] = {"since": 0, "max_attempts": 3, "retry_before": T0 + 10**9}
    # Held for a person: not sent until confirmed, then as a confirmation.
    assert box_a.claim_notifications("mqtt", "box-a", lease_s=60, **kw) == []
    assert box_a.set_verdict(event_id, "confirmed", "ana")
    (due,) = box_a.claim_notifications("mqtt", "box-a", lease_s=60, **kw)
    assert due["id"] == event_id
    box_a.record_delivery(event_id, "mqtt", "confirmed", True)

    # Crash recovery closes this site's open events only: another box's stay open.
    south = pg_store(upgraded, tmp_path, site="south")
    try:
        theirs = south.add_event(event(start_at=T0 + 1))
        assert theirs is not None
        assert [c[0] for c in box_a.close_interrupted_events()] == [event_id]
        mine, other = box_a.get_event(event_id), box_a.get_event(theirs)
        assert mine is not None and other is not None
        assert (mine["end_at"], mine["interrupted"]) == (T0 + 7, True)
        assert (other["end_at"], other["interrupted"]) == (None, False)
    finally:
        south.close()

    sample = AuditSample("gate", T0, "random", "m-1", "bear", 0.2, {"bear": 0.2}, jpeg(), "day")
    sample_id = box_a.add_audit_sample(sample)
    assert sample_id is not None and box_a.audit_cameras() == ["gate"]
    assert box_a.label_audit_sample(sample_id, "bear", "ana")
    assert box_a.clear_audit_label(sample_id)
    (row,) = box_a.list_audit_samples()
    assert (row["label"], row["night_class"]) == (None, "day")
    box_a.add_camera_stats([CameraStats("gate", T0, 60, 60, 30, 0, 5, 9, light={"day": 30})])
    assert box_a.camera_stats()[0]["light"] == {"day": 30}


def test_sessions_undo_and_spilled_deliveries_on_postgresql(box_a: ReviewStore) -> None:
    box_a.revoke_session("s-1", time.time() + 3600)
    box_a.revoke_session("s-1", time.time() + 3600)  # twice: one row
    assert list(box_a.revoked_sessions()) == ["s-1"]

    ev = event(mode="active")
    event_id = box_a.add_event(ev)
    assert event_id is not None
    assert box_a.set_verdict(event_id, "rejected", "ana", reason_code="blur", note="soft")
    assert box_a.set_verdict(
        event_id, "confirmed", "ana", reason_code="undo", restores={"reason_code": None}
    )
    got = box_a.get_event(event_id)
    assert got is not None and (got["review_status"], got["reason_code"]) == ("confirmed", None)
    assert [v["reason_code"] for v in box_a.verdict_history(event_id)] == ["blur", "undo"]

    # A notification sent while the event was only in the spill is found by its natural key.
    box_a.record_spilled_delivery(ev, "mqtt", "active", True)
    (delivery,) = box_a.deliveries(event_id)
    assert (delivery["channel"], delivery["status"]) == ("mqtt", "sent")


def test_a_write_budget_bounds_a_write_to_a_locked_table(box_a: ReviewStore, upgraded: str) -> None:
    """The store writer's budget holds on PostgreSQL: a locked table spills, it does not wait."""
    with psycopg.connect(upgraded.replace("+psycopg", ""), autocommit=False) as locker:
        locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        with box_a.write_budget(0.3):
            assert box_a.add_event(event(camera="late")) is None
        assert time.monotonic() - t0 < 2.5  # one lock_timeout (1 s) at most, no retries past it
        assert not box_a.healthy
        locker.rollback()
    assert box_a.add_event(event(camera="after")) is not None  # replays the spill first
    assert sorted(e["camera"] for e in box_a.list_events()) == ["after", "late"]
