"""Camera-domain augmentations: IR night, low light, blur, low resolution and sensor noise.

The fastai book warns that a bear model trained on web photos meets something
else at a campsite: grayscale IR frames at night, dark dusk frames, motion blur,
cheap low-resolution sensors and their noise. These transforms show the
network those conditions during training. They are batch transforms on float
``TensorImage`` batches in [0, 1] (after ``IntToFloatTensor``, before
``Normalize``), applied to the training split only (``split_idx = 0``), each to
a random subset of the batch so one batch mixes clean and degraded frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from fastai.vision.all import RandTransform, TensorImage
from torchvision.transforms.functional import gaussian_blur


class CameraTransform(RandTransform):
    """Base: pick each training image with probability ``p`` and degrade only those.

    Args:
        p: probability that an image in the batch is degraded.
    """

    split_idx = 0  # training only: validation must show the camera as it is
    order = 60  # after fastai's lighting (40), before Normalize (99)

    def __init__(self, p: float = 0.2) -> None:
        super().__init__(p=1.0)
        self.p_item = p
        self.mask = torch.zeros(0, dtype=torch.bool)

    def before_call(self, b: object, split_idx: int | None) -> None:
        x = b[0] if isinstance(b, tuple) else b
        self.mask = torch.rand(len(x)) < self.p_item  # type: ignore[arg-type]
        self.do = bool(self.mask.any())

    def encodes(self, x: TensorImage) -> TensorImage:
        idx = self.mask.nonzero().flatten().to(x.device)
        out = x.clone()
        out[idx] = self.degrade(x[idx]).clamp(0.0, 1.0).to(x.dtype)
        return out

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        """Degrade a (n, 3, H, W) float batch in [0, 1]; subclasses implement it."""
        raise NotImplementedError


class InfraredNight(CameraTransform):
    """Grayscale with a flattened, brightened tone curve, like an IR-illuminated night frame."""

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        luma = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        gamma = torch.empty(len(x), 1, 1, 1, device=x.device).uniform_(0.6, 1.2)
        return luma.clamp_min(1e-6).pow(gamma).expand(-1, 3, -1, -1)


class LowLight(CameraTransform):
    """Dusk: darker and with the shadows crushed (exposure × 0.15–0.5, gamma 1–1.6)."""

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        gain = torch.empty(n, 1, 1, 1, device=x.device).uniform_(0.15, 0.5)
        gamma = torch.empty(n, 1, 1, 1, device=x.device).uniform_(1.0, 1.6)
        return x.clamp_min(1e-6).pow(gamma) * gain


class CameraBlur(CameraTransform):
    """Out-of-focus or motion blur: a Gaussian whose sigma scales with the image size."""

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        # Never below half the 128 px strength: tiny inputs still need a visible blur.
        scale = max(0.5, x.shape[-1] / 128)
        out = torch.empty_like(x)
        for i in range(len(x)):
            sigma = float(torch.empty(1).uniform_(0.6, 2.0)) * scale
            kernel = 2 * math.ceil(3 * sigma) + 1
            out[i] = gaussian_blur(x[i : i + 1], [kernel, kernel], [sigma, sigma])[0]
        return out


class LowResolution(CameraTransform):
    """A cheap sensor or a distant camera: downscale to 20–50 % and back up."""

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out = torch.empty_like(x)
        for i in range(len(x)):
            factor = float(torch.empty(1).uniform_(0.2, 0.5))
            small_hw = (max(4, round(h * factor)), max(4, round(w * factor)))
            small = F.interpolate(x[i : i + 1], size=small_hw, mode="area")
            out[i] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]
        return out


class SensorNoise(CameraTransform):
    """Gaussian read noise, std 2–8 % of full scale (high-ISO night frames)."""

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.empty(len(x), 1, 1, 1, device=x.device).uniform_(0.02, 0.08)
        return x + torch.randn_like(x) * std


def camera_transforms(p: float = 0.2) -> list[CameraTransform]:
    """All camera-domain augmentations, each applied to a fraction ``p`` of training images."""
    return [InfraredNight(p), LowLight(p), CameraBlur(p), LowResolution(p), SensorNoise(p)]
