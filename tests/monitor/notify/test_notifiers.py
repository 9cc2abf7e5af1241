"""NotificationService against a real mosquitto broker, a real HTTP receiver and a real review store."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from monitor.config import NotificationsConfig
from monitor.metrics import Metrics
from monitor.notify.service import NotificationService, event_payload, verify_signature
from monitor.records import NewEvent
from monitor.store import ReviewStore
from tests.brokers import MosquittoBroker, MqttListener, WebhookReceiver, free_port

REPO = Path(__file__).resolve().parents[3]
SECRET = "webhook-secret-42"
PASSWORD = "mqtt-pass-Zq81"
JPEG = bytes(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A live anonymous mosquitto on 127.0.0.1 (fails, never skips, when it is missing)."""
    with MosquittoBroker(tmp_path) as b:
        yield b


@pytest.fixture
def listener(broker: MosquittoBroker) -> Iterator[MqttListener]:
    with MqttListener(broker.port) as lst:
        yield lst


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db")
    yield s
    s.close()


def notif_cfg(
    mqtt_port: int | None = None, webhook_url: str | None = None, **extra: Any
) -> NotificationsConfig:
    raw: dict[str, Any] = {"max_attempts": 5, "retry_s": 0.2, **extra}
    if mqtt_port is not None:
        raw["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port, **raw.pop("mqtt_extra", {})}
    if webhook_url is not None:
        raw["webhook"] = {"url": webhook_url, **raw.pop("webhook_extra", {})}
    return NotificationsConfig.model_validate(raw)


def add_event(
    store: ReviewStore, mode: str, camera: str = "gate", start_at: float | None = None
) -> int:
    start = time.time() if start_at is None else start_at
    event_id = store.add_event(
        NewEvent(
            camera=camera,
            label="bear",
            kind="alert",
            start_at=start,
            end_at=start + 4.0,
            peak_score=0.91,
            model_version="color-test-1",
            mode=mode,
            snapshot_jpeg=JPEG,
            drift_flags=("dark",),
        )
    )
    assert event_id is not None
    return event_id


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` (e.g. a store read) until it holds; fail with ``what`` otherwise."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        pause.wait(0.02)


def delivery(store: ReviewStore, event_id: int, channel: str) -> dict[str, Any] | None:
    return next(
        (d for d in store.deliveries(event_id) if d["channel"] == channel),
        None,
    )


@contextmanager
def running(service: NotificationService) -> Iterator[NotificationService]:
    """Start ``service``; on exit, check that it stops within about a second.

    Not much less: while the broker is unreachable, paho's network thread
    sleeps between reconnects in slices of up to 1 s, and loop_stop() waits.
    """
    service.start()
    try:
        yield service
    finally:
        t0 = time.monotonic()
        service.stop()
        stopped = service.join(timeout=2.0)
        took = time.monotonic() - t0
        assert stopped, "notify thread still running 2 s after stop()"
        assert took < 1.5, f"stopping took {took:.2f} s"


def counts(metrics: Metrics) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for family in metrics.registry.collect():
        if family.name == "bearwatch_notifications":
            for s in family.samples:
                if s.name.endswith("_total"):
                    out[(s.labels["channel"], s.labels["result"])] = s.value
    return out


def test_active_alert_goes_out_at_once_on_both_channels(
    store: ReviewStore,
    broker: MosquittoBroker,
    listener: MqttListener,
    receiver: WebhookReceiver,
) -> None:
    metrics = Metrics()
    # A long poll: anything sent promptly was sent because of wake().
    service = NotificationService(notif_cfg(broker.port, receiver.url), store, metrics, poll_s=30)
    with running(service):
        listener.wait_for("bearwatch/available", b"online")
        active = add_event(store, "active")
        t0 = time.monotonic()
        service.wake()
        msg = listener.wait_for("bearwatch/gate/events", timeout_s=2.0)
        receiver.wait_for(1, timeout_s=2.0)
        assert time.monotonic() - t0 < 1.0
        wait_until(lambda: delivery(store, active, "webhook") is not None, what="webhook row")
    payload = json.loads(msg.payload)
    assert payload == event_payload(store.get_event(active) or {})
    assert payload["type"] == "new" and payload["id"] == active
    assert (payload["camera"], payload["label"], payload["mode"]) == ("gate", "bear", "active")
    assert payload["score"] == pytest.approx(0.91)
    assert payload["end_time"] - payload["start_time"] == pytest.approx(4.0)
    assert payload["model_version"] == "color-test-1"
    assert payload["review_status"] == "pending"
    assert payload["drift_flags"] == ["dark"]
    assert payload["snapshot_url"] == f"/api/events/{active}/snapshot.jpg"
    assert not msg.retain
    assert json.loads(listener.wait_for("bearwatch/events").payload) == payload
    assert json.loads(receiver.requests[0].body) == payload
    for channel in ("mqtt", "webhook"):
        row = delivery(store, active, channel)
        assert row is not None
        assert (row["status"], row["trigger"], row["attempts"]) == ("sent", "active", 1)
    assert counts(metrics) == {("mqtt", "sent"): 1, ("webhook", "sent"): 1}


def test_review_waits_for_confirmation_and_shadow_never_goes(
    store: ReviewStore,
    broker: MosquittoBroker,
    listener: MqttListener,
    receiver: WebhookReceiver,
) -> None:
    """Shadow never (even once the camera is promoted), review only once confirmed."""
    shadow = add_event(store, "shadow")
    store.set_camera_mode("gate", "active", "alice", "promoted after review")
    review = add_event(store, "review", start_at=time.time() + 1)
    rejected = add_event(store, "review", start_at=time.time() + 2)
    metrics = Metrics()
    service = NotificationService(notif_cfg(broker.port, receiver.url), store, metrics, poll_s=30)
    with running(service):
        listener.wait_for("bearwatch/available", b"online")
        store.set_verdict(rejected, "rejected", "bob", reason_code="not_a_bear")
        store.set_verdict(review, "confirmed", "bob")
        service.wake()
        confirmed = json.loads(listener.wait_for("bearwatch/events").payload)
        receiver.wait_for(1)
        wait_until(lambda: delivery(store, review, "webhook") is not None, what="webhook row")
        # Events go out in id order, in one pass: once a later event is out, the
        # shadow and rejected ones have been looked at and passed over.
        sentinel = add_event(store, "active", start_at=time.time() + 3)
        service.wake()
        wait_until(lambda: delivery(store, sentinel, "webhook") is not None, what="sentinel")
    assert (confirmed["type"], confirmed["id"]) == ("confirmed", review)
    assert (confirmed["mode"], confirmed["review_status"]) == ("review", "confirmed")
    row = delivery(store, review, "mqtt")
    assert row is not None
    assert (row["status"], row["trigger"], row["attempts"]) == ("sent", "confirmed", 1)
    sent_ids = {json.loads(m.payload)["id"] for m in listener.on("bearwatch/events")}
    assert sent_ids == {review, sentinel}
    assert {json.loads(r.body)["id"] for r in receiver.requests} == sent_ids
    assert store.deliveries(shadow) == [] and store.deliveries(rejected) == []
    assert counts(metrics) == {("mqtt", "sent"): 2, ("webhook", "sent"): 2}


def test_a_verdict_from_another_process_is_sent_by_polling(
    tmp_path: Path, store: ReviewStore, receiver: WebhookReceiver
) -> None:
    """The standalone review page writes through its own store: the store is the outbox."""
    review = add_event(store, "review")
    service = NotificationService(notif_cfg(webhook_url=receiver.url), store, Metrics(), poll_s=0.1)
    with running(service):
        page = ReviewStore(tmp_path / "events.db")
        try:
            page.set_verdict(review, "confirmed", "carol")
        finally:
            page.close()
        (request,) = receiver.wait_for(1)
        wait_until(lambda: delivery(store, review, "webhook") is not None, what="delivery row")
    assert json.loads(request.body)["type"] == "confirmed"
    assert (delivery(store, review, "webhook") or {})["status"] == "sent"


def test_alerts_stored_before_the_grace_period_are_not_sent(
    store: ReviewStore, receiver: WebhookReceiver
) -> None:
    """A first start must not page anyone about last month."""
    old = add_event(store, "active")
    cfg = notif_cfg(webhook_url=receiver.url)
    service = NotificationService(cfg, store, Metrics(), started_at=time.time(), grace_s=0)
    with running(service):
        fresh = add_event(store, "active", start_at=time.time() + 1)
        service.wake()
        (request,) = receiver.wait_for(1)
    assert json.loads(request.body)["id"] != old
    assert fresh > old and store.deliveries(old) == []


def test_retained_availability_and_camera_status(
    broker: MosquittoBroker, listener: MqttListener, store: ReviewStore
) -> None:
    statuses = {"gate": "online", "shed": "reconnecting"}
    cfg = notif_cfg(broker.port, mqtt_extra={"client_id": "bw-status"})
    service = NotificationService(
        cfg, store, Metrics(), camera_status=lambda: dict(statuses), poll_s=0.05
    )
    with running(service):
        listener.wait_for("bearwatch/shed/status", b"reconnecting")
        with MqttListener(broker.port) as fresh:  # connects after: sees only retained state
            assert fresh.wait_for("bearwatch/available", b"online").retain
            assert fresh.wait_for("bearwatch/gate/status", b"online").retain
            assert fresh.wait_for("bearwatch/shed/status", b"reconnecting").retain
        gate_messages = len(listener.on("bearwatch/gate/status"))
        statuses["shed"] = "online"
        listener.wait_for("bearwatch/shed/status", b"online")
        assert len(listener.on("bearwatch/gate/status")) == gate_messages  # unchanged: not resent
        statuses["gate"] = "offline"  # what the pipeline says once it has stopped
    assert not [t for t in threading.enumerate() if t.name == "paho-mqtt-client-bw-status"]
    listener.wait_for("bearwatch/available", b"offline")
    with MqttListener(broker.port) as after:
        assert after.wait_for("bearwatch/available", b"offline").retain
        assert after.wait_for("bearwatch/gate/status", b"offline").retain


SERVICE_SCRIPT = """
import sys, threading
from pathlib import Path
from monitor.config import NotificationsConfig
from monitor.metrics import Metrics
from monitor.notify.service import NotificationService
from monitor.store import ReviewStore

cfg = NotificationsConfig.model_validate(
    {"mqtt": {"host": "127.0.0.1", "port": int(sys.argv[1]), "client_id": "doomed"}}
)
service = NotificationService(cfg, ReviewStore(Path(sys.argv[2])), Metrics())
service.start()
threading.Event().wait(60)  # until killed
"""


def test_last_will_says_offline_when_the_process_dies(
    tmp_path: Path, broker: MosquittoBroker, listener: MqttListener
) -> None:
    """kill -9: no DISCONNECT is sent, so only the broker's last will can say offline."""
    log = tmp_path / "service.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE_SCRIPT, str(broker.port), str(tmp_path / "events.db")],
            cwd=REPO,
            stderr=err,
        )
    try:
        try:
            listener.wait_for("bearwatch/available", b"online", timeout_s=20.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nservice stderr:\n{log.read_text()[-2000:]}") from None
        proc.kill()
        proc.wait(timeout=5)
        listener.wait_for("bearwatch/available", b"offline", timeout_s=5.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    with MqttListener(broker.port) as fresh:  # the will is retained for later subscribers too
        assert fresh.wait_for("bearwatch/available", b"offline").retain


def test_webhook_is_signed_with_hmac(store: ReviewStore, receiver: WebhookReceiver) -> None:
    event = add_event(store, "active")
    cfg = notif_cfg(webhook_url=receiver.url, webhook_extra={"secret": SECRET})
    with running(NotificationService(cfg, store, Metrics())) as service:
        service.wake()
        (req,) = receiver.wait_for(1)
    ts, sig = req.headers["X-Bearwatch-Timestamp"], req.headers["X-Bearwatch-Signature"]
    assert req.path == "/hook"
    assert req.headers["X-Bearwatch-Event"] == str(event)
    assert req.headers["Content-Type"] == "application/json"
    assert sig.startswith("sha256=")
    assert verify_signature(SECRET, ts, req.body, sig)
    assert not verify_signature("another-secret", ts, req.body, sig)
    assert not verify_signature(SECRET, ts, req.body.replace(b"bear", b"deer"), sig)
    assert not verify_signature(SECRET, ts, req.body, sig, now=float(ts) + 3600)
    assert verify_signature(SECRET, ts, req.body, sig, max_age_s=None, now=float(ts) + 3600)


def test_webhook_without_secret_is_unsigned(store: ReviewStore, receiver: WebhookReceiver) -> None:
    add_event(store, "active")
    with running(NotificationService(notif_cfg(webhook_url=receiver.url), store, Metrics())) as s:
        s.wake()
        (req,) = receiver.wait_for(1)
    assert "X-Bearwatch-Signature" not in req.headers


def test_webhook_failing_twice_is_retried_then_sent(
    store: ReviewStore, receiver: WebhookReceiver
) -> None:
    receiver.behave(fail_next=2, fail_status=503)
    event = add_event(store, "active")
    metrics = Metrics()
    cfg = notif_cfg(webhook_url=receiver.url, retry_s=0.3)
    with running(NotificationService(cfg, store, metrics, poll_s=0.05)):
        requests = receiver.wait_for(3, timeout_s=5.0)
        wait_until(lambda: (delivery(store, event, "webhook") or {}).get("status") == "sent")
    assert [r.answered for r in requests] == [503, 503, 200]
    gaps = [b.at - a.at for a, b in zip(requests, requests[1:], strict=False)]
    assert all(gap >= 0.25 for gap in gaps), f"retried sooner than retry_s: {gaps}"
    row = delivery(store, event, "webhook")
    assert row is not None and (row["attempts"], row["status"]) == (3, "sent")
    assert counts(metrics) == {("webhook", "failed"): 2, ("webhook", "sent"): 1}


def test_webhook_gives_up_after_max_attempts(
    store: ReviewStore, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.behave(fail_next=2, fail_status=500)  # a third try would succeed: there is none
    event = add_event(store, "active")
    cfg = notif_cfg(webhook_url=receiver.url, retry_s=0.1, max_attempts=2)
    with running(NotificationService(cfg, store, Metrics(), poll_s=0.05)):
        receiver.wait_for(2)
        wait_until(lambda: (delivery(store, event, "webhook") or {}).get("attempts") == 2)
        threading.Event().wait(0.5)  # five retry periods: long enough for a third try to show
    assert len(receiver.requests) == 2
    row = delivery(store, event, "webhook")
    assert row is not None and (row["status"], row["last_error"]) == ("failed", "HTTP 500")
    assert "giving up" in caplog.text
    assert store.get_event(event) is not None


def test_hanging_webhook_is_bounded_by_its_timeout(
    store: ReviewStore, receiver: WebhookReceiver
) -> None:
    receiver.behave(hang_s=10.0)
    event = add_event(store, "active")
    metrics = Metrics()
    cfg = notif_cfg(webhook_url=receiver.url, webhook_extra={"timeout_s": 0.3}, retry_s=60)
    with running(NotificationService(cfg, store, metrics)) as service:
        t0 = time.monotonic()
        service.wake()
        receiver.wait_for(1)
        wait_until(lambda: delivery(store, event, "webhook") is not None, timeout_s=2.0)
        assert time.monotonic() - t0 < 0.9
    row = delivery(store, event, "webhook")
    assert row is not None and row["status"] == "failed"
    assert "timed out" in row["last_error"] or "within" in row["last_error"]
    assert counts(metrics) == {("webhook", "failed"): 1}


def test_stop_cuts_a_hanging_webhook_request_short(
    store: ReviewStore, receiver: WebhookReceiver
) -> None:
    """A 30 s timeout must not hold up shutdown: join() cuts the request short."""
    receiver.behave(hang_s=30.0)
    event = add_event(store, "active")
    cfg = notif_cfg(webhook_url=receiver.url, webhook_extra={"timeout_s": 30.0})
    with running(NotificationService(cfg, store, Metrics())) as service:
        service.wake()
        receiver.wait_for(1)
    row = delivery(store, event, "webhook")
    assert row is not None and row["status"] == "failed"
    assert "stopping" in row["last_error"]


def test_unreachable_broker_and_webhook_fail_fast_and_keep_the_event(
    store: ReviewStore, caplog: pytest.LogCaptureFixture
) -> None:
    closed = free_port()  # nothing listens there
    event = add_event(store, "active")
    metrics = Metrics()
    cfg = notif_cfg(closed, f"http://127.0.0.1:{closed}/hook", retry_s=60)
    with running(NotificationService(cfg, store, metrics)) as service:
        t0 = time.monotonic()
        service.wake()
        wait_until(lambda: len(store.deliveries(event)) == 2, timeout_s=2.0, what="two rows")
        assert time.monotonic() - t0 < 1.0
    rows = {d["channel"]: d for d in store.deliveries(event)}
    assert rows["mqtt"]["status"] == rows["webhook"]["status"] == "failed"
    assert "not connected" in rows["mqtt"]["last_error"]
    assert "Connection refused" in rows["webhook"]["last_error"]
    assert counts(metrics) == {("mqtt", "failed"): 1, ("webhook", "failed"): 1}
    assert (store.get_event(event) or {})["review_status"] == "pending"
    assert "cannot reach broker" in caplog.text


def test_event_failed_while_broker_was_down_goes_out_when_it_comes_back(
    tmp_path: Path, store: ReviewStore
) -> None:
    port = free_port()
    event = add_event(store, "active")
    cfg = notif_cfg(port, retry_s=0.2)
    with running(NotificationService(cfg, store, Metrics(), poll_s=0.05)) as service:
        service.wake()
        wait_until(lambda: delivery(store, event, "mqtt") is not None, what="failed row")
        with MosquittoBroker(tmp_path, port=port) as broker, MqttListener(broker.port) as lst:
            # paho retries after 1 s, then 2 s, ...: the first retry finds the broker.
            msg = lst.wait_for("bearwatch/events", timeout_s=8.0)
            assert json.loads(msg.payload)["id"] == event
            wait_until(lambda: (delivery(store, event, "mqtt") or {}).get("status") == "sent")
            row = delivery(store, event, "mqtt")
            # One failure while the broker was down, however long that was.
            assert row is not None and row["attempts"] == 2
            service.stop()  # before the broker goes, so the offline message has somewhere to go
            assert service.join(timeout=1.0)
            lst.wait_for("bearwatch/available", b"offline")


def test_mqtt_with_username_and_password(
    tmp_path: Path, store: ReviewStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        MosquittoBroker(tmp_path, user="bearwatch", password=PASSWORD) as broker,
        MqttListener(broker.port, username="bearwatch", password=PASSWORD) as lst,
    ):
        event = add_event(store, "active")
        good = notif_cfg(broker.port, mqtt_extra={"username": "bearwatch", "password": PASSWORD})
        with running(NotificationService(good, store, Metrics())) as service:
            lst.wait_for("bearwatch/available", b"online")
            service.wake()
            assert json.loads(lst.wait_for("bearwatch/events").payload)["id"] == event
            wait_until(lambda: delivery(store, event, "mqtt") is not None, what="delivery row")

        other = ReviewStore(tmp_path / "other.db")
        try:
            refused_event = add_event(other, "active")
            bad = notif_cfg(
                broker.port,
                mqtt_extra={"username": "bearwatch", "password": "wrong-" + PASSWORD},
            )
            metrics = Metrics()
            with running(NotificationService(bad, other, metrics)):
                wait_until(lambda: delivery(other, refused_event, "mqtt") is not None)
                wait_until(lambda: "refused the connection" in caplog.text, what="refusal log")
            assert counts(metrics) == {("mqtt", "failed"): 1}
        finally:
            other.close()
    assert (delivery(store, event, "mqtt") or {})["status"] == "sent"
    assert PASSWORD not in caplog.text


def test_service_without_channels_starts_nothing(store: ReviewStore) -> None:
    service = NotificationService(NotificationsConfig(), store, Metrics())
    assert not service.enabled
    service.start()
    assert not service.is_alive()
    service.stop()
    assert service.join(timeout=0.1)
