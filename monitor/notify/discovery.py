"""Home Assistant MQTT discovery: one binary sensor per camera and alert label, announced retained.

Home Assistant (and Frigate's users, most of whom run it) creates entities
from retained ``<discovery_prefix>/binary_sensor/<node>/<object>/config``
messages, so "bear at gate" appears without a line of YAML. Each sensor
turns on with a notification for its camera and label (the same moment the
MQTT event goes out, so the rollout mode gates it too) and off by itself
after ``off_after_s`` (``off_delay``): bearwatch does not notify an event's
end, and a sensor stuck on would be worse than one that blinks. Availability
follows ``<prefix>/available``, which the last will turns ``offline``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

ON, OFF = "ON", "OFF"


def topic_part(text: str) -> str:
    """A label or id as a topic level and entity id: lowercase letters, digits, ``_`` and ``-``."""
    return re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_") or "unnamed"


def node_id(prefix: str) -> str:
    return topic_part(prefix.replace("/", "_"))


def state_topic(prefix: str, camera: str, label: str) -> str:
    """Where a camera/label sensor's ON goes: ``<prefix>/<camera>/<label>/state``."""
    return f"{prefix}/{topic_part(camera)}/{topic_part(label)}/state"


def config_topic(discovery_prefix: str, prefix: str, camera: str, label: str) -> str:
    obj = f"{topic_part(camera)}_{topic_part(label)}"
    return f"{discovery_prefix}/binary_sensor/{node_id(prefix)}/{obj}/config"


def discovery_messages(
    prefix: str,
    discovery_prefix: str,
    sensors: Mapping[str, Sequence[str]],
    off_after_s: int,
) -> list[tuple[str, str]]:
    """(topic, JSON payload) of every sensor's discovery config, cameras and labels sorted.

    Args:
        prefix: bearwatch's topic prefix (``notifications.mqtt.topic_prefix``).
        discovery_prefix: Home Assistant's (``homeassistant`` unless changed there).
        sensors: camera id → the labels it alerts on.
        off_after_s: seconds after which Home Assistant turns the sensor off again.
    """
    node = node_id(prefix)
    out = []
    for camera in sorted(sensors):
        device = {
            "identifiers": [f"{node}_{topic_part(camera)}"],
            "name": f"bearwatch {camera}",
            "manufacturer": "bearwatch",
            "model": "camera",
        }
        for label in sorted(set(sensors[camera])):
            payload = {
                "name": label.capitalize(),
                "unique_id": f"{node}_{topic_part(camera)}_{topic_part(label)}",
                "state_topic": state_topic(prefix, camera, label),
                "payload_on": ON,
                "payload_off": OFF,
                "off_delay": off_after_s,
                "device_class": "occupancy",
                "availability_topic": f"{prefix}/available",
                "payload_available": "online",
                "payload_not_available": "offline",
                "json_attributes_topic": f"{prefix}/{camera}/events",
                "device": device,
            }
            out.append((config_topic(discovery_prefix, prefix, camera, label), json.dumps(payload)))
    return out
