"""What the alert stage adds to an event about the model's footing: unfamiliar, held, OOD score, light class.

Kept beside the stage rather than in it: the stage feeds every prediction in
(:meth:`Familiarity.observe`) and asks for the fields of a new event
(:meth:`Familiarity.event_fields`); the rules live in the pure
``monitor.decide.ood`` and ``monitor.decide.night``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.decide.drift import SIGNAL_NAMES, UNFAMILIAR
from monitor.decide.night import NightTracker
from monitor.decide.ood import UnfamiliarTracker
from monitor.frames import Prediction

UNFAMILIAR_FLAG = SIGNAL_NAMES[(UNFAMILIAR, "high")]


@dataclass(frozen=True, slots=True)
class EventMarks:
    """The familiarity fields of one new event."""

    unfamiliar: bool
    held: bool
    night_class: str | None
    ood_score: float | None
    details: Mapping[str, Any]


class Familiarity:
    """Per-camera unfamiliar share and light class, and the hold rule for active cameras.

    Args:
        unfamiliar: the recent-share tracker; None when the model has no feature
            statistics (no alert is then marked unfamiliar by its features).
        night: the light-class tracker; None to leave light classes out.
        hold_unfamiliar: whether an unfamiliar alert of an ``active`` camera waits
            for a person (``ood.hold_unfamiliar``).
    """

    def __init__(
        self,
        unfamiliar: UnfamiliarTracker | None,
        night: NightTracker | None,
        hold_unfamiliar: bool,
    ) -> None:
        self.tracker, self.night, self.hold_unfamiliar = unfamiliar, night, hold_unfamiliar
        self._last_score: dict[str, float | None] = {}

    def observe(self, pred: Prediction) -> str | None:
        """Add one prediction; returns the camera's light class now (None: unknown)."""
        camera = pred.frame.camera
        self._last_score[camera] = pred.ood_score
        if self.tracker is not None:
            self.tracker.observe(camera, pred.ood_score)
        return None if self.night is None else self.night.observe(camera, pred.frame.stats)

    def light(self, camera: str) -> str | None:
        return None if self.night is None else self.night.state(camera)

    def event_fields(
        self,
        camera: str,
        mode: str,
        drift_flags: tuple[str, ...],
        image_score: float | None,
        image_reasons: list[str],
    ) -> EventMarks:
        """The fields of an event starting now on ``camera``.

        An alert is unfamiliar when the camera's recent frames are mostly over
        the model's feature threshold, or the drift monitor already says the
        camera sees unfamiliar scenes. Its OOD score is the frame's feature
        score when the model has one, else the image-statistics score.
        """
        share = None if self.tracker is None else self.tracker.share(camera)
        by_share = self.tracker is not None and self.tracker.unfamiliar(camera)
        unfamiliar = by_share or UNFAMILIAR_FLAG in drift_flags
        reasons = list(image_reasons)
        if by_share and share is not None:
            reasons.append(
                f"unfamiliar scene ({share:.0%} of recent frames over the model's threshold)"
            )
        elif UNFAMILIAR_FLAG in drift_flags:
            reasons.append("camera drift: unfamiliar scenes")
        feature = self._last_score.get(camera)
        details: dict[str, Any] = {"ood_reasons": reasons, "image_ood_score": image_score}
        if share is not None:
            details["unfamiliar_share"] = round(share, 3)
        return EventMarks(
            unfamiliar=unfamiliar,
            held=unfamiliar and self.hold_unfamiliar and mode == "active",
            night_class=self.light(camera),
            ood_score=feature if feature is not None else image_score,
            details=details,
        )
