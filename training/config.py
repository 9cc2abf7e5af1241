"""The training run's settings: defaults, an optional YAML file, command-line overrides, validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from training.errors import TrainingError
from training.init_run import apply_init

# Small torchvision classifiers fastai's ``vision_learner`` knows how to cut and
# split; the larger ones work too but do not fit the CPU training this project targets.
ARCHS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "squeezenet1_1",
    "efficientnet_b0",
)
QUANT_FORMATS = ("qdq", "qoperator")
# Manifest columns ``--split-by`` can hold out whole groups of (``export-dataset`` writes ``camera``).
SPLIT_COLUMNS = ("camera", "site")


class ConfigError(TrainingError):
    """A setting that is missing, unknown or out of range."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything one training run needs; written to the run folder as ``config.yaml``.

    Attributes:
        data: folder with one sub-folder of images per class.
        out: the run folder to create.
        arch: torchvision architecture name (see ``ARCHS``).
        pretrained: start from ImageNet weights (torch hub cache or ``weights``).
        weights: a torchvision state dict file for ``arch`` used instead of the hub.
        epochs: epochs after the frozen warm-up (``fine_tune``) or in total (from scratch).
        freeze_epochs: epochs with the body frozen when starting from pretrained weights.
        lr: base learning rate; ``None`` picks one for pretrained / from-scratch training.
        size: square input size in pixels.
        min_scale: ``RandomResizedCrop``'s smallest crop area, as a fraction of the image.
        valid_pct: fraction of images held out for validation.
        seed: seeds the split, the augmentations and the weights' initialisation.
        batch_size: training batch size.
        workers: DataLoader worker processes (0 decodes in the main process).
        aug_mult: strength multiplier for fastai's ``aug_transforms``.
        camera_aug: add night/IR, low-light, blur, low-resolution and noise augmentations.
        camera_aug_p: probability of each camera augmentation per training image.
        top_k: images in ``top_losses.png``.
        clean_k: images listed in ``top_losses.csv`` / ``cleaning.html``.
        reference_images: training images summarised for the drift monitor's reference.
        parity_max: validation images in the parity check (``None``: all of them).
        parity_tol: largest allowed probability difference in the parity check.
        int8: also write ``model.int8.onnx`` and compare it with FP32.
        calib_images: training images used to calibrate INT8 quantization.
        quant_format: ``qdq`` or ``qoperator``.
        bench_batch: batch size for the FP32/INT8 throughput measurement.
        bench_threads: ONNX Runtime intra-op threads for it (0: one per core).
        bench_seconds: how long each model is timed.
        model_version: version string recorded in the model; ``None``: run name + UTC time.
        overwrite: replace an existing run folder at ``out`` once the new run succeeds.
        init: a finished run folder to start from (its weights and label list:
            fine-tuning the deployed model); its architecture and input size are the run's.
        split_by: hold out whole groups of images named by this ``manifest.csv``
            column (``camera`` or ``site``) instead of a random split.
    """

    data: Path
    out: Path
    arch: str = "resnet18"
    pretrained: bool = True
    weights: Path | None = None
    epochs: int = 5
    freeze_epochs: int = 1
    lr: float | None = None
    size: int = 224
    # Camera frames often hold the animal off-centre and small; the book's 0.5
    # would crop it out of many "bear" training images, teaching the label on grass.
    min_scale: float = 0.75
    valid_pct: float = 0.2
    seed: int = 42
    batch_size: int = 32
    workers: int = 0
    aug_mult: float = 1.0
    camera_aug: bool = False
    camera_aug_p: float = 0.2
    top_k: int = 9
    clean_k: int = 50
    reference_images: int = 500
    parity_max: int | None = None
    parity_tol: float = 0.02
    int8: bool = False
    calib_images: int = 200
    quant_format: str = "qdq"
    bench_batch: int = 16
    bench_threads: int = 0
    bench_seconds: float = 3.0
    model_version: str | None = None
    overwrite: bool = False
    init: Path | None = None
    split_by: str | None = None

    def __post_init__(self) -> None:
        _check_range(self)
        if self.arch not in ARCHS:
            raise ConfigError(
                f"arch {self.arch!r} is not supported; choose one of {', '.join(ARCHS)}"
            )
        if self.quant_format not in QUANT_FORMATS:
            raise ConfigError(
                f"quant_format {self.quant_format!r} is not supported; choose {' or '.join(QUANT_FORMATS)}"
            )
        if self.weights is not None and not self.pretrained:
            raise ConfigError(
                "--weights and --no-pretrained contradict each other; pass one of them"
            )
        if self.init is not None and self.weights is not None:
            raise ConfigError(
                "--init and --weights contradict each other: --init starts from the run's own "
                "weights; pass one of them"
            )
        if self.split_by is not None and self.split_by not in SPLIT_COLUMNS:
            raise ConfigError(
                f"split_by {self.split_by!r} is not supported; choose {' or '.join(SPLIT_COLUMNS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings) for YAML/JSON."""
        return {
            f.name: (str(v) if isinstance(v, Path) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }

    @property
    def base_lr(self) -> float:
        """The learning rate to use: fine-tuning wants a gentler one than training from scratch."""
        if self.lr is not None:
            return self.lr
        if self.init is not None:
            return 1e-3  # the weights are already trained: adapt them, do not start over
        return 2e-3 if self.pretrained else 3e-3


_RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, 1000),
    "freeze_epochs": (0, 100),
    "size": (16, 2048),
    "min_scale": (0.05, 1.0),
    "valid_pct": (0.01, 0.9),
    "batch_size": (1, 4096),
    "workers": (0, 256),
    "aug_mult": (0.0, 10.0),
    "camera_aug_p": (0.0, 1.0),
    "top_k": (1, 100),
    "clean_k": (1, 100000),
    "reference_images": (1, 100000),
    "parity_tol": (0.0, 1.0),
    "calib_images": (1, 100000),
    "bench_batch": (1, 1024),
    "bench_threads": (0, 1024),
    "bench_seconds": (0.1, 600.0),
}


def _check_range(cfg: TrainConfig) -> None:
    for name, (low, high) in _RANGES.items():
        value = getattr(cfg, name)
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value}")
    if cfg.parity_max is not None and cfg.parity_max < 1:
        raise ConfigError(f"parity_max must be at least 1, got {cfg.parity_max}")


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML file of settings (the keys of :class:`TrainConfig`).

    Raises:
        ConfigError: when the file is unreadable, not a mapping, or has unknown keys.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of setting: value")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known settings are {', '.join(sorted(known))}"
        )
    return dict(raw)


def make_config(file_values: Mapping[str, Any], overrides: Mapping[str, Any]) -> TrainConfig:
    """Merge defaults < config file < command line (``None`` overrides mean "not given").

    Raises:
        ConfigError: when a required setting is missing or a value is invalid.
    """
    values = dict(file_values)
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name in ("data", "out"):
        if values.get(name) is None:
            raise ConfigError(f"--{name} is required (or set {name!r} in the config file)")
    for name in ("data", "out", "weights", "init"):
        if values.get(name) is not None:
            values[name] = Path(values[name]).expanduser()
    apply_init(values, dict(values))
    try:
        return TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc


def replace(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``cfg`` with some settings changed (validated again)."""
    return dataclasses.replace(cfg, **changes)
