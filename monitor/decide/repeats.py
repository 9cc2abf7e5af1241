"""Repeat false alarms: once a person rejects an alert, the same spot on the same camera stops alerting.

A rock that looks like a bear to the model looks like one every time the
light is right, and a camera-trap pipeline learns to ignore it (MegaDetector's
*repeat detection elimination*). Here a rejected event leaves a
:class:`RejectedSpot` — its camera, label, peak region box and a small
grey-level picture of that region. A later region of the same camera and label
whose box overlaps the spot (IoU) and whose picture matches it (normalised
cross-correlation) is *like* the rejected event: the alert stage scores the
frame without it, so a real bear elsewhere in the frame still alerts, and
keeps the like-the-rejected events apart (stored, counted, never notified).
A spot expires after ``expire_s`` of its rejection, or at once when the
rejection is undone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]

APPEARANCE_SIDE = 16  # the stored picture is APPEARANCE_SIDE² grey levels (256 bytes)


@dataclass(frozen=True, slots=True)
class RepeatRules:
    """When a region is *like* a rejected one.

    Attributes:
        iou_min: the least box overlap (intersection over union).
        similarity_min: the least normalised cross-correlation of the two pictures (−1..1).
        expire_s: how long after its rejection a spot keeps suppressing.
    """

    iou_min: float = 0.5
    similarity_min: float = 0.85
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


def appearance(region: np.ndarray, side: int = APPEARANCE_SIDE) -> bytes:
    """A region (H, W, 3) RGB or (H, W) grey, uint8 → its ``side``×``side`` grey picture by area averaging."""
    img = np.asarray(region, dtype=np.float32)
    if img.ndim == 3:
        img = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    h, w = img.shape
    if h < side or w < side:
        img = np.repeat(np.repeat(img, -(-side // h), axis=0), -(-side // w), axis=1)
        h, w = img.shape
    rows = np.linspace(0, h, side + 1).astype(int)
    cols = np.linspace(0, w, side + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(img, rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols))
    return np.clip(np.rint(sums / counts), 0, 255).astype(np.uint8).tobytes()


def similarity(a: bytes, b: bytes) -> float:
    """Normalised cross-correlation of two pictures (1: the same up to brightness and contrast).

    Two flat pictures (no texture to correlate) are alike when their mean
    grey levels are within 8 of each other; a flat and a textured one are not.
    """
    if len(a) != len(b) or not a:
        return -1.0
    x = np.frombuffer(a, dtype=np.uint8).astype(np.float64)
    y = np.frombuffer(b, dtype=np.uint8).astype(np.float64)
    x0, y0 = x - x.mean(), y - y.mean()
    nx, ny = float(np.linalg.norm(x0)), float(np.linalg.norm(y0))
    flat = 2.0 * np.sqrt(x.size)  # a standard deviation under ~2 grey levels
    if nx < flat and ny < flat:
        return 1.0 if abs(float(x.mean() - y.mean())) <= 8.0 else 0.0
    if nx < flat or ny < flat:
        return 0.0
    return float(np.dot(x0, y0) / (nx * ny))


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
            sim = similarity(spot.appearance, picture)
            if sim >= self.rules.similarity_min and (best is None or sim > best[0]):
                best = (sim, spot.event_id)
        return None if best is None else best[1]

    def like_rejected(
        self,
        camera: str,
        labels: Sequence[str],
        boxes: Sequence[Box],
        pictures: Sequence[bytes],
        at: float,
    ) -> list[dict[str, int]]:
        """Per region: {label: rejected event id} for each label that region is like a rejected spot in."""
        cam_spots = self._spots.get(camera, ())
        out: list[dict[str, int]] = [{} for _ in boxes]
        if not cam_spots:
            return out
        wanted = {s.label for s in cam_spots}
        for r, (box, picture) in enumerate(zip(boxes, pictures, strict=True)):
            for label in labels:
                if label in wanted:
                    hit = self.match(camera, label, box, picture, at)
                    if hit is not None:
                        out[r][label] = hit
        return out
