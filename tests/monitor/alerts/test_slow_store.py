"""Decisions never wait on a slow store: the alert stage keeps deciding while another process holds the SQLite lock."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from monitor.alerts.stage import AlertStage
from monitor.config import CameraConfig, DecisionConfig
from monitor.metrics import Metrics
from monitor.store import ReviewStore
from monitor.store.writer import StoreWriter
from tests.monitor.alerts.test_stage_memory import LABELS, feed


def wait_until(predicate, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    done = threading.Event()
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return True
        done.wait(0.02)
    return bool(predicate())


def test_a_locked_store_does_not_hold_up_decisions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bug: with the SQLite file locked by another process, each write waited out its busy timeout
    on the alerts thread, even on the spill path: decisions for every camera fell ~20 s behind."""
    decision = DecisionConfig(threshold=0.7, window=3, min_hits=2, end_after_s=1.0, cooldown_s=2.0)
    camera = CameraConfig(id="trail", source=str(tmp_path / "trail.mp4"), decision=decision)
    metrics = Metrics()
    db = tmp_path / "s.db"
    store = ReviewStore(db, metrics=metrics)
    writer = StoreWriter(store, metrics)
    stage = AlertStage([camera], LABELS, "test-1", store, metrics, writer=writer)
    locker = sqlite3.connect(db, isolation_level=None)
    caplog.set_level(logging.WARNING, logger="monitor.store")
    writer.start()
    stage.start()
    try:
        locker.execute("BEGIN EXCLUSIVE")  # another process's write lock, held throughout
        # 300 frames, 10 events: every decision is made while the lock is held.
        feed(stage, 0, 300, 1_750_000_000.0)
        assert stage.decisions.gate_state("trail", 299)[0]
        assert wait_until(lambda: not store.healthy), "the store never said it was failing"
        assert wait_until(writer.idle), "the writer did not spill while the store was locked"
        assert store.spill_path.exists()
        assert store.count_events(kind="alert") == 0  # nothing reached the locked file
        waits = [r for r in caplog.records if r.name.startswith("monitor.store")]
        assert any("spilling" in r.getMessage() for r in waits)
        # Every wait on the lock happened on the writer's thread, none on the deciding one.
        assert {r.threadName for r in waits} == {"store-writer"}
    finally:
        locker.execute("COMMIT")
        locker.close()
    try:
        store.replay_spill()
        assert store.healthy
        assert store.count_events(kind="alert") == 10  # spilled durably, none lost or doubled
    finally:
        stage.stop()
        stage.join(10.0)
        writer.stop()
        writer.join(10.0)
        store.close()


def test_a_full_writer_queue_neither_grows_nor_drops(tmp_path: Path) -> None:
    """Memory stays bounded: past ``max_queue`` a write runs at once on the caller (zero budget: spilled), never dropped."""
    metrics = Metrics()
    store = ReviewStore(tmp_path / "s.db", metrics=metrics)
    writer = StoreWriter(store, metrics, max_queue=2)
    ran: list[int] = []
    try:
        for i in range(5):
            writer.submit(lambda i=i: ran.append(i))  # type: ignore[misc]
        assert writer.backlog == 2 and writer.overflows == 3
        assert ran == [2, 3, 4]  # the overflow ran on this thread
        writer.start()
        assert wait_until(writer.idle)
        assert sorted(ran) == [0, 1, 2, 3, 4]
    finally:
        writer.stop()
        writer.join(5.0)
        store.close()
