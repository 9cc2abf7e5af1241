"""A camera's config: its source, sampling, reconnect, decision policy, motion gate and drift settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.base import (
    HOURS,
    SLUG,
    Strict,
    polygon_problem,
    redact_url,
    source_kind,
    url_problem,
)
from monitor.types import Mode


class DecisionConfig(Strict):
    """Turns per-frame probabilities into events (see ``monitor.decide.policy``)."""

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
    """Skip inference on a static scene (see ``monitor.capture.motion``)."""

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
    """Domain-shift and degradation monitoring (see ``monitor.decide.drift``)."""

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


ViewPlan = Literal["auto", "full", "tiles", "motion"]
VIEW_PLANS: tuple[str, ...] = ("auto", "full", "tiles", "motion")


class TilesConfig(Strict):
    """The tile grid of the ``tiles`` plan (and of ``auto`` on a large frame); derived unless given."""

    rows: int | None = Field(
        None, ge=1, le=16, description="grid rows (with cols); default: derived"
    )
    cols: int | None = Field(None, ge=1, le=16, description="grid columns (with rows)")
    size_px: int | None = Field(
        None, ge=8, le=8192, description="square tile side in source pixels; default: derived"
    )
    overlap: float = Field(
        0.15, ge=0.0, lt=1.0, description="least share of a tile its neighbour also covers"
    )
    max_downscale: float = Field(
        4.0,
        ge=1.0,
        le=32.0,
        description="derived tiles are at most this many times the model input",
    )

    @model_validator(mode="after")
    def _grid_or_size(self) -> TilesConfig:
        if (self.rows is None) != (self.cols is None):
            raise ValueError("rows and cols go together: give both or neither")
        if self.rows is not None and self.size_px is not None:
            raise ValueError("give either rows/cols or size_px, not both")
        return self


class MotionRegionsConfig(Strict):
    """The ``motion`` plan: regions around what changed, plus a periodic full frame."""

    max_regions: int = Field(4, ge=1, le=64, description="regions per frame at most")
    margin: float = Field(
        0.25, ge=0.0, le=4.0, description="context added around a changed area, as a share of it"
    )
    pixel_threshold: int = Field(
        12, ge=1, le=255, description="gray-level change that counts a cell as changed"
    )
    full_every_s: float = Field(
        3.0, gt=0.0, le=3600.0, description="look at the whole frame at least this often"
    )
    hold_s: float = Field(
        10.0, ge=0.0, le=3600.0, description="keep looking where something moved for this long"
    )


class ZoneConfig(Strict):
    """A polygon, in fractions of the frame's width and height, that includes or excludes."""

    name: Annotated[str, Field(pattern=SLUG, description="named in the alert")]
    polygon: list[list[float]] = Field(description="[[x, y], ...], each 0..1, at least 3 points")
    kind: Literal["include", "exclude"] = "include"
    threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="this zone's own alert threshold (include zones)"
    )

    @field_validator("polygon")
    @classmethod
    def _usable(cls, value: list[list[float]]) -> list[list[float]]:
        problem = polygon_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _threshold_on_include(self) -> ZoneConfig:
        if self.threshold is not None and self.kind == "exclude":
            raise ValueError(f"zone {self.name!r}: an exclude zone cannot have a threshold")
        return self


class ViewConfig(Strict):
    """What of each frame the model looks at (see ``monitor.capture.view``)."""

    plan: ViewPlan = Field(
        "auto",
        description="auto: full + tiles on a large frame; full: the whole frame letterboxed; "
        "tiles: an overlapping grid; motion: regions around changes + a periodic full frame",
    )
    auto_factor: float = Field(
        3.0,
        ge=1.0,
        le=64.0,
        description="auto adds regions when the frame's long side is this many model inputs or more",
    )
    auto_adds: Literal["motion", "tiles"] = Field(
        "motion",
        description="what auto adds to the whole frame on a large frame: motion regions or tiles",
    )
    tiles: TilesConfig = Field(default_factory=TilesConfig)
    motion: MotionRegionsConfig = Field(default_factory=MotionRegionsConfig)
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _unique_zones(self) -> ViewConfig:
        names = [z.name for z in self.zones]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"zone names must be unique; {', '.join(dupes)} used twice")
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
    mode: Mode = "shadow"
    open_timeout_s: float = Field(5.0, gt=0.0, le=120.0)
    read_timeout_s: float = Field(2.0, gt=0.0, le=120.0)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    decode: Literal["all", "keyframes", "auto"] = Field(
        "all",
        description="all: decode every frame (convert only sampled ones); keyframes: decode "
        "keyframes only (fps at most the keyframe rate); auto: keyframes when they come at least "
        "as often as fps",
    )
    hwaccel: Literal["none", "vaapi", "cuda", "qsv"] = Field(
        "none", description="hardware decoder (FFmpeg hwaccel); CPU with a warning when absent"
    )
    snapshot_width: int = Field(640, ge=64, le=4096, description="width of review snapshots")
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    motion_gate: MotionGateConfig = Field(default_factory=MotionGateConfig)
    view: ViewConfig = Field(default_factory=ViewConfig)
    active_hours: str | None = Field(
        None,
        pattern=HOURS,
        description="HH:MM-HH:MM local time; outside it the camera behaves as shadow",
    )

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if source_kind(value) in ("rtsp", "http"):
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @property
    def kind(self) -> str:
        return source_kind(self.source)

    @property
    def safe_source(self) -> str:
        """The source with any password removed: the only form that may be logged or shown."""
        return redact_url(self.source)
