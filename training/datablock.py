"""The fastai DataBlock: images labelled by folder, a seeded split, and the train/valid transforms.

The validation transform is the deployment contract: ``Resize(size, crop)``
is what ``monitor.model.preprocess`` reproduces on the edge, so it must be the only
item transform the validation split (and ``test_dl``/``predict``) sees. fastai's
``RandomResizedCrop`` would otherwise also run on validation with its own
centre-crop-and-zoom, which no camera frame gets at inference time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from fastai.vision.all import (
    CategoryBlock,
    DataBlock,
    DataLoaders,
    ImageBlock,
    Normalize,
    RandomResizedCrop,
    RandomSplitter,
    Resize,
    ResizeMethod,
    Transform,
    aug_transforms,
    imagenet_stats,
    parent_label,
)

from training.camera_aug import camera_transforms
from training.config import TrainConfig
from training.dataset import DataError
from training.holdout import GroupSplit

TRAIN, VALID = 0, 1


def item_transforms(size: int, min_scale: float) -> list[Transform]:
    """``RandomResizedCrop`` on the training split, ``Resize`` (centre crop) on validation."""
    train_crop = RandomResizedCrop(size, min_scale=min_scale)
    train_crop.split_idx = TRAIN
    valid_resize = Resize(size, method=ResizeMethod.Crop)
    valid_resize.split_idx = VALID
    return [train_crop, valid_resize]


def batch_transforms(cfg: TrainConfig) -> list[Transform]:
    """fastai's ``aug_transforms``, optional camera-domain degradations, then ImageNet ``Normalize``.

    ``Normalize`` is added here rather than left to ``vision_learner`` because
    fastai only adds it for pretrained models, while the exported graph always
    normalises with ImageNet statistics; training and export must agree.
    """
    tfms: list[Transform] = list(aug_transforms(mult=cfg.aug_mult)) if cfg.aug_mult > 0 else []
    if cfg.camera_aug:
        tfms += camera_transforms(cfg.camera_aug_p)
    tfms.append(Normalize.from_stats(*imagenet_stats))
    return tfms


def build_datablock(cfg: TrainConfig, n_train: int | None = None) -> DataBlock:
    """The DataBlock for ``cfg``: ``parent_label`` targets and a seeded ``RandomSplitter``.

    With ``n_train``, the split is fixed instead: the first ``n_train`` items
    train and the rest validate (a ``GroupSplit`` made beforehand).
    """
    splitter: Callable[[Sequence[Any]], tuple[list[int], list[int]]]
    if n_train is None:
        splitter = RandomSplitter(valid_pct=cfg.valid_pct, seed=cfg.seed)
    else:
        splitter = partial(_fixed_split, n_train)
    return DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_y=parent_label,
        splitter=splitter,
        item_tfms=item_transforms(cfg.size, cfg.min_scale),
        batch_tfms=batch_transforms(cfg),
    )


def _fixed_split(n_train: int, items: Sequence[Any]) -> tuple[list[int], list[int]]:
    return list(range(n_train)), list(range(n_train, len(items)))


def build_dataloaders(
    cfg: TrainConfig, files: Sequence[Path], split: GroupSplit | None = None
) -> DataLoaders:
    """DataLoaders over already-verified ``files`` (see ``training.dataset.scan_images``).

    Args:
        split: train on ``split.train`` and validate on ``split.valid`` (``files`` is
            then ignored) instead of a random split.

    Raises:
        DataError: when the split leaves too few images to train or validate on.
    """
    if split is not None:
        files = [*split.train, *split.valid]
    dblock = build_datablock(cfg, None if split is None else len(split.train))
    train_idx, valid_idx = dblock.splitter(list(files))
    if len(valid_idx) < 1 or len(train_idx) < 2:
        raise DataError(
            f"{len(files)} images under {cfg.data} are too few for a {cfg.valid_pct:.0%} validation "
            "split; add images (dozens per class) or change --valid-pct"
        )
    # The training loader drops its last partial batch; with fewer images than
    # the batch size it would have no batch at all.
    bs = min(cfg.batch_size, len(train_idx))
    return dblock.dataloaders(list(files), bs=bs, num_workers=cfg.workers)
