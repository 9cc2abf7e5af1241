"""Drawing tools for the synthetic scenes: BGR colours, the palettes backdrops and subjects share, and a sub-pixel pen."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

BGR = tuple[int, int, int]
Box = tuple[float, float, float, float]

# Palettes in BGR, shared by backdrops and subjects (tents also colour backpacks).
GREENS: tuple[BGR, ...] = ((35, 90, 40), (30, 70, 30), (50, 110, 60), (40, 100, 80), (45, 80, 55))
BARK: tuple[BGR, ...] = ((30, 50, 75), (40, 60, 90), (25, 40, 60), (50, 65, 80))
TENTS: tuple[BGR, ...] = (
    (20, 120, 240),
    (40, 200, 240),
    (170, 90, 30),
    (40, 40, 190),
    (60, 130, 50),
    (140, 140, 130),
)
ROCKS: tuple[BGR, ...] = ((110, 115, 120), (90, 95, 100), (140, 140, 140))

_SHIFT = 4  # sub-pixel drawing (coordinates x16) so walking subjects move smoothly
_ONE = 1 << _SHIFT


def pick(rng: np.random.Generator, options: Sequence[BGR]) -> BGR:
    return options[int(rng.integers(len(options)))]


def jitter(rng: np.random.Generator, colour: BGR, amount: int = 12) -> BGR:
    b, g, r = (
        int(c) for c in np.clip(np.array(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    )
    return (b, g, r)


def shade(colour: BGR, factor: float) -> BGR:
    b, g, r = (min(255, int(c * factor)) for c in colour)
    return (b, g, r)


class Pen:
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
