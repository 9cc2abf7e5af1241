"""Region geometry of a view plan, as small pure functions (SAHI's slicing, in our words).

A *region* is a rectangle of the source frame that the model looks at, resized
(letterboxed) to the model input. Everything here works on plain numbers and
arrays — no threads, no clock, no model — so the runtime's view plan, the
training set's slice-aided crops and the tests all use the same geometry.

Boxes are ``(x0, y0, x1, y1)``: pixel boxes are integers with exclusive
``x1``/``y1``; normalised boxes are floats in 0..1 of the frame's width and
height (what events and the API carry). Zones are polygons in normalised
coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PixelBox = tuple[int, int, int, int]
NormBox = tuple[float, float, float, float]
Polygon = tuple[tuple[float, float], ...]

ZONE_GRID = 64  # zone masks are rasterised on a grid this many cells across the long side


def to_norm(box: PixelBox, width: int, height: int) -> NormBox:
    """A pixel box as fractions of the frame (rounded to 4 places: 0.2 px at 4K)."""
    x0, y0, x1, y1 = box
    return (
        round(x0 / width, 4),
        round(y0 / height, 4),
        round(x1 / width, 4),
        round(y1 / height, 4),
    )


def to_pixels(box: NormBox, width: int, height: int) -> PixelBox:
    """A normalised box in pixels of a ``width`` × ``height`` frame, at least 1 px wide and high."""
    x0 = min(max(int(math.floor(box[0] * width)), 0), width - 1)
    y0 = min(max(int(math.floor(box[1] * height)), 0), height - 1)
    x1 = max(min(int(math.ceil(box[2] * width)), width), x0 + 1)
    y1 = max(min(int(math.ceil(box[3] * height)), height), y0 + 1)
    return x0, y0, x1, y1


def area(box: PixelBox) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def intersection(a: PixelBox, b: PixelBox) -> int:
    return area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def letterbox_placement(
    src_w: int, src_h: int, out_w: int, out_h: int
) -> tuple[int, int, int, int]:
    """Where a ``src_w`` × ``src_h`` region lands inside the ``out_w`` × ``out_h`` input.

    The region is scaled by one factor (up or down) so it fits whole, and
    centred; the rest is padding. Nothing of the region is cropped away.

    Returns:
        ``(left, top, width, height)`` of the scaled region inside the input.
    """
    scale = min(out_w / src_w, out_h / src_h)
    w = min(out_w, max(1, round(src_w * scale)))
    h = min(out_h, max(1, round(src_h * scale)))
    return (out_w - w) // 2, (out_h - h) // 2, w, h


def _spread(length: int, side: int, count: int) -> list[int]:
    """``count`` start offsets of windows of ``side`` spread evenly over ``length``."""
    if count <= 1 or length <= side:
        return [max(0, (length - side) // 2)]
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def windows_along(length: int, side: int, min_overlap: float) -> int:
    """How many windows of ``side`` cover ``length`` with at least ``min_overlap`` shared."""
    if length <= side:
        return 1
    step = side * (1.0 - min_overlap)
    return max(2, math.ceil((length - side) / step - 1e-9) + 1)


def auto_tile_side(width: int, height: int, input_side: int, max_downscale: float) -> int:
    """The square tile side that keeps each tile within ``max_downscale`` of the model input.

    Never smaller than the model input (a tile is not upscaled on purpose) and
    never larger than the frame's short side (tiles are square, so they fit).
    """
    side = round(input_side * max_downscale)
    return max(1, min(max(side, input_side), width, height))


def tile_boxes(width: int, height: int, side: int, min_overlap: float) -> list[PixelBox]:
    """Square ``side`` tiles covering the frame, neighbours sharing at least ``min_overlap``.

    Tiles are spread evenly, so the real overlap is usually more than the
    minimum and the last tile ends exactly at the frame's edge: no strip of
    the frame is left out, none is looked at by a sliver.

    Raises:
        ValueError: for a side outside 1..short side, or an overlap outside 0..<1.
    """
    if not 0.0 <= min_overlap < 1.0:
        raise ValueError(f"overlap must be within 0 and 1 (exclusive), got {min_overlap}")
    if not 1 <= side <= min(width, height):
        raise ValueError(f"tile side {side} px must be within 1..{min(width, height)} px")
    xs = _spread(width, side, windows_along(width, side, min_overlap))
    ys = _spread(height, side, windows_along(height, side, min_overlap))
    return [(x, y, x + side, y + side) for y in ys for x in xs]


def grid_boxes(width: int, height: int, rows: int, cols: int, overlap: float) -> list[PixelBox]:
    """A ``rows`` × ``cols`` grid of equal tiles with ``overlap`` shared between neighbours.

    Used when the operator gives the grid; tiles then take the frame's aspect
    ratio and are letterboxed into the model input like any region.

    Raises:
        ValueError: for a grid below 1 × 1 or an overlap outside 0..<1.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"a grid needs rows and cols >= 1, got {rows} x {cols}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be within 0 and 1 (exclusive), got {overlap}")
    tw = min(width, math.ceil(width / (cols - (cols - 1) * overlap)))
    th = min(height, math.ceil(height / (rows - (rows - 1) * overlap)))
    xs = _spread(width, tw, cols)
    ys = _spread(height, th, rows)
    return [(x, y, x + tw, y + th) for y in ys for x in xs]


