"""The review store on real SQLite files: CRUD, queue queries, migrations, locking and the spill."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from monitor.errors import StoreError
from monitor.metrics import Metrics
from monitor.records import NewEvent
from monitor.store import NEWER, ReviewStore, head_revision
from monitor.store.legacy import MIGRATIONS, SCHEMA_VERSION, add_column, apply_migrations
from tests.media import scene

T0 = 1_717_243_200.0  # 2024-06-01T12:00:00Z


def jpeg(kind: str = "bear", seed: int = 0) -> bytes:
    ok, buf = cv2.imencode(".jpg", scene(kind, seed=seed), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


def event(**overrides: Any) -> NewEvent:
    fields: dict[str, Any] = {
        "camera": "gate",
        "label": "bear",
        "kind": "alert",
        "start_at": T0,
        "end_at": None,
        "peak_score": 0.91,
        "model_version": "m-1",
        "mode": "shadow",
        "snapshot_jpeg": None,
        "drift_flags": (),
        "ood_score": None,
        "details": {},
        "frames": 3,
    }
    fields.update(overrides)
    return NewEvent(**fields)


def metric(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def store(tmp_path: Path, metrics: Metrics) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db", metrics=metrics)
    yield s
    s.close()


def test_add_and_get_round_trip(store: ReviewStore) -> None:
    snap = jpeg()
    ev = event(
        snapshot_jpeg=snap,
        drift_flags=("dark",),
        ood_score=0.4,
        details={"scores": [0.8, 0.91], "hour": 3},
        mode="review",
    )
    event_id = store.add_event(ev)
    assert isinstance(event_id, int)
    got = store.get_event(event_id)
    assert got is not None
    assert (got["camera"], got["label"], got["kind"], got["mode"]) == (
        "gate",
        "bear",
        "alert",
        "review",
    )
    assert got["start_at"] == T0 and got["end_at"] is None
    assert got["peak_score"] == pytest.approx(0.91)
    assert got["drift_flags"] == ["dark"] and got["details"] == {"hour": 3, "scores": [0.8, 0.91]}
    assert got["review_status"] == "pending" and got["reviewer"] is None
    assert got["has_snapshot"] is True and "snapshot" not in got and "jpeg" not in got
    assert store.get_snapshot(event_id) == snap
    decoded = cv2.imdecode(
        np.frombuffer(store.get_snapshot(event_id) or b"", np.uint8), cv2.IMREAD_COLOR
    )
    assert decoded.shape == (240, 320, 3)


@pytest.mark.parametrize(
    ("night_class", "ok"), [(None, True), ("day", True), ("night_ir", True), ("dusk", False)]
)
def test_an_event_night_class_is_one_of_the_light_classes(
    night_class: str | None, ok: bool
) -> None:
    if ok:
        assert event(night_class=night_class).night_class == night_class
    else:
        with pytest.raises(ValueError, match="night_class must be one of day, night_ir, low_light"):
            event(night_class=night_class)


def test_numpy_scores_are_stored_as_plain_numbers(store: ReviewStore) -> None:
    """A peak score straight from the model is a NumPy scalar, which sqlite3 cannot bind."""
    event_id = store.add_event(event(peak_score=np.float32(0.75), frames=np.int64(4)))
    assert event_id is not None
    got = store.get_event(event_id)
    assert got is not None and got["peak_score"] == pytest.approx(0.75) and got["frames"] == 4


def test_unknown_ids_read_as_none(store: ReviewStore) -> None:
    assert store.get_event(999) is None
    assert store.get_snapshot(999) is None
    assert store.update_event(999, end_at=T0 + 1) is False


def test_update_event_changes_only_what_is_given(store: ReviewStore) -> None:
    event_id = store.add_event(event(snapshot_jpeg=jpeg(seed=1)))
    assert event_id is not None
    better = jpeg(seed=2)
    assert store.update_event(event_id, peak_score=0.97, snapshot_jpeg=better, frames=9)
    assert store.update_event(event_id, end_at=T0 + 30, details={"reason": "gone"})
    got = store.get_event(event_id)
    assert got is not None
    assert got["end_at"] == T0 + 30 and got["peak_score"] == pytest.approx(0.97)
    assert got["frames"] == 9 and got["details"] == {"reason": "gone"} and got["label"] == "bear"
    assert store.get_snapshot(event_id) == better


def test_snapshot_can_arrive_with_an_update(store: ReviewStore) -> None:
    event_id = store.add_event(event())
    assert event_id is not None and store.get_snapshot(event_id) is None
    assert store.update_event(event_id, snapshot_jpeg=jpeg())
    got = store.get_event(event_id)
    assert got is not None and got["has_snapshot"] is True


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "motion"},
        {"mode": "live"},
        {"camera": ""},
        {"end_at": T0 - 1},
        {"frames": -1},
        {"snapshot_jpeg": b"\x89PNG\r\n"},
    ],
)
def test_new_event_validates_itself(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        event(**bad)


def test_adding_the_same_event_twice_keeps_one_row_with_the_newer_state(
    store: ReviewStore,
) -> None:
    first = store.add_event(event())
    assert first is not None
    again = event(end_at=T0 + 8, peak_score=0.97, frames=7, snapshot_jpeg=jpeg())
    assert store.add_event(again) == first
    assert store.count_events() == 1
    got = store.get_event(first)
    assert got is not None and (got["end_at"], got["frames"], got["has_snapshot"]) == (
        T0 + 8,
        7,
        True,
    )


def test_list_is_newest_first_and_pages_without_gaps(store: ReviewStore) -> None:
    starts = [T0 + 5, T0 + 1, T0 + 3, T0 + 3, T0 + 9, T0 + 1, T0 + 7]
    ids = [store.add_event(event(label=f"l{i}", start_at=t)) for i, t in enumerate(starts)]
    expected = [i for _, i in sorted(zip(starts, ids, strict=True), reverse=True)]
    seen: list[int] = []
    before: int | None = None
    while True:
        page = store.list_events(limit=3, before_id=before)
        seen += [e["id"] for e in page]
        if len(page) < 3:
            break
        before = page[-1]["id"]
    assert seen == expected
    assert store.list_events(before_id=12345) == []


@pytest.fixture
def queue(store: ReviewStore) -> ReviewStore:
    rows = [
        ("gate", "bear", "alert", T0),
        ("gate", "person", "alert", T0 + 10),
        ("lake", "bear", "alert", T0 + 20),
        ("lake", "dark", "drift", T0 + 30),
        ("road", "bear", "alert", T0 + 40),
    ]
    for camera, label, kind, start in rows:
        store.add_event(event(camera=camera, label=label, kind=kind, start_at=start))
    confirmed = store.list_events(camera="lake", label="bear")[0]["id"]
    assert store.set_verdict(confirmed, "confirmed", "ana", reviewed_at=T0 + 100)
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["road/bear", "lake/dark", "lake/bear", "gate/person", "gate/bear"]),
        ({"camera": "gate"}, ["gate/person", "gate/bear"]),
        ({"label": "bear"}, ["road/bear", "lake/bear", "gate/bear"]),
        ({"kind": "drift"}, ["lake/dark"]),
        ({"status": "confirmed"}, ["lake/bear"]),
        ({"status": "pending", "camera": "lake"}, ["lake/dark"]),
        ({"since": T0 + 10}, ["road/bear", "lake/dark", "lake/bear", "gate/person"]),
        ({"until": T0 + 10}, ["gate/bear"]),
        ({"since": T0 + 10, "until": T0 + 30, "label": "bear"}, ["lake/bear"]),
        ({"camera": "nowhere"}, []),
    ],
)
def test_filters(queue: ReviewStore, filters: dict[str, Any], expected: list[str]) -> None:
    got = [f"{e['camera']}/{e['label']}" for e in queue.list_events(**filters)]
    assert got == expected
    assert queue.count_events(**filters) == len(expected)


@pytest.mark.parametrize(
    "bad", [{"status": "approved"}, {"kind": "motion"}, {"limit": 0}, {"limit": 5000}]
)
def test_bad_list_arguments_are_refused(store: ReviewStore, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        store.list_events(**bad)


def test_verdicts_keep_history_and_the_event_shows_the_latest(
    store: ReviewStore, tmp_path: Path
) -> None:
    event_id = store.add_event(event())
    assert event_id is not None
    assert store.set_verdict(event_id, "unsure", "ana", note="too dark", reviewed_at=T0 + 60)
    assert store.set_verdict(
        event_id, "relabelled", "bo", reason_code="wrong_class", relabel="dog", reviewed_at=T0 + 90
    )
    got = store.get_event(event_id)
    assert got is not None
    assert (got["review_status"], got["reviewer"], got["relabel"]) == ("relabelled", "bo", "dog")
    assert got["reason_code"] == "wrong_class" and got["reviewed_at"] == T0 + 90
    with sqlite3.connect(tmp_path / "events.db") as conn:
        history = conn.execute(
            "SELECT status, reviewer FROM verdicts WHERE event_id = ? ORDER BY reviewed_at",
            (event_id,),
        ).fetchall()
    assert history == [("unsure", "ana"), ("relabelled", "bo")]
    assert store.set_verdict(12345, "confirmed", "ana") is False


@pytest.mark.parametrize(
    ("status", "reviewer", "relabel"),
    [
        ("approved", "ana", None),
        ("confirmed", "", None),
        ("relabelled", "ana", None),
        ("confirmed", "ana", "dog"),
    ],
)
def test_bad_verdicts_are_refused(
    store: ReviewStore, status: str, reviewer: str, relabel: str | None
) -> None:
    event_id = store.add_event(event())
    assert event_id is not None
    with pytest.raises(ValueError):
        store.set_verdict(event_id, status, reviewer, relabel=relabel)


def test_database_is_in_wal_mode(store: ReviewStore, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "events.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() == head_revision()


@pytest.mark.parametrize("version", [m.version for m in MIGRATIONS])
def test_every_old_hand_written_schema_is_upgraded_in_place_with_its_data(
    tmp_path: Path, version: int
) -> None:
    """A file from before Alembic (hand-written versions 1–7) is adopted and upgraded at open, its rows kept."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert apply_migrations(conn, upto=version) == version
    conn.execute(
        "INSERT INTO events (kind, camera, label, peak_score, start_at, model_version, mode,"
        " created_at, updated_at) VALUES ('alert', 'gate', 'bear', 0.8, ?, 'm-0', 'shadow', ?, ?)",
        (T0, T0, T0),
    )
    conn.execute(
        "INSERT INTO snapshots (event_id, jpeg, updated_at) VALUES (1, ?, ?)", (jpeg(), T0)
    )
    if version >= 3:
        conn.execute(
            "INSERT INTO camera_modes VALUES ('gate', 'review', NULL, 'ana', 'trial', ?)", (T0,)
        )
    # What each later version added is kept too.
    if version >= 5:
        conn.execute("UPDATE events SET box = '[0.1, 0.2, 0.5, 0.6]', zone = 'meadow'")
    if version >= 6:
        conn.execute("UPDATE events SET unfamiliar = 1, night_class = 'night_ir'")
    if version >= 7:
        conn.execute("UPDATE events SET end_at = start_at + 3, interrupted = 1")
        conn.execute("INSERT INTO revoked_sessions VALUES ('s-1', ?)", (T0 + 10**9,))
    conn.close()

    store = ReviewStore(path, site="north")
    try:
        assert store.schema_version() == head_revision()
        (old,) = store.list_events()
        assert (old["unfamiliar"], old["held"], old["night_class"]) == (
            version >= 6,
            False,
            "night_ir" if version >= 6 else None,
        )
        assert old["box"] == ([0.1, 0.2, 0.5, 0.6] if version >= 5 else None)
        assert old["zone"] == ("meadow" if version >= 5 else None)
        assert old["interrupted"] is (version >= 7)
        assert (old["camera"], old["model_version"], old["review_status"], old["site"]) == (
            "gate",
            "m-0",
            "pending",
            "",
        )
        assert store.get_snapshot(old["id"]) == jpeg()
        assert store.set_verdict(old["id"], "confirmed", "ana")  # needs the v2 verdicts table
        if version >= 3:
            assert store.camera_modes(site="")["gate"]["mode"] == "review"
        if version >= 7:
            assert "s-1" in store.revoked_sessions()
        new = store.add_event(event(camera="gate", start_at=T0))  # same key, another site
        assert new is not None and new != old["id"]
    finally:
        store.close()
    ReviewStore(path).close()  # opening again changes nothing


