"""Build the fastai vision learner and train it, logging every epoch to the run folder."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from fastai.vision.all import (
    CSVLogger,
    DataLoaders,
    Learner,
    accuracy,
    create_body,
    error_rate,
    model_meta,
    vision_learner,
)
from torch import nn

from training.config import TrainConfig
from training.init_run import InitError
from training.weights import arch_builder

logger = logging.getLogger(__name__)

HISTORY_CSV = "history.csv"


@dataclass(frozen=True)
class RandomInitArch:
    """An architecture callable that always builds ``name`` with random weights.

    fastai calls ``arch(pretrained=...)`` for architectures it has no
    ``model_meta`` entry for, which torchvision deprecates with a warning;
    pretrained weights are loaded by :func:`load_body_weights` instead. A
    dataclass rather than a closure so ``learn.export()`` can pickle it.
    """

    name: str

    def __call__(self, pretrained: bool = False, **kwargs: object) -> nn.Module:
        return arch_builder(self.name)(weights=None)


def fastai_arch(arch: str) -> Callable[..., nn.Module]:
    """The architecture callable to give ``vision_learner``.

    fastai's ``model_meta`` (body cut, layer groups, stats) is keyed by the
    torchvision builders, so those are passed as they are; others are wrapped
    in :class:`RandomInitArch`.
    """
    builder = arch_builder(arch)
    if builder in model_meta:
        return builder
    return RandomInitArch(arch)


def load_body_weights(body: nn.Module, arch: str, state: Mapping[str, torch.Tensor]) -> None:
    """Copy a torchvision state dict for ``arch`` into a learner's body.

    The body is the torchvision network cut where fastai cuts it, so the state
    is loaded into a whole fresh network first (strictly: a wrong file fails
    here) and the same cut of it is copied over.
    """
    builder = arch_builder(arch)
    full = builder(weights=None)
    full.load_state_dict(state, strict=True)
    cut = model_meta.get(builder, {}).get("cut")
    body.load_state_dict(
        create_body(full, n_in=3, pretrained=True, cut=cut).state_dict(), strict=True
    )


def build_learner(
    dls: DataLoaders, cfg: TrainConfig, state: Mapping[str, torch.Tensor] | None, path: Path
) -> Learner:
    """A ``vision_learner`` for ``cfg.arch`` with ``error_rate`` and ``accuracy``.

    Args:
        dls: the DataLoaders (already holding ``Normalize``).
        cfg: the run's settings.
        state: torchvision weights for the body, or ``None`` for random initialisation.
        path: the learner's folder (the run folder).
    """
    learn = vision_learner(
        dls,
        fastai_arch(cfg.arch),
        pretrained=False,  # weights come from `state`, resolved offline-safely beforehand
        normalize=False,  # Normalize is already in the batch transforms (see datablock)
        metrics=[error_rate, accuracy],
        path=path,
        model_dir=".",
    )
    if state is not None:
        load_body_weights(learn.model[0], cfg.arch, state)
        learn.freeze()
    else:
        _speed_up_batchnorm_statistics(learn.model)
    return learn


def load_run_weights(learn: Learner, path: Path) -> None:
    """Load a finished run's ``weights.pth`` (the whole network: body and head) into ``learn``.

    Raises:
        InitError: when the file is unreadable or does not fit the learner's network.
    """
    try:
        # weights_only: a state dict of tensors; loading it runs no code.
        state = torch.load(path, map_location="cpu", weights_only=True)
        learn.model.load_state_dict(state, strict=True)
    except Exception as exc:  # torch raises many types for garbage and for mismatched shapes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InitError(
            f"--init weights {path} do not fit this {type(learn.model).__name__} "
            f"({type(exc).__name__}: {first[:200]}); train without --init"
        ) from exc


def save_run_weights(learn: Learner, path: Path) -> None:
    """Save the whole network's state dict (what ``--init`` starts a later run from)."""
    torch.save(learn.model.state_dict(), path)


def _speed_up_batchnorm_statistics(model: nn.Module, momentum: float = 0.1) -> None:
    """Give every BatchNorm at least PyTorch's default momentum when training from scratch.

    torchvision's MobileNetV3 and EfficientNet use momentum 0.01, tuned for
    ImageNet's hundreds of thousands of steps. A from-scratch run of a few
    hundred steps would end with running statistics still near their initial
    values, so the model would train fine and predict one class in eval mode.
    """
    for module in model.modules():
        if (
            isinstance(module, nn.modules.batchnorm._BatchNorm)
            and (module.momentum or 0) < momentum
        ):
            module.momentum = momentum


def train(learn: Learner, cfg: TrainConfig, run_dir: Path) -> None:
    """Train: ``fine_tune`` from pretrained weights, ``fit_one_cycle`` from scratch.

    Freezing a randomly initialised body (what ``fine_tune`` does first) would
    spend an epoch fitting a head to random features, so from-scratch runs train
    everything from the start. Each epoch goes to ``history.csv``.
    """
    log_path = run_dir / HISTORY_CSV
    raw_path = run_dir / (HISTORY_CSV + ".raw")
    csv_logger = CSVLogger(raw_path, append=True)
    if cfg.init is not None:
        # Body and head are trained already: no frozen warm-up, a gentler one-cycle.
        logger.info(
            "fine-tuning %s from %s: %d epoch(s), lr %g",
            cfg.arch,
            cfg.init,
            cfg.epochs,
            cfg.base_lr,
        )
        learn.unfreeze()
        learn.fit_one_cycle(cfg.epochs, cfg.base_lr, cbs=[csv_logger])
    elif cfg.pretrained:
        logger.info(
            "fine-tuning %s: %d frozen + %d unfrozen epoch(s), base lr %g",
            cfg.arch,
            cfg.freeze_epochs,
            cfg.epochs,
            cfg.base_lr,
        )
        if cfg.freeze_epochs:
            learn.fine_tune(
                cfg.epochs, base_lr=cfg.base_lr, freeze_epochs=cfg.freeze_epochs, cbs=[csv_logger]
            )
        else:
            learn.unfreeze()
            learn.fit_one_cycle(cfg.epochs, slice(cfg.base_lr / 100, cfg.base_lr), cbs=[csv_logger])
    else:
        logger.info(
            "training %s from scratch: %d epoch(s), lr %g", cfg.arch, cfg.epochs, cfg.base_lr
        )
        learn.fit_one_cycle(cfg.epochs, cfg.base_lr, cbs=[csv_logger])
    frozen = cfg.init is None and cfg.pretrained and cfg.freeze_epochs
    _merge_history(raw_path, log_path, frozen_fits=1 if frozen else 0)
    raw_path.unlink()


def _merge_history(raw_path: Path, out_path: Path, frozen_fits: int) -> None:
    """Rewrite CSVLogger's per-fit sections (one header each) as one table with a ``phase`` column."""
    with raw_path.open(newline="") as f:
        rows = list(csv.reader(f))
    header: list[str] | None = None
    fit = -1
    out_rows = []
    for row in rows:
        if row and row[0] == "epoch":
            header, fit = row, fit + 1
            continue
        phase = "frozen" if fit < frozen_fits else "unfrozen"
        out_rows.append([phase, *row])
    with out_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["phase", *(header or [])])
        writer.writerows(out_rows)
