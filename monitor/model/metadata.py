"""The model artifact's metadata contract: what ``model.onnx`` carries in ``metadata_props``.

The training export writes it with :meth:`ModelMetadata.to_props`; the runtime
reads it back with :meth:`ModelMetadata.from_props` (ONNX Runtime exposes the
props as ``custom_metadata_map``, so the edge needs no ``onnx`` package).
Every value is a JSON string under a ``bearwatch.`` key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.errors import ModelError
from monitor.model.features import FeatureStats
from monitor.model.preprocess import RESIZE_METHODS
from monitor.model.reference import validate_reference

FORMAT_VERSION = 1
PREFIX = "bearwatch."


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """What the runtime needs to know about a model beyond its graph.

    Attributes:
        labels: class names in output order.
        input_hw: (height, width) of the uint8 RGB NHWC input.
        resize_method: how frames are fitted to ``input_hw`` (see ``monitor.model.preprocess``).
        model_version: a human-readable version string, recorded on every event.
        created_at: UTC ISO-8601 time of the export.
        arch: the network architecture name.
        mean: per-channel normalisation mean the graph applies (for information).
        std: per-channel normalisation std the graph applies (for information).
        metrics: training/validation metrics (accuracy, error_rate, ...).
        reference: reference statistics for the drift monitor, or ``None`` when the
            export had none; keys are statistic names plus ``confidence``.
        feature_stats: the training set's feature statistics and calibrated
            out-of-domain threshold (``monitor.model.features``), or ``None``
            for a model exported before the graph had a ``features`` output.
    """

    labels: tuple[str, ...]
    input_hw: tuple[int, int]
    resize_method: str = "crop"
    model_version: str = "unversioned"
    created_at: str = ""
    arch: str = ""
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    reference: Mapping[str, Any] | None = None
    feature_stats: FeatureStats | None = None

    def __post_init__(self) -> None:
        if len(self.labels) < 2:
            raise ModelError(
                f"a classifier needs at least 2 labels, metadata has {list(self.labels)}"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ModelError(f"labels must be unique, metadata has {list(self.labels)}")
        if len(self.input_hw) != 2 or min(self.input_hw) < 8:
            raise ModelError(
                f"input size must be (height, width) >= 8, metadata has {self.input_hw}"
            )
        if self.resize_method not in RESIZE_METHODS:
            raise ModelError(
                f"resize method {self.resize_method!r} is not supported; expected one of {RESIZE_METHODS}"
            )
        if self.reference is not None:
            try:
                validate_reference(self.reference)
            except ValueError as exc:
                raise ModelError(f"reference statistics are malformed: {exc}") from exc

    def to_props(self) -> dict[str, str]:
        """Serialise to ONNX ``metadata_props`` (all values JSON strings)."""
        values: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "labels": list(self.labels),
            "input_size": list(self.input_hw),
            "resize_method": self.resize_method,
            "model_version": self.model_version,
            "created_at": self.created_at,
            "arch": self.arch,
            "normalize": {"mean": list(self.mean), "std": list(self.std)},
            "metrics": dict(self.metrics),
        }
        if self.reference is not None:
            values["reference_stats"] = dict(self.reference)
        if self.feature_stats is not None:
            values["feature_stats"] = self.feature_stats.to_json()
        return {PREFIX + key: json.dumps(value, sort_keys=True) for key, value in values.items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> ModelMetadata:
        """Parse ``metadata_props``.

        Args:
            props: the key/value map from the ONNX file.
            source: a name for error messages (usually the file path).

        Raises:
            ModelError: when required keys are missing or malformed.
        """
        values: dict[str, Any] = {}
        for key, raw in props.items():
            if key.startswith(PREFIX):
                try:
                    values[key[len(PREFIX) :]] = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ModelError(
                        f"{source}: metadata {key!r} is not valid JSON ({exc})"
                    ) from exc
        missing = [k for k in ("labels", "input_size") if k not in values]
        if missing:
            raise ModelError(
                f"{source}: metadata lacks {', '.join(PREFIX + k for k in missing)}; "
                "export the model with `bearwatch export` / `bearwatch train` so it carries its labels"
            )
        if values.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ModelError(
                f"{source}: metadata format {values['format_version']} is newer than this "
                f"bearwatch understands ({FORMAT_VERSION}); upgrade bearwatch"
            )
        norm = values.get("normalize") or {}
        feature_stats = None
        if values.get("feature_stats") is not None:
            try:
                feature_stats = FeatureStats.from_json(values["feature_stats"])
            except ValueError as exc:
                raise ModelError(f"{source}: metadata {PREFIX}feature_stats: {exc}") from exc
        try:
            return cls(
                labels=tuple(str(x) for x in values["labels"]),
                input_hw=(int(values["input_size"][0]), int(values["input_size"][1])),
                resize_method=str(values.get("resize_method", "crop")),
                model_version=str(values.get("model_version", "unversioned")),
                created_at=str(values.get("created_at", "")),
                arch=str(values.get("arch", "")),
                mean=tuple(norm.get("mean", (0.485, 0.456, 0.406))),  # type: ignore[arg-type]
                std=tuple(norm.get("std", (0.229, 0.224, 0.225))),  # type: ignore[arg-type]
                metrics=values.get("metrics") or {},
                reference=values.get("reference_stats"),
                feature_stats=feature_stats,
            )
        except (TypeError, IndexError, ValueError) as exc:
            raise ModelError(f"{source}: metadata is malformed ({exc})") from exc
