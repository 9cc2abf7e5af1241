"""The MQTT channel: availability with a last will, retained camera status, and event messages.

Topics (``<prefix>`` is ``notifications.mqtt.topic_prefix``, ``bearwatch`` by default),
laid out like Frigate's so Home Assistant users find them where they expect:

* ``<prefix>/available`` — retained ``online`` while connected; ``offline``
  retained on a clean stop, and the broker publishes the same as our last
  will when the connection dies without a DISCONNECT (crash, kill -9, cable).
* ``<prefix>/<camera>/status`` — retained camera status (``starting``,
  ``online``, ``reconnecting``, ``offline``, ``ended``), published when it
  changes and again after every reconnect (the broker may have lost it).
* ``<prefix>/<camera>/events`` and ``<prefix>/events`` — one JSON message per
  notification (the payload is described in ``monitor.notify.service``), not retained.
* with ``home_assistant: true``: retained discovery configs under
  ``<discovery_prefix>/binary_sensor/…`` after each connect, and ``ON`` on
  ``<prefix>/<camera>/<label>/state`` with each notification (see ``monitor.notify.discovery``).

Why paho's own network thread: it keeps the connection alive, reconnects with
backoff and answers keepalives without the notify thread's help. The notify
thread only ever checks ``is_connected`` and waits a bounded time for an
acknowledgement, so a dead broker costs it nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.config import MqttConfig
from monitor.notify.discovery import ON, discovery_messages, state_topic

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0
SHUTDOWN_PUBLISH_TIMEOUT_S = 0.5
CONNECT_TIMEOUT_S = 2.0
STOP_GRACE_S = 0.3  # how long an acknowledgement is still awaited once stopping
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


class MqttChannel:
    """One paho client for the daemon: publishes notifications and status; owns the last will.

    Args:
        cfg: broker address, credentials, topic prefix, client id, QoS, keepalive.
        stop: the notifier's stop event; a wait for an acknowledgement ends when it is set.
        on_connected: called (from paho's thread) after each successful connect,
            so deliveries that failed while the broker was away go out promptly.
        clock: monotonic clock for publish deadlines.
        publish_timeout_s: how long a notification waits for the broker's acknowledgement.
        sensors: camera id → alert labels, announced to Home Assistant when
            ``cfg.home_assistant`` is on.
    """

    name = "mqtt"

    def __init__(
        self,
        cfg: MqttConfig,
        stop: threading.Event,
        *,
        on_connected: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
        sensors: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._cfg, self._stop, self._clock = cfg, stop, clock
        self._sensors = dict(sensors or {}) if cfg.home_assistant else {}
        self._on_connected = on_connected
        self._publish_timeout_s = publish_timeout_s
        self._prefix = cfg.topic_prefix.rstrip("/")
        self.availability_topic = f"{self._prefix}/available"
        self._published: dict[str, str] = {}  # camera → status the broker holds
        self._resync = threading.Event()  # set on (re)connect: publish every status again
        self._live = False  # set after on_connect has done its part (online, resync)
        self._first_try = threading.Event()  # the first connection attempt has ended, either way
        self._outage_logged = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=mqtt.MQTTv311
        )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        client.will_set(self.availability_topic, "offline", qos=cfg.qos, retain=True)
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        # Bounds loop_stop() at shutdown when the broker's host swallows SYNs.
        client.connect_timeout = CONNECT_TIMEOUT_S
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        self._client = client

    @property
    def connected(self) -> bool:
        return self._live and self._client.is_connected()

    @property
    def ready(self) -> bool:
        """Connected — or still making the first attempt, which ``send`` waits for."""
        return self.connected or not self._first_try.is_set()

    def open(self) -> None:
        """Start connecting in paho's network thread; returns at once."""
        logger.info(
            "mqtt: connecting to %s:%d as %s (topics under %s/)",
            self._cfg.host,
            self._cfg.port,
            self._cfg.client_id,
            self._prefix,
        )
        self._client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._cfg.keepalive_s)
        self._client.loop_start()

    def send(self, event_id: int, camera: str, body: bytes) -> str | None:
        """Publish one notification on the camera's and the shared events topic.

        Returns:
            None once the broker acknowledged both (QoS 1/2; QoS 0: once written);
            otherwise what went wrong.
        """
        if not self.connected and not self._first_try.is_set():
            # Right after start the connection is usually moments away: waiting
            # for it (bounded) saves the alerts due at start an attempt each.
            self._wait_first_try()
        if not self.connected:
            # Publishing now would only queue it inside paho, to go out again
            # after the retry: fail fast and let the store's retry decide.
            return f"not connected to the MQTT broker at {self._cfg.host}:{self._cfg.port}"
        topics = [f"{self._prefix}/{camera}/events", f"{self._prefix}/events"]
        infos = [self._client.publish(t, body, qos=self._cfg.qos, retain=False) for t in topics]
        label = self._sensor_label(camera, body)
        if label is not None:
            # Not retained: after a restart Home Assistant must not show an old bear as present.
            state = state_topic(self._prefix, camera, label)
            infos.append(self._client.publish(state, ON, qos=self._cfg.qos, retain=False))
        return self._wait(infos, self._publish_timeout_s, self._stop)

    def _sensor_label(self, camera: str, body: bytes) -> str | None:
        """The announced sensor a notification turns on, if any."""
        if camera not in self._sensors:
            return None
        try:
            label = json.loads(body).get("label")
        except (ValueError, AttributeError):
            return None
        return label if label in self._sensors[camera] else None

    def publish_status(self, statuses: Mapping[str, str]) -> None:
        """Publish (retained) each camera status that changed since the broker last got it."""
        if self._resync.is_set():
            self._resync.clear()
            self._published.clear()
        if not self.connected:
            return
        for camera, status in sorted(statuses.items()):
            if self._published.get(camera) == status:
                continue
            info = self._client.publish(
                f"{self._prefix}/{camera}/status", status, qos=self._cfg.qos, retain=True
            )
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self._published[camera] = status
                logger.debug("mqtt: camera %s status %s", camera, status)

    def abort(self) -> None:
        """Nothing to cut: a wait for an acknowledgement already ends on the stop event."""

    def close(self) -> None:
        """Say ``offline`` (retained), disconnect cleanly and stop paho's network thread."""
        if self.connected:
            info = self._client.publish(
                self.availability_topic, "offline", qos=self._cfg.qos, retain=True
            )
            error = self._wait([info], SHUTDOWN_PUBLISH_TIMEOUT_S, None)
            if error:
                logger.warning("mqtt: could not publish offline at shutdown: %s", error)
        self._client.disconnect()
        self._client.loop_stop()
        logger.info("mqtt: disconnected")

    def _wait_first_try(self) -> None:
        deadline = self._clock() + CONNECT_TIMEOUT_S + 0.5
        while not self._stop.is_set() and self._clock() < deadline:
            if self._first_try.wait(0.05):
                return

    def _wait(
        self,
        infos: Sequence[mqtt.MQTTMessageInfo],
        timeout_s: float,
        stop: threading.Event | None,
    ) -> str | None:
        """Wait for every message's acknowledgement, in short slices so a stop is noticed."""
        deadline = self._clock() + timeout_s
        stopping = False
        try:
            for info in infos:
                while not info.is_published():
                    if stop is not None and stop.is_set() and not stopping:
                        # A healthy broker acks within milliseconds: wait that
                        # long, so a stop does not turn a sent alert into a duplicate.
                        stopping = True
                        deadline = min(deadline, self._clock() + STOP_GRACE_S)
                    left = deadline - self._clock()
                    if left <= 0:
                        if stopping:
                            return "interrupted: the notifier is stopping (no acknowledgement yet)"
                        return f"no acknowledgement from the broker within {timeout_s:g} s"
                    info.wait_for_publish(min(left, 0.05))
        except (RuntimeError, ValueError) as exc:  # paho's way of saying the publish failed
            return f"publish failed: {exc}"
        return None

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: mqtt.ReasonCode,
        properties: mqtt.Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._first_try.set()
            # Wrong credentials and the like: paho retries; say so once per outage.
            if not self._outage_logged:
                logger.warning(
                    "mqtt: broker %s:%d refused the connection: %s; retrying",
                    self._cfg.host,
                    self._cfg.port,
                    reason_code,
                )
                self._outage_logged = True
            return
        self._outage_logged = False
        logger.info("mqtt: connected to %s:%d", self._cfg.host, self._cfg.port)
        client.publish(self.availability_topic, "online", qos=self._cfg.qos, retain=True)
        # Retained and sent again on every connect: a broker restarted without
        # persistence has forgotten them, and Home Assistant re-reads them then.
        for topic, payload in discovery_messages(
            self._prefix, self._cfg.discovery_prefix, self._sensors, self._cfg.sensor_off_after_s
        ):
            client.publish(topic, payload, qos=self._cfg.qos, retain=True)
        self._resync.set()
        self._live = True
        self._first_try.set()  # last: a waiting send must find the connection usable
        if self._on_connected is not None:
            self._on_connected()

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        if not self._outage_logged:
            logger.warning(
                "mqtt: cannot reach broker %s:%d; retrying every %d s at most",
                self._cfg.host,
                self._cfg.port,
                RECONNECT_MAX_S,
            )
            self._outage_logged = True
        self._first_try.set()

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: mqtt.ReasonCode,
        properties: mqtt.Properties | None,
    ) -> None:
        self._live = False
        self._first_try.set()
        # A refused connect ends in a disconnect too: one warning per outage is enough.
        if not self._stop.is_set() and not self._outage_logged:
            logger.warning("mqtt: connection lost (%s); reconnecting", reason_code)
            self._outage_logged = True
