"""Synthetic subjects: a bear or a person placed in perspective, and the occluders that hide part of one."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from training.synthetic.paint import BARK, BGR, GREENS, ROCKS, TENTS, Box, Pen, jitter, pick, shade

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
# Bear legs as (near side, x along the body, gait phase offset): diagonal pairs swing together.
_BEAR_LEGS = ((False, 0.25, math.pi), (False, -0.3, 0.0), (True, 0.31, 0.0), (True, -0.24, math.pi))


def _blend(a: BGR, b: BGR, t: float) -> BGR:
    x, y, z = (int(p * (1 - t) + q * t) for p, q in zip(a, b, strict=True))
    return (x, y, z)


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
        pen = Pen(img, self.x, self.foot_y, self.length, self.facing)
        fur, drop = self.fur, self.head_drop
        cy = -0.46 + 0.015 * math.sin(2 * self.phase)  # body centre, bobbing with the gait
        for near, lx, offset in _BEAR_LEGS:  # far legs first: the body and near legs overlap them
            colour = fur if near else shade(fur, 0.72)
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
        pen = Pen(img, self.x, self.foot_y, self.height, self.facing or 1)
        if self.facing:
            stride, swing = 0.16 * math.sin(self.phase), 0.12 * math.sin(self.phase)
            # far-side limbs, darker, behind the torso (and the backpack behind the back)
            self._leg(pen, -stride, shade(self.trousers, 0.75))
            pen.limb(0, -0.78, swing, -0.46, 0.06, shade(self.jacket, 0.75))
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
    def _leg(pen: Pen, foot: float, colour: BGR) -> None:
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
        fur = jitter(rng, pick(rng, _FUR), 10)
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
            jacket=jitter(rng, pick(rng, _JACKETS)),
            trousers=jitter(rng, pick(rng, _TROUSERS), 8),
            skin=jitter(rng, pick(rng, _SKIN), 8),
            hat=jitter(rng, pick(rng, _JACKETS)) if rng.random() < 0.35 else None,
            backpack=jitter(rng, pick(rng, TENTS)) if rng.random() < 0.4 else None,
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


def draw_occluder(img: np.ndarray, rng: np.random.Generator, box: Box) -> None:
    """Hide part of ``box`` behind a trunk, a bush or a rock — at most about a third of it."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    pen = Pen(img, 0, 0)
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
            jitter(rng, pick(rng, BARK), 8),
        )
    elif kind == 1:
        green = jitter(rng, pick(rng, GREENS), 10)
        cover, cx = bh * rng.uniform(0.15, 0.32), rng.uniform(x0, x1)
        for _ in range(4):
            leaf = shade(green, rng.uniform(0.8, 1.2))
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
        pen.ellipse(cx, y1, rx, min(bh * 0.5, rx * 1.2), jitter(rng, pick(rng, ROCKS), 10))
