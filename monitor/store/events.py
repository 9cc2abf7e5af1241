"""The store's event queries: alert and drift events, snapshots, verdicts, the review queue."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

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
    event_dict,
    event_filters,
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
    ) -> bool:
        """Change an open event; None leaves a field as it is.

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
        }
        if details is not None:
            changes["details"] = to_json(details)
        changes = {k: v for k, v in changes.items() if v is not None}
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
    ) -> bool:
        """Record a reviewer's verdict: the event shows the latest, ``verdicts`` keeps them all.

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
        verdict = {
            "status": status,
            "reviewer": reviewer,
            "reason_code": reason_code,
            "note": note,
            "relabel": relabel,
            "reviewed_at": time.time() if reviewed_at is None else reviewed_at,
        }
        record = {"op": "verdict", "event_id": event_id, "verdict": verdict}
        return bool(
            self._write("set_verdict", record, None, lambda c: apply_verdict(c, event_id, verdict))
        )

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
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[EventRow]:
        """Events newest first (start_at, then id), filtered; ``since`` inclusive, ``until`` exclusive.

        Args:
            limit: at most this many (1..1000).
            before_id: keyset pagination: only events that sort after this one
                (pass the last id of the previous page). An unknown id gives [].

        Raises:
            ValueError: for an unknown status or kind, or a limit out of range.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be within 1..{MAX_LIST_LIMIT}, got {limit}")
        clauses = event_filters(camera, status, label, kind, since, until, site)
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
    ) -> int:
        """How many events match the same filters as ``list_events``."""
        clauses = event_filters(camera, status, label, kind, since, until, site)
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

    # --- review page queries ---

    def event_cameras(self) -> list[str]:
        """Every camera that has events, sorted (all sites)."""
        return self._distinct(events.c.camera)

    def event_sites(self) -> list[str]:
        """Every site that has events, sorted (the review page's site filter)."""
        return self._distinct(events.c.site)

    def _distinct(self, column: Any, *where: Any) -> list[str]:
        """Distinct values by a loose index scan: one index probe per value, not a read of every row.

        Portable SQL (a recursive CTE of ``MIN(col) WHERE col > previous``), where
        ``SELECT DISTINCT`` would read every event row on both engines.
        """
        first = select(func.min(column).label("v")).where(*where).cte("vals", recursive=True)
        step = select(func.min(column)).where(column > first.c.v, *where).scalar_subquery()
        cte = first.union_all(select(step).where(first.c.v.is_not(None)))
        with self._reading() as conn:
            rows = conn.execute(select(cte.c.v).where(cte.c.v.is_not(None))).scalars()
            return [str(r) for r in rows]

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
