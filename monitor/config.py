"""The YAML configuration: strict pydantic models, env-var secrets, errors that name the key path.

Each worker receives only its own sub-config. Relative paths (model, store,
file sources) are resolved against the config file's folder so a config works
from any working directory.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
HOURS = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
URL_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http"}


class ConfigError(Exception):
    """A configuration problem, with one line per offending key path."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecisionConfig(Strict):
    """Turns per-frame probabilities into events (see ``monitor.decisions``)."""

    alert_labels: list[str] = Field(
        default_factory=lambda: ["bear"], min_length=1, description="labels that raise alerts"
    )
    threshold: float = Field(0.7, gt=0.0, le=1.0, description="score that counts as a hit")
    release_threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="score that keeps an event open (hysteresis); default threshold - 0.2",
    )
    window: int = Field(5, ge=1, le=100, description="n in k-of-n: predictions considered")
    min_hits: int = Field(3, ge=1, le=100, description="k in k-of-n: hits needed to start an event")
    end_after_s: float = Field(
        5.0, gt=0.0, le=3600.0, description="end an event after this long without the label"
    )
    cooldown_s: float = Field(
        60.0,
        ge=0.0,
        le=86400.0,
        description="a re-appearance this soon after an end continues that event",
    )

    @model_validator(mode="after")
    def _k_within_n(self) -> DecisionConfig:
        if self.min_hits > self.window:
            raise ValueError(f"min_hits ({self.min_hits}) cannot exceed window ({self.window})")
        if self.release_threshold is not None and self.release_threshold > self.threshold:
            raise ValueError(
                f"release_threshold ({self.release_threshold}) must not exceed threshold ({self.threshold})"
            )
        return self

    @property
    def release(self) -> float:
        if self.release_threshold is not None:
            return self.release_threshold
        return max(0.01, self.threshold - 0.2)


class ReconnectConfig(Strict):
    initial_s: float = Field(1.0, gt=0.0, le=60.0, description="first retry delay")
    max_s: float = Field(30.0, gt=0.0, le=3600.0, description="cap of the exponential backoff")
    offline_after: int = Field(
        5, ge=1, le=1000, description="failed attempts before status 'offline'"
    )


class MotionGateConfig(Strict):
    """Skip inference on a static scene (see ``monitor.motion``)."""

    enabled: bool = False
    pixel_threshold: int = Field(
        12, ge=1, le=255, description="gray-level change that counts a pixel as changed"
    )
    min_changed_fraction: float = Field(
        0.003, gt=0.0, le=1.0, description="share of changed pixels that counts as motion"
    )
    recheck_s: float = Field(
        10.0, gt=0.0, le=3600.0, description="classify at least this often, motion or not"
    )


class DriftConfig(Strict):
    """Domain-shift and degradation monitoring (see ``monitor.drift``)."""

    enabled: bool = True
    window: int = Field(60, ge=5, le=100_000, description="frames per rolling window")
    min_samples: int = Field(30, ge=5, le=100_000, description="frames before a signal is judged")
    enter: float = Field(
        0.5, gt=0.0, le=1.0, description="tail distance that makes a camera 'shifted'"
    )
    exit: float = Field(
        0.25, ge=0.0, lt=1.0, description="all signals below this: back to 'in_domain'"
    )
    frozen_after_s: float = Field(
        60.0, gt=0.0, le=86400.0, description="identical frames this long: 'degraded'"
    )
    degraded_frames: int = Field(
        10, ge=1, le=100_000, description="black/uniform frames in a row: 'degraded'"
    )

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        if self.exit >= self.enter:
            raise ValueError(
                f"exit ({self.exit}) must be below enter ({self.enter}) for hysteresis"
            )
        if self.min_samples > self.window:
            raise ValueError(
                f"min_samples ({self.min_samples}) cannot exceed window ({self.window})"
            )
        return self


class CameraConfig(Strict):
    """One camera: where frames come from and how often to classify them."""

    id: Annotated[str, Field(pattern=SLUG, description="slug: lowercase letters, digits, - and _")]
    source: str = Field(
        description="rtsp://…, http(s):// MJPEG, a webcam index, /dev/videoN, or a video file"
    )
    name: str = ""
    enabled: bool = True
    fps: float = Field(2.0, gt=0.0, le=60.0, description="frames per second to classify")
    pacing: Literal["realtime", "fast"] = Field(
        "realtime", description="files: real time or as fast as possible"
    )
    loop: bool = Field(False, description="files: start again at the end")
    mode: Literal["shadow", "review", "active"] = "shadow"
    open_timeout_s: float = Field(5.0, gt=0.0, le=120.0)
    read_timeout_s: float = Field(2.0, gt=0.0, le=120.0)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    snapshot_width: int = Field(640, ge=64, le=4096, description="width of review snapshots")
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    motion_gate: MotionGateConfig = Field(default_factory=MotionGateConfig)
    active_hours: str | None = Field(
        None,
        pattern=HOURS,
        description="HH:MM-HH:MM local time; outside it the camera behaves as shadow",
    )

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        source_kind(value)
        return value

    @property
    def kind(self) -> str:
        return source_kind(self.source)

    @property
    def safe_source(self) -> str:
        """The source with any password removed: the only form that may be logged or shown."""
        return redact_url(self.source)


class ModelConfig(Strict):
    path: Path = Field(description="the .onnx model file")
    providers: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = Field(0, ge=0, le=256, description="intra-op threads; 0 = ONNX Runtime's choice")


class BatchingConfig(Strict):
    max_batch: int = Field(8, ge=1, le=256)
    latency_budget_ms: float = Field(
        1000.0, ge=10.0, le=600_000.0, description="capture → decision"
    )


