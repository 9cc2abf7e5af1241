"""The rest of the config: model, batching, store, web and sign-in, notifications, audit, candidate, promotion, supervisor — and the whole ``Config``."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from monitor.config.base import HOURS, SLUG, Strict, is_loopback, url_problem
from monitor.config.camera import CameraConfig, DriftConfig


class ModelConfig(Strict):
    path: Path = Field(description="the .onnx model file")
    providers: Literal["cpu", "cuda", "openvino", "auto"] = Field(
        "auto",
        description="ONNX Runtime provider; auto: the fastest installed (measured at load), "
        "openvino needs onnxruntime-openvino in place of onnxruntime",
    )
    threads: int = Field(0, ge=0, le=256, description="intra-op threads; 0 = ONNX Runtime's choice")


class BatchingConfig(Strict):
    max_batch: int = Field(8, ge=1, le=256)
    latency_budget_ms: float = Field(
        1000.0, ge=10.0, le=600_000.0, description="capture → decision"
    )


STORE_URL = r"^(sqlite:///.+|postgresql(\+psycopg)?://.+)$"


class StoreConfig(Strict):
    path: Path = Field(
        Path("bearwatch.db"),
        description="SQLite database file; with a server url, where the spill and score log go",
    )
    url: str | None = Field(
        None,
        pattern=STORE_URL,
        description="sqlite:///FILE or postgresql://USER:${PG_PASSWORD}@HOST/DB (default: path)",
    )
    snapshot_quality: int = Field(85, ge=10, le=100, description="JPEG quality of snapshots")
    write_retries: int = Field(5, ge=0, le=100)

    @field_validator("url")
    @classmethod
    def _server_url(cls, value: str | None) -> str | None:
        # A server URL gets the camera URLs' rules: a password with an unencoded
        # reserved character is refused (showing only the redacted form), so is no host.
        if value is not None and value.startswith("postgresql"):
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    score_log: bool = Field(
        True, description="log every classified frame's scores beside the store (for levers)"
    )
    score_log_days: int = Field(
        30, ge=0, le=3650, description="days of score log kept (0: keep everything)"
    )


class RetentionConfig(Strict):
    """What the hourly retention worker removes; 0 days keeps that kind of row for ever."""

    enabled: bool = True
    interval_s: float = Field(3600.0, ge=1.0, le=86_400.0, description="how often it runs")
    reviewed_days: float = Field(
        180.0, ge=0.0, le=36_500.0, description="days to keep reviewed events (and snapshots)"
    )
    pending_days: float = Field(
        730.0,
        ge=0.0,
        le=36_500.0,
        description="hard cap: unreviewed events older than this are removed too",
    )
    audit_days: float = Field(180.0, ge=0.0, le=36_500.0, description="days of audit samples")
    stats_days: float = Field(
        180.0, ge=0.0, le=36_500.0, description="days of camera and candidate statistics"
    )
    snapshot_budget_mb: float = Field(
        2048.0,
        ge=0.0,
        description="event snapshots kept per site, MB; oldest reviewed dropped first (0: no budget)",
    )
    min_free_mb: float = Field(
        500.0,
        ge=0.0,
        description="below this much free disk beside the store, snapshots are no longer written",
    )

    @model_validator(mode="after")
    def _pending_outlive_reviewed(self) -> RetentionConfig:
        if self.pending_days and self.reviewed_days and self.pending_days < self.reviewed_days:
            raise ValueError(
                f"pending_days ({self.pending_days:g}) must be at least reviewed_days"
                f" ({self.reviewed_days:g}): unreviewed events outlive reviewed ones"
            )
        return self


class UserConfig(Strict):
    """A reviewer who signs in with a password (store only the hash: ``bearwatch hash-password``)."""

    name: Annotated[str, Field(pattern=SLUG)]
    password_hash: str = Field(pattern=r"^scrypt\$", description="from `bearwatch hash-password`")
    role: Literal["reviewer", "admin"] = "reviewer"


class TokenConfig(Strict):
    """An API token (``Authorization: Bearer …``) for scripts; write it as ${ENV_VAR}."""

    name: Annotated[str, Field(pattern=SLUG)]
    token: str = Field(min_length=16)
    role: Literal["reviewer", "admin"] = "reviewer"


class AuthConfig(Strict):
    users: list[UserConfig] = Field(default_factory=list)
    tokens: list[TokenConfig] = Field(default_factory=list)
    session_secret: str | None = Field(
        None,
        min_length=16,
        description="signs session cookies; random per start when unset (restarts sign out)",
    )
    session_hours: float = Field(12.0, gt=0.0, le=24 * 30)

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)


class WebConfig(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")
    auth: AuthConfig = Field(default_factory=AuthConfig)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="reverse proxies (IP or CIDR) whose X-Forwarded-For/-Proto are believed; "
        "empty: forwarded headers are ignored from everyone, loopback included",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network such as 10.0.0.5 or 10.0.0.0/24"
                ) from None
        return value

    @model_validator(mode="after")
    def _auth_off_loopback(self) -> WebConfig:
        if self.enabled and not is_loopback(self.host) and not self.auth.enabled:
            raise ValueError(
                f"host {self.host!r} is reachable from other machines: configure web.auth users or "
                "tokens first, or bind 127.0.0.1"
            )
        return self


class MqttConfig(Strict):
    host: str
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = Field(None, description="write it as ${ENV_VAR}")
    topic_prefix: str = Field("bearwatch", pattern=r"^[A-Za-z0-9_/-]+$")
    client_id: str = "bearwatch"
    qos: Literal[0, 1, 2] = 1
    keepalive_s: int = Field(30, ge=5, le=3600)
    home_assistant: bool = Field(
        False, description="announce a binary sensor per camera and alert label (MQTT discovery)"
    )
    discovery_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_/-]+$")
    sensor_off_after_s: int = Field(
        60,
        ge=1,
        le=86400,
        description="Home Assistant turns a sensor off this long after it went on",
    )


class WebhookConfig(Strict):
    url: str = Field(pattern=r"^https?://", description="receives a JSON POST per notification")
    secret: str | None = Field(
        None, min_length=8, description="HMAC-SHA256 key for X-Bearwatch-Signature"
    )
    timeout_s: float = Field(5.0, gt=0.0, le=120.0)

    @field_validator("url")
    @classmethod
    def _has_host(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class NotificationsConfig(Strict):
    mqtt: MqttConfig | None = None
    webhook: WebhookConfig | None = None
    max_attempts: int = Field(
        5, ge=1, le=1000, description="per event and channel, then it is marked failed"
    )
    retry_s: float = Field(
        10.0, gt=0.0, le=3600.0, description="wait before retrying a failed delivery"
    )
    claim_lease_s: float = Field(
        60.0,
        ge=1.0,
        le=3600.0,
        description="a box's claim on a due notification; past it (the box died) another sends it",
    )


class AuditConfig(Strict):
    """Frames the model did not alert on, kept for humans to label (to estimate misses)."""

    enabled: bool = True
    random_rate: float = Field(
        0.01, ge=0.0, le=1.0, description="share of non-alert frames sampled at random"
    )
    low_confidence: float = Field(
        0.6, ge=0.0, le=1.0, description="sample frames whose top probability is below"
    )
    near_threshold_margin: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="sample frames whose alert score is this close below the threshold",
    )
    max_per_hour: int = Field(30, ge=0, le=100_000, description="per camera")
    seed: int | None = Field(
        None, description="seeds the random stratum (replays and studies repeat); none: fresh"
    )


class CandidateConfig(Strict):
    """A second model run beside production on the same frames; it never notifies."""

    path: Path
    threads: int = Field(0, ge=0, le=256)
    report_every_s: float = Field(60.0, ge=5.0, le=86400.0)
    max_disagreements_per_hour: int = Field(60, ge=0, le=100_000)


class PromotionConfig(Strict):
    """When the report recommends moving a camera on (shadow → review → active)."""

    min_reviewed: int = Field(
        30, ge=1, description="reviewed alerts needed before any recommendation"
    )
    min_precision_lower: float = Field(
        0.8, ge=0.0, le=1.0, description="Wilson 95 % lower bound of precision"
    )
    min_recall: float = Field(
        0.9, ge=0.0, le=1.0, description="estimated recall (from audit samples)"
    )
    min_audit_labelled: int = Field(
        50, ge=0, description="labelled audit samples needed to estimate misses"
    )
    night_from: Literal["pixels", "clock"] = Field(
        "pixels",
        description="how the report tells night: the frames' light class (pixels) or night_hours",
    )
    night_hours: str = Field(
        "20:00-06:00",
        pattern=HOURS,
        description="clock-based night, local time: used with night_from: clock, and for "
        "events stored without a light class",
    )


class OodConfig(Strict):
    """Out-of-domain handling: which alerts are unfamiliar, and whether active cameras hold them."""

    enabled: bool = True
    hold_unfamiliar: bool = Field(
        True, description="active mode: an unfamiliar alert waits for a person's confirmation"
    )
    window: int = Field(10, ge=1, le=10_000, description="recent frames judged for an alert")
    min_share: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="share of them over the model's OOD threshold that makes an alert unfamiliar",
    )
    min_frames: int = Field(3, ge=1, le=10_000, description="scored frames needed to judge")

    @model_validator(mode="after")
    def _frames_fit(self) -> OodConfig:
        if self.min_frames > self.window:
            raise ValueError(f"min_frames ({self.min_frames}) cannot exceed window ({self.window})")
        return self


class RepeatsConfig(Strict):
    """Repeat false alarms (``monitor.decide.repeats``): once an alert is rejected, the same spot stops alerting."""

    enabled: bool = True
    iou_min: float = Field(
        0.5, gt=0.0, le=1.0, description="least overlap of a region with the rejected alert's box"
    )
    similarity_min: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="least correlation of the region's picture with the rejected one",
    )
    change_max: float = Field(
        12.0,
        gt=0.0,
        le=255.0,
        description="largest change in any cell of the picture (0-255 levels) still counted as the same",
    )
    expire_hours: float = Field(
        168.0, gt=0.0, le=24 * 365, description="how long a rejection keeps suppressing its spot"
    )


class NightConfig(Strict):
    """Night from pixels (see ``monitor.decide.night``)."""

    gray_colourfulness: float = Field(
        0.02, gt=0.0, le=1.0, description="below this colourfulness a frame is IR night"
    )
    low_light_brightness: float = Field(
        0.18, gt=0.0, le=1.0, description="below this mean brightness a colour frame is low-light"
    )
    switch_after: int = Field(
        5, ge=1, le=10_000, description="frames in a row before a camera changes class"
    )


class SupervisorConfig(Strict):
    max_restarts: int = Field(5, ge=0, le=1000, description="worker restarts allowed per window")
    window_s: float = Field(300.0, gt=0.0)
    stuck_after_s: float = Field(60.0, gt=1.0, description="a worker silent this long is restarted")
    drain_timeout_s: float = Field(5.0, gt=0.0, le=300.0)


class Config(Strict):
    """The whole daemon configuration."""

    site: str = Field(
        "",
        pattern=r"^([a-z0-9][a-z0-9_-]{0,62})?$",
        description="this box's name in a fleet sharing one store (camera ids are unique per site)",
    )
    cameras: list[CameraConfig] = Field(min_length=1)
    model: ModelConfig
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    timezone: str = Field(
        "UTC", description="IANA zone for active hours and the report's day/night"
    )
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    candidate: CandidateConfig | None = None
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    ood: OodConfig = Field(default_factory=OodConfig)
    night: NightConfig = Field(default_factory=NightConfig)
    repeats: RepeatsConfig = Field(default_factory=RepeatsConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
            ) from None
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Config:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"camera id {cam.id!r} is used twice; ids must be unique")
            seen.add(cam.id)
        return self
