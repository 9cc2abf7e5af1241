"""What crosses from the alert stage into the store and back, and the rules a verdict or a mode change must pass.

These are plain frozen values, so the decision side, the store, the web and
the CLI share them without importing each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

from monitor.config import HOURS
from monitor.types import EVENT_KINDS, LIGHT_CLASSES, MODES

VERDICTS = ("confirmed", "rejected", "unsure", "relabelled")
# Why a reviewer decided as they did: a fixed list, so reports can count them.
REASON_CODES = (
    "clear",
    "night-ir",
    "blur",
    "occlusion",
    "wrong-class",
    "not-an-animal",
    "distant",
    "duplicate",
    "other",
)
# Marks the history rows an undo wrote; never offered to reviewers, so it is unambiguous.
UNDO_REASON = "undo"


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_jpeg(data: bytes | None) -> None:
    """Raise ValueError unless ``data`` is None or starts like a JPEG."""
    if data is not None and not bytes(data[:2]) == b"\xff\xd8":
        raise ValueError("snapshot_jpeg must be JPEG bytes (starting FF D8)")


def verdict_problem(status: str, reason_code: str | None, relabel: str | None) -> str | None:
    """Why a verdict is invalid, in one line; None when it is fine (shared with the CLI)."""
    if status not in VERDICTS:
        return f"status must be one of {', '.join(VERDICTS)}; got {status!r}"
    if reason_code is not None and reason_code not in REASON_CODES:
        return f"reason_code must be one of {', '.join(REASON_CODES)}; got {reason_code!r}"
    if reason_code is None and status != "confirmed":
        return f"reason_code is required for {status} (one of {', '.join(REASON_CODES)})"
    if status == "relabelled" and not relabel:
        return "relabel (the new label) is required for status relabelled"
    if relabel and status != "relabelled":
        return "relabel is only allowed with status relabelled"
    return None


def mode_problem(mode: str, reason: str, active_hours: str | None) -> str | None:
    """Why a mode change is invalid, in one line; None when it is fine (shared with the CLI)."""
    if mode not in MODES:
        return f"mode must be one of {', '.join(MODES)}; got {mode!r}"
    if not reason.strip():
        return "reason is required: say why the mode changes"
    if active_hours is not None and not re.fullmatch(HOURS[1:-1], active_hours):
        return f"active_hours must look like HH:MM-HH:MM (e.g. 20:00-06:00); got {active_hours!r}"
    return None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event as the alert stage hands it to the store. Times are UTC epoch seconds.

    ``unfamiliar``: the camera's recent frames were mostly outside what the
    model knows (``monitor.decide.ood``); ``held``: an active-mode alert that
    waits for a person's confirmation before anyone is notified, because it is
    unfamiliar; ``night_class``: the camera's light class from its pixels
    (``monitor.decide.night``), None when unknown.
    """

    camera: str
    label: str
    kind: str
    start_at: float
    end_at: float | None
    peak_score: float
    model_version: str
    mode: str
    snapshot_jpeg: bytes | None = None
    drift_flags: tuple[str, ...] = ()
    ood_score: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    frames: int = 1
    unfamiliar: bool = False
    held: bool = False
    night_class: str | None = None

    box: tuple[float, float, float, float] | None = (
        None  # the peak region, normalised x0, y0, x1, y1
    )
    zone: str | None = None  # the include zone of the peak region
    # The peak region's picture, base64 (``monitor.decide.repeats.appearance``).
    appearance: str | None = None
    # The rejected event this one is like (a repeat false alarm): stored, never notified.
    suppressed_by: int | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, EVENT_KINDS)
        if self.night_class is not None:
            check_choice("night_class", self.night_class, LIGHT_CLASSES)
        if self.box is not None:
            box = tuple(float(v) for v in self.box)
            if len(box) != 4 or not (
                0.0 <= box[0] < box[2] <= 1.0 and 0.0 <= box[1] < box[3] <= 1.0
            ):
                raise ValueError(
                    f"box must be normalised (x0, y0, x1, y1) within 0..1, got {self.box}"
                )
            object.__setattr__(self, "box", box)
        check_choice("mode", self.mode, MODES)
        if not self.camera or not self.label:
            raise ValueError(
                f"camera and label must be non-empty, got {self.camera!r}, {self.label!r}"
            )
        if self.end_at is not None and self.end_at < self.start_at:
            raise ValueError(f"end_at ({self.end_at}) is before start_at ({self.start_at})")
        if self.frames < 0:
            raise ValueError(f"frames must be >= 0, got {self.frames}")
        check_jpeg(self.snapshot_jpeg)
        # NumPy scalars (a peak score straight from the model) are neither
        # bindable by sqlite3 nor JSON-safe for the spill: store plain numbers.
        for name in ("start_at", "end_at", "peak_score", "ood_score"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else float(value))
        object.__setattr__(self, "frames", int(self.frames))
        # Frozen all the way down: the event crosses threads.
        object.__setattr__(self, "drift_flags", tuple(self.drift_flags))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


