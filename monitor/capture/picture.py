"""A decoded camera picture, converted only when sampled and only to the sizes its consumers need.

A capture source hands the worker a :class:`Picture` for a sampled frame; the
worker asks it for the model input and the review snapshot. An FFmpeg frame
(:class:`AvPicture`) is still in the decoder's YUV: libswscale converts and
scales it straight to each target, once, so the full-size BGR copy OpenCV makes
of every frame never exists. An OpenCV webcam frame (:class:`BgrPicture`) is
already BGR and goes through the PIL preprocessing of ``monitor.model.preprocess``.
"""

from __future__ import annotations

from typing import Protocol

import av
import cv2
import numpy as np

from monitor.model.preprocess import RESIZE_METHODS, crop_box, frame_to_input

# swscale's bilinear widens its filter when it shrinks, as PIL's does: on RGB it
# matches PIL's BILINEAR (fastai's resize) to 0.1 grey level on average.
MODEL_INTERPOLATION = "BILINEAR"
SNAPSHOT_INTERPOLATION = "AREA"
# Planar 4:2:0 formats are cropped in YUV (no full-size conversion at all).
_YUV420 = ("yuv420p", "yuvj420p")


class Picture(Protocol):
    """One sampled frame, still in its decoder's format."""

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) as the camera delivered it."""
        ...

    def model_input(self, size_hw: tuple[int, int], method: str) -> np.ndarray:
        """The model's input: ``uint8`` (H, W, 3) RGB, cropped or squished like fastai's ``Resize``."""
        ...

    def snapshot(self, width: int) -> np.ndarray:
        """A read-only BGR copy ``width`` pixels wide (never upscaled), for review."""
        ...

    def bgr(self, width: int | None = None) -> np.ndarray:
        """The frame as BGR for the view plan: full size, or ``width`` pixels wide (never upscaled)."""
        ...


def snapshot_size(hw: tuple[int, int], width: int) -> tuple[int, int]:
    """(width, height) of a snapshot at most ``width`` wide, aspect kept."""
    height, src_width = hw
    if src_width <= width:
        return src_width, height
    return width, max(1, round(height * width / src_width))


class BgrPicture:
    """A frame OpenCV already converted to full-size BGR (webcams)."""

    def __init__(self, bgr: np.ndarray) -> None:
        self._bgr = bgr

    @property
    def hw(self) -> tuple[int, int]:
        return int(self._bgr.shape[0]), int(self._bgr.shape[1])

    def model_input(self, size_hw: tuple[int, int], method: str) -> np.ndarray:
        return frame_to_input(cv2.cvtColor(self._bgr, cv2.COLOR_BGR2RGB), size_hw, method)

    def snapshot(self, width: int) -> np.ndarray:
        size = snapshot_size(self.hw, width)
        snap = (
            self._bgr
            if size[0] == self.hw[1]
            else cv2.resize(self._bgr, size, interpolation=cv2.INTER_AREA)
        )
        snap.setflags(write=False)
        return snap

    def bgr(self, width: int | None = None) -> np.ndarray:
        if width is None or width >= self.hw[1]:
            return self._bgr
        size = snapshot_size(self.hw, width)
        return cv2.resize(self._bgr, size, interpolation=cv2.INTER_AREA)


class AvPicture:
    """A frame decoded by FFmpeg (PyAV), converted by libswscale on demand."""

    def __init__(self, frame: av.VideoFrame) -> None:
        self._frame = frame

    @property
    def hw(self) -> tuple[int, int]:
        return int(self._frame.height), int(self._frame.width)

    def model_input(self, size_hw: tuple[int, int], method: str) -> np.ndarray:
        out_h, out_w = size_hw
        if method not in RESIZE_METHODS:
            raise ValueError(f"unknown resize method {method!r}; expected one of {RESIZE_METHODS}")
        frame = self._frame
        if method == "crop":
            frame = _crop(frame, crop_box(frame.width, frame.height, out_w, out_h))
        if frame.format.name in _YUV420:
            # Scale in YUV 4:4:4, then convert the small result: chroma is
            # interpolated once, at the output size.
            frame = frame.reformat(
                width=out_w, height=out_h, format="yuv444p", interpolation=MODEL_INTERPOLATION
            )
        return frame.to_ndarray(
            width=out_w, height=out_h, format="rgb24", interpolation=MODEL_INTERPOLATION
        )

    def snapshot(self, width: int) -> np.ndarray:
        out_w, out_h = snapshot_size(self.hw, width)
        snap = self._frame.to_ndarray(
            width=out_w, height=out_h, format="bgr24", interpolation=SNAPSHOT_INTERPOLATION
        )
        snap.setflags(write=False)
        return snap

    def bgr(self, width: int | None = None) -> np.ndarray:
        if width is None or width >= self.hw[1]:
            return self._frame.to_ndarray(format="bgr24")
        out_w, out_h = snapshot_size(self.hw, width)
        return self._frame.to_ndarray(
            width=out_w, height=out_h, format="bgr24", interpolation=SNAPSHOT_INTERPOLATION
        )


def _crop(frame: av.VideoFrame, box: tuple[int, int, int, int]) -> av.VideoFrame:
    """The ``box`` (left, top, right, bottom) of ``frame`` as a new frame.

    4:2:0 frames are cut in YUV on even coordinates (chroma covers 2×2 pixels),
    anything else via RGB.
    """
    left, top, right, bottom = box
    if (left, top, right, bottom) == (0, 0, frame.width, frame.height):
        return frame
    fmt = frame.format.name
    if fmt not in _YUV420:
        rgb: np.ndarray = frame.to_ndarray(format="rgb24")[top:bottom, left:right]
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
    left, top = left & ~1, top & ~1
    width, height = (right - left) & ~1, (bottom - top) & ~1
    luma = height * width
    flat = np.empty(luma * 3 // 2, dtype=np.uint8)
    flat[:luma].reshape(height, width)[:] = _plane(frame, 0)[
        top : top + height, left : left + width
    ]
    for i, start in ((1, luma), (2, luma * 5 // 4)):
        chroma = _plane(frame, i)[top // 2 : (top + height) // 2, left // 2 : (left + width) // 2]
        flat[start : start + luma // 4].reshape(height // 2, width // 2)[:] = chroma
    # Zero-copy when PyAV's numpy-buffer layout matches ours (the chroma height even).
    wrap = av.VideoFrame.from_numpy_buffer if height % 4 == 0 else av.VideoFrame.from_ndarray
    cropped = wrap(flat.reshape(height * 3 // 2, width), format=fmt)
    cropped.colorspace, cropped.color_range = frame.colorspace, frame.color_range
    return cropped


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    """A zero-copy (rows, line size) view of one plane of ``frame``."""
    plane = frame.planes[index]
    return np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
