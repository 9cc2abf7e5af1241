"""The ``notify`` thread: sends what the review store says is due, over MQTT and a webhook.

The store is the outbox. An event is written (and committed) by the alert
stage before anyone hears of it; this thread asks the store which alerts are
due on each channel, sends them, and records every attempt in ``deliveries``.
So a failure never loses an event (it stays in the store; its delivery row
says ``failed`` with the error, and it is retried after ``retry_s``, up to
``max_attempts``), and a notification decided elsewhere — a reviewer on the
standalone review page, or before a crash — still goes out.

What is due is gated by the rollout mode recorded on the event when it was
created, not by the camera's mode now: ``active`` alerts go out at once
(``type: "new"``), ``review`` alerts once a human confirms them
(``type: "confirmed"``), ``shadow`` alerts never — promoting a camera later
does not page anyone about what it saw in shadow. An ``active`` alert the
alert stage *held* because it was unfamiliar (out of the model's domain, with
``ood.hold_unfamiliar``) waits for a confirmation like a ``review`` one.

Delivery is at least once: a message whose acknowledgement is lost is sent
again. Receivers should drop duplicates by ``id``.

Payload (UTF-8 JSON; the same bytes on MQTT and in the webhook's POST body)::

    {
      "type": "new",                  # "new": active mode; "confirmed": review mode (or a held
                                      # unfamiliar active alert), confirmed
      "id": 42,                       # the event's id in the review store
      "camera": "campsite-north",
      "site": "lakeside",             # the site of the box that owns the camera ("" for one box)
      "label": "bear",
      "score": 0.93,                  # the event's peak score so far
      "start_time": 1718000000.0,     # UTC epoch seconds
      "end_time": null,               # UTC epoch seconds; null while the event is open
      "model_version": "bears-2024-06",
      "mode": "active",               # rollout mode recorded on the event
      "review_status": "pending",     # pending | confirmed (only confirmed events of review mode are sent)
      "drift_flags": [],              # e.g. ["shifted", "dark"]: the camera's drift state at the time
      "unfamiliar": false,            # the camera's recent frames were out of the model's domain
      "ood_score": 0.4,               # feature OOD score in units of the model's threshold (null: unknown)
      "box": [0.0, 0.42, 0.27, 0.9],  # the peak region, fractions of the frame (x0, y0, x1, y1); null: unknown
      "zone": "meadow",               # the include zone of the peak region; null without zones
      "snapshot_url": "/api/events/42/snapshot.jpg"   # relative to the web UI; null without a snapshot
    }

An ``active`` alert whose store write went to the spill (the database was
locked or slow) does not wait for the database: the spill is fsync'd, so it is
the commit point, and the alert stage hands the event over (``send_spilled``).
It goes out at once with ``"id": null`` (no id exists yet) and its delivery is
recorded behind it in the spill, so once both replay the outbox does not send
it again. If that first send fails, the outbox sends it once it is stored.

MQTT topics are described in ``monitor.notify.mqtt``; the webhook's
headers and HMAC signature in ``monitor.notify.webhook``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from monitor.config import NotificationsConfig
from monitor.errors import StoreError
from monitor.metrics import Metrics
from monitor.notify.mqtt import MqttChannel
from monitor.notify.webhook import WebhookChannel, verify_signature
from monitor.records import DueNotification, NewEvent
from monitor.worker import Worker

__all__ = ["Channel", "NotificationService", "Outbox", "event_payload", "verify_signature"]

logger = logging.getLogger(__name__)

POLL_S = 1.0
STOP_GRACE_S = 0.3  # what join() lets an in-flight request finish before cutting it
GRACE_S = 900.0
BATCH = 100
MAX_SPILLED = 1000  # active alerts waiting to go out from the spill
# How long a claim on an outbox row holds: past it, a box that died mid-delivery
# loses the row and another box sends it. Longer than one pass over a batch.
LEASE_S = 60.0


class Outbox(Protocol):
    """What the notifier asks of the review store (the outbox)."""

    site: str  # this box's: the site of an alert sent from the spill

    def claim_notifications(
        self,
        channel: str,
        owner: str,
        *,
        lease_s: float,
        since: float,
        max_attempts: int,
        retry_before: float,
        limit: int = 100,
    ) -> list[DueNotification]: ...

    def record_delivery(
        self, event_id: int, channel: str, trigger: str, ok: bool, error: str | None = None
    ) -> None: ...

    def release_claims(self, owner: str) -> int: ...

    def record_spilled_delivery(
        self, ev: NewEvent, channel: str, trigger: str, ok: bool, error: str | None = None
    ) -> None: ...


class Channel(Protocol):
    """One way out (MQTT, webhook). ``send`` returns None when delivered, else the error.

    ``ready`` is False while a channel knows it cannot deliver (MQTT: no
    connection to the broker); its failed deliveries then wait for it instead
    of spending their attempts.
    """

    name: str

    @property
    def ready(self) -> bool: ...

    def open(self) -> None: ...

    def send(self, event_id: int, camera: str, body: bytes) -> str | None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


def event_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The notification for a stored event (a row from the review store), as described above."""
    return {
        "type": "new" if event["mode"] == "active" and not event.get("held") else "confirmed",
        "id": int(event["id"]),
        "camera": event["camera"],
        "site": event.get("site", ""),
        "label": event["label"],
        "score": event["peak_score"],
        "start_time": event["start_at"],
        "end_time": event["end_at"],
        "model_version": event["model_version"],
        "mode": event["mode"],
        "review_status": event["review_status"],
        "drift_flags": list(event["drift_flags"]),
        "unfamiliar": bool(event.get("unfamiliar")),
        "ood_score": event.get("ood_score"),
        "box": event.get("box"),
        "zone": event.get("zone"),
        "snapshot_url": f"/api/events/{event['id']}/snapshot.jpg"
        if event.get("has_snapshot")
        else None,
    }