@dataclass(frozen=True, slots=True)
class AuditSample:
    """A frame the model did not alert on, kept so humans can estimate misses."""

    camera: str
    captured_at: float
    reason: str  # "random", "low_confidence" or "near_threshold"
    model_version: str
    predicted_label: str
    alert_score: float
    probs: Mapping[str, float]
    snapshot_jpeg: bytes | None
    night_class: str | None = None


@dataclass(frozen=True, slots=True)
class CameraStats:
    """One camera's operation over a period (for uptime, reconnects and latency in reports)."""

    camera: str
    at: float
    period_s: float
    online_s: float
    frames: int
    reconnects: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    # Audit-sampling counts for the period: {"population": {stratum: n}, "sampled": {stratum: n}}.
    audit: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Frames decided in the period per light class from the pixels: {"day": n, "night_ir": n, …}.
    light: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CandidateCounts:
    """Production vs shadow-candidate agreement over a period, for one camera."""

    camera: str
    at: float
    production_version: str
    candidate_version: str
    frames: int
    agreements: int
    production_alerts: int
    candidate_alerts: int


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One frame where production and candidate picked different labels."""

    camera: str
    at: float
    production_label: str
    production_score: float
    candidate_label: str
    candidate_score: float
    candidate_version: str
    snapshot_jpeg: bytes | None


class EventRow(TypedDict):
    """An event as the store reads it back (``list_events``, ``get_event``): no JPEG bytes."""

    id: int
    site: str
    kind: str
    camera: str
    label: str
    peak_score: float
    start_at: float
    end_at: float | None
    model_version: str
    mode: str
    drift_flags: list[str]
    ood_score: float | None
    details: dict[str, Any]
    frames: int
    unfamiliar: bool
    held: bool
    night_class: str | None
    review_status: str
    reviewer: str | None
    reason_code: str | None
    note: str | None
    relabel: str | None
    reviewed_at: float | None
    created_at: float
    updated_at: float
    last_frame_at: float | None
    interrupted: bool
    box: list[float] | None
    zone: str | None
    suppressed_by: int | None
    has_snapshot: bool


class DueNotification(EventRow):
    """An event the outbox says is due, with the delivery attempts made so far."""

    attempts: int


class CameraHealth(TypedDict):
    """One camera in ``/healthz``."""

    status: str
    source: str
    seconds_since_frame: float | None
    last_error: str | None
    drift: dict[str, Any] | None
    target_fps: float
    read_fps: float | None  # sampled frames per second lately; None until known
    frames_missed: int  # live: frames the fps asked for that the source never delivered
    keeping_up: bool | None  # read_fps ≥ 90 % of target_fps (None: not known yet)
    replay_speed: float | None  # files in real-time pacing: 1.0 = real time


class HealthReport(TypedDict):
    """The ``/healthz`` body.

    ``ok`` is False and ``status`` is ``degraded`` (HTTP 503) when a worker is
    down, the store is failing, or no camera is online; ``problems`` says
    which. ``warnings`` lists what is wrong without making the daemon
    unhealthy (a camera that cannot keep up with its fps, a file replaying
    slower than real time).
    """

    ok: bool
    status: str
    problems: list[str]
    warnings: list[str]
    model_version: str
    providers: list[str]
    store_healthy: bool
    store_backlog: int  # writes waiting for the store-writer thread
    store_size_bytes: int | None
    workers: dict[str, bool]
    seconds_since_inference: float | None
    cameras: dict[str, CameraHealth]
