"""The alert stage's side of repeat false alarms: take like-the-rejected regions out of a frame's score.

The rule (which region is like which rejected event) is the pure
``monitor.decide.repeats``; this module applies it to each prediction before
the camera's decision policy sees it:

* the regions like a rejected spot lose that label's score, and the frame is
  scored again from the rest (``RegionScorer``), so a real bear elsewhere in
  the frame still raises an alert of its own;
* what was taken out runs through its own decision policy per rejected spot,
  whose events are stored as *suppressed* (like rejected #N), counted and
  never notified.

The spots come from the store (``refresh``): every rejected alert with a
stored picture, within its expiry; an undone rejection drops out at the next
refresh, and so does its policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from monitor.config import DecisionConfig
from monitor.decide.policy import DecisionEvent, DecisionPolicy
from monitor.decide.regions import RegionScorer
from monitor.decide.repeats import APPEARANCE_SIDE, RejectedSpot, RepeatFilter
from monitor.frames import FULL_BOX, Prediction


@dataclass(frozen=True, slots=True)
class Suppressed:
    """One decision event of a rejected spot's own policy, with the scores it stepped on."""

    spot: int  # the rejected event's id
    event: DecisionEvent
    probs: np.ndarray  # float32 (C,)
    region: int  # the region it peaked in


def appearance(region: np.ndarray, side: int = APPEARANCE_SIDE) -> bytes:
    """A region (H, W, 3) RGB or (H, W) grey, uint8 → its ``side``×``side`` RGB picture (area averages)."""
    img = np.asarray(region, dtype=np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA).tobytes()


def peak_picture(pred: Prediction) -> bytes:
    """The picture of the region a prediction peaked in (stored with its event, for a later rejection)."""
    return appearance(pred.crop)


class RepeatGuard:
    """Per prediction: the frame scored without like-the-rejected regions, and the suppressed events.

    Args:
        spots: the live filter (refreshed from the store on another thread).
        labels: the model's labels.
        decisions: each camera's decision settings (alert labels, threshold, k-of-n).
    """

    def __init__(
        self,
        spots: RepeatFilter,
        labels: Sequence[str],
        decisions: Mapping[str, DecisionConfig],
    ) -> None:
        self.filter = spots
        self.labels = tuple(labels)
        self.decisions = dict(decisions)
        self.scorer = RegionScorer(self.labels, self.decisions)
        self._policies: dict[tuple[str, int], DecisionPolicy] = {}
        self._alert = {  # per camera: (alert label, its output index)
            cam: [(lbl, self.labels.index(lbl)) for lbl in d.alert_labels if lbl in self.labels]
            for cam, d in self.decisions.items()
        }

    def refresh(self, spots: Iterable[RejectedSpot]) -> None:
        """Replace the rejected spots (those of cameras this stage does not decide are ignored)."""
        self.filter.replace(s for s in spots if s.camera in self.decisions)

    def apply(self, pred: Prediction) -> tuple[Prediction, list[Suppressed]]:
        """(the prediction the camera's policy steps on, the suppressed events this frame causes)."""
        frame = pred.frame
        camera = frame.camera
        spots = self.filter.spots(camera)
        open_here = {spot for cam, spot in self._policies if cam == camera}
        if not spots and not open_here:
            return pred, []
        probs = pred.region_probs if pred.region_probs is not None else pred.probs[None]
        boxes = frame.boxes if len(frame.boxes) == probs.shape[0] else (FULL_BOX,) * probs.shape[0]
        taken: dict[int, tuple[np.ndarray, int]] = {}  # spot → (its scores row, peak region)
        masked = probs
        release = self.decisions[camera].release
        pictures: dict[int, bytes] = {}
        at = frame.captured_at
        labels = self._alert.get(camera, []) if spots else []
        for r, box in enumerate(boxes):
            for label, i in labels:
                if probs[r, i] < release or not self.filter.near(camera, label, box, at):
                    continue  # nothing to take out, or no rejected spot there: no picture needed
                if r not in pictures:
                    pictures[r] = appearance(frame.inputs[r])
                spot = self.filter.match(camera, label, box, pictures[r], at)
                if spot is None:
                    continue
                if masked is probs:
                    masked = probs.astype(np.float32, copy=True)
                row, peak = taken.get(spot, (np.zeros(len(self.labels), np.float32), r))
                if probs[r, i] >= row[i]:
                    row[i], peak = probs[r, i], r
                taken[spot] = (row, peak)
                masked[r, i] = 0.0
        kept = pred
        if masked is not probs:
            row, peak = self.scorer.collapse(camera, masked, frame.zone_thresholds)
            if pred.region_probs is None:
                row = masked[0]
            kept = dataclasses.replace(
                pred,
                probs=row,
                region=peak,
                region_probs=None if pred.region_probs is None else masked,
            )
        return kept, self._step_spots(pred, {s.event_id for s in spots}, open_here, taken)

    def _step_spots(
        self,
        pred: Prediction,
        live: set[int],
        open_here: set[int],
        taken: Mapping[int, tuple[np.ndarray, int]],
    ) -> list[Suppressed]:
        frame = pred.frame
        camera = frame.camera
        out: list[Suppressed] = []
        zeros = np.zeros(len(self.labels), np.float32)
        for spot in sorted(live | open_here):
            key = (camera, spot)
            policy = self._policies.get(key)
            if spot not in live:
                # The rejection was undone or expired: end what it held open and forget it.
                if policy is not None:
                    out += [
                        Suppressed(spot, ev, zeros, 0) for ev in policy.close(frame.captured_at)
                    ]
                    del self._policies[key]
                continue
            if policy is None:
                if spot not in taken:
                    continue
                policy = self._policies[key] = DecisionPolicy(
                    camera, self.labels, self.decisions[camera]
                )
            row, peak = taken.get(spot, (zeros, 0))
            out += [
                Suppressed(spot, ev, row, peak)
                for ev in policy.step(row, frame.captured_at, frame.seq)
            ]
        return out

    def close(self, last_at: Callable[[str], float]) -> list[Suppressed]:
        """End every suppressed event still open (the end of a file, shutdown)."""
        out: list[Suppressed] = []
        zeros = np.zeros(len(self.labels), np.float32)
        for (camera, spot), policy in self._policies.items():
            out += [Suppressed(spot, ev, zeros, 0) for ev in policy.close(last_at(camera))]
        return out