def fit_square(box: PixelBox, min_side: int, width: int, height: int) -> PixelBox:
    """Grow ``box`` to a square of at least ``min_side``, shifted (not cut) to stay inside the frame.

    A square region goes into a square model input without padding; a frame
    too small for the square keeps the frame's extent along that axis.
    """
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, min_side)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    sw, sh = min(side, width), min(side, height)
    nx0 = int(round(min(max(cx - sw / 2, 0), width - sw)))
    ny0 = int(round(min(max(cy - sh / 2, 0), height - sh)))
    return nx0, ny0, nx0 + sw, ny0 + sh


def merge_boxes(
    boxes: Sequence[PixelBox], weights: Sequence[float] | None = None, gap: int = 0
) -> list[PixelBox]:
    """Union every pair of boxes closer than ``gap`` (overlapping, for 0) until none are.

    Returns the merged boxes, heaviest first (see :func:`merge_weighted`).
    """
    return [b for b, _ in merge_weighted(boxes, weights, gap)]


def merge_weighted(
    boxes: Sequence[PixelBox], weights: Sequence[float] | None = None, gap: int = 0
) -> list[tuple[PixelBox, float]]:
    """Like :func:`merge_boxes`, keeping each merged box's summed weight; heaviest first."""
    items: list[tuple[PixelBox, float]] = [
        ((b[0], b[1], b[2], b[3]), float(w))
        for b, w in zip(boxes, weights or [1.0] * len(boxes), strict=True)
    ]
    merged = True
    while merged:
        merged = False
        out: list[tuple[PixelBox, float]] = []
        for box, weight in items:
            for i, (other, other_w) in enumerate(out):
                grown = (box[0] - gap, box[1] - gap, box[2] + gap, box[3] + gap)
                if intersection(grown, other) > 0:
                    out[i] = (
                        (
                            min(box[0], other[0]),
                            min(box[1], other[1]),
                            max(box[2], other[2]),
                            max(box[3], other[3]),
                        ),
                        weight + other_w,
                    )
                    merged = True
                    break
            else:
                out.append((box, weight))
        items = out
    return sorted(items, key=lambda bw: (-bw[1], bw[0]))