def spilled_payload(ev: NewEvent, site: str) -> dict[str, Any]:
    """The notification for an active alert known only from the spill (``id`` is null)."""
    return {
        "type": "new",
        "id": None,
        "camera": ev.camera,
        "site": site,
        "label": ev.label,
        "score": ev.peak_score,
        "start_time": ev.start_at,
        "end_time": ev.end_at,
        "model_version": ev.model_version,
        "mode": ev.mode,
        "review_status": "pending",
        "drift_flags": list(ev.drift_flags),
        "snapshot_url": None,
    }


class NotificationService(Worker):
    """The ``notify`` thread and its channels; built from ``cfg.notifications`` alone.

    Args:
        cfg: which channels, and the retry policy.
        store: the review store (the outbox; attempts are recorded there).
        metrics: ``bearwatch_notifications_total{channel,result}``.
        camera_status: camera id → status, published retained on MQTT when it changes.
        sensors: camera id → alert labels, for Home Assistant discovery (``mqtt.home_assistant``).
        started_at: UTC epoch of the daemon's start (default: now). Alerts older
            than ``grace_s`` before it are not sent, so a first start does not
            page anyone about last month, while a quick restart after a crash
            still sends what it had not.
        clock: monotonic clock for request and acknowledgement deadlines.
        poll_s: how often the store is asked when nobody calls ``wake``.
        grace_s: see ``started_at``.
    """

    def __init__(
        self,
        cfg: NotificationsConfig,
        store: Outbox,
        metrics: Metrics,
        *,
        owner: str | None = None,
        lease_s: float = LEASE_S,
        camera_status: Callable[[], Mapping[str, str]] | None = None,
        sensors: Mapping[str, Sequence[str]] | None = None,
        started_at: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
        grace_s: float = GRACE_S,
    ) -> None:
        super().__init__("notify", clock)
        self._cfg, self._store, self._metrics = cfg, store, metrics
        # Who holds a claim: unique per process, so a restarted daemon does not
        # mistake its dead predecessor's claims for its own.
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._lease_s = lease_s
        self._camera_status = camera_status
        self._since = (time.time() if started_at is None else started_at) - grace_s
        self._poll_s = poll_s
        self._kick = threading.Event()  # set by wake() and stop(): the loop's only wait
        self._spilled: deque[NewEvent] = deque(maxlen=MAX_SPILLED)
        self._mqtt = (
            MqttChannel(
                cfg.mqtt, self.stop_event, on_connected=self.wake, clock=clock, sensors=sensors
            )  # fmt: skip
            if cfg.mqtt is not None
            else None
        )
        self._channels: list[Channel] = [] if self._mqtt is None else [self._mqtt]
        if cfg.webhook is not None:
            self._channels.append(WebhookChannel(cfg.webhook, clock=clock))

    @property
    def enabled(self) -> bool:
        """True when at least one channel (MQTT, webhook) is configured."""
        return bool(self._channels)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._channels)

    def start(self) -> None:
        """Start the ``notify`` thread (nothing happens when no channel is configured)."""
        if not self._channels:
            logger.info("notifications: no channel configured")
            return
        logger.info("notifications: sending via %s", ", ".join(self.channels))
        super().start()

    def wake(self) -> None:
        """Look for due notifications now (the alert stage calls this after storing an alert)."""
        self._kick.set()

    def send_spilled(self, ev: NewEvent) -> None:
        """An alert whose start is only in the spill: send it now when its mode is ``active``."""
        if not self._channels or ev.kind != "alert" or ev.mode != "active":
            return
        self._spilled.append(ev)
        self._kick.set()

    def stop(self) -> None:
        """Ask the thread to stop after the delivery in hand (``join`` bounds that)."""
        self.stop_event.set()
        self._kick.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread; True when it has ended (or never started).

        A request still in flight after ``STOP_GRACE_S`` (a webhook that hangs)
        is cut short rather than waited out: it is recorded as failed, and a
        restart within ``grace_s`` tries it again.
        """
        if not self.started:
            return True
        self._thread.join(min(timeout, STOP_GRACE_S))
        if self._thread.is_alive() and self.stop_event.is_set():
            for channel in self._channels:
                channel.abort()
        return super().join(max(0.0, timeout - STOP_GRACE_S))

    def _run(self) -> None:
        opened: list[Channel] = []
        try:
            for channel in self._channels:
                channel.open()
                opened.append(channel)
            while not self.stop_event.is_set():
                self.beat()
                self._kick.clear()
                self._one_pass()
                self._kick.wait(self._poll_s)
            self._publish_status()  # the cameras' last word (the pipeline has stopped)
        finally:
            try:
                self._store.release_claims(self.owner)  # what this box claimed but did not send
            except StoreError as exc:
                logger.warning("notifications: claims not released (they expire): %s", exc)
            for channel in reversed(opened):
                try:
                    channel.close()
                except Exception:  # one channel's shutdown must not skip the other's
                    logger.exception("notifications: closing %s failed", channel.name)
            logger.info("notifications: stopped")

    def _one_pass(self) -> None:
        """Publish camera status, then send what each channel has due; a loop boundary."""
        self._publish_status()
        self._deliver_spilled()
        retry_before = time.time() - self._cfg.retry_s
        for channel in self._channels:
            if self.stop_event.is_set():
                return
            try:
                self._deliver_due(channel, retry_before)
            except StoreError as exc:  # closed or unreadable: the next pass tries again
                logger.warning("notifications: %s: review store unavailable: %s", channel.name, exc)
                self._metrics.notifications.labels(channel=channel.name, result="error").inc()
            except Exception:
                logger.exception("notifications: %s: a delivery pass failed", channel.name)
                self._metrics.notifications.labels(channel=channel.name, result="error").inc()

    def _deliver_due(self, channel: Channel, retry_before: float) -> None:
        # While the broker is away, only alerts never tried are tried (and
        # counted): an outage longer than max_attempts × retry_s must not use
        # up the retries of the alerts raised during it.
        max_attempts = self._cfg.max_attempts if channel.ready else 1
        rows = self._store.claim_notifications(
            channel.name,
            self.owner,
            lease_s=self._lease_s,
            since=self._since,
            max_attempts=max_attempts,
            retry_before=retry_before,
            limit=BATCH,
        )
        for row in rows:
            if self.stop_event.is_set():
                return
            self._deliver(channel, row)
        if len(rows) == BATCH:
            self._kick.set()  # more are waiting: no pause before the next page

    def _deliver_spilled(self) -> None:
        """Send active alerts known only from the spill; record each delivery behind it."""
        while self._spilled and not self.stop_event.is_set():
            ev = self._spilled.popleft()
            body = json.dumps(spilled_payload(ev, self._store.site), separators=(",", ":")).encode()
            for channel in self._channels:
                try:
                    error = channel.send(0, ev.camera, body)  # 0: no id yet
                except Exception:
                    logger.exception(
                        "notifications: %s: sending a spilled alert failed", channel.name
                    )
                    error = "unexpected error"
                result = "sent" if error is None else "failed"
                self._metrics.notifications.labels(channel=channel.name, result=result).inc()
                if error is None:
                    # A failed send is not recorded: the outbox sends it once it is stored.
                    self._store.record_spilled_delivery(ev, channel.name, "active", True)
                    logger.info(
                        "notifications: camera %s %s alert sent via %s from the spill "
                        "(the review store is unavailable)",
                        ev.camera, ev.label, channel.name,
                    )  # fmt: skip
                else:
                    logger.warning(
                        "notifications: camera %s %s alert from the spill via %s failed (%s); "
                        "it is sent from the store once stored",
                        ev.camera, ev.label, channel.name, error,
                    )  # fmt: skip

    def _deliver(self, channel: Channel, event: Mapping[str, Any]) -> None:
        payload = event_payload(event)
        body = json.dumps(payload, separators=(",", ":")).encode()
        event_id, attempt = payload["id"], int(event["attempts"]) + 1
        error = channel.send(event_id, payload["camera"], body)
        result = "sent" if error is None else "failed"
        self._metrics.notifications.labels(channel=channel.name, result=result).inc()
        trigger = "active" if payload["type"] == "new" else "confirmed"
        self._store.record_delivery(event_id, channel.name, trigger, error is None, error)
        if error is None:
            logger.info(
                "notifications: event %d (camera %s, %s) sent via %s",
                event_id,
                payload["camera"],
                payload["type"],
                channel.name,
            )
        elif attempt >= self._cfg.max_attempts:
            logger.error(
                "notifications: event %d via %s failed %d times, giving up: %s",
                event_id,
                channel.name,
                attempt,
                error,
            )
        else:
            logger.warning(
                "notifications: event %d via %s failed (attempt %d of %d, retry in %g s): %s",
                event_id,
                channel.name,
                attempt,
                self._cfg.max_attempts,
                self._cfg.retry_s,
                error,
            )

    def _publish_status(self) -> None:
        if self._mqtt is None or self._camera_status is None:
            return
        try:
            statuses = dict(self._camera_status())
        except Exception:  # a camera being restarted must not stop notifications
            logger.exception("notifications: cannot read camera status")
            return
        self._mqtt.publish_status(statuses)
