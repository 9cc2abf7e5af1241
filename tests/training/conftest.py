"""Training fixtures: a tiny generated image folder (three classes of coloured shapes) and weights files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

CLASSES = ("bear", "empty", "person")


def make_shapes(
    root: Path, per_class: int, seed: int = 0, classes: tuple[str, ...] = CLASSES
) -> Path:
    """Write ``root/<class>/NNN.jpg``: 24–64 px images, a dark blob (bear), a white bar (person) or nothing.

    Sizes vary per image (and are rarely square) so the crop geometry and the
    parity check meet odd aspect ratios.
    """
    rng = np.random.default_rng(seed)
    for cls in classes:
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = (int(v) for v in rng.integers(24, 65, size=2))
            image = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(60, 200, size=3)))
            draw = ImageDraw.Draw(image)
            if cls == "bear":
                draw.ellipse([w * 0.2, h * 0.25, w * 0.8, h * 0.8], fill=(35, 22, 12))
            elif cls == "person":
                draw.rectangle([w * 0.4, h * 0.1, w * 0.6, h * 0.9], fill=(250, 250, 250))
            image.save(folder / f"{i:03d}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean three-class folder, 24 images per class."""
    return make_shapes(tmp_path_factory.mktemp("shapes"), per_class=24)


@pytest.fixture(scope="session")
def resnet18_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid torchvision resnet18 state dict file (random weights: nothing is downloaded)."""
    import torch
    import torchvision

    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path
