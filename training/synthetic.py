"""Seeded synthetic campsite scenes (bear / person / empty) as images, datasets and walk-through clips.

Everything here is drawn with OpenCV primitives and NumPy, so sample videos and
tests can use it without the ``train`` extra. Frames are **BGR** ``uint8``
(OpenCV's order, ready for ``cv2.imwrite`` / ``cv2.VideoWriter``);
``render_scene_rgb`` gives RGB for model input.

A scene is built in three independent, seeded layers — backdrop (sky, ground,
trees, tents, rocks), subject (a bear or a person), and camera (lighting,
day or night/IR, blur, noise, JPEG) — each from its own child generator. The
same seed with a different label therefore gives the same backdrop and camera
with only the subject changed, which keeps the classes comparable and lets
tests isolate the subject's pixels.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

LABELS: tuple[str, ...] = ("bear", "empty", "person")

BGR = tuple[int, int, int]
Box = tuple[float, float, float, float]

# Palettes in BGR. Sky pairs are (zenith, horizon); ground pairs are (far, near).
_SKIES: tuple[tuple[BGR, BGR], ...] = (
    ((225, 170, 110), (240, 222, 200)),  # clear
    ((205, 190, 170), (232, 228, 222)),  # hazy
    ((172, 168, 162), (205, 200, 195)),  # overcast
    ((150, 110, 100), (140, 180, 235)),  # dusk
)
_GROUNDS: tuple[tuple[BGR, BGR], ...] = (
    ((80, 140, 100), (45, 115, 75)),  # meadow
    ((100, 155, 170), (80, 135, 150)),  # dry grass
    ((80, 105, 125), (60, 85, 105)),  # dirt clearing
    ((60, 95, 80), (40, 75, 60)),  # forest floor
)
_GREENS: tuple[BGR, ...] = ((35, 90, 40), (30, 70, 30), (50, 110, 60), (40, 100, 80), (45, 80, 55))
_BARK: tuple[BGR, ...] = ((30, 50, 75), (40, 60, 90), (25, 40, 60), (50, 65, 80))
_TENTS: tuple[BGR, ...] = (
    (20, 120, 240),
    (40, 200, 240),
    (170, 90, 30),
    (40, 40, 190),
    (60, 130, 50),
    (140, 140, 130),
)
_ROCKS: tuple[BGR, ...] = ((110, 115, 120), (90, 95, 100), (140, 140, 140))
_FUR: tuple[BGR, ...] = ((25, 24, 28), (28, 45, 70), (35, 62, 105), (50, 90, 150), (60, 100, 140))
_TAN: BGR = (90, 130, 175)
_JACKETS: tuple[BGR, ...] = (
    (170, 80, 30),
    (210, 150, 60),
    (40, 40, 200),
    (20, 120, 240),
    (50, 140, 40),
    (30, 200, 230),
    (130, 50, 110),
    (160, 110, 230),
    (120, 120, 120),
    (35, 35, 35),
)
_TROUSERS: tuple[BGR, ...] = (
    (110, 70, 40),
    (30, 30, 30),
    (110, 150, 170),
    (100, 100, 100),
    (40, 70, 40),
)
_SKIN: tuple[BGR, ...] = ((160, 190, 230), (120, 160, 210), (80, 120, 170), (50, 80, 120))
_SHOE: BGR = (25, 25, 30)
_DARK: BGR = (12, 12, 15)
# Near-infrared gray: weights favour green, and vegetation gets a further boost (see _ir_gray).
_IR_WEIGHTS = np.array([0.15, 0.55, 0.30], dtype=np.float32)
_LUMA = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # BT.601, BGR order
# Gray levels a subject keeps from what it hides (before exposure), so that the
# classes survive grayscale and IR: a cinnamon bear on dirt, or a brown bear on
# grass in an RGB-derived gray, would otherwise all but vanish.
_DAY_MIN_GAP = 35.0
_IR_MIN_GAP = 70.0
# Bear legs as (near side, x along the body, gait phase offset): diagonal pairs swing together.
_BEAR_LEGS = ((False, 0.25, math.pi), (False, -0.3, 0.0), (True, 0.31, 0.0), (True, -0.24, math.pi))
_SHIFT = 4  # sub-pixel drawing (coordinates x16) so walking subjects move smoothly
_ONE = 1 << _SHIFT


def _pick(rng: np.random.Generator, options: Sequence[BGR]) -> BGR:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, colour: BGR, amount: int = 12) -> BGR:
    b, g, r = (
        int(c) for c in np.clip(np.array(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    )
    return (b, g, r)


def _shade(colour: BGR, factor: float) -> BGR:
    b, g, r = (min(255, int(c * factor)) for c in colour)
    return (b, g, r)


def _blend(a: BGR, b: BGR, t: float) -> BGR:
    x, y, z = (int(p * (1 - t) + q * t) for p, q in zip(a, b, strict=True))
    return (x, y, z)


class _Pen:
    """Draws anti-aliased shapes in a local frame: origin, a unit in pixels, and a horizontal mirror.

    Figures are written once in their own units (a bear's body length, a
    person's height, facing right) and the pen places, scales and mirrors them.
    """

    def __init__(
        self, img: np.ndarray, x: float, y: float, unit: float = 1.0, mirror: int = 1
    ) -> None:
        self.img, self.x, self.y, self.unit, self.mirror = img, x, y, unit, mirror

    def _p(self, dx: float, dy: float) -> tuple[int, int]:
        px = self.x + dx * self.unit * self.mirror
        return (round(px * _ONE), round((self.y + dy * self.unit) * _ONE))

    def ellipse(
        self,
        dx: float,
        dy: float,
        ax: float,
        ay: float,
        colour: BGR,
        angle: float = 0.0,
        arc: tuple[int, int] = (0, 360),
    ) -> None:
        axes = (max(1, round(ax * self.unit * _ONE)), max(1, round(ay * self.unit * _ONE)))
        start, end = arc if self.mirror > 0 else (180 - arc[1], 180 - arc[0])
        cv2.ellipse(
            self.img,
            self._p(dx, dy),
            axes,
            angle * self.mirror,
            start,
            end,
            colour,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )

    def limb(
        self, dx0: float, dy0: float, dx1: float, dy1: float, width: float, colour: BGR
    ) -> None:
        # thickness is whole pixels only; thick lines get round caps, which read as joints and paws
        thick = max(1, round(width * self.unit))
        cv2.line(self.img, self._p(dx0, dy0), self._p(dx1, dy1), colour, thick, cv2.LINE_AA, _SHIFT)

    def poly(self, pts: Sequence[tuple[float, float]], colour: BGR) -> None:
        arr = np.array([self._p(dx, dy) for dx, dy in pts], dtype=np.int32)
        cv2.fillPoly(self.img, [arr], colour, cv2.LINE_AA, _SHIFT)

    def rect(self, dx0: float, dy0: float, dx1: float, dy1: float, colour: BGR) -> None:
        self.poly([(dx0, dy0), (dx1, dy0), (dx1, dy1), (dx0, dy1)], colour)


# --------------------------------------------------------------------------- backdrop


@dataclass(frozen=True, slots=True)
class Backdrop:
    """A static campsite: the drawn scene plus an optional near tree that stands in front of subjects."""

    image: np.ndarray  # BGR uint8, H x W x 3
    horizon_y: int
    front: np.ndarray | None = None  # BGR uint8 layer drawn over subjects
    front_mask: np.ndarray | None = None  # uint8 0/255, where ``front`` applies

    def compose(self, canvas: np.ndarray) -> np.ndarray:
        """Paint the near layer over ``canvas`` (in place) and return it."""
        if self.front is not None and self.front_mask is not None:
            np.copyto(canvas, self.front, where=self.front_mask[..., None] > 0)
        return canvas


def _sky_and_ground(rng: np.random.Generator, w: int, h: int, horizon: int) -> np.ndarray:
    zenith, haze = _SKIES[int(rng.integers(len(_SKIES)))]
    far, near = _GROUNDS[int(rng.integers(len(_GROUNDS)))]
    img = np.empty((h, w, 3), dtype=np.float32)
    t = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = np.array(zenith, np.float32) * (1 - t) + np.array(haze, np.float32) * t
    t = np.linspace(0.0, 1.0, h - horizon, dtype=np.float32)[:, None, None]
    img[horizon:] = (
        np.array(_jitter(rng, far), np.float32) * (1 - t)
        + np.array(_jitter(rng, near), np.float32) * t
    )
    # low-frequency mottling so the ground is not a flat colour (grass patches, shade)
    coarse = rng.standard_normal((max(2, (h - horizon) // 6), max(2, w // 6)), dtype=np.float32)
    mottle = cv2.resize(coarse, (w, h - horizon), interpolation=cv2.INTER_LINEAR)
    img[horizon:] += mottle[..., None] * rng.uniform(4, 10)
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    # distant treeline: a jagged band along the horizon
    xs = np.linspace(-0.05 * w, 1.05 * w, 24)
    ridge = [(float(x), float(horizon - rng.uniform(0.02, 0.12) * h)) for x in xs]
    ends = [(1.05 * w, horizon + 2.0), (-0.05 * w, horizon + 2.0)]
    _Pen(canvas, 0, 0).poly([*ridge, *ends], _jitter(rng, (60, 90, 60), 15))
    return canvas


def _draw_tree(
    img: np.ndarray, rng: np.random.Generator, x: float, base_y: float, height: float
) -> None:
    pen = _Pen(img, x, base_y, height)
    trunk = max(0.035, 0.75 / height)  # half width, at least ~1.5 px
    bark = _jitter(rng, _pick(rng, _BARK), 8)
    green = _jitter(rng, _pick(rng, _GREENS), 10)
    if rng.random() < 0.65:  # conifer: stacked triangles
        pen.rect(-trunk, 0, trunk, -0.3, bark)
        for k in range(3):
            half, bottom = 0.3 - 0.07 * k, -0.15 - 0.22 * k
            pen.poly(
                [(-half, bottom), (half, bottom), (0, bottom - 0.6)], _shade(green, 1.0 + 0.08 * k)
            )
    else:  # broadleaf: trunk and a few overlapping crowns
        pen.limb(0, 0, 0, -0.6, 2 * trunk, bark)
        for _ in range(3):
            crown = _shade(green, rng.uniform(0.85, 1.15))
            pen.ellipse(rng.uniform(-0.15, 0.15), -rng.uniform(0.6, 0.8), 0.22, 0.2, crown)


def _draw_tent(
    img: np.ndarray, rng: np.random.Generator, x: float, base_y: float, width: float
) -> None:
    colour = _jitter(rng, _pick(rng, _TENTS), 10)
    pen = _Pen(img, x, base_y, width, 1 if rng.random() < 0.5 else -1)
    top, depth = -rng.uniform(0.55, 0.8), rng.uniform(0.2, 0.45)
    # side panel first (darker, receding), then the front face and its door
    pen.poly(
        [(0.5, 0), (0, top), (depth, top * 0.92), (0.5 + depth, top * 0.04)], _shade(colour, 0.7)
    )
    pen.poly([(-0.5, 0), (0.5, 0), (0, top)], colour)
    pen.poly([(-0.14, 0), (0.14, 0), (0, top * 0.6)], _shade(colour, 0.45))


def _draw_props(canvas: np.ndarray, rng: np.random.Generator, horizon: int) -> None:
    """Trees, tents and rocks in the middle ground, far to near so nearer ones overlap."""
    h, w = canvas.shape[:2]
    items = [(rng.uniform(0.0, 0.45), "tree") for _ in range(int(rng.integers(2, 7)))]
    items += [(rng.uniform(0.05, 0.4), "tent") for _ in range(int(rng.integers(0, 3)))]
    items += [(rng.uniform(0.1, 0.8), "rock") for _ in range(int(rng.integers(0, 4)))]
    for depth, kind in sorted(items):
        base_y = horizon + depth * (h - horizon)
        scale = h * (0.25 + 1.2 * depth)  # nearer is bigger
        x = rng.uniform(0.0, 1.0) * w
        if kind == "tree":
            _draw_tree(canvas, rng, x, base_y, scale * rng.uniform(0.35, 0.6))
        elif kind == "tent":
            _draw_tent(canvas, rng, x, base_y, scale * rng.uniform(0.25, 0.4))
        else:
            r = scale * rng.uniform(0.025, 0.06)
            rock = _jitter(rng, _pick(rng, _ROCKS), 10)
            _Pen(canvas, x, base_y).ellipse(0, -0.3 * r, r * rng.uniform(1.2, 1.8), r, rock)


def make_backdrop(
    rng: np.random.Generator, size: tuple[int, int], *, near_tree: bool = False
) -> Backdrop:
    """Draw a campsite: sky gradient, horizon treeline, textured ground, trees, tents and rocks.

    Args:
        rng: the generator everything is drawn from.
        size: (width, height) in pixels.
        near_tree: add a tree trunk close to the camera that later subjects walk behind.

    Returns:
        The backdrop; its image is BGR ``uint8``.
    """
    w, h = size
    horizon = int(h * rng.uniform(0.28, 0.45))
    canvas = _sky_and_ground(rng, w, h, horizon)
    _draw_props(canvas, rng, horizon)
    if not near_tree:
        return Backdrop(canvas, horizon)
    front = np.zeros_like(canvas)
    mask = np.zeros((h, w), dtype=np.uint8)
    x = w * (rng.uniform(0.12, 0.3) if rng.random() < 0.5 else rng.uniform(0.7, 0.88))
    half = w * rng.uniform(0.018, 0.03)
    bark = _jitter(rng, _pick(rng, _BARK), 8)
    for layer, colour in ((front, bark), (mask, (255, 255, 255))):
        _Pen(layer, x, 0, half).poly(
            [(-1, -0.1), (1, -0.1), (1.2, 0.98 * h / half), (-1.2, 0.98 * h / half)], colour
        )
    _Pen(front, x, 0, half).limb(-0.5, 0, -0.6, h / half, 0.3, _shade(bark, 0.7))  # a bark furrow
    return Backdrop(canvas, horizon, front, mask)


# --------------------------------------------------------------------------- subjects


@dataclass(frozen=True, slots=True)
class Bear:
    """A quadruped bear in side view: bulky body, shoulder hump, rump, four legs, head with snout and ears."""

    x: float  # body centre, px
    foot_y: float  # ground line, px
    length: float  # body length, px (the silhouette is about 1.3x this wide, 0.73x tall)
    facing: int  # +1 faces right, -1 faces left
    phase: float  # gait phase, radians
    head_drop: float  # fraction of length the head hangs below the back (grazing > 0)
    fur: BGR
    muzzle: BGR

    def bbox(self) -> Box:
        """(x0, y0, x1, y1) around the silhouette."""
        back, front = 0.55 * self.length, 0.78 * self.length
        lo, hi = (
            (self.x - back, self.x + front) if self.facing > 0 else (self.x - front, self.x + back)
        )
        return (lo, self.foot_y - (0.73 + max(0.0, -self.head_drop)) * self.length, hi, self.foot_y)

    def draw(self, img: np.ndarray) -> None:
        """Paint the bear onto a BGR ``uint8`` image in place."""
        pen = _Pen(img, self.x, self.foot_y, self.length, self.facing)
        fur, drop = self.fur, self.head_drop
        cy = -0.46 + 0.015 * math.sin(2 * self.phase)  # body centre, bobbing with the gait
        for near, lx, offset in _BEAR_LEGS:  # far legs first: the body and near legs overlap them
            colour = fur if near else _shade(fur, 0.72)
            paw = lx + 0.1 * math.sin(self.phase + offset)
            pen.limb(lx, cy + 0.04, paw, -0.04, 0.13, colour)
            pen.ellipse(paw + 0.03, -0.035, 0.075, 0.04, colour)
        pen.ellipse(0, cy, 0.48, 0.2, fur, 4.0 * drop)  # barrel
        pen.ellipse(-0.28, cy - 0.01, 0.21, 0.2, fur)  # rump
        pen.ellipse(0.2, cy - 0.09, 0.19, 0.15, fur)  # shoulder hump
        hx, hy = 0.55, cy - 0.05 + drop
        pen.ellipse(0.42, (cy + hy) / 2, 0.15, 0.13, fur, 25.0 * drop)  # neck
        pen.ellipse(hx - 0.06, hy - 0.1, 0.045, 0.045, fur)  # ears
        pen.ellipse(hx + 0.03, hy - 0.11, 0.04, 0.04, fur)
        pen.ellipse(hx, hy, 0.13, 0.11, fur)  # head
        pen.ellipse(hx + 0.13, hy + 0.03, 0.095, 0.055, self.muzzle)
        pen.ellipse(hx + 0.21, hy + 0.02, 0.025, 0.022, _DARK)  # nose
        pen.ellipse(hx + 0.04, hy - 0.025, 0.014, 0.014, _DARK)  # eye


@dataclass(frozen=True, slots=True)
class Person:
    """An upright walker: head, jacketed torso, arms, trousered legs; side or front view."""

    x: float  # body centre, px
    foot_y: float  # ground line, px
    height: float  # standing height, px
    facing: int  # +1 / -1 walking right / left in side view, 0 facing the camera
    phase: float  # gait phase, radians
    jacket: BGR
    trousers: BGR
    skin: BGR
    hat: BGR | None
    backpack: BGR | None

    def bbox(self) -> Box:
        """(x0, y0, x1, y1) around the silhouette."""
        half = (0.24 if self.facing else 0.17) * self.height
        return (self.x - half, self.foot_y - self.height, self.x + half, self.foot_y)

    def draw(self, img: np.ndarray) -> None:
        """Paint the person onto a BGR ``uint8`` image in place (units: height; y up is negative)."""
        pen = _Pen(img, self.x, self.foot_y, self.height, self.facing or 1)
        if self.facing:
            stride, swing = 0.16 * math.sin(self.phase), 0.12 * math.sin(self.phase)
            # far-side limbs, darker, behind the torso (and the backpack behind the back)
            self._leg(pen, -stride, _shade(self.trousers, 0.75))
            pen.limb(0, -0.78, swing, -0.46, 0.06, _shade(self.jacket, 0.75))
            if self.backpack is not None:
                pen.ellipse(-0.09, -0.67, 0.065, 0.13, self.backpack)
            shoulder = hip = 0.075
        else:
            shoulder, hip = 0.115, 0.085
            sway = 0.03 * math.sin(self.phase)
            for s in (-1, 1):
                pen.limb(s * 0.045, -0.49, s * (0.07 + sway), -0.03, 0.085, self.trousers)
                pen.ellipse(s * (0.07 + sway), -0.02, 0.045, 0.022, _SHOE)
                pen.limb(
                    s * (shoulder - 0.02), -0.78, s * (shoulder + 0.03), -0.46, 0.06, self.jacket
                )
                pen.ellipse(s * (shoulder + 0.03), -0.44, 0.025, 0.028, self.skin)
        head_y = -1.0 + 0.068
        pen.rect(-0.03, head_y, 0.03, -0.79, self.skin)  # neck
        pen.poly([(-shoulder, -0.81), (shoulder, -0.81), (hip, -0.45), (-hip, -0.45)], self.jacket)
        pen.ellipse(0, -0.8, shoulder, 0.03, self.jacket)  # rounded shoulders
        pen.ellipse(0, head_y, 0.063, 0.068, self.skin)
        if self.hat is not None:
            pen.ellipse(0, head_y - 0.014, 0.068, 0.065, self.hat, arc=(180, 360))
        if self.facing:
            self._leg(pen, stride, self.trousers)
            pen.limb(0, -0.78, -swing, -0.46, 0.06, self.jacket)
            pen.ellipse(-swing, -0.44, 0.025, 0.028, self.skin)

    @staticmethod
    def _leg(pen: _Pen, foot: float, colour: BGR) -> None:
        pen.limb(0, -0.49, foot, -0.03, 0.085, colour)
        pen.ellipse(foot + 0.02, -0.02, 0.05, 0.022, _SHOE)


Subject = Bear | Person


def sample_subject(
    label: str,
    rng: np.random.Generator,
    size: tuple[int, int],
    horizon_y: int,
    *,
    edge_cut: bool = False,
    side_view: bool | None = None,
) -> Subject:
    """Place a bear or a person on the ground at a random distance, position and pose.

    Distance sets both the ground line and the size (perspective), within a
    range that keeps the subject big enough to classify at 160 px.

    Args:
        label: ``bear`` or ``person``.
        rng: the generator the subject is drawn from.
        size: frame (width, height).
        horizon_y: the backdrop's horizon row.
        edge_cut: place it so 20–35 % of its width is outside the frame.
        side_view: for a person, force side (True) or front (False) view; None picks at random.

    Returns:
        A ``Bear`` or a ``Person``.

    Raises:
        ValueError: for any other label.
    """
    w, h = size
    depth = rng.uniform(0.0, 1.0)  # 0 = near the camera
    foot_y = h * (1 - rng.uniform(0.02, 0.06)) - depth * 0.5 * (h - horizon_y)
    facing = 1 if rng.random() < 0.5 else -1
    phase = rng.uniform(0.0, 2 * math.pi)
    scale = min(w, h) * rng.uniform(0.9, 1.1)
    subject: Subject
    if label == "bear":
        fur = _jitter(rng, _pick(rng, _FUR), 10)
        muzzle = _blend(fur, _TAN, rng.uniform(0.25, 0.55))
        length = scale * (0.6 - 0.36 * depth)
        subject = Bear(0.0, foot_y, length, facing, phase, rng.uniform(-0.06, 0.14), fur, muzzle)
    elif label == "person":
        side = rng.random() < 0.7 if side_view is None else side_view
        subject = Person(
            x=0.0,
            foot_y=foot_y,
            height=scale * (0.8 - 0.42 * depth),
            facing=facing if side else 0,
            phase=phase,
            jacket=_jitter(rng, _pick(rng, _JACKETS)),
            trousers=_jitter(rng, _pick(rng, _TROUSERS), 8),
            skin=_jitter(rng, _pick(rng, _SKIN), 8),
            hat=_jitter(rng, _pick(rng, _JACKETS)) if rng.random() < 0.35 else None,
            backpack=_jitter(rng, _pick(rng, _TENTS)) if rng.random() < 0.4 else None,
        )
    else:
        raise ValueError(f"subject label must be 'bear' or 'person', got {label!r}")
    x0, _, x1, _ = subject.bbox()
    width = x1 - x0
    if edge_cut:
        out = width * rng.uniform(0.2, 0.35)
        left = -out if rng.random() < 0.5 else w + out - width
    else:
        left = rng.uniform(0.0, max(0.0, w - width)) if width < w else (w - width) / 2
    return replace(subject, x=subject.x + left - x0)


def _draw_occluder(img: np.ndarray, rng: np.random.Generator, box: Box) -> None:
    """Hide part of ``box`` behind a trunk, a bush or a rock — at most about a third of it."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    pen = _Pen(img, 0, 0)
    kind = int(rng.integers(3))
    if kind == 0:
        # off-centre, so the trunk hides a flank or the head, never the middle of the body
        tw = bw * rng.uniform(0.1, 0.2)
        tx = (
            x0
            + bw * (rng.uniform(0.1, 0.3) if rng.random() < 0.5 else rng.uniform(0.7, 0.9))
            - tw / 2
        )
        bottom = y1 + 0.06 * bh
        pen.poly(
            [(tx, -1.0), (tx + tw, -1.0), (tx + 1.1 * tw, bottom), (tx - 0.1 * tw, bottom)],
            _jitter(rng, _pick(rng, _BARK), 8),
        )
    elif kind == 1:
        green = _jitter(rng, _pick(rng, _GREENS), 10)
        cover, cx = bh * rng.uniform(0.15, 0.32), rng.uniform(x0, x1)
        for _ in range(4):
            leaf = _shade(green, rng.uniform(0.8, 1.2))
            pen.ellipse(
                cx + rng.uniform(-0.3, 0.3) * bw,
                y1 + 0.1 * bh,
                rng.uniform(0.15, 0.3) * bw,
                cover,
                leaf,
            )
    else:
        rx = bw * rng.uniform(0.15, 0.28)
        cx = x0 if rng.random() < 0.5 else x1
        pen.ellipse(cx, y1, rx, min(bh * 0.5, rx * 1.2), _jitter(rng, _pick(rng, _ROCKS), 10))


# --------------------------------------------------------------------------- camera


def _ir_gray(bgr: np.ndarray) -> np.ndarray:
    """Near-infrared-like gray from a BGR float image."""
    lum = bgr @ _IR_WEIGHTS
    # chlorophyll reflects NIR strongly: vegetation glows pale in IR footage
    lum += 0.8 * np.maximum(bgr[..., 1] - np.maximum(bgr[..., 0], bgr[..., 2]), 0.0)
    return lum


def _separation(subject_mean: float, behind: float, min_gap: float) -> float:
    """How far to move a subject's mean gray so it sits ``min_gap`` from what it hides (0: far enough)."""
    gap = subject_mean - behind
    if abs(gap) >= min_gap:
        return 0.0
    target = behind + math.copysign(min_gap, gap)
    if target < 20.0:  # no room below: a dark subject on dark ground shows up bright instead
        target = behind + min_gap
    return target - subject_mean


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    centre = ((length - 1) / 2, (length - 1) / 2)
    k = cv2.warpAffine(line, cv2.getRotationMatrix2D(centre, angle, 1.0), (length, length))
    return k / max(float(k.sum()), 1e-6)


@dataclass(frozen=True, slots=True)
class Camera:
    """How a drawn scene becomes a camera frame: exposure, day colour or night IR gray, blur, noise, JPEG."""

    night: bool
    gain: float
    contrast: float
    tint: tuple[float, float, float]  # per-channel BGR multipliers (white balance)
    blur_sigma: float  # 0 = no Gaussian blur
    motion_px: int  # 0 = no motion blur
    motion_angle: float  # degrees
    noise_sigma: float
    jpeg_quality: int  # 0 = no JPEG round trip
    glow: tuple[
        float, float, float
    ]  # IR illuminator hotspot: x, y, radius (fractions of the frame)

    def develop(
        self,
        scene: np.ndarray,
        horizon_y: int,
        subject: np.ndarray | None = None,
        plate: np.ndarray | None = None,
    ) -> np.ndarray:
        """The deterministic part of imaging: returns float32, HxWx3 by day or HxW (gray) by night.

        Splitting this from ``expose`` is what makes a walk-through's background
        identical frame to frame apart from the sensor noise added per frame.

        Args:
            scene: the drawn BGR ``uint8`` scene.
            horizon_y: the horizon row (the night sky is left unlit).
            subject: optional bool mask of the visible subject pixels, with
            plate: the scene without the subject. The subject is then kept at
                least ``_DAY_MIN_GAP`` (day, luma) or ``_IR_MIN_GAP`` (night)
                gray levels from what it hides; at night this stands in for fur
                and fabric reflecting NIR differently from the ground.
        """
        f: np.ndarray = scene.astype(np.float32)
        hidden = None  # (subject mask, the plate pixels it covers)
        if subject is not None and plate is not None and subject.any():
            hidden = (subject, plate[subject].astype(np.float32))
        if self.night:
            lum = _ir_gray(f)
            if hidden is not None:
                mask, behind_px = hidden
                behind = float(_ir_gray(behind_px).mean())
                lum[mask] += _separation(float(lum[mask].mean()), behind, _IR_MIN_GAP)
            lum[:horizon_y] *= 0.35  # the IR illuminator does not reach the sky
            h, w = lum.shape
            yy, xx = np.ogrid[:h, :w]
            gx, gy, gr = self.glow
            r2 = ((xx - gx * w) ** 2 + (yy - gy * h) ** 2) / (gr * w) ** 2
            lum = lum * self.gain * (0.55 + 0.7 * np.exp(-r2 / 2)).astype(np.float32) + 8.0
            # a fixed pivot, not the frame mean: a subject walking in must not shift the background
            f = (lum - 40.0) * self.contrast + 40.0
        else:
            if hidden is not None:
                # scale the subject's colours (keeping hue) so it also stands out in gray
                mask, behind_px = hidden
                mean = float(f[mask].mean(axis=0) @ _LUMA)
                behind = float(behind_px.mean(axis=0) @ _LUMA)
                gain = 1.0 + _separation(mean, behind, _DAY_MIN_GAP) / max(mean, 1.0)
                f[mask] *= min(max(gain, 0.4), 1.6)  # bounded: a subject keeps its colours
            f = ((f - 128.0) * self.contrast + 128.0) * (
                self.gain * np.array(self.tint, np.float32)
            )
        if self.blur_sigma > 0:
            f = cv2.GaussianBlur(f, (0, 0), self.blur_sigma)
        if self.motion_px > 1:
            f = cv2.filter2D(f, -1, _motion_kernel(self.motion_px, self.motion_angle))
        return f

    def expose(self, developed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add sensor noise (and the JPEG round trip) to a developed image; returns BGR ``uint8``."""
        noise = rng.standard_normal(developed.shape, dtype=np.float32) * self.noise_sigma
        out = np.clip(developed + noise, 0, 255).astype(np.uint8)
        if self.jpeg_quality:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        # night frames are gray in all three channels, as IR cameras deliver them
        return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR) if out.ndim == 2 else out


def sample_camera(
    rng: np.random.Generator, night: bool, *, degrade: bool = True, video: bool = False
) -> Camera:
    """Draw imaging conditions for one image or one clip.

    Args:
        rng: the generator the conditions are drawn from.
        night: IR night mode (dark, low-contrast gray with an illuminator hotspot).
        degrade: allow Gaussian/motion blur and a JPEG round trip.
        video: a static clip: mild, fixed blur only and low noise, no JPEG (the
            video codec compresses anyway).

    Returns:
        The camera.
    """
    gain = rng.uniform(0.45, 0.75) if night else rng.uniform(0.75, 1.2)
    contrast = rng.uniform(0.7, 0.95) if night else rng.uniform(0.8, 1.15)
    b, g, r, gx, gy, gr = rng.uniform(
        (0.9, 0.95, 0.9, 0.35, 0.45, 0.35), (1.1, 1.05, 1.1, 0.65, 0.75, 0.7)
    )
    blur_roll, motion_roll, jpeg_roll = rng.random(3)
    blur, motion, quality = 0.0, 0, 0
    if video:
        blur = rng.uniform(0.3, 0.8)
        noise = rng.uniform(2.5, 4.0) if night else rng.uniform(1.0, 2.0)
    else:
        noise = rng.uniform(3.0, 9.0) if night else rng.uniform(1.0, 5.0)
        if degrade:
            blur = rng.uniform(0.6, 1.6) if blur_roll < 0.3 else 0.0
            motion = int(rng.integers(3, 8)) if motion_roll < 0.15 else 0
            quality = int(rng.integers(25, 70)) if jpeg_roll < 0.3 else 0
    return Camera(
        night=night,
        gain=float(gain),
        contrast=float(contrast),
        tint=(float(b), float(g), float(r)),
        blur_sigma=float(blur),
        motion_px=motion,
        motion_angle=float(rng.uniform(0, 180)),
        noise_sigma=float(noise),
        jpeg_quality=quality,
        glow=(float(gx), float(gy), float(gr)),
    )


# --------------------------------------------------------------------------- images


def _paint(canvas: np.ndarray, subject: Subject) -> np.ndarray:
    """Draw ``subject`` on ``canvas`` in place; return the bool mask of the pixels it changed."""
    before = canvas.copy()
    subject.draw(canvas)
    return (canvas != before).any(axis=2)


def _check_label(label: str) -> None:
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")


def render_scene(
    label: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 160),
    night: bool = False,
    *,
    occlusion: float = 0.3,
    degrade: bool = True,
) -> np.ndarray:
    """Render one campsite camera frame containing a bear, a person, or nothing.

    The backdrop, the subject and the camera each come from their own child of
    ``rng``, so the same seed with another label differs only in the subject.

    Args:
        label: ``bear``, ``person`` or ``empty``.
        rng: the generator; the image is a pure function of its state.
        size: (width, height) in pixels.
        night: IR night mode (gray, dark, noisy).
        occlusion: probability of partial occlusion (a trunk, bush or rock in
            front, or the frame edge). Empty scenes get the same foreground
            objects at the same rate, so occluders are no clue to the class.
        degrade: allow blur and JPEG artefacts.

    Returns:
        BGR ``uint8`` image, ``(height, width, 3)``.

    Raises:
        ValueError: for an unknown label.
    """
    _check_label(label)
    scene_rng, subject_rng, camera_rng = rng.spawn(3)
    backdrop = make_backdrop(scene_rng, size)
    canvas = backdrop.image.copy()
    # an occluder in front or the frame edge, never both: enough of the subject must stay visible
    roll = subject_rng.random()
    cut, occlude = roll < occlusion / 3, occlusion / 3 <= roll < occlusion
    # an empty scene still places a (hidden) subject, so its occluder lands somewhere plausible
    kind = "person" if label == "empty" else label
    subject = sample_subject(kind, subject_rng, size, backdrop.horizon_y, edge_cut=cut)
    mask = _paint(canvas, subject) if label != "empty" else None
    if occlude:
        before = canvas.copy()
        _draw_occluder(canvas, subject_rng, subject.bbox())
        if mask is not None:
            mask &= (canvas == before).all(axis=2)
    camera = sample_camera(camera_rng, night, degrade=degrade)
    developed = camera.develop(canvas, backdrop.horizon_y, mask, backdrop.image)
    return camera.expose(developed, camera_rng)


def render_scene_rgb(
    label: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (160, 160),
    night: bool = False,
    *,
    occlusion: float = 0.3,
    degrade: bool = True,
) -> np.ndarray:
    """``render_scene`` in RGB order (the model's input order); same arguments, same pixels."""
    bgr = render_scene(label, rng, size, night, occlusion=occlusion, degrade=degrade)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True, slots=True)
class Clip:
    """A static-camera sequence: fixed backdrop, subjects walking across, fresh sensor noise per frame."""

    label: str
    frames: tuple[np.ndarray, ...]  # BGR uint8
    present: tuple[bool, ...]  # per frame: some subject overlaps the frame
    background: np.ndarray  # BGR uint8: the empty scene through the same camera, noise-free


def _plan_walk(
    label: str, rng: np.random.Generator, size: tuple[int, int], horizon_y: int, count: int
) -> list[tuple[Subject, float, float]]:
    """Walkers with start and end centre x: from fully off one edge to fully off the other."""
    w = size[0]
    direction = 1 if rng.random() < 0.5 else -1
    plan: list[tuple[Subject, float, float]] = []
    for k in range(count):
        s = replace(sample_subject(label, rng, size, horizon_y, side_view=True), facing=direction)
        x0, _, x1, _ = s.bbox()
        left_out, right_out = -(x1 - s.x) - 2, w + (s.x - x0) + 2
        gap = 0.6 * (x1 - x0)  # later walkers start further back and finish further on
        if direction > 0:
            plan.append((s, left_out - k * gap, right_out + (count - 1 - k) * gap))
        else:
            plan.append((s, right_out + k * gap, left_out - (count - 1 - k) * gap))
    return plan


def walk_through(
    label: str,
    rng: np.random.Generator,
    n_frames: int = 80,
    size: tuple[int, int] = (320, 240),
    night: bool = False,
    *,
    lead_in: int = 15,
    lead_out: int = 15,
    count: int = 1,
) -> Clip:
    """Frames from a fixed camera while a bear or people cross the scene from one side to the other.

    Subjects are outside the frame for the first ``lead_in`` and last
    ``lead_out`` frames; in between they walk across at constant speed, with
    the gait phase tied to the distance walked. The same seed at night gives
    the same backdrop and walkers as by day. Half the backdrops have a near
    tree the walkers pass behind.

    Args:
        label: ``bear``, ``person`` or ``empty`` (no one walks through).
        rng: the generator; the clip is a pure function of its state.
        n_frames: total frames.
        size: (width, height).
        night: IR night mode.
        lead_in: empty frames before the first subject can appear.
        lead_out: empty frames after the last subject has left.
        count: subjects walking through together (staggered, same direction).

    Returns:
        The clip.

    Raises:
        ValueError: for an unknown label or a crossing shorter than 2 frames.
    """
    _check_label(label)
    crossing = n_frames - lead_in - lead_out
    if crossing < 2:
        raise ValueError(
            f"n_frames={n_frames} leaves {crossing} frames to cross after lead_in/lead_out"
        )
    scene_rng, subject_rng, camera_rng, noise_rng = rng.spawn(4)
    backdrop = make_backdrop(scene_rng, size, near_tree=bool(scene_rng.random() < 0.5))
    camera = sample_camera(camera_rng, night, video=True)
    background = camera.develop(backdrop.compose(backdrop.image.copy()), backdrop.horizon_y)
    plan = (
        _plan_walk(label, subject_rng, size, backdrop.horizon_y, count) if label != "empty" else []
    )
    frames: list[np.ndarray] = []
    present: list[bool] = []
    for i in range(n_frames):
        t = min(max((i - lead_in) / (crossing - 1), 0.0), 1.0)
        canvas = backdrop.image.copy()
        mask = np.zeros(canvas.shape[:2], dtype=bool)
        for s, start, end in plan:
            x = start + (end - start) * t
            stride = 0.5 * (s.length if isinstance(s, Bear) else s.height)
            walker = replace(s, x=x, phase=s.phase + abs(x - start) / stride * math.pi)
            x0, _, x1, _ = walker.bbox()
            if x1 > 0 and x0 < size[0]:
                mask |= _paint(canvas, walker)
        present.append(bool(mask.any()))
        if not present[-1]:
            frames.append(camera.expose(background, noise_rng))
            continue
        if backdrop.front_mask is not None:
            mask &= backdrop.front_mask == 0
        developed = camera.develop(
            backdrop.compose(canvas), backdrop.horizon_y, mask, backdrop.image
        )
        frames.append(camera.expose(developed, noise_rng))
    clean = np.clip(background, 0, 255).astype(np.uint8)
    clean = cv2.cvtColor(clean, cv2.COLOR_GRAY2BGR) if clean.ndim == 2 else clean
    return Clip(label, tuple(frames), tuple(present), clean)


# --------------------------------------------------------------------------- dataset


def write_dataset(
    out_dir: str | Path,
    per_class: int,
    seed: int,
    size: tuple[int, int] = (160, 160),
    night_fraction: float = 0.3,
    *,
    labels: Sequence[str] = LABELS,
    jpeg_quality: int = 92,
) -> dict[str, int]:
    """Write ``out_dir/<label>/<label>_<i>.jpg`` for each label, like the fastai book's bear folders.

    Image ``i`` of a label comes from its own generator seeded by
    ``(seed, label index, i)``, so any single image can be regenerated. Exactly
    ``round(per_class * night_fraction)`` images per label are night shots (a
    seeded choice). A ``manifest.csv`` (path, label, night) is written beside
    the folders for day/night breakdowns. Existing files with the same names are
    overwritten; nothing else in ``out_dir`` is touched.

    Args:
        out_dir: destination folder (created if missing).
        per_class: images per label.
        seed: master seed.
        size: (width, height) in pixels.
        night_fraction: share of night/IR images, 0..1.
        labels: which labels to write (a subset of ``LABELS``).
        jpeg_quality: JPEG quality of the written files.

    Returns:
        Images written per label.

    Raises:
        ValueError: for a bad label, count or fraction.
    """
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    if not 0.0 <= night_fraction <= 1.0:
        raise ValueError(f"night_fraction must be within 0..1, got {night_fraction}")
    for label in labels:
        _check_label(label)
    root = Path(out_dir)
    counts: dict[str, int] = {}
    rows: list[tuple[str, str, int]] = []
    n_night = round(per_class * night_fraction)
    for label in labels:
        index = LABELS.index(label)
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        night_set = set(
            np.random.default_rng([seed, index, 1 << 30]).permutation(per_class)[:n_night].tolist()
        )
        for i in range(per_class):
            night = i in night_set
            image = render_scene(label, np.random.default_rng([seed, index, i]), size, night)
            name = f"{label}_{i}.jpg"
            if not cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                raise OSError(f"could not write {folder / name}")
            rows.append((f"{label}/{name}", label, int(night)))
        counts[label] = per_class
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "night"))
        writer.writerows(rows)
    return counts


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WxH, got {text!r}") from None
    if len(dims) not in (1, 2) or min(dims) < 32:
        raise argparse.ArgumentTypeError(f"size must be N or WxH with sides >= 32, got {text!r}")
    return (dims[0], dims[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write a synthetic bear/person/empty dataset in fastai's folder-per-class layout."""
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Write seeded synthetic campsite images to OUT/<class>/<class>_<i>.jpg "
        f"for the classes {', '.join(LABELS)}, plus OUT/manifest.csv (path,label,night).",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder (created if missing)"
    )
    parser.add_argument("--per-class", required=True, type=int, help="images per class")
    parser.add_argument(
        "--seed", required=True, type=int, help="master seed; same seed, same images"
    )
    parser.add_argument(
        "--size", type=_parse_size, default=(160, 160), help="N (square) or WxH; default 160"
    )
    parser.add_argument(
        "--night-fraction", type=float, default=0.3, help="share of night/IR images; default 0.3"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        counts = write_dataset(args.out, args.per_class, args.seed, args.size, args.night_fraction)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - started
    n_night = round(args.per_class * args.night_fraction)
    for label, n in counts.items():
        print(f"{args.out / label}: {n} images ({n_night} night)")
    w, h = args.size
    print(f"wrote {sum(counts.values())} images of {w}x{h} (seed {args.seed}) in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
