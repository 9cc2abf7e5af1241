"""The DataBlock: seeded split, train-only random crops and augmentation, the deployment resize on validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.model.preprocess import file_to_input
from training.config import TrainConfig
from training.datablock import TRAIN, VALID, build_datablock, build_dataloaders, item_transforms
from training.dataset import DataError, scan_images


def _config(data: Path, **changes: object) -> TrainConfig:
    return TrainConfig(data=data, out=data.parent / "run", size=32, batch_size=8, **changes)  # type: ignore[arg-type]


def test_split_is_seeded_and_respects_valid_pct(shapes_dir: Path) -> None:
    files = list(scan_images(shapes_dir).files)
    train_a, valid_a = build_datablock(_config(shapes_dir, seed=7)).splitter(files)
    train_b, valid_b = build_datablock(_config(shapes_dir, seed=7)).splitter(files)
    _, valid_c = build_datablock(_config(shapes_dir, seed=8)).splitter(files)
    assert list(valid_a) == list(valid_b) and list(train_a) == list(train_b)
    assert list(valid_a) != list(valid_c)
    assert len(valid_a) == int(0.2 * len(files))
    assert set(train_a).isdisjoint(valid_a) and len(train_a) + len(valid_a) == len(files)

    _, valid_third = build_datablock(_config(shapes_dir, valid_pct=1 / 3)).splitter(files)
    assert len(valid_third) == int(len(files) / 3)


def test_random_crop_only_on_train_and_resize_only_on_valid() -> None:
    crop, resize = item_transforms(32, 0.75)
    assert type(crop).__name__ == "RandomResizedCrop" and crop.split_idx == TRAIN
    assert type(resize).__name__ == "Resize" and resize.split_idx == VALID


def test_batches_have_the_configured_shape(shapes_dir: Path) -> None:
    dls = build_dataloaders(_config(shapes_dir, camera_aug=True), scan_images(shapes_dir).files)
    x, y = dls.one_batch()
    assert tuple(x.shape) == (8, 3, 32, 32)
    assert tuple(y.shape) == (8,)
    assert list(dls.vocab) == ["bear", "empty", "person"]
    # Normalize is in the pipeline whatever the weights (the exported graph always normalises).
    assert any(type(t).__name__ == "Normalize" for t in dls.after_batch.fs)


def test_validation_pipeline_matches_the_monitor_preprocessing(shapes_dir: Path) -> None:
    """fastai's validation transforms and monitor.model.preprocess must give the same pixels (odd sizes)."""
    import torch
    from fastai.vision.all import imagenet_stats

    files = list(scan_images(shapes_dir).files)[:12]
    dls = build_dataloaders(_config(shapes_dir), files)
    dl = dls.test_dl(files)
    x = torch.cat([b[0] for b in dl])
    mean, std = (torch.tensor(s).view(1, 3, 1, 1) for s in imagenet_stats)
    fastai_u8 = ((x * std + mean) * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    monitor_u8 = np.stack([file_to_input(f, (32, 32), "crop") for f in dl.items])
    assert np.array_equal(fastai_u8, monitor_u8)


def test_too_few_images_for_a_split_is_refused(tmp_path: Path, shapes_dir: Path) -> None:
    files = list(scan_images(shapes_dir).files)[:4]
    with pytest.raises(DataError, match="too few for a 20% validation split"):
        build_dataloaders(_config(shapes_dir), files)