class StoreConfig(Strict):
    path: Path = Field(Path("bearwatch.db"), description="SQLite database file")
    snapshot_quality: int = Field(85, ge=10, le=100, description="JPEG quality of snapshots")
    write_retries: int = Field(5, ge=0, le=100)


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


class WebhookConfig(Strict):
    url: str = Field(pattern=r"^https?://", description="receives a JSON POST per notification")
    secret: str | None = Field(
        None, min_length=8, description="HMAC-SHA256 key for X-Bearwatch-Signature"
    )
    timeout_s: float = Field(5.0, gt=0.0, le=120.0)


class NotificationsConfig(Strict):
    mqtt: MqttConfig | None = None
    webhook: WebhookConfig | None = None
    max_attempts: int = Field(
        5, ge=1, le=1000, description="per event and channel, then it is marked failed"
    )
    retry_s: float = Field(
        10.0, gt=0.0, le=3600.0, description="wait before retrying a failed delivery"
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
    night_hours: str = Field(
        "20:00-06:00", pattern=HOURS, description="the report's night, local time"
    )


class SupervisorConfig(Strict):
    max_restarts: int = Field(5, ge=0, le=1000, description="worker restarts allowed per window")
    window_s: float = Field(300.0, gt=0.0)
    stuck_after_s: float = Field(60.0, gt=1.0, description="a worker silent this long is restarted")
    drain_timeout_s: float = Field(5.0, gt=0.0, le=300.0)


class Config(Strict):
    """The whole daemon configuration."""

    cameras: list[CameraConfig] = Field(min_length=1)
    model: ModelConfig
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
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


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def source_kind(source: str) -> str:
    """Classify a camera source as ``rtsp``, ``http``, ``webcam`` or ``file``.

    Raises:
        ValueError: for an unknown URL scheme or an empty source.
    """
    text = source.strip()
    if not text:
        raise ValueError("source is empty")
    if text.isdigit() or re.fullmatch(r"/dev/video\d+", text):
        return "webcam"
    scheme = urlsplit(text).scheme.lower()
    if "://" in text:
        if scheme not in URL_SCHEMES:
            raise ValueError(
                f"unknown URL scheme {scheme!r}; use rtsp://, rtsps://, http://, https://, a webcam index or a file path"
            )
        return URL_SCHEMES[scheme]
    return "file"


def redact_url(source: str) -> str:
    """Replace the password (and token-like query values) of a URL with ``***``."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = re.sub(r"(?i)((?:password|passwd|pwd|token|key|secret)=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _substitute_env(node: Any, path: str, errors: list[str]) -> Any:
    """Replace ``${NAME}`` in every string with the environment variable's value."""
    if isinstance(node, dict):
        return {
            k: _substitute_env(v, f"{path}.{k}" if path else str(k), errors)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute_env(v, f"{path}[{i}]", errors) for i, v in enumerate(node)]
    if isinstance(node, str):

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                errors.append(
                    f"{path}: environment variable {name} is not set (referenced as ${{{name}}})"
                )
                return ""
            return os.environ[name]

        return ENV_REF.sub(repl, node)
    return node


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk the models along an error location to find the model that holds the key."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        model = next(
            (a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _format_error(err: Any) -> str:
    loc = tuple(err["loc"])
    path = _loc_to_path(loc)
    if err["type"] == "extra_forbidden":
        owner = _model_at(loc)
        valid = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{path}: unknown key{hint} valid keys here: {', '.join(valid)}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    got = err.get("input")
    if isinstance(got, str):
        got = redact_url(got)
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{path}: {msg}{shown}"


def parse_config(data: Any, base_dir: Path | None = None) -> Config:
    """Validate an already-loaded YAML tree.

    Raises:
        ConfigError: listing every problem, one per line, each naming its key path.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            "the config file must be a YAML mapping with at least `cameras` and `model`"
        )
    errors: list[str] = []
    data = _substitute_env(data, "", errors)
    if errors:
        raise ConfigError("\n".join(errors))
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_format_error(e) for e in exc.errors())) from None
    return _resolve_paths(cfg, base_dir) if base_dir is not None else cfg


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    cams = [
        c.model_copy(update={"source": str(fix(Path(c.source)))}) if c.kind == "file" else c
        for c in cfg.cameras
    ]
    candidate = cfg.candidate
    if candidate is not None:
        candidate = candidate.model_copy(update={"path": fix(candidate.path)})
    return cfg.model_copy(
        update={
            "candidate": candidate,
            "cameras": cams,
            "model": cfg.model.model_copy(update={"path": fix(cfg.model.path)}),
            "store": cfg.store.model_copy(update={"path": fix(cfg.store.path)}),
        }
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: when the file is missing, is not YAML, or does not validate.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, base_dir=path.resolve().parent)


def config_warnings(cfg: Config) -> list[str]:
    """Problems that do not stop the daemon (a camera will just be offline) but deserve a line."""
    notes = []
    if not cfg.model.path.is_file():
        notes.append(
            f"model.path: {cfg.model.path} does not exist (the daemon will refuse to start)"
        )
    for i, cam in enumerate(cfg.cameras):
        if cam.kind == "file" and not Path(cam.source).is_file():
            notes.append(
                f"cameras[{i}].source: file {cam.source} does not exist; camera {cam.id} will be offline"
            )
        if cam.kind != "file" and (cam.pacing != "realtime" or cam.loop):
            notes.append(
                f"cameras[{i}]: pacing/loop only apply to file sources; ignored for {cam.kind}"
            )
        unknown = [lbl for lbl in cam.decision.alert_labels if not lbl]
        if unknown:
            notes.append(f"cameras[{i}].decision.alert_labels: empty label")
    return notes
