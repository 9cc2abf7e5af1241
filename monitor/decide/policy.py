"""Pure per-camera decision policy: threshold + k-of-n + hysteresis + cooldown → events.

No I/O, no threads, no clock reads: every call gets the frame's time as an
argument, so the policy is deterministic and tested table-driven.

Per alert label the policy is a small state machine:

* **idle** — a prediction is a *hit* when its score ≥ ``threshold``. When at
  least ``min_hits`` of the last ``window`` predictions are hits, an event
  starts (its start time is the first hit in the window).
* **active** — the label is *present* while its score ≥ ``release`` (lower
  than ``threshold``: hysteresis, so a bear half behind a tree does not end
  and restart the event). The event ends once the label has not been present
  for ``end_after_s``; its end time is the last time it was present.
* **cooldown** — if the label starts again within ``cooldown_s`` of the end,
  the same event resumes instead of raising a second alert for what is
  almost always the same animal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from monitor.config import DecisionConfig
from monitor.errors import ConfigError

EventKind = Literal["start", "update", "resume", "end"]


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """A change in an event's life.

    Attributes:
        kind: ``start`` (new alert), ``update`` (a better frame: new peak),
            ``resume`` (the label came back within the cooldown), ``end``.
        camera: camera id.
        label: the alert label.
        number: per-camera, per-policy event counter (1, 2, …); ``resume``
            and ``end`` carry the number of the event they belong to.
        at: the time of the prediction that caused this change.
        start_at: when the event started.
        end_at: when it ended (``end`` only).
        score: the label's score in the causing prediction.
        peak_score: the best score so far.
        peak_seq: the frame sequence number of the best frame.
        frames: predictions in which the label was present.
    """

    kind: EventKind
    camera: str
    label: str
    number: int
    at: float
    start_at: float
    end_at: float | None
    score: float
    peak_score: float
    peak_seq: int
    frames: int


@dataclass(slots=True)
class _Track:
    window: deque[tuple[bool, float]]
    active: bool = False
    number: int = 0
    start_at: float = 0.0
    last_present: float = 0.0
    peak_score: float = 0.0
    peak_seq: int = -1
    frames: int = 0
    ended_at: float | None = None


class DecisionPolicy:
    """Turns one camera's stream of class probabilities into events.

    Args:
        camera: the camera id (copied onto events).
        labels: the model's labels, in output order.
        cfg: the camera's decision settings.

    Raises:
        ConfigError: when an alert label is not one of the model's labels.
    """

    def __init__(self, camera: str, labels: Sequence[str], cfg: DecisionConfig) -> None:
        unknown = [lbl for lbl in cfg.alert_labels if lbl not in labels]
        if unknown:
            raise ConfigError(
                f"camera {camera}: decision.alert_labels {unknown} are not in the model's labels {list(labels)}; use some of those"
            )
        self.camera = camera
        self.cfg = cfg
        self._index = {lbl: labels.index(lbl) for lbl in cfg.alert_labels}
        self._tracks = {lbl: _Track(window=deque(maxlen=cfg.window)) for lbl in cfg.alert_labels}
        self._count = 0

    @property
    def active_labels(self) -> list[str]:
        return [lbl for lbl, t in self._tracks.items() if t.active]

    def step(self, probs: Sequence[float] | np.ndarray, at: float, seq: int) -> list[DecisionEvent]:
        """Feed one prediction; returns the events it causes (often none).

        Args:
            probs: class probabilities in the model's label order.
            at: the frame's capture time (UTC epoch seconds).
            seq: the frame's sequence number (identifies the best frame).
        """
        out: list[DecisionEvent] = []
        for label, idx in self._index.items():
            ev = self._step_label(self._tracks[label], label, float(probs[idx]), at, seq)
            if ev is not None:
                out.append(ev)
        return out

    def close(self, at: float) -> list[DecisionEvent]:
        """End every open event (shutdown, end of a file) at its last present time."""
        out = []
        for label, track in self._tracks.items():
            if track.active:
                out.append(self._end(track, label, at))
        return out

    def _step_label(
        self, t: _Track, label: str, score: float, at: float, seq: int
    ) -> DecisionEvent | None:
        if t.active:
            if score >= self.cfg.release:
                t.last_present = at
                t.frames += 1
                if score > t.peak_score:
                    t.peak_score, t.peak_seq = score, seq
                    return self._event("update", t, label, at, score)
                return None
            if at - t.last_present >= self.cfg.end_after_s:
                return self._end(t, label, at)
            return None
        t.window.append((score >= self.cfg.threshold, at))
        hits = [when for hit, when in t.window if hit]
        if len(hits) < self.cfg.min_hits:
            return None
        t.active, t.last_present = True, at
        t.window.clear()
        if t.ended_at is not None and hits[0] - t.ended_at <= self.cfg.cooldown_s:
            t.frames += len(hits)
            if score > t.peak_score:
                t.peak_score, t.peak_seq = score, seq
            return self._event("resume", t, label, at, score)
        self._count += 1
        t.number, t.start_at, t.frames = self._count, hits[0], len(hits)
        t.peak_score, t.peak_seq = score, seq
        return self._event("start", t, label, at, score)

    def _end(self, t: _Track, label: str, at: float) -> DecisionEvent:
        t.active = False
        t.ended_at = t.last_present
        t.window.clear()
        return self._event("end", t, label, at, 0.0, end_at=t.last_present)

    def _event(
        self,
        kind: EventKind,
        t: _Track,
        label: str,
        at: float,
        score: float,
        end_at: float | None = None,
    ) -> DecisionEvent:
        return DecisionEvent(
            kind=kind,
            camera=self.camera,
            label=label,
            number=t.number,
            at=at,
            start_at=t.start_at,
            end_at=end_at,
            score=score,
            peak_score=t.peak_score,
            peak_seq=t.peak_seq,
            frames=t.frames,
        )
