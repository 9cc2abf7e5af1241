"""Synthetic campsite backdrops: sky, textured ground, horizon treeline, trees, tents, rocks, and an optional near tree."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthetic.paint import BARK, BGR, GREENS, ROCKS, TENTS, Pen, jitter, pick, shade

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
        np.array(jitter(rng, far), np.float32) * (1 - t)
        + np.array(jitter(rng, near), np.float32) * t
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
    Pen(canvas, 0, 0).poly([*ridge, *ends], jitter(rng, (60, 90, 60), 15))
    return canvas


def _draw_tree(
    img: np.ndarray, rng: np.random.Generator, x: float, base_y: float, height: float
) -> None:
    pen = Pen(img, x, base_y, height)
    trunk = max(0.035, 0.75 / height)  # half width, at least ~1.5 px
    bark = jitter(rng, pick(rng, BARK), 8)
    green = jitter(rng, pick(rng, GREENS), 10)
    if rng.random() < 0.65:  # conifer: stacked triangles
        pen.rect(-trunk, 0, trunk, -0.3, bark)
        for k in range(3):
            half, bottom = 0.3 - 0.07 * k, -0.15 - 0.22 * k
            pen.poly(
                [(-half, bottom), (half, bottom), (0, bottom - 0.6)], shade(green, 1.0 + 0.08 * k)
            )
    else:  # broadleaf: trunk and a few overlapping crowns
        pen.limb(0, 0, 0, -0.6, 2 * trunk, bark)
        for _ in range(3):
            crown = shade(green, rng.uniform(0.85, 1.15))
            pen.ellipse(rng.uniform(-0.15, 0.15), -rng.uniform(0.6, 0.8), 0.22, 0.2, crown)


def _draw_tent(
    img: np.ndarray, rng: np.random.Generator, x: float, base_y: float, width: float
) -> None:
    colour = jitter(rng, pick(rng, TENTS), 10)
    pen = Pen(img, x, base_y, width, 1 if rng.random() < 0.5 else -1)
    top, depth = -rng.uniform(0.55, 0.8), rng.uniform(0.2, 0.45)
    # side panel first (darker, receding), then the front face and its door
    pen.poly(
        [(0.5, 0), (0, top), (depth, top * 0.92), (0.5 + depth, top * 0.04)], shade(colour, 0.7)
    )
    pen.poly([(-0.5, 0), (0.5, 0), (0, top)], colour)
    pen.poly([(-0.14, 0), (0.14, 0), (0, top * 0.6)], shade(colour, 0.45))


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
            rock = jitter(rng, pick(rng, ROCKS), 10)
            Pen(canvas, x, base_y).ellipse(0, -0.3 * r, r * rng.uniform(1.2, 1.8), r, rock)


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
    bark = jitter(rng, pick(rng, BARK), 8)
    for layer, colour in ((front, bark), (mask, (255, 255, 255))):
        Pen(layer, x, 0, half).poly(
            [(-1, -0.1), (1, -0.1), (1.2, 0.98 * h / half), (-1.2, 0.98 * h / half)], colour
        )
    Pen(front, x, 0, half).limb(-0.5, 0, -0.6, h / half, 0.3, shade(bark, 0.7))  # a bark furrow
    return Backdrop(canvas, horizon, front, mask)
