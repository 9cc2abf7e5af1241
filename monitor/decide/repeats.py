"""Repeat false alarms: once a person rejects an alert, the same spot on the same camera stops alerting.

A rock that looks like a bear to the model looks like one every time the
light is right, and a camera-trap pipeline learns to ignore it (MegaDetector's
*repeat detection elimination*). Here a rejected event leaves a
:class:`RejectedSpot` — its camera, label, peak region box and a small
grey-level picture of that region. A later region of the same camera and label
whose box overlaps the spot (IoU) and whose picture matches it is *like* the
rejected event. Matching is strict on purpose: the two pictures, each
matched for brightness and contrast, must correlate closely *and* differ in no
cell by more than a few levels, so a bear that walks into the rejected region — even a small
one in a whole-frame region — changes a few cells and the region alerts again.
When it is like the rejected event, the alert stage scores the
frame without it, so a real bear elsewhere in the frame still alerts, and
keeps the like-the-rejected events apart (stored, counted, never notified).
A spot expires after ``expire_s`` of its rejection, or at once when the
rejection is undone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]

APPEARANCE_SIDE = 16  # a picture is APPEARANCE_SIDE² RGB cells (768 bytes; made by monitor.alerts.repeats.appearance)


@dataclass(frozen=True, slots=True)
class RepeatRules:
    """When a region is *like* a rejected one.

    Attributes:
        iou_min: the least box overlap (intersection over union).
        similarity_min: the least normalised cross-correlation of the two pictures (−1..1).
        change_max: the largest change allowed in any one cell, in levels
            (0–255) once brightness and contrast are matched.
        expire_s: how long after its rejection a spot keeps suppressing.
    """

    iou_min: float = 0.5
    similarity_min: float = 0.9
    change_max: float = 12.0
    expire_s: float = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class RejectedSpot:
    """What a rejected alert leaves behind: where it was and what it looked like."""

    event_id: int
    camera: str
    label: str
    box: Box
    appearance: bytes  # APPEARANCE_SIDE² uint8 grey levels, row-major
    rejected_at: float  # UTC epoch seconds of the verdict


FLAT_STD = 2.0  # levels: a picture with less spread than this has no texture to correlate


def likeness(a: bytes, b: bytes) -> tuple[float, float]:
    """(correlation, largest change) of two pictures of one size.

    The correlation is the normalised cross-correlation over every cell and
    channel (1: the same up to brightness and contrast). The largest change
    is the worst cell's difference in levels once ``b`` is fitted to ``a`` by
    brightness and contrast (least squares, per channel): sensor noise,
    averaged over a cell, stays at a few levels; anything new in the picture
    is tens of levels in the cells it covers. Two flat pictures are alike when
    their levels are; a flat and a textured one are not.
    """
    if len(a) != len(b) or not a or len(a) % 3:
        return -1.0, float("inf")
    x = np.frombuffer(a, dtype=np.uint8).astype(np.float64).reshape(-1, 3)
    y = np.frombuffer(b, dtype=np.uint8).astype(np.float64).reshape(-1, 3)
    x0, y0 = x - x.mean(axis=0), y - y.mean(axis=0)
    sx, sy = float(x0.std()), float(y0.std())
    if sx < FLAT_STD and sy < FLAT_STD:
        return 1.0, float(np.max(np.abs(x.mean(axis=0) - y.mean(axis=0))))
    if sx < FLAT_STD or sy < FLAT_STD:
        return 0.0, float("inf")
    ncc = float(np.sum(x0 * y0) / np.sqrt(np.sum(x0**2) * np.sum(y0**2)))
    # Per channel: y0 ≈ k·x0 (least squares); the fitted y back in x's levels.
    k = np.sum(x0 * y0, axis=0) / np.maximum(np.sum(y0**2, axis=0), 1e-9)
    change = float(np.max(np.abs(x0 - y0 * k)))
    return ncc, change


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two normalised boxes (x0, y0, x1, y1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class RepeatFilter:
    """The cameras' live rejected spots, and the test of a region against them.

    ``replace`` swaps the whole set at once (one dict assignment), so the
    alert thread can match while another thread refreshes it from the store.
    """

    def __init__(self, rules: RepeatRules) -> None:
        self.rules = rules
        self._spots: dict[str, tuple[RejectedSpot, ...]] = {}

    def replace(self, spots: Iterable[RejectedSpot]) -> None:
        by_camera: dict[str, list[RejectedSpot]] = {}
        for spot in spots:
            by_camera.setdefault(spot.camera, []).append(spot)
        self._spots = {cam: tuple(s) for cam, s in by_camera.items()}

    def spots(self, camera: str) -> tuple[RejectedSpot, ...]:
        return self._spots.get(camera, ())

    def __len__(self) -> int:
        return sum(len(s) for s in self._spots.values())

    def live(self, spot: RejectedSpot, at: float) -> bool:
        """Whether ``spot`` still suppresses at ``at`` (epoch seconds)."""
        return at < spot.rejected_at + self.rules.expire_s

    def match(self, camera: str, label: str, box: Box, picture: bytes, at: float) -> int | None:
        """The id of the live rejected event this region is like, or None (the best match when several)."""
        best: tuple[float, int] | None = None
        for spot in self._spots.get(camera, ()):
            if spot.label != label or not self.live(spot, at):
                continue
            if iou(spot.box, box) < self.rules.iou_min:
                continue
            sim, change = likeness(spot.appearance, picture)
            if sim < self.rules.similarity_min or change > self.rules.change_max:
                continue
            if best is None or sim > best[0]:
                best = (sim, spot.event_id)
        return None if best is None else best[1]

    def near(self, camera: str, label: str, box: Box, at: float) -> bool:
        """Whether any live spot of ``label`` overlaps ``box`` enough to compare pictures (cheap)."""
        return any(
            spot.label == label and self.live(spot, at) and iou(spot.box, box) >= self.rules.iou_min
            for spot in self._spots.get(camera, ())
        )
