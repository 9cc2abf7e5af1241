"""Shadow candidate: compare a second model with production on the same frames, never notifying.

A retrained model should be judged on the cameras it will serve before it is
promoted. The inference worker runs the candidate on every batch the
production model sees; this tracker counts, per camera, how often the two
agree on the top label and on "would alert", and keeps (a capped number of)
the frames where they disagree, with snapshots, for the report.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.errors import ModelError
from monitor.records import CandidateCounts, Disagreement


@dataclass(slots=True)
class _Counts:
    since: float
    frames: int = 0
    agreements: int = 0
    production_alerts: int = 0
    candidate_alerts: int = 0


class CandidateTracker:
    """Accumulates production-vs-candidate agreement per camera.

    Args:
        production_labels: the production model's labels in output order.
        candidate_labels: the candidate's labels in output order (same set, any order).
        alert_rules: camera id → (alert labels, threshold).
        versions: (production version, candidate version).
        period_s: how often counts are flushed to the store.
        max_disagreements_per_hour: per camera, frames kept with a snapshot.

    Raises:
        ValueError: when the candidate lacks a label the cameras alert on.
    """

    def __init__(
        self,
        production_labels: Sequence[str],
        candidate_labels: Sequence[str],
        alert_rules: Mapping[str, tuple[Sequence[str], float]],
        versions: tuple[str, str],
        period_s: float,
        max_disagreements_per_hour: int,
    ) -> None:
        needed = {lbl for labels, _ in alert_rules.values() for lbl in labels}
        missing = sorted(needed - set(candidate_labels))
        if missing:
            raise ModelError(
                f"the candidate model has no label(s) {missing}, which cameras alert on"
            )
        self.production_labels, self.candidate_labels = (
            list(production_labels),
            list(candidate_labels),
        )
        self.rules = {cam: (list(labels), thr) for cam, (labels, thr) in alert_rules.items()}
        self.production_version, self.candidate_version = versions
        self.period_s, self.cap = period_s, max_disagreements_per_hour
        self._counts: dict[str, _Counts] = {}
        self._pending: dict[str, list[Disagreement]] = {}
        self._kept: dict[str, deque[float]] = {}

    def _alert(self, labels: list[str], probs: np.ndarray, camera: str) -> bool:
        alert_labels, threshold = self.rules[camera]
        return any(
            float(probs[labels.index(lbl)]) >= threshold for lbl in alert_labels if lbl in labels
        )

    def observe(
        self,
        camera: str,
        at: float,
        production: np.ndarray,
        candidate: np.ndarray,
        snapshot: Callable[[], bytes | None],
    ) -> None:
        """Compare one frame's two predictions; ``snapshot`` is called only for a kept disagreement."""
        c = self._counts.setdefault(camera, _Counts(since=at))
        p_top = self.production_labels[int(np.argmax(production))]
        c_top = self.candidate_labels[int(np.argmax(candidate))]
        p_alert = self._alert(self.production_labels, production, camera)
        c_alert = self._alert(self.candidate_labels, candidate, camera)
        c.frames += 1
        c.agreements += int(p_top == c_top and p_alert == c_alert)
        c.production_alerts += int(p_alert)
        c.candidate_alerts += int(c_alert)
        if (p_top != c_top or p_alert != c_alert) and self._within_cap(camera, at):
            self._pending.setdefault(camera, []).append(
                Disagreement(
                    camera=camera,
                    at=at,
                    production_label=p_top,
                    production_score=float(np.max(production)),
                    candidate_label=c_top,
                    candidate_score=float(np.max(candidate)),
                    candidate_version=self.candidate_version,
                    snapshot_jpeg=snapshot(),
                )
            )

    def flush(
        self, at: float, force: bool = False
    ) -> list[tuple[CandidateCounts, list[Disagreement]]]:
        """The cameras whose period has elapsed (all with ``force``), ready for the store."""
        out = []
        for camera, c in list(self._counts.items()):
            if not force and at - c.since < self.period_s:
                continue
            counts = CandidateCounts(
                camera=camera,
                at=at,
                production_version=self.production_version,
                candidate_version=self.candidate_version,
                frames=c.frames,
                agreements=c.agreements,
                production_alerts=c.production_alerts,
                candidate_alerts=c.candidate_alerts,
            )
            out.append((counts, self._pending.pop(camera, [])))
            del self._counts[camera]
        return out

    def _within_cap(self, camera: str, at: float) -> bool:
        kept = self._kept.setdefault(camera, deque())
        while kept and at - kept[0] >= 3600.0:
            kept.popleft()
        if len(kept) >= self.cap:
            return False
        kept.append(at)
        return True
