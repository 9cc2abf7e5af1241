"""Home Assistant MQTT discovery against a real mosquitto: a Home Assistant-style subscriber sees the sensors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.metrics import Metrics
from monitor.notify.discovery import config_topic, discovery_messages, state_topic, topic_part
from monitor.notify.service import NotificationService
from monitor.store import ReviewStore
from tests.brokers import MosquittoBroker, MqttListener
from tests.monitor.notify.test_notifiers import add_event, delivery, notif_cfg, running, wait_until

SENSORS = {"gate": ("bear", "person"), "creek": ("bear",)}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path) as b:
        yield b


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db")
    yield s
    s.close()


@pytest.mark.parametrize(
    ("text", "part"),
    [("gate", "gate"), ("Black Bear", "black_bear"), ("../#", "unnamed"), ("a+b", "a_b")],
)
def test_topic_parts_are_safe(text: str, part: str) -> None:
    assert topic_part(text) == part


def test_one_config_per_camera_and_label() -> None:
    messages = dict(discovery_messages("bearwatch", "homeassistant", SENSORS, 60))
    assert sorted(messages) == [
        "homeassistant/binary_sensor/bearwatch/creek_bear/config",
        "homeassistant/binary_sensor/bearwatch/gate_bear/config",
        "homeassistant/binary_sensor/bearwatch/gate_person/config",
    ]
    gate_bear = json.loads(messages[config_topic("homeassistant", "bearwatch", "gate", "bear")])
    assert gate_bear["unique_id"] == "bearwatch_gate_bear"
    assert gate_bear["state_topic"] == "bearwatch/gate/bear/state"
    assert gate_bear["availability_topic"] == "bearwatch/available"
    assert (gate_bear["payload_available"], gate_bear["payload_not_available"]) == (
        "online",
        "offline",
    )
    assert gate_bear["off_delay"] == 60 and gate_bear["device"]["identifiers"] == ["bearwatch_gate"]


def test_home_assistant_sees_the_sensors_availability_and_a_bear(
    store: ReviewStore, broker: MosquittoBroker
) -> None:
    cfg = notif_cfg(broker.port, mqtt_extra={"home_assistant": True, "sensor_off_after_s": 90})
    service = NotificationService(cfg, store, Metrics(), sensors=SENSORS, poll_s=30)
    with running(service):
        with MqttListener(broker.port, "bearwatch/available") as lst:
            lst.wait_for("bearwatch/available", b"online")
        # Home Assistant subscribes after bearwatch announced: the configs are retained.
        with (
            MqttListener(broker.port, "homeassistant/#") as ha,
            MqttListener(broker.port, "bearwatch/+/+/state") as states,
        ):
            for camera, labels in SENSORS.items():
                for label in labels:
                    msg = ha.wait_for(config_topic("homeassistant", "bearwatch", camera, label))
                    assert msg.retain
                    config = json.loads(msg.payload)
                    assert config["availability_topic"] == "bearwatch/available"
                    assert config["state_topic"] == state_topic("bearwatch", camera, label)
                    assert config["off_delay"] == 90
            event_id = add_event(store, "active", camera="gate")
            service.wake()
            on = states.wait_for("bearwatch/gate/bear/state", b"ON")
            assert not on.retain  # a restarted Home Assistant must not see an old bear
            wait_until(lambda: delivery(store, event_id, "mqtt") is not None, what="delivery row")
            assert states.on("bearwatch/gate/person/state") == []


def test_discovery_is_off_unless_asked(store: ReviewStore, broker: MosquittoBroker) -> None:
    service = NotificationService(notif_cfg(broker.port), store, Metrics(), sensors=SENSORS)
    with running(service), MqttListener(broker.port, "#") as everything:
        everything.wait_for("bearwatch/available", b"online")
        event_id = add_event(store, "active", camera="gate")
        service.wake()
        everything.wait_for("bearwatch/gate/events")
        wait_until(lambda: delivery(store, event_id, "mqtt") is not None, what="delivery row")
        assert not [m for m in everything.messages if m.topic.startswith("homeassistant/")]
        assert not everything.on("bearwatch/gate/bear/state")
