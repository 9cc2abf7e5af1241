"""A camera's view plan: which regions of each frame the model looks at, and their inputs.

The plan is per camera (``view:`` in its config) and per source resolution:

* ``full`` — the whole frame, letterboxed, so no camera silently loses its edges;
* ``tiles`` — an overlapping grid of square tiles, each at most
  ``tiles.max_downscale`` model inputs wide (derived from the resolution and the
  model input unless rows/cols or a size are given);
* ``motion`` — squares around what differs from the recent background, at least
  the model input, merged and capped, held a while after the change stops, and
  the whole frame every ``motion.full_every_s`` so a motionless bear is not lost;
* ``auto`` (default) — ``full``, plus motion regions (``auto_adds: motion``,
  the default) or the tiles (``auto_adds: tiles``) when the frame's long side
  is ``auto_factor`` model inputs or more (a 1080p camera with a 128 px model).
  Motion is the default companion: a moving distant bear is seen at full
  resolution for at most twice the cost of ``full``; tiles also cover a bear
  that never moves, at 15× the model images, and need a model trained on
  tiles (``training.synthetic.wide slices``) not to see bears in every patch
  of grass.

Zones mask what the model may see and name the region an alert comes from.
The static part (full, tiles, zone masks) is computed once per resolution;
a resolution change recomputes it and is logged once per change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from monitor.config.camera import ViewConfig
from monitor.model.preprocess import crop_box, regions_to_inputs
from monitor.model.regions import (
    NormBox,
    PixelBox,
    Zone,
    auto_tile_side,
    box_zone,
    fit_square,
    frame_mask,
    grid_boxes,
    intersection,
    merge_boxes,
    motion_boxes,
    tile_boxes,
    to_norm,
    zone_grid,
)

logger = logging.getLogger(__name__)

MOTION_GRID_WIDTH = 160  # difference image cells across (1080p: 12 px per cell)
BACKGROUND_ALPHA = 0.2  # the motion background follows the scene over ~5 frames


@dataclass(frozen=True, slots=True)
class StaticPlan:
    """The regions a plan looks at on every frame of one resolution (motion regions aside)."""

    width: int
    height: int
    boxes: tuple[PixelBox, ...]
    kinds: tuple[str, ...]  # "full" or "tile", per box
    tile_side: int | None

    def describe(self) -> str:
        tiles = self.kinds.count("tile")
        parts = (["full"] if "full" in self.kinds else []) + ([f"{tiles} tiles"] if tiles else [])
        side = f" of {self.tile_side} px" if self.tile_side else ""
        return " + ".join(parts) + (side if tiles else "") or "motion regions only"


def zones_of(cfg: ViewConfig) -> tuple[Zone, ...]:
    return tuple(
        Zone(
            z.name,
            tuple((float(x), float(y)) for x, y in z.polygon),
            z.kind == "include",
            z.threshold,
        )
        for z in cfg.zones
    )


def is_large(cfg: ViewConfig, width: int, height: int, input_side: int) -> bool:
    """Is the frame large enough that ``auto`` adds regions to the whole frame?"""
    return max(width, height) >= cfg.auto_factor * input_side


def static_plan(cfg: ViewConfig, width: int, height: int, input_hw: tuple[int, int]) -> StaticPlan:
    """The full-frame and tile regions of ``cfg.plan`` for a ``width`` × ``height`` frame.

    The training set's slice-aided crops use this very function, so the tiles a
    camera sees at runtime are the tiles the model was trained on.
    """
    side = min(input_hw)
    boxes: list[PixelBox] = []
    kinds: list[str] = []
    if cfg.plan in ("full", "auto", "motion"):
        boxes.append((0, 0, width, height))
        kinds.append("full")
    wants_tiles = cfg.plan == "tiles" or (
        cfg.plan == "auto" and cfg.auto_adds == "tiles" and is_large(cfg, width, height, side)
    )
    tile_side: int | None = None
    if wants_tiles:
        t = cfg.tiles
        if t.rows is not None and t.cols is not None:
            tiles = grid_boxes(width, height, t.rows, t.cols, t.overlap)
        else:
            tile_side = auto_tile_side(width, height, side, t.max_downscale)
            if t.size_px is not None:
                tile_side = min(t.size_px, width, height)
            tiles = tile_boxes(width, height, tile_side, t.overlap)
        if len(tiles) > 1 or not boxes:
            boxes += tiles
            kinds += ["tile"] * len(tiles)
    if cfg.plan == "motion":
        boxes, kinds = [], []  # the full frame joins on schedule, see ViewPlanner
    return StaticPlan(width, height, tuple(boxes), tuple(kinds), tile_side)


@dataclass(frozen=True, slots=True)
class FrameView:
    """One frame's regions: model inputs plus where each came from."""

    inputs: np.ndarray  # uint8 (R, H, W, 3) RGB
    centre: np.ndarray  # uint8 (H, W, 3): the centre square, for image statistics
    boxes: tuple[NormBox, ...]
    kinds: tuple[str, ...]
    zones: tuple[str | None, ...]
    zone_thresholds: tuple[float | None, ...]


