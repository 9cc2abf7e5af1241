"""The spill is the commit point for notification: an active alert goes out while the store is locked, once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.alerts.stage import AlertStage
from monitor.config import CameraConfig, DecisionConfig
from monitor.metrics import Metrics
from monitor.notify.service import NotificationService
from monitor.store import ReviewStore
from monitor.store.writer import StoreWriter
from tests.brokers import WebhookReceiver
from tests.monitor.alerts.test_stage_memory import LABELS, feed
from tests.monitor.notify.test_notifiers import add_event, notif_cfg, running, wait_until


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def test_an_active_alert_is_sent_from_the_spill_while_the_store_is_locked(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """Bug: with the store locked for 20 s an active camera's alert went out 20 s late (it waited for the database)."""
    decision = DecisionConfig(threshold=0.7, window=3, min_hits=2, end_after_s=1.0, cooldown_s=2.0)
    camera = CameraConfig(
        id="trail", source=str(tmp_path / "t.mp4"), mode="active", decision=decision
    )
    metrics = Metrics()
    db = tmp_path / "events.db"
    store = ReviewStore(db, metrics=metrics)
    writer = StoreWriter(store, metrics)
    stage = AlertStage([camera], LABELS, "test-1", store, metrics, writer=writer)
    service = NotificationService(notif_cfg(webhook_url=receiver.url), store, metrics, poll_s=30)
    stage.on_spilled.append(service.send_spilled)
    locker = sqlite3.connect(db, isolation_level=None)
    writer.start()
    stage.start()
    try:
        with running(service):
            locker.execute("BEGIN EXCLUSIVE")
            feed(stage, 0, 12, 1_750_000_000.0)  # one bear event starts (and ends)
            sent = receiver.wait_for(1, timeout_s=10.0)
            payload = json.loads(sent[0].body)
            assert payload["id"] is None and payload["type"] == "new"
            assert (payload["camera"], payload["label"], payload["mode"]) == (
                "trail", "bear", "active",
            )  # fmt: skip
            assert store.count_events() == 0  # sent while the event was only in the spill
            wait_until(
                lambda: '"op": "delivery"' in store.spill_path.read_text(),
                10.0,
                "the delivery recorded behind the event in the spill",
            )
            locker.execute("COMMIT")
            wait_until(lambda: writer.idle(), 10.0, "the writer")
            store.replay_spill()
            (stored,) = store.list_events()
            assert [(d["channel"], d["status"]) for d in store.deliveries(stored["id"])] == [
                ("webhook", "sent")
            ]
            # A later alert goes out; the replayed one is not sent a second time.
            later = add_event(store, "active")
            service.wake()
            receiver.wait_for(2, timeout_s=5.0)
            wait_until(lambda: bool(store.deliveries(later)), 5.0, "the later delivery")
            assert [json.loads(r.body)["id"] for r in receiver.requests] == [None, later]
    finally:
        if locker.in_transaction:
            locker.execute("COMMIT")
        locker.close()
        stage.stop()
        stage.join(10.0)
        writer.stop()
        writer.join(10.0)
        store.close()