def changed_boxes(mask: np.ndarray, width: int, height: int) -> list[tuple[PixelBox, float]]:
    """Bounding boxes of the changed areas of a coarse difference mask, in frame pixels.

    Args:
        mask: bool (h, w) grid over the whole frame (True: changed).
        width: the frame's width.
        height: the frame's height.

    Returns:
        ``(box, changed cells)`` per connected area.
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    gh, gw = mask.shape
    sx, sy = width / gw, height / gh
    out = []
    for i in range(1, count):
        x, y, w, h, n = (int(v) for v in stats[i])
        box = (
            int(math.floor(x * sx)),
            int(math.floor(y * sy)),
            min(width, int(math.ceil((x + w) * sx))),
            min(height, int(math.ceil((y + h) * sy))),
        )
        out.append((box, float(n)))
    return out


def motion_boxes(
    mask: np.ndarray,
    width: int,
    height: int,
    min_side: int,
    margin: float,
    max_regions: int,
) -> list[PixelBox]:
    """Regions around the changed areas: grown, squared to ≥ ``min_side``, merged, capped.

    Each changed area gets ``margin`` of its size around it (a walker's legs
    move, its body less), becomes a square of at least the model input, and
    squares closer than half the model input are merged (then squared again,
    merged again): the changed edges of one walker (a uniform body changes only
    at its leading and trailing edges) become one region, and the model never
    looks at the same pixels twice. At most ``max_regions``
    survive, the ones with the most change first: the cost per frame is
    bounded whatever the scene does.
    """
    found = changed_boxes(mask, width, height)
    if not found:
        return []
    boxes, weights = [], []
    for (x0, y0, x1, y1), n in found:
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        grown = (
            max(0, int(x0 - mx)),
            max(0, int(y0 - my)),
            min(width, int(x1 + mx)),
            min(height, int(y1 + my)),
        )
        boxes.append(fit_square(grown, min_side, width, height))
        weights.append(n)
    gap = min_side // 2
    merged = merge_weighted(boxes, weights, gap)
    while True:  # squaring a merged box can make it overlap another one again
        squared = [(fit_square(b, min_side, width, height), w) for b, w in merged]
        again = merge_weighted([b for b, _ in squared], [w for _, w in squared], gap)
        if len(again) == len(squared):
            merged = squared
            break
        merged = again
    return [b for b, _ in merged[:max_regions]]


# --------------------------------------------------------------------------- zones


@dataclass(frozen=True, slots=True)
class Zone:
    """A named polygon (normalised coordinates) that includes or excludes part of the view."""

    name: str
    polygon: Polygon
    include: bool = True
    threshold: float | None = None


def zone_grid(
    zones: Sequence[Zone], width: int, height: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rasterise zones on a coarse grid over a frame of this aspect ratio.

    Returns:
        ``(visible, include_masks)``: ``visible`` is True where the model may
        look (inside some include zone, or anywhere when there is none, and
        outside every exclude zone); one bool mask per include zone, in order.
    """
    scale = ZONE_GRID / max(width, height)
    gw, gh = max(1, round(width * scale)), max(1, round(height * scale))
    includes = []
    for zone in zones:
        if not zone.include:
            continue
        includes.append(_raster(zone.polygon, gw, gh))
    visible = np.logical_or.reduce(includes) if includes else np.ones((gh, gw), dtype=bool)
    for zone in zones:
        if not zone.include:
            visible &= ~_raster(zone.polygon, gw, gh)
    return visible, includes


def _raster(polygon: Polygon, gw: int, gh: int) -> np.ndarray:
    canvas = np.zeros((gh, gw), dtype=np.uint8)
    pts = np.array([[x * gw, y * gh] for x, y in polygon], dtype=np.float64)
    cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def frame_mask(zones: Sequence[Zone], width: int, height: int) -> np.ndarray | None:
    """Full-resolution uint8 mask (255: visible) for the zones, or None when every pixel is visible."""
    if not zones:
        return None
    canvas = np.zeros((height, width), dtype=np.uint8)
    includes = [z for z in zones if z.include]
    if not includes:
        canvas[:] = 255
    for zone in includes + [z for z in zones if not z.include]:
        pts = np.array([[x * width, y * height] for x, y in zone.polygon], dtype=np.float64)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 255 if zone.include else 0)
    return canvas


def box_zone(
    box: PixelBox,
    zones: Sequence[Zone],
    grid: tuple[np.ndarray, list[np.ndarray]],
    width: int,
    height: int,
) -> tuple[float, Zone | None]:
    """How much of ``box`` the model may see, and the include zone covering most of it.

    Returns:
        ``(visible share 0..1, zone or None)``; None when no include zone is configured.
    """
    visible, includes = grid
    gh, gw = visible.shape
    gx0, gy0 = int(box[0] * gw / width), int(box[1] * gh / height)
    gx1 = max(gx0 + 1, math.ceil(box[2] * gw / width))
    gy1 = max(gy0 + 1, math.ceil(box[3] * gh / height))
    share = float(visible[gy0:gy1, gx0:gx1].mean())
    include_zones = [z for z in zones if z.include]
    if not include_zones:
        return share, None
    cover = [float(m[gy0:gy1, gx0:gx1].mean()) for m in includes]
    best = int(np.argmax(cover))
    return share, include_zones[best] if cover[best] > 0 else None
