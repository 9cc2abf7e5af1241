"""The store's event queries: alert and drift events, snapshots, verdicts, the review queue."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from monitor.records import (
    NewEvent,
    check_choice,
    check_jpeg,
)
from monitor.store.core import StoreCore
from monitor.store.sql import (
    MAX_LIST_LIMIT,
    SELECT_EVENTS,
    apply_verdict,
    box_json,
    event_dict,
    event_filters,
    event_record,
    insert_event,
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
        record = {"op": "add", "event": event_record(ev)}
        return self._write("add_event", record, ev.snapshot_jpeg, lambda c: insert_event(c, ev))

    def update_event(
        self,
        event_id: int,
        *,
        end_at: float | None = None,
        peak_score: float | None = None,
        snapshot_jpeg: bytes | None = None,
        frames: int | None = None,
        details: Mapping[str, Any] | None = None,
        box: tuple[float, float, float, float] | None = None,
        zone: str | None = None,
    ) -> bool:
        """Change an open event; None leaves a field as it is (``zone`` changes with ``box``).

        Returns:
            True when the event exists and was updated; False when it does not
            exist or the write gave up (it is then spilled and replayed later).
        """
        check_jpeg(snapshot_jpeg)
        changes: dict[str, Any] = {
            "end_at": None if end_at is None else float(end_at),
            "peak_score": None if peak_score is None else float(peak_score),
            "frames": None if frames is None else int(frames),
        }
        if details is not None:
            changes["details"] = to_json(details)
        changes = {k: v for k, v in changes.items() if v is not None}
        if box is not None:
            changes["box"], changes["zone"] = box_json(box), zone
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

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """One event without its snapshot bytes (``has_snapshot`` says whether one exists)."""
        with self._reading() as conn:
            rows = conn.execute(SELECT_EVENTS + " WHERE e.id = ?", (event_id,)).fetchall()
        return event_dict(rows[0]) if rows else None

    def get_snapshot(self, event_id: int) -> bytes | None:
        """The event's JPEG, or None when it has none (or does not exist)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT jpeg FROM snapshots WHERE event_id = ?", (event_id,)
            ).fetchall()
        return bytes(rows[0][0]) if rows else None

    def list_events(
        self,
        *,
        camera: str | None = None,
        status: str | None = None,
        label: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
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
        clauses, params = event_filters(camera, status, label, kind, since, until)
        if before_id is not None:
            anchor = "(SELECT start_at FROM events WHERE id = ?)"
            clauses.append(f"(e.start_at < {anchor} OR (e.start_at = {anchor} AND e.id < ?))")
            params += [before_id, before_id, before_id]
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = f"{SELECT_EVENTS}{where} ORDER BY e.start_at DESC, e.id DESC LIMIT ?"
        with self._reading() as conn:
            rows = conn.execute(sql, [*params, limit]).fetchall()
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
    ) -> int:
        """How many events match the same filters as ``list_events``."""
        clauses, params = event_filters(camera, status, label, kind, since, until)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._reading() as conn:
            return int(
                conn.execute(f"SELECT COUNT(*) FROM events e{where}", params).fetchall()[0][0]
            )

    # --- review history -------------------------------------------------------

    def verdict_history(self, event_id: int) -> list[dict[str, Any]]:
        """Every verdict given on an event, oldest first (who, when, what, why)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT status, reviewer, reason_code, note, relabel, reviewed_at FROM verdicts"
                " WHERE event_id = ? ORDER BY reviewed_at, id",
                (event_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def iter_events(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """All events matching ``list_events`` filters, newest first, fetched page by page."""
        before: int | None = None
        while True:
            page = self.list_events(**filters, limit=MAX_LIST_LIMIT, before_id=before)
            yield from page
            if len(page) < MAX_LIST_LIMIT:
                return
            before = int(page[-1]["id"])

    # --- rollout modes ----------------------------------------------------------

    # --- review page queries ---

    def event_cameras(self) -> list[str]:
        """Every camera that has events, sorted.

        A loose index scan (one index probe per distinct camera, portable SQL)
        instead of ``SELECT DISTINCT``, which would read every event row.
        """
        sql = (
            "WITH RECURSIVE c(camera) AS (SELECT MIN(camera) FROM events UNION ALL"
            " SELECT (SELECT MIN(camera) FROM events WHERE camera > c.camera) FROM c"
            " WHERE c.camera IS NOT NULL) SELECT camera FROM c WHERE camera IS NOT NULL"
        )
        with self._reading() as conn:
            return [str(r[0]) for r in conn.execute(sql).fetchall()]

    def seen_labels(self) -> list[str]:
        """The model's labels as seen in the store: alert events' labels and the newest audit sample's classes."""
        sql = (
            "WITH RECURSIVE l(label) AS ("
            "SELECT MIN(label) FROM events WHERE kind = 'alert' UNION ALL"
            " SELECT (SELECT MIN(label) FROM events WHERE label > l.label AND kind = 'alert')"
            " FROM l WHERE l.label IS NOT NULL) SELECT label FROM l WHERE label IS NOT NULL"
        )
        with self._reading() as conn:
            labels = {str(r[0]) for r in conn.execute(sql).fetchall()}
            newest = conn.execute(
                "SELECT probs FROM audit_samples ORDER BY id DESC LIMIT 1"
            ).fetchall()
        if newest:
            labels.update(str(k) for k in json.loads(newest[0][0]))
        return sorted(labels)
