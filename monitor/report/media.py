"""The store's frames as media for other tools: alert snapshots and audit samples, with what the model and a person said.

Both exports (Camtrap DP, MegaDetector batch output) read the same items and
write the same JPEG files; only the tables around them differ. A person's
word wins over the model's: a confirmed alert is its label, a relabelled one
the new label, a rejected one "not this label" (what is there is unknown), a
labelled audit sample its label. Drift events carry no frame of an animal
and are left out.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.records import EventRow
from monitor.report.source import DatasetSource

PAGE = 1000
MEDIA_DIR = "media"


class ExportRefused(Exception):
    """The output exists and is not empty, and --force was not given; the message says so."""


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One frame with its classifications.

    Attributes:
        media_id: ``event-<id>`` or ``audit-<id>``, unique within the store.
        kind: ``event`` (an alert's best frame) or ``audit`` (a frame kept without an alert).
        camera: the camera id.
        timestamp: when the frame (or the event) started, UTC epoch seconds.
        end: when the event ended (the timestamp for audit samples and open events).
        file: the JPEG's path relative to the export root (forward slashes).
        model_label: what the model said; ``model_score`` how sure it was.
        human_label: what a person said is there (None: not reviewed, or rejected).
        human_status: confirmed, rejected, relabelled, unsure or labelled; None if nobody looked.
        reviewer: who; ``reviewed_at`` when (epoch seconds).
        comment: the reason code and note, if any.
        box: the region the model looked at, normalised (x, y, width, height), when the store has one.
        probs: the model's probabilities per label, when stored (audit samples).
        model_version: the model that classified it.
    """

    media_id: str
    kind: str
    camera: str
    timestamp: float
    end: float
    file: str
    model_label: str
    model_score: float
    human_label: str | None
    human_status: str | None
    reviewer: str | None
    reviewed_at: float | None
    comment: str | None
    box: tuple[float, float, float, float] | None
    probs: Mapping[str, float] | None
    model_version: str


def collect(store: DatasetSource, since: float | None, until: float | None) -> list[MediaItem]:
    """Every alert with a snapshot and every audit sample in [since, until), oldest first."""
    items = [_from_event(ev) for ev in store.iter_events(kind="alert", since=since, until=until)
             if ev["has_snapshot"]]  # fmt: skip
    items += [_from_audit(a) for a in _audits(store, since, until) if a["has_snapshot"]]
    return sorted(items, key=lambda m: (m.timestamp, m.media_id))


def write_images(store: DatasetSource, items: list[MediaItem], root: Path) -> int:
    """Write each item's JPEG under ``root``; returns how many were written."""
    written = 0
    for m in items:
        row_id = int(m.media_id.split("-", 1)[1])
        jpeg = store.get_snapshot(row_id) if m.kind == "event" else store.get_audit_snapshot(row_id)
        if jpeg is None:
            continue
        path = root / m.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg)
        written += 1
    return written


def prepare(out: Path, *, folder: bool, force: bool) -> None:
    """Make sure writing ``out`` overwrites nothing unasked.

    Raises:
        ExportRefused: when ``out`` exists (a file, or a folder that is not
            empty) and ``force`` is False; or when it is the wrong kind of thing.
    """
    if folder:
        if out.exists() and not out.is_dir():
            raise ExportRefused(f"{out} exists and is not a folder")
        if out.is_dir() and any(out.iterdir()):
            if not force:
                raise ExportRefused(f"{out} exists and is not empty; pass --force to replace it")
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        return
    if out.is_dir():
        raise ExportRefused(f"{out} is a folder; give a file name such as {out / 'md.json'}")
    if out.exists() and not force:
        raise ExportRefused(f"{out} exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)


def _audits(
    store: DatasetSource, since: float | None, until: float | None
) -> Iterator[dict[str, Any]]:
    before: int | None = None
    while True:
        page = store.list_audit_samples(since=since, until=until, limit=PAGE, before_id=before)
        yield from page
        if len(page) < PAGE:
            return
        before = int(page[-1]["id"])


def _from_event(ev: EventRow) -> MediaItem:
    status = ev["review_status"]
    human = {"confirmed": ev["label"], "relabelled": ev["relabel"]}.get(status)
    media_id = f"event-{ev['id']}"
    comment = "; ".join(str(x) for x in (ev["reason_code"], ev["note"]) if x) or None
    return MediaItem(
        media_id=media_id, kind="event", camera=ev["camera"], timestamp=ev["start_at"],
        end=ev["end_at"] if ev["end_at"] is not None else ev["start_at"],
        file=f"{MEDIA_DIR}/{ev['camera']}/{media_id}.jpg", model_label=ev["label"],
        model_score=float(ev["peak_score"]), human_label=human,
        human_status=None if status == "pending" else status, reviewer=ev["reviewer"],
        reviewed_at=ev["reviewed_at"], comment=comment, box=_box(ev), probs=None,
        model_version=ev["model_version"],
    )  # fmt: skip


def _from_audit(a: dict[str, Any]) -> MediaItem:
    media_id = f"audit-{a['id']}"
    probs = {str(k): float(v) for k, v in (a.get("probs") or {}).items()}
    label = a["predicted_label"]
    return MediaItem(
        media_id=media_id, kind="audit", camera=a["camera"], timestamp=a["captured_at"],
        end=a["captured_at"], file=f"{MEDIA_DIR}/{a['camera']}/{media_id}.jpg", model_label=label,
        model_score=probs.get(label, float(a["alert_score"])), human_label=a["label"],
        human_status="labelled" if a["label"] else None, reviewer=a["labelled_by"],
        reviewed_at=a["labelled_at"], comment=a["note"], box=None, probs=probs or None,
        model_version=a["model_version"],
    )  # fmt: skip


def _box(ev: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    """The event's region, normalised (x, y, w, h): a ``box`` field or ``details.box`` where the view plan stored one."""
    details = ev.get("details") or {}
    raw = ev.get("box") or (details.get("box") if isinstance(details, Mapping) else None)
    if not isinstance(raw, list | tuple) or len(raw) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in raw)
    except (TypeError, ValueError):
        return None
    if not (0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1):
        return None  # pixels or nonsense: without the frame size it cannot be normalised
    return x, y, w, h
