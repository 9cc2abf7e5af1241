"""The one preprocessing from a camera frame or image file to the model's input.

Both the runtime (capture threads) and the training export's parity check call
these functions, so the numbers the parity check reports are the numbers the
edge box will see.

The geometry matches fastai's validation ``Resize``: for ``crop`` the largest
centred window with the target aspect ratio is cut out and resized with PIL's
bilinear filter (fastai works on PIL images, so using PIL here rather than
OpenCV keeps the pixels identical, not merely close); ``squish`` resizes the
whole frame. Casting, scaling and normalising happen inside the ONNX graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RESIZE_METHODS = ("crop", "squish")


def crop_box(width: int, height: int, out_w: int, out_h: int) -> tuple[int, int, int, int]:
    """Return the centred (left, top, right, bottom) window fastai's ``Resize`` crops.

    Args:
        width: source width in pixels.
        height: source height in pixels.
        out_w: target width.
        out_h: target height.

    Returns:
        The crop box in PIL order.
    """
    ratio_w, ratio_h = width / out_w, height / out_h
    scale = ratio_w if ratio_w < ratio_h else ratio_h
    crop_w, crop_h = int(scale * out_w), int(scale * out_h)
    left, top = int(0.5 * (width - crop_w)), int(0.5 * (height - crop_h))
    return left, top, left + crop_w, top + crop_h


def resize_pil(image: Image.Image, size_hw: tuple[int, int], method: str) -> np.ndarray:
    """Resize a PIL RGB image to the model input; returns ``uint8`` HxWx3 RGB.

    Raises:
        ValueError: for an unknown resize method.
    """
    out_h, out_w = size_hw
    if method == "crop":
        image = image.crop(crop_box(image.width, image.height, out_w, out_h))
    elif method != "squish":
        raise ValueError(f"unknown resize method {method!r}; expected one of {RESIZE_METHODS}")
    if image.size != (out_w, out_h):
        image = image.resize((out_w, out_h), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def frame_to_input(rgb: np.ndarray, size_hw: tuple[int, int], method: str) -> np.ndarray:
    """Preprocess one RGB frame (HxWx3 ``uint8``) into the model's input.

    Args:
        rgb: the frame in RGB order (convert OpenCV's BGR before calling).
        size_hw: the model's (height, width).
        method: ``crop`` or ``squish``, from the model's metadata.

    Returns:
        A contiguous ``uint8`` array of shape (height, width, 3).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
    return resize_pil(Image.fromarray(rgb, mode="RGB"), size_hw, method)


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB, the way fastai's ``PILImage.create`` does."""
    with Image.open(path) as im:
        return im.convert("RGB")


def file_to_input(path: str | Path, size_hw: tuple[int, int], method: str) -> np.ndarray:
    """Preprocess an image file into the model's input (HxWx3 ``uint8``)."""
    return resize_pil(load_image(path), size_hw, method)
