"""The store's event queries: alert and drift events, snapshots, verdicts, the review queue."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from monitor.decide.repeats import RejectedSpot
from monitor.records import (
    EventRow,
    NewEvent,
    check_choice,
    check_jpeg,
)
from monitor.store.core import StoreCore
from monitor.store.schema import audit_samples, events, snapshots, verdicts
from monitor.store.sql import (
    MAX_LIST_LIMIT,
    apply_verdict,
    box_json,
    close_interrupted,
    deliver_by_key,
    event_dict,
    event_filters,
    event_key,
    event_record,
    insert_event,
    select_events,
    to_json,
    update_event_row,
)
from monitor.types import REVIEW_STATUSES

logger = logging.getLogger(__name__)


class EventQueries(StoreCore):
    """Events: added by the alert stage, listed and reviewed by the web and the CLI."""

    def add_event(self, ev: NewEvent) -> int | None:
        """Store a new event (and its snapshot) and commit.

        Returns:
            The event id, or None when the write gave up and the event was spilled.
            An event whose (camera, kind, label, start_at) is already stored is
            not added twice: that row takes this end_at, peak_score, frames,
            details and snapshot, and its id is returned.
        """
        if ev.snapshot_jpeg is not None and not self.snapshots_allowed():
            ev = replace(ev, snapshot_jpeg=None)
        record = {"op": "add", "site": self.site, "event": event_record(ev)}

        def write(conn: Connection) -> int:
            # A "disk full" on an earlier attempt stops snapshots: this one keeps the row.
            keep = replace(ev, snapshot_jpeg=None) if self._disk_low else ev
            return insert_event(conn, keep, self.site)

        return self._write("add_event", record, ev.snapshot_jpeg, write)

    def update_event(
        self,
        event_id: int,
        *,
        end_at: float | None = None,
        peak_score: float | None = None,
        snapshot_jpeg: bytes | None = None,
        frames: int | None = None,
        details: Mapping[str, Any] | None = None,
        last_frame_at: float | None = None,
        box: tuple[float, float, float, float] | None = None,
        zone: str | None = None,
        appearance: str | None = None,
    ) -> bool:
        """Change an open event; None leaves a field as it is (``zone`` changes with ``box``).

        ``last_frame_at`` is the time of the event's latest frame: a crash
        recovery closes the event there. An end clears ``interrupted`` (a
        spilled end replayed after a recovery closed the event is the real end).

        Returns:
            True when the event exists and was updated; False when it does not
            exist or the write gave up (it is then spilled and replayed later).
        """
        check_jpeg(snapshot_jpeg)
        if snapshot_jpeg is not None and not self.snapshots_allowed():
            snapshot_jpeg = None
        changes: dict[str, Any] = {
            "end_at": None if end_at is None else float(end_at),
            "peak_score": None if peak_score is None else float(peak_score),
            "frames": None if frames is None else int(frames),
            "last_frame_at": None if last_frame_at is None else float(last_frame_at),
        }
        if details is not None:
            changes["details"] = to_json(details)
        changes = {k: v for k, v in changes.items() if v is not None}
        if end_at is not None:
            changes["interrupted"] = 0
            changes.setdefault("last_frame_at", float(end_at))
        if box is not None:
            changes["box"], changes["zone"] = box_json(box), zone
        if appearance is not None:
            changes["appearance"] = appearance
        record = {"op": "update", "event_id": event_id, "changes": changes}
        done = self._write(
            "update_event",
            record,
            snapshot_jpeg,
            lambda c: update_event_row(c, event_id, changes, snapshot_jpeg),
        )
        return bool(done)

    def set_verdict(
        self,
        event_id: int,
        status: str,
        reviewer: str,
        reason_code: str | None = None,
        note: str | None = None,
        relabel: str | None = None,
        *,
        reviewed_at: float | None = None,
        restores: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a reviewer's verdict: the event shows the latest, ``verdicts`` keeps them all.

        Args:
            restores: for an undo, the verdict it goes back to (its ``reason_code``
                and ``note``, or empty for pending): the event shows those, while
                the history row keeps the undo's own reason and note.

        Returns:
            True when the event exists and the verdict was stored.

        Raises:
            ValueError: for an unknown status, an empty reviewer, or a relabel
                given without status ``relabelled`` (or missing with it).
        """
        check_choice("status", status, REVIEW_STATUSES)
        if not reviewer:
            raise ValueError("reviewer must be non-empty")
        if (status == "relabelled") != bool(relabel):
            raise ValueError("relabel is required with status 'relabelled' and only with it")
        verdict: dict[str, Any] = {
            "status": status,
            "reviewer": reviewer,
            "reason_code": reason_code,
            "note": note,
            "relabel": relabel,
            "reviewed_at": time.time() if reviewed_at is None else reviewed_at,
        }
        if restores is not None:
            verdict["restores"] = {
                "reason_code": restores.get("reason_code"),
                "note": restores.get("note"),
            }
        record = {"op": "verdict", "event_id": event_id, "verdict": verdict}
        return bool(
            self._write("set_verdict", record, None, lambda c: apply_verdict(c, event_id, verdict))
        )

    def record_spilled_delivery(
        self, ev: NewEvent, channel: str, trigger: str, ok: bool, error: str | None = None
    ) -> None:
        """Note a notification sent for an event that is only in the spill (no id yet).

        The record follows the event into the spill, so once both replay the
        outbox sees the delivery and does not send the event again. Never
        waits for a locked database (the notification has already gone out).
        """
        key = event_key(ev, self.site)
        record = {
            "op": "delivery", "key": key, "channel": channel, "trigger": trigger,
            "ok": ok, "error": error,
        }  # fmt: skip
        with self.write_budget(0.0):
            self._write(
                "record_delivery",
                record,
                None,
                lambda c: deliver_by_key(c, key, channel, trigger, ok, error),
            )

    def close_interrupted_events(self) -> list[tuple[int, str, float]]:
        """At start, before any camera runs: close this site's events a crash left open, marked interrupted.

        Each closes at its last recorded frame (``last_frame_at``; the start for
        rows written before that column existed). Only the daemon calls this,
        and only while no alert stage of its own is running; other sites'
        events (other boxes sharing the store) are left alone.

        Returns:
            ``(id, camera, end_at)`` per event closed.

        Raises:
            StoreError: when the store cannot be written (the daemon refuses to start
                rather than leave events open for ever).
        """
        closed = self._write_or_raise(
            "close_interrupted", lambda c: close_interrupted(c, self.site)
        )
        for event_id, camera, end_at in closed:
            logger.warning(
                "review store: event %d on camera %s was left open by a crash; "
                "closed at its last recorded frame (%.3f) and marked interrupted",
                event_id, camera, end_at,
            )  # fmt: skip
        return closed

    def get_event(self, event_id: int) -> EventRow | None:
        """One event without its snapshot bytes (``has_snapshot`` says whether one exists)."""
        with self._reading() as conn:
            row = conn.execute(select_events().where(events.c.id == event_id)).mappings().first()
        return event_dict(row) if row is not None else None

    def get_snapshot(self, event_id: int) -> bytes | None:
        """The event's JPEG, or None when it has none (or does not exist)."""
        with self._reading() as conn:
            jpeg = conn.execute(
                select(snapshots.c.jpeg).where(snapshots.c.event_id == event_id)
            ).scalar()
        return bytes(jpeg) if jpeg is not None else None

    def list_events(
        self,
        *,
        camera: str | None = None,
        status: str | None = None,
        label: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        suppressed: bool | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[EventRow]:
        """Events newest first (start_at, then id), filtered; ``since`` inclusive, ``until`` exclusive.

        Args:
            suppressed: True: only repeat false alarms (like a rejected event);
                False: none of them; None: both.
            limit: at most this many (1..1000).
            before_id: keyset pagination: only events that sort after this one
                (pass the last id of the previous page). An unknown id gives [].

        Raises:
            ValueError: for an unknown status or kind, or a limit out of range.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be within 1..{MAX_LIST_LIMIT}, got {limit}")
        clauses = event_filters(camera, status, label, kind, since, until, site, suppressed)
        if before_id is not None:
            anchor = select(events.c.start_at).where(events.c.id == before_id).scalar_subquery()
            clauses.append(
                or_(
                    events.c.start_at < anchor,
                    and_(events.c.start_at == anchor, events.c.id < before_id),
                )
            )
        query = (
            select_events()
            .where(*clauses)
            .order_by(events.c.start_at.desc(), events.c.id.desc())
            .limit(limit)
        )
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        return [event_dict(r) for r in rows]

    def count_events(
        self,
        *,
        camera: str | None = None,
        status: str | None = None,
        label: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        suppressed: bool | None = None,
    ) -> int:
        """How many events match the same filters as ``list_events``."""
        clauses = event_filters(camera, status, label, kind, since, until, site, suppressed)
        with self._reading() as conn:
            return int(
                conn.execute(select(func.count()).select_from(events).where(*clauses)).scalar_one()
            )

    # --- review history -------------------------------------------------------

    def verdict_history(self, event_id: int) -> list[dict[str, Any]]:
        """Every verdict given on an event, oldest first (who, when, what, why)."""
        v = verdicts.c
        query = (
            select(v.status, v.reviewer, v.reason_code, v.note, v.relabel, v.reviewed_at)
            .where(v.event_id == event_id)
            .order_by(v.reviewed_at, v.id)
        )
        with self._reading() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def iter_events(self, **filters: Any) -> Iterator[EventRow]:
        """All events matching ``list_events`` filters, newest first, fetched page by page."""
        before: int | None = None
        while True:
            page = self.list_events(**filters, limit=MAX_LIST_LIMIT, before_id=before)
            yield from page
            if len(page) < MAX_LIST_LIMIT:
                return
            before = int(page[-1]["id"])

    def rejected_spots(self, since: float) -> list[RejectedSpot]:
        """This site's alerts rejected at or after ``since`` that left a picture: what repeats are matched against.

        An undone rejection is no longer ``rejected``, so it drops out here.
        """
        e = events.c
        query = (
            select(e.id, e.camera, e.label, e.box, e.appearance, e.reviewed_at)
            .where(
                e.site == self.site,
                e.kind == "alert",
                e.review_status == "rejected",
                e.reviewed_at >= since,
                e.appearance.is_not(None),
                e.box.is_not(None),
            )
            .order_by(e.id)
        )
        with self._reading() as conn:
            rows = conn.execute(query).all()
        spots = []
        for row in rows:
            try:
                x0, y0, x1, y1 = (float(v) for v in json.loads(row.box))
                picture = base64.b64decode(row.appearance, validate=True)
            except (ValueError, TypeError):
                logger.warning("event %s: unreadable box or picture; not used for repeats", row.id)
                continue
            box = (x0, y0, x1, y1)
            spots.append(
                RejectedSpot(int(row.id), row.camera, row.label, box, picture, row.reviewed_at)
            )
        return spots

    # --- review page queries ---

    def event_cameras(self) -> list[str]:
        """Every camera that has events, sorted (all sites)."""
        return self._distinct(events.c.camera)

    def event_sites(self) -> list[str]:
        """Every site that has events, sorted (the review page's site filter)."""
        return self._distinct(events.c.site)

    def seen_labels(self) -> list[str]:
        """The model's labels as seen in the store: alert events' labels and the newest audit sample's classes."""
        labels = set(self._distinct(events.c.label, events.c.kind == "alert"))
        with self._reading() as conn:
            newest = conn.execute(
                select(audit_samples.c.probs).order_by(audit_samples.c.id.desc()).limit(1)
            ).scalar()
        if newest is not None:
            labels.update(str(k) for k in json.loads(newest))
        return sorted(labels)
