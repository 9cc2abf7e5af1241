"""The one preprocessing from a camera frame or image file to the model's input.

Both the runtime (capture threads) and the training export's parity check call
these functions, so the numbers the parity check reports are the numbers the
edge box will see.

The geometry matches fastai's validation ``Resize``: for ``crop`` the largest
centred window with the target aspect ratio is cut out and resized with PIL's
bilinear filter (fastai works on PIL images, so using PIL here rather than
OpenCV keeps the pixels identical, not merely close); ``squish`` resizes the
whole frame; ``letterbox`` scales the whole frame to fit and pads the rest
black (fastai's ``ResizeMethod.Pad`` with zeros). Casting, scaling and
normalising happen inside the ONNX graph.

A view plan (``monitor.capture.view``) hands the model *regions* of a frame;
each goes through :func:`region_input`, which letterboxes. A region with the
model's aspect ratio (every auto tile and motion region is square) is resized
without padding, where ``crop``, ``squish`` and ``letterbox`` give the same
geometry (and, for a whole image, the same pixels) — which is why models
exported with ``crop`` keep working unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from monitor.model.regions import PixelBox, letterbox_placement

RESIZE_METHODS = ("crop", "squish", "letterbox")


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
    if method == "letterbox":
        return region_input(image, (0, 0, image.width, image.height), size_hw)
    if method == "crop":
        image = image.crop(crop_box(image.width, image.height, out_w, out_h))
    elif method != "squish":
        raise ValueError(f"unknown resize method {method!r}; expected one of {RESIZE_METHODS}")
    if image.size != (out_w, out_h):
        image = image.resize((out_w, out_h), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def region_input(image: Image.Image, box: PixelBox, size_hw: tuple[int, int]) -> np.ndarray:
    """One region of a frame as model input: scaled whole to fit, centred, padded black.

    Args:
        image: the whole frame as a PIL RGB image (converted once per frame).
        box: the region, ``(x0, y0, x1, y1)`` pixels of ``image``.
        size_hw: the model's (height, width).

    Returns:
        A contiguous ``uint8`` array (height, width, 3); a region smaller than
        the input is upscaled, never refused.
    """
    out_h, out_w = size_hw
    x0, y0, x1, y1 = box
    left, top, w, h = letterbox_placement(x1 - x0, y1 - y0, out_w, out_h)
    if (left, top, w, h) == (0, 0, x1 - x0, y1 - y0) and (w, h) == (image.width, image.height):
        return np.asarray(image, dtype=np.uint8)
    scaled = image.resize((w, h), Image.Resampling.BILINEAR, box=box)
    if (w, h) == (out_w, out_h):
        return np.asarray(scaled, dtype=np.uint8)
    canvas = np.zeros((out_h, out_w, 3), dtype=np.uint8)
    canvas[top : top + h, left : left + w] = np.asarray(scaled, dtype=np.uint8)
    return canvas


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


def regions_to_inputs(
    bgr: np.ndarray,
    boxes: Sequence[PixelBox],
    size_hw: tuple[int, int],
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Every region of one frame as model inputs, converting and scaling the frame once.

    A 1080p frame is never converted at full size when the plan does not need
    it: the frame is first shrunk (OpenCV's area filter, which averages instead
    of skipping pixels) to the largest scale any region needs, converted to RGB
    once, and each region is then letterboxed from that with
    :func:`region_input`. The training set's slice-aided crops are made by this
    same function, so a tile at runtime is what the model was trained on.

    Args:
        bgr: the decoded frame, OpenCV's BGR ``uint8`` (H, W, 3).
        boxes: regions in pixels of ``bgr``.
        size_hw: the model's (height, width).
        mask: optional uint8 (H, W) mask, 0 where the model must not look
            (outside the camera's include zones, inside exclude zones);
            masked pixels are black, like the letterbox padding.

    Returns:
        ``uint8`` array (len(boxes), height, width, 3) in RGB order.
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {bgr.dtype} {bgr.shape}")
    if not boxes:
        raise ValueError("a frame needs at least one region")
    out_h, out_w = size_hw
    height, width = bgr.shape[:2]
    need = max(min(out_w / (b[2] - b[0]), out_h / (b[3] - b[1])) for b in boxes)
    scale = min(1.0, need)
    work = bgr
    if mask is not None:
        work = cv2.bitwise_and(work, work, mask=mask)
    if scale < 0.95:  # shrinking by less is not worth a pass over the frame
        sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
        work = cv2.resize(work, (sw, sh), interpolation=cv2.INTER_AREA)
        fx, fy = sw / width, sh / height
        boxes = [
            (
                int(round(b[0] * fx)),
                int(round(b[1] * fy)),
                max(int(round(b[0] * fx)) + 1, int(round(b[2] * fx))),
                max(int(round(b[1] * fy)) + 1, int(round(b[3] * fy))),
            )
            for b in boxes
        ]
    image = Image.fromarray(cv2.cvtColor(work, cv2.COLOR_BGR2RGB), mode="RGB")
    return np.stack([region_input(image, box, size_hw) for box in boxes])
