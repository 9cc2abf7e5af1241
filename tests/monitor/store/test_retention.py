"""Retention over a simulated month on a real store: budgets hold, pending events are never removed early."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.config import RetentionConfig
from monitor.metrics import Metrics
from monitor.records import AuditSample, CameraStats
from monitor.store import ReviewStore
from monitor.store.retention import DAY_S, Retention, RetentionWorker
from tests.monitor.store.test_review_store import T0, event, jpeg

PER_DAY = 12


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def test_thirty_days_of_retention_keep_the_store_under_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = RetentionConfig(
        reviewed_days=7, pending_days=20, audit_days=5, stats_days=10, snapshot_budget_mb=0.1
    )
    metrics = Metrics()
    store = ReviewStore(tmp_path / "events.db", site="north", metrics=metrics)
    other = ReviewStore(tmp_path / "events.db", site="south")  # another box's rows: never touched
    retention = Retention(store, cfg, metrics)
    snap = jpeg()
    budget = cfg.snapshot_budget_mb * 2**20
    try:
        assert other.add_event(event(camera="far", start_at=T0 - 400 * DAY_S, snapshot_jpeg=snap))
        for day in range(30):
            base = T0 + day * DAY_S
            for i in range(PER_DAY):
                event_id = store.add_event(
                    event(start_at=base + i * 60, label=f"l{i % 3}", snapshot_jpeg=snap)
                )
                assert event_id is not None
                if i % 2 == 0:  # half are reviewed the same day, half wait for a person
                    assert store.set_verdict(event_id, "confirmed", "ana", reviewed_at=base + 3600)
            store.add_audit_sample(
                AuditSample(camera="gate", captured_at=base, reason="random", model_version="m",
                            predicted_label="empty", alert_score=0.1, probs={"bear": 0.1},
                            snapshot_jpeg=None)
            )  # fmt: skip
            store.add_camera_stats(
                [CameraStats(camera="gate", at=base, period_s=60, online_s=60, frames=10,
                             reconnects=0, latency_p50_ms=5.0, latency_p99_ms=9.0, audit={})]
            )  # fmt: skip
            now = base + DAY_S - 1
            report = retention.run(now=now)
            assert report.snapshot_bytes <= budget

            events = list(store.iter_events(site="north"))
            pending = [e for e in events if e["review_status"] == "pending"]
            reviewed = [e for e in events if e["review_status"] != "pending"]
            # Not one pending event younger than the hard cap has gone.
            assert len(pending) == PER_DAY // 2 * min(day + 1, 20)
            assert all(e["start_at"] >= now - 20 * DAY_S for e in pending)
            assert all(e["reviewed_at"] >= now - 7 * DAY_S for e in reviewed)
            assert len(reviewed) == PER_DAY // 2 * min(day + 1, 7)
            assert all(s["captured_at"] >= now - 5 * DAY_S for s in store.list_audit_samples())
            assert all(s["at"] >= now - 10 * DAY_S for s in store.camera_stats())
        # Snapshots went oldest reviewed first: pending ones still have theirs while
        # reviewed ones lost them.
        events = list(store.iter_events(site="north"))
        assert any(e["has_snapshot"] for e in events if e["review_status"] == "pending")
        assert metric(metrics, "bearwatch_retention_removed_total", kind="reviewed_events") > 0
        assert metric(metrics, "bearwatch_retention_removed_total", kind="pending_events") == 60
        assert metric(metrics, "bearwatch_retention_removed_total", kind="reviewed_snapshots") > 0
        assert any("hard cap" in r.getMessage() for r in caplog.records)
        assert other.count_events(site="south") == 1  # another site's rows are its own box's job
    finally:
        store.close()
        other.close()


def test_a_full_disk_stops_snapshots_first_keeps_the_events_and_turns_health_red(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    store = ReviewStore(tmp_path / "events.db", metrics=metrics, min_free_mb=10**9)  # never enough
    try:
        event_id = store.add_event(event(snapshot_jpeg=jpeg()))
        assert event_id is not None
        got = store.get_event(event_id)
        assert got is not None and got["has_snapshot"] is False
        assert store.update_event(event_id, end_at=T0 + 5, snapshot_jpeg=jpeg())
        assert store.get_snapshot(event_id) is None
        assert store.healthy is False
        assert metric(metrics, "bearwatch_store_healthy") == 0
        assert metric(metrics, "bearwatch_store_snapshots_skipped_total") == 2
    finally:
        store.close()


def test_the_worker_runs_a_pass_at_start_and_stops_within_a_second(tmp_path: Path) -> None:
    metrics = Metrics()
    store = ReviewStore(tmp_path / "events.db", metrics=metrics)
    try:
        assert store.add_event(event(start_at=T0, snapshot_jpeg=jpeg())) is not None
        worker = RetentionWorker(store, RetentionConfig(pending_days=1, reviewed_days=1), metrics)
        worker.start()
        deadline = 50
        while metric(metrics, "bearwatch_retention_removed_total", kind="pending_events") == 0:
            assert deadline, "the first pass did not run"
            deadline -= 1
            worker.stop_event.wait(0.1)
        worker.stop()
        assert worker.join(1.0)
        assert store.count_events() == 0
        assert metric(metrics, "bearwatch_store_size_bytes") > 0
    finally:
        store.close()


def test_a_failing_pass_is_logged_and_the_worker_lives_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    store = ReviewStore(tmp_path / "events.db", metrics=metrics, retries=0)
    worker = RetentionWorker(store, RetentionConfig(interval_s=1), metrics)
    store.close()  # every pass now fails
    with caplog.at_level(logging.ERROR):
        worker.start()
        worker.stop_event.wait(0.3)
        assert worker.is_alive()
        worker.stop()
        assert worker.join(1.0)
    assert any("retention: pass failed" in r.getMessage() for r in caplog.records)