def _shape(path: Path) -> dict[str, Any]:
    """Tables, their columns (name, nullable, default) and indexes (name, columns, unique) of a SQLite file."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(f"sqlite:///{path}")
    try:
        insp = inspect(engine)
        return {
            table: (
                sorted(
                    # A primary key is never null, whether or not it was declared NOT NULL.
                    (
                        c["name"],
                        c["nullable"] and not c["primary_key"],
                        str(c["default"]).strip("'"),
                    )
                    for c in insp.get_columns(table)
                ),
                sorted(
                    (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                    for i in insp.get_indexes(table)
                ),
                sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            )
            for table in insp.get_table_names()
            if table not in ("schema_version", "alembic_version", "sqlite_sequence")
        }
    finally:
        engine.dispose()


def test_an_adopted_old_file_and_a_new_one_have_the_same_schema(tmp_path: Path) -> None:
    """The baseline revision builds what hand-written version 7 built, so both reach one head schema."""
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    apply_migrations(conn)
    conn.close()
    ReviewStore(old).close()
    ReviewStore(tmp_path / "new.db").close()
    assert _shape(old) == _shape(tmp_path / "new.db")


def test_old_migrations_are_idempotent(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    try:
        for migration in MIGRATIONS:
            for statement in migration.statements:
                conn.execute(statement)
            for table, column, declaration in migration.columns:
                add_column(conn, table, column, declaration)
        assert apply_migrations(conn) == SCHEMA_VERSION == MIGRATIONS[-1].version
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert versions == [(m.version,) for m in MIGRATIONS]
    finally:
        conn.close()
    ReviewStore(tmp_path / "events.db").close()


@pytest.mark.parametrize(
    "future",
    [
        "INSERT INTO schema_version VALUES (99, 'from the future', 0)",
        "UPDATE alembic_version SET version_num = 'ffff'",
    ],
)
def test_a_newer_schema_is_refused(tmp_path: Path, future: str) -> None:
    path = tmp_path / "future.db"
    if future.startswith("INSERT"):
        conn = sqlite3.connect(path, isolation_level=None)
        apply_migrations(conn)
        conn.close()
    else:
        ReviewStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(future)
    conn.close()
    with pytest.raises(StoreError, match=NEWER):
        ReviewStore(path)


def test_a_missing_folder_is_created_but_an_impossible_path_fails_at_open(tmp_path: Path) -> None:
    ReviewStore(tmp_path / "no" / "such" / "events.db").close()
    assert (tmp_path / "no" / "such" / "events.db").exists()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open review store"):
        ReviewStore(tmp_path / "file" / "events.db")


def test_a_writer_thread_and_a_reader_thread_do_not_interfere(store: ReviewStore) -> None:
    errors: list[BaseException] = []
    done = threading.Event()
    snap = jpeg()

    def write() -> None:
        try:
            for i in range(150):
                assert store.add_event(event(start_at=T0 + i, snapshot_jpeg=snap)) is not None
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                for ev in store.list_events(limit=20):
                    assert store.get_snapshot(ev["id"]) == snap
                store.count_events(camera="gate")
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=f, name=f"test-{f.__name__}") for f in (write, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert store.count_events() == 150


@pytest.fixture
def fragile(tmp_path: Path, metrics: Metrics) -> Iterator[ReviewStore]:
    """A store that gives up fast: 1 try + 2 retries, 20 ms busy timeout."""
    store = ReviewStore(
        tmp_path / "events.db", retries=2, metrics=metrics, busy_timeout_ms=20, backoff_s=0.001
    )
    yield store
    store.close()


@pytest.fixture
def locked(fragile: ReviewStore, tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection holding the write lock, as another process would."""
    holder = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def test_a_locked_database_spills_the_event_and_replays_it(
    fragile: ReviewStore,
    metrics: Metrics,
    locked: sqlite3.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    snap = jpeg()
    with caplog.at_level(logging.ERROR, logger="monitor.store.review_store"):
        spilled_event = event(
            camera="locked-cam",
            snapshot_jpeg=snap,
            unfamiliar=True,
            held=True,
            night_class="night_ir",
        )
        assert fragile.add_event(spilled_event) is None
    assert metric(metrics, "bearwatch_store_write_failures_total") == 3  # 1 try + 2 retries
    assert fragile.healthy is False
    assert metric(metrics, "bearwatch_store_healthy") == 0
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "locked-cam" in record.getMessage() and "database is locked" in record.getMessage()
    assert "/9j/" not in record.getMessage()  # the base64 JPEG is never logged
    (line,) = fragile.spill_path.read_text().splitlines()
    spilled = json.loads(line)
    assert spilled["op"] == "add" and spilled["event"]["camera"] == "locked-cam"

    locked.execute("ROLLBACK")
    assert fragile.replay_spill() == 1
    (got,) = fragile.list_events()
    assert got["camera"] == "locked-cam" and fragile.get_snapshot(got["id"]) == snap
    assert not fragile.spill_path.exists()
    assert (got["unfamiliar"], got["held"], got["night_class"]) == (True, True, "night_ir")
    assert fragile.healthy is True and metric(metrics, "bearwatch_store_healthy") == 1


def test_writes_queue_behind_the_spill_to_keep_their_order(
    fragile: ReviewStore, locked: sqlite3.Connection
) -> None:
    assert fragile.add_event(event(label="first", start_at=T0)) is None
    assert fragile.add_event(event(label="second", start_at=T0 + 1)) is None
    assert len(fragile.spill_path.read_text().splitlines()) == 2
    locked.execute("ROLLBACK")
    third = fragile.add_event(event(label="third", start_at=T0 + 2))  # replays the spill first
    assert third is not None and fragile.healthy
    by_id = sorted(fragile.list_events(), key=lambda e: e["id"])
    assert [e["label"] for e in by_id] == ["first", "second", "third"]


def test_the_spill_is_replayed_at_open_and_only_once(
    fragile: ReviewStore, tmp_path: Path, metrics: Metrics, locked: sqlite3.Connection
) -> None:
    assert fragile.add_event(event()) is None
    fragile.close()
    spill = (tmp_path / "events.db.spill.jsonl").read_text()
    locked.execute("ROLLBACK")

    reopened = ReviewStore(tmp_path / "events.db", metrics=metrics)
    try:
        assert reopened.count_events() == 1 and reopened.healthy
        assert not reopened.spill_path.exists()
        # A crash between replaying and clearing the file replays it again: no duplicate.
        reopened.spill_path.write_text(spill + "{not json\n")
        assert reopened.replay_spill() == 1
        assert reopened.count_events() == 1
        rejected = tmp_path / "events.db.spill.rejected.jsonl"
        assert rejected.read_text() == "{not json\n"
    finally:
        reopened.close()


def test_a_write_after_close_is_spilled_not_lost(tmp_path: Path, metrics: Metrics) -> None:
    store = ReviewStore(tmp_path / "events.db", metrics=metrics)
    store.close()
    assert store.add_event(event(camera="late")) is None
    assert json.loads(store.spill_path.read_text())["event"]["camera"] == "late"
    reopened = ReviewStore(tmp_path / "events.db", metrics=metrics)
    try:
        assert [e["camera"] for e in reopened.list_events()] == ["late"]
    finally:
        reopened.close()


def test_spilled_updates_and_verdicts_are_replayed_in_order(
    tmp_path: Path, metrics: Metrics
) -> None:
    store = ReviewStore(
        tmp_path / "events.db", retries=0, metrics=metrics, busy_timeout_ms=20, backoff_s=0.001
    )
    try:
        event_id = store.add_event(event())
        assert event_id is not None
        holder = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        assert store.update_event(event_id, end_at=T0 + 5, snapshot_jpeg=jpeg()) is False
        assert store.set_verdict(event_id, "rejected", "ana", reason_code="shadow") is False
        holder.execute("ROLLBACK")
        holder.close()
        assert store.replay_spill() == 2
        got = store.get_event(event_id)
        assert got is not None
        assert got["end_at"] == T0 + 5 and got["has_snapshot"]
        assert (got["review_status"], got["reason_code"]) == ("rejected", "shadow")
    finally:
        store.close()


def test_db_upgrade_adopts_an_old_file_and_status_reports_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, upto=2)
    conn.close()

    def bearwatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "monitor", *args, "--store", str(path)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    before = bearwatch("db", "status")
    assert before.returncode == 1 and "hand-written schema version 2" in before.stdout
    up = bearwatch("db", "upgrade")
    assert up.returncode == 0 and "from legacy version 2 to revision" in up.stdout, up.stderr
    after = bearwatch("db", "status")
    assert after.returncode == 0 and "up to date" in after.stdout


def test_claims_are_released_by_their_owner_only(store: ReviewStore) -> None:
    first = store.add_event(event(mode="active"))
    second = store.add_event(event(mode="active", start_at=T0 + 1))
    kw: dict[str, Any] = {"since": 0, "max_attempts": 3, "retry_before": T0 + 10**9}
    assert len(store.claim_notifications("mqtt", "box-a", lease_s=60, limit=1, **kw)) == 1
    assert [r["id"] for r in store.claim_notifications("mqtt", "box-b", lease_s=60, **kw)] == [
        second
    ]
    assert store.release_claims("box-a") == 1  # box-a stops cleanly: its claim goes back
    assert [r["id"] for r in store.claim_notifications("mqtt", "box-c", lease_s=60, **kw)] == [
        first
    ]
    # The webhook channel has an outbox of its own.
    assert len(store.claim_notifications("webhook", "box-a", lease_s=60, **kw)) == 2
