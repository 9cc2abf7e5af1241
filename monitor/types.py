"""The closed vocabularies every part shares: rollout modes, review statuses, event kinds, camera statuses, drop reasons.

Each is a ``Literal`` for type checkers and a tuple of its values for
validation and pages; there is exactly one definition of each.
"""

from __future__ import annotations

from typing import Literal, get_args

Mode = Literal["shadow", "review", "active"]
MODES: tuple[str, ...] = get_args(Mode)

ReviewStatus = Literal["pending", "confirmed", "rejected", "unsure", "relabelled"]
REVIEW_STATUSES: tuple[str, ...] = get_args(ReviewStatus)

EventKind = Literal["alert", "drift"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)

CameraStatus = Literal["starting", "online", "reconnecting", "offline", "ended"]
CAMERA_STATUSES: tuple[str, ...] = get_args(CameraStatus)

DropReason = Literal["superseded", "stale", "no_motion", "error", "shutdown"]
DROP_REASONS: tuple[str, ...] = get_args(DropReason)

# A frame's light from its pixels (monitor.decide.night); the report's "night" is the last two.
LightClass = Literal["day", "night_ir", "low_light"]
LIGHT_CLASSES: tuple[str, ...] = get_args(LightClass)
NIGHT_CLASSES: tuple[str, ...] = ("night_ir", "low_light")
