"""Camera-domain augmentations: shape and dtype kept, training split only, only the picked images changed."""

from __future__ import annotations

import pytest
import torch
from fastai.vision.all import TensorCategory, TensorImage

from training.camera_aug import (
    CameraBlur,
    CameraTransform,
    InfraredNight,
    LowLight,
    LowResolution,
    SensorNoise,
    camera_transforms,
)

ALL = [InfraredNight, LowLight, CameraBlur, LowResolution, SensorNoise]


def _batch(n: int = 6, size: int = 32) -> tuple[TensorImage, TensorCategory]:
    torch.manual_seed(0)
    return TensorImage(torch.rand(n, 3, size, size)), TensorCategory(
        torch.zeros(n, dtype=torch.long)
    )


@pytest.mark.parametrize("tfm_cls", ALL)
def test_train_split_degrades_every_image_and_keeps_shape(tfm_cls: type[CameraTransform]) -> None:
    x, y = _batch()
    out_x, out_y = tfm_cls(p=1.0)((x, y), split_idx=0)
    assert isinstance(out_x, TensorImage)
    assert out_x.shape == x.shape and out_x.dtype == x.dtype
    assert float(out_x.min()) >= 0.0 and float(out_x.max()) <= 1.0
    assert bool(torch.equal(out_y, y))
    changed = (out_x - x).abs().flatten(1).amax(dim=1) > 1e-4
    assert bool(changed.all())


@pytest.mark.parametrize("tfm_cls", ALL)
def test_validation_split_is_untouched(tfm_cls: type[CameraTransform]) -> None:
    x, y = _batch()
    out_x, _ = tfm_cls(p=1.0)((x, y), split_idx=1)
    assert bool(torch.equal(out_x, x))


def test_only_the_picked_images_change() -> None:
    x, y = _batch(n=64)
    torch.manual_seed(3)
    tfm = SensorNoise(p=0.3)
    out_x, _ = tfm((x, y), split_idx=0)
    changed = (out_x - x).abs().flatten(1).amax(dim=1) > 0
    assert bool(torch.equal(changed, tfm.mask))
    assert 0 < int(changed.sum()) < 64


def test_infrared_night_is_grayscale() -> None:
    x, y = _batch()
    out_x, _ = InfraredNight(p=1.0)((x, y), split_idx=0)
    assert bool(torch.allclose(out_x[:, 0], out_x[:, 1])) and bool(
        torch.allclose(out_x[:, 1], out_x[:, 2])
    )


def test_probability_zero_changes_nothing() -> None:
    x, y = _batch()
    for tfm in camera_transforms(p=0.0):
        out_x, _ = tfm((x, y), split_idx=0)
        assert bool(torch.equal(out_x, x))
