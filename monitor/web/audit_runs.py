"""The audit page's runs: near-duplicate frames from a static scene collapsed, one sample standing for its run.

A camera watching an empty meadow produces audit samples that are the same
picture again and again (20 of 31 in five minutes on the demo's looping
clip). Labelling each is busywork and hides the one frame that differs, so
consecutive samples of one camera whose pictures match are shown once, with
a count, and a label given to that one is given to the whole run (each
frame still counts as its own sample in the miss estimate).

Pictures are compared as 16×12 gray thumbnails (area-averaged, so sensor
noise and JPEG artefacts average out): two are the same picture when their
cells differ by less than ``MAX_DIFFERENCE`` gray levels on average, and any
animal that walks in changes a block of cells far more than that. (A
difference hash was tried first: on a flat, dark scene neighbouring pixels are
nearly equal and noise flips a third of its bits.) Thumbnails are cached by
sample id — snapshots never change — so a page costs one small decode per new
sample, once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

MAX_DIFFERENCE = 4.0  # mean absolute gray-level difference still counted as the same picture
THUMB = (16, 12)
CACHE_SIZE = 4096
Thumb = np.ndarray


def thumbnail(jpeg: bytes) -> Thumb | None:
    """A 16×12 gray thumbnail of a JPEG (float32); None when it cannot be decoded."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if image is None:
        return None
    return cv2.resize(image, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def difference(a: Thumb, b: Thumb) -> float:
    """Mean absolute gray-level difference of two thumbnails."""
    return float(np.abs(a - b).mean())


class ThumbCache:
    """Sample id → thumbnail, computed once (bounded, thread-safe: pages render on worker threads)."""

    def __init__(self, snapshot: Callable[[int], bytes | None], size: int = CACHE_SIZE) -> None:
        self._snapshot, self._size = snapshot, size
        self._hashes: OrderedDict[int, Thumb | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sample_id: int) -> Thumb | None:
        with self._lock:
            if sample_id in self._hashes:
                self._hashes.move_to_end(sample_id)
                return self._hashes[sample_id]
        jpeg = self._snapshot(sample_id)
        value = None if jpeg is None else thumbnail(jpeg)
        with self._lock:
            self._hashes[sample_id] = value
            while len(self._hashes) > self._size:
                self._hashes.popitem(last=False)
        return value


@dataclass(slots=True)
class Run:
    """Consecutive look-alike samples; ``first`` (the newest) stands for all."""

    first: dict[str, Any]
    others: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return [int(self.first["id"])] + [int(s["id"]) for s in self.others]


def collapse(samples: Sequence[dict[str, Any]], thumbs: Callable[[int], Thumb | None]) -> list[Run]:
    """Group samples (newest first, as listed) into runs of near-identical pictures.

    A sample joins its camera's latest run when the model said the same, it
    carries the same human label (or none), and its picture differs from the
    run's first one by less than ``MAX_DIFFERENCE``; other cameras' samples in
    between do not break a run (with "all cameras" they interleave). A sample
    without a decodable snapshot always stands alone. Runs keep the order of
    their first (newest) sample.
    """
    runs: list[Run] = []
    # camera → its current run and that run's picture
    latest: dict[str, tuple[Run, Thumb | None]] = {}
    for s in samples:
        h = thumbs(int(s["id"])) if s.get("has_snapshot") else None
        run, first = latest.get(s["camera"], (None, None))
        if run is not None and h is not None and first is not None:
            same = all(run.first[k] == s[k] for k in ("predicted_label", "label"))
            if same and difference(h, first) < MAX_DIFFERENCE:
                run.others.append(s)
                continue
        run = Run(s)
        runs.append(run)
        latest[s["camera"]] = (run, h)
    return runs