class ViewPlanner:
    """One camera's view plan, kept across frames (motion history, resolution).

    Args:
        camera: the camera id (for logs).
        cfg: the camera's ``view`` settings.
        input_hw: the model's (height, width).
        max_batch: the inference batch limit (to warn about plans that exceed it).
        fps: the camera's sampling rate (for the expected cost in that warning).
    """

    def __init__(
        self,
        camera: str,
        cfg: ViewConfig,
        input_hw: tuple[int, int],
        max_batch: int = 8,
        fps: float = 2.0,
    ) -> None:
        self.camera, self.cfg, self.input_hw = camera, cfg, input_hw
        self.max_batch, self.fps = max_batch, fps
        self.zones = zones_of(cfg)
        self.plan: StaticPlan | None = None
        self._grid: tuple[np.ndarray, list[np.ndarray]] | None = None
        self._mask: np.ndarray | None = None
        self._static: list[tuple[PixelBox, str, float, Zone | None]] = []
        self._background: np.ndarray | None = None
        self._held: list[tuple[PixelBox, float]] = []
        self._last_full: float | None = None

    def _replan(self, width: int, height: int) -> None:
        old = self.plan
        self.plan = static_plan(self.cfg, width, height, self.input_hw)
        t = self.cfg.tiles
        if t.size_px is not None and t.size_px > min(width, height) and self.cfg.plan != "full":
            logger.error(
                "camera %s: view.tiles.size_px: %d px tiles are larger than the %dx%d frame; "
                "using %d px tiles",
                self.camera,
                t.size_px,
                width,
                height,
                min(width, height),
            )
        self._grid = zone_grid(self.zones, width, height) if self.zones else None
        self._mask = frame_mask(self.zones, width, height)
        self._static = []
        for box, kind in zip(self.plan.boxes, self.plan.kinds, strict=True):
            share, zone = self._zone_of(box)
            if share > 0:
                self._static.append((box, kind, share, zone))
        self._background, self._held = None, []
        n = len(self._static) + (
            self.cfg.motion.max_regions + (self.cfg.plan == "motion") if self._uses_motion() else 0
        )
        if old is None:
            logger.info(
                "camera %s: %dx%d, view plan %s: %s",
                self.camera,
                width,
                height,
                self.cfg.plan,
                self.describe(),
            )
        else:
            logger.warning(
                "camera %s: resolution changed from %dx%d to %dx%d; view plan recomputed: %s",
                self.camera,
                old.width,
                old.height,
                width,
                height,
                self.describe(),
            )
        if n > self.max_batch:
            logger.warning(
                "camera %s: view plan %s looks at up to %d regions per frame, more than "
                "batching.max_batch %d: each frame takes %d batches, about %.0f model images/s "
                "at %.3g fps",
                self.camera,
                self.cfg.plan,
                n,
                self.max_batch,
                -(-n // self.max_batch),
                n * self.fps,
                self.fps,
            )

    def _uses_motion(self) -> bool:
        if self.cfg.plan == "motion":
            return True
        return (
            self.cfg.plan == "auto"
            and self.cfg.auto_adds == "motion"
            and self.plan is not None
            and is_large(self.cfg, self.plan.width, self.plan.height, min(self.input_hw))
        )

    def describe(self) -> str:
        """The plan in words, for logs and the bench."""
        m = self.cfg.motion
        if self.cfg.plan == "motion":
            return (
                f"up to {m.max_regions} motion regions + the whole frame every {m.full_every_s:g} s"
            )
        static = self.plan.describe() if self.plan is not None else self.cfg.plan
        return f"{static} + up to {m.max_regions} motion regions" if self._uses_motion() else static

    def _zone_of(self, box: PixelBox) -> tuple[float, Zone | None]:
        if self._grid is None or self.plan is None:
            return 1.0, None
        return box_zone(box, self.zones, self._grid, self.plan.width, self.plan.height)

    def regions(self, bgr: np.ndarray, t: float) -> list[tuple[PixelBox, str, Zone | None]]:
        """The regions of this frame (``t``: seconds on the camera's clock, for the motion plan)."""
        height, width = bgr.shape[:2]
        if self.plan is None or (self.plan.width, self.plan.height) != (width, height):
            self._replan(width, height)
        out = [(box, kind, zone) for box, kind, _, zone in self._static]
        if self._uses_motion():
            out += self._motion(bgr, t, full_pass=self.cfg.plan == "motion")
        return out

    def _motion(
        self, bgr: np.ndarray, t: float, full_pass: bool
    ) -> list[tuple[PixelBox, str, Zone | None]]:
        m = self.cfg.motion
        height, width = bgr.shape[:2]
        gw = min(MOTION_GRID_WIDTH, width)
        gh = max(1, round(height * gw / width))
        small = cv2.resize(bgr, (gw, gh), interpolation=cv2.INTER_AREA)
        gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)
        gray = gray.astype(np.float32)
        # Against a running-average background, not the previous frame: a uniform
        # body then changes as a whole, not only at its leading and trailing edges.
        background = self._background
        found: list[PixelBox] = []
        if background is None or background.shape != gray.shape:
            self._background = gray
        else:
            changed = np.abs(gray - background) > m.pixel_threshold
            cv2.accumulateWeighted(gray, background, BACKGROUND_ALPHA)
            if self._grid is not None:
                visible = cv2.resize(
                    self._grid[0].astype(np.uint8), (gw, gh), interpolation=cv2.INTER_NEAREST
                )
                changed &= visible.astype(bool)
            found = motion_boxes(
                changed, width, height, min(self.input_hw), m.margin, m.max_regions
            )
        # Keep looking a while where something moved: a bear that stops is still a bear.
        held = [(b, seen) for b, seen in self._held if t - seen <= m.hold_s]
        held = [(b, seen) for b, seen in held if not any(intersection(b, f) for f in found)]
        self._held = [(b, t) for b in found] + held
        boxes = merge_boxes([b for b, _ in self._held], gap=min(self.input_hw) // 2)
        boxes = [fit_square(b, min(self.input_hw), width, height) for b in boxes][: m.max_regions]
        out: list[tuple[PixelBox, str, Zone | None]] = []
        due = (
            self._last_full is None or t - self._last_full >= m.full_every_s or t < self._last_full
        )
        if full_pass and due:
            self._last_full = t
            out.append(((0, 0, width, height), "full", self._zone_of((0, 0, width, height))[1]))
        for box in boxes:
            share, zone = self._zone_of(box)
            if share > 0:
                out.append((box, "motion", zone))
        return out

    def prepare(self, bgr: np.ndarray, t: float) -> FrameView | None:
        """This frame's regions as model inputs; None when the plan looks at nothing now."""
        regions = self.regions(bgr, t)
        if not regions:
            return None
        height, width = bgr.shape[:2]
        out_h, out_w = self.input_hw
        boxes = [r[0] for r in regions]
        centre = crop_box(width, height, out_w, out_h)
        inputs = regions_to_inputs(bgr, [*boxes, centre], self.input_hw, self._mask)
        return FrameView(
            inputs=inputs[:-1],
            centre=inputs[-1],
            boxes=tuple(to_norm(b, width, height) for b in boxes),
            kinds=tuple(r[1] for r in regions),
            zones=tuple(None if r[2] is None else r[2].name for r in regions),
            zone_thresholds=tuple(None if r[2] is None else r[2].threshold for r in regions),
        )
