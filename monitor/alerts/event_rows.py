"""What an event's row holds, built from its decision event and best frame: snapshot, details, familiarity, picture.

The alert stage decides *when* a row is written (``monitor.alerts.stage``);
this builds *what* is written: the new event, or the fields an update,
resume or end changes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from monitor.alerts.familiarity import EventMarks, Familiarity
from monitor.alerts.repeats import peak_picture
from monitor.alerts.snapshots import snapshot_of
from monitor.alerts.taps import DriftTap
from monitor.decide.policy import DecisionEvent
from monitor.frames import Frame, Prediction
from monitor.records import NewEvent
from monitor.store.modes import ModeBook


class EventRows:
    """Builds event rows for the alert stage.

    Args:
        labels: the model's labels (for the stored probabilities).
        model_version: recorded on every event.
        mode_book: each camera's effective rollout mode at a time.
        drift: the drift tap (flags and image OOD score), or None.
        familiarity: unfamiliar share, hold rule and light class.
        snapshot_quality: JPEG quality of snapshots.
    """

    def __init__(
        self,
        labels: Sequence[str],
        model_version: str,
        mode_book: ModeBook,
        drift: DriftTap | None,
        familiarity: Familiarity,
        snapshot_quality: int,
    ) -> None:
        self.labels, self.model_version = tuple(labels), model_version
        self.mode_book, self.drift, self.familiarity = mode_book, drift, familiarity
        self.snapshot_quality = snapshot_quality

    def jpeg(self, image: np.ndarray | None) -> bytes | None:
        if image is None:
            return None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.snapshot_quality])
        return buf.tobytes() if ok else None

    def drift_flags(self, camera: str) -> tuple[str, ...]:
        return () if self.drift is None else self.drift.flags(camera)

    def details(
        self, ev: DecisionEvent, frame: Frame | None, probs: np.ndarray | None
    ) -> tuple[dict[str, object], EventMarks]:
        """(details, familiarity marks) of the event's best frame: its sequence number, probabilities, OOD reasons."""
        details: dict[str, object] = {"peak_seq": ev.peak_seq}
        ood: float | None = None
        reasons: list[str] = []
        if self.drift is not None and frame is not None and frame.stats is not None:
            ood, reasons = self.drift.monitor.ood_score(
                frame.stats, None if probs is None else float(np.max(probs))
            )
        mode = self.mode_book.effective(ev.camera, ev.start_at)
        drift_flags = self.drift_flags(ev.camera)
        marks = self.familiarity.event_fields(ev.camera, mode, drift_flags, ood, reasons)
        details.update(marks.details)
        if probs is not None:
            details["probs"] = {
                lbl: round(float(p), 4) for lbl, p in zip(self.labels, probs, strict=True)
            }
        return details, marks

    def new_event(
        self,
        ev: DecisionEvent,
        frame: Frame | None,
        probs: np.ndarray | None,
        pred: Prediction | None = None,
        suppressed_by: int | None = None,
    ) -> NewEvent:
        details, marks = self.details(ev, frame, probs)
        mode = self.mode_book.effective(ev.camera, ev.start_at)
        drift_flags = self.drift_flags(ev.camera)
        return NewEvent(
            camera=ev.camera,
            label=ev.label,
            kind="alert",
            start_at=ev.start_at,
            end_at=ev.end_at,
            peak_score=ev.peak_score,
            model_version=self.model_version,
            mode=mode,
            snapshot_jpeg=self.jpeg(snapshot_of(frame, pred)),
            drift_flags=drift_flags,
            ood_score=marks.ood_score,
            details=details,
            frames=ev.frames,
            unfamiliar=marks.unfamiliar,
            held=marks.held,
            night_class=marks.night_class,
            box=None if pred is None else pred.box,
            zone=None if pred is None else pred.zone,
            appearance=None if pred is None else picture_b64(pred),
            suppressed_by=suppressed_by,
        )

    def changes(
        self,
        ev: DecisionEvent,
        frame: Frame | None,
        probs: np.ndarray | None,
        pred: Prediction | None = None,
    ) -> Mapping[str, object]:
        """What an update, resume or end changes in the event's row (the snapshot encoded here).

        A new peak brings its snapshot and probabilities along together, so the
        row's ``peak_score`` and ``details.probs`` describe the same frame.
        """
        if ev.kind == "update":
            fields: dict[str, object] = {
                "peak_score": ev.peak_score,
                "snapshot_jpeg": self.jpeg(snapshot_of(frame, pred)),
                "frames": ev.frames,
                **(
                    {}
                    if pred is None
                    else {"box": pred.box, "zone": pred.zone, "appearance": picture_b64(pred)}
                ),
            }
            if probs is not None:
                fields["details"] = self.details(ev, frame, probs)[0]
            return fields
        if ev.kind == "resume":
            fields = {"peak_score": ev.peak_score, "frames": ev.frames}
            if frame is not None and probs is not None and frame.seq == ev.peak_seq:
                # It came back better than before: the new peak brings its frame along.
                fields["snapshot_jpeg"] = self.jpeg(snapshot_of(frame, pred))
                fields["details"] = self.details(ev, frame, probs)[0]
            return fields
        return {"end_at": ev.end_at, "frames": ev.frames, "peak_score": ev.peak_score}


def picture_b64(pred: Prediction) -> str:
    """The peak region's picture as the store keeps it (base64)."""
    return base64.b64encode(peak_picture(pred)).decode("ascii")
