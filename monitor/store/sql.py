"""Queries shared by the store's parts, built from the tables in ``schema.py``: inserts, upserts, filters, rows."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from monitor.records import AuditSample, EventRow, NewEvent, check_choice
from monitor.store.schema import audit_samples, deliveries, events, snapshots, verdicts
from monitor.types import EVENT_KINDS, REVIEW_STATUSES

logger = logging.getLogger(__name__)
MAX_LIST_LIMIT = 1000

EVENT_COLUMNS = [c for c in events.c if c.name != "appearance"]  # lists never carry the picture
HAS_SNAPSHOT = snapshots.c.event_id.is_not(None).label("has_snapshot")


def select_events(*extra: ColumnElement[Any], base: Any = None) -> Select[Any]:
    """Events with ``has_snapshot`` (never the JPEG bytes); ``base``: events already joined to more."""
    base = events if base is None else base
    return select(*extra, *EVENT_COLUMNS, HAS_SNAPSHOT).select_from(
        base.outerjoin(snapshots, snapshots.c.event_id == events.c.id)
    )


def insert_for(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT`` (same syntax on both engines)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


# Built once: the alert path writes hundreds of events a second, and building a
# statement costs more than SQLAlchemy's cached compile of it.
FIND_EVENT = select(events.c.id).where(
    events.c.site == bindparam("k_site"),
    events.c.camera == bindparam("k_camera"),
    events.c.kind == bindparam("k_kind"),
    events.c.label == bindparam("k_label"),
    events.c.start_at == bindparam("k_start_at"),
)
_INSERT_NEW_EVENT: dict[str, Any] = {}
_UPSERT_SNAPSHOT: dict[str, Any] = {}


NEW_EVENT_COLUMNS = (
    "site", "kind", "camera", "label", "peak_score", "start_at", "end_at", "model_version",
    "mode", "drift_flags", "ood_score", "details", "frames", "unfamiliar", "held",
    "night_class", "box", "zone", "created_at", "updated_at", "last_frame_at", "appearance",
    "suppressed_by",
)  # fmt: skip


def _pg_event_with_snapshot() -> Any:
    """PostgreSQL: the event and its snapshot in one statement (one round trip, not two)."""
    new = (
        postgresql.insert(events)
        .values({c: bindparam(c, type_=events.c[c].type) for c in NEW_EVENT_COLUMNS})
        .on_conflict_do_nothing(index_elements=["site", "camera", "kind", "label", "start_at"])
        .returning(events.c.id)
        .cte("new_event")
    )
    snap = postgresql.insert(snapshots).from_select(
        ["event_id", "jpeg", "updated_at"],
        select(
            new.c.id,
            bindparam("jpeg", type_=snapshots.c.jpeg.type),
            bindparam("snap_at", type_=snapshots.c.updated_at.type),
        ),
    )
    return select(new.c.id).add_cte(snap.cte("new_snapshot"))


_PG_EVENT_WITH_SNAPSHOT = _pg_event_with_snapshot()


def insert_event(conn: Connection, ev: NewEvent, site: str) -> int:
    now = time.time()
    stmt = _INSERT_NEW_EVENT.get(conn.dialect.name)
    if stmt is None:
        # One round trip for a new event: a duplicate (a replayed spill) inserts
        # nothing and returns no id, and is then merged below.
        stmt = _INSERT_NEW_EVENT[conn.dialect.name] = (
            insert_for(conn, events)
            .on_conflict_do_nothing(index_elements=["site", "camera", "kind", "label", "start_at"])
            .returning(events.c.id)
        )
    with_snapshot = conn.dialect.name == "postgresql" and ev.snapshot_jpeg is not None
    params = {"jpeg": ev.snapshot_jpeg, "snap_at": now} if with_snapshot else {}
    new_id = conn.execute(
        _PG_EVENT_WITH_SNAPSHOT if with_snapshot else stmt,
        params
        | dict(
            site=site, kind=ev.kind, camera=ev.camera, label=ev.label,
            peak_score=ev.peak_score, start_at=ev.start_at, end_at=ev.end_at,
            model_version=ev.model_version, mode=ev.mode,
            drift_flags=json.dumps(list(ev.drift_flags)), ood_score=ev.ood_score,
            details=to_json(ev.details), frames=ev.frames, unfamiliar=int(ev.unfamiliar),
            held=int(ev.held), night_class=ev.night_class, box=box_json(ev.box), zone=ev.zone,
            created_at=now, updated_at=now,
            last_frame_at=ev.start_at if ev.end_at is None else ev.end_at,
            appearance=ev.appearance, suppressed_by=ev.suppressed_by,
        ),
    ).scalar()  # fmt: skip
    if new_id is None:
        key = {"k_site": site, "k_camera": ev.camera, "k_kind": ev.kind, "k_label": ev.label,
               "k_start_at": ev.start_at}  # fmt: skip
        found = int(conn.execute(FIND_EVENT, key).scalar_one())
        # The same event again (a replayed spill, or a caller re-adding after a
        # spilled add): keep one row and take the newer state of what can change.
        changes: dict[str, Any] = {
            "end_at": ev.end_at,
            "peak_score": ev.peak_score,
            "frames": ev.frames,
        }
        if ev.box is not None:
            changes["box"], changes["zone"] = box_json(ev.box), ev.zone
        if ev.appearance is not None:
            changes["appearance"] = ev.appearance
        update_event_row(conn, found, {**changes, "details": to_json(ev.details)}, ev.snapshot_jpeg)
        return found
    if ev.snapshot_jpeg is not None and not with_snapshot:
        put_snapshot(conn, int(new_id), ev.snapshot_jpeg, now)
    return int(new_id)


UPDATABLE = (
    "end_at", "peak_score", "frames", "details", "last_frame_at", "interrupted", "box", "zone",
    "appearance",
)  # fmt: skip


def update_event_row(
    conn: Connection, event_id: int, changes: Mapping[str, Any], jpeg: bytes | None
) -> bool:
    now = time.time()
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    result = conn.execute(
        events.update().where(events.c.id == event_id).values(**changes, updated_at=now)
    )
    if result.rowcount == 0:
        return False
    if jpeg is not None:
        put_snapshot(conn, event_id, jpeg, now)
    return True


def apply_verdict(conn: Connection, event_id: int, v: Mapping[str, Any]) -> bool:
    cols = ("status", "reviewer", "reason_code", "note", "relabel", "reviewed_at")
    # An undo's history row keeps its "undo" marker; the event shows the reason
    # and note of the state it went back to (none for pending), not "undo".
    shown = v.get("restores") or v
    result = conn.execute(
        events.update()
        .where(events.c.id == event_id)
        .values(
            review_status=v["status"], reviewer=v["reviewer"],
            reason_code=shown.get("reason_code"), note=shown.get("note"), relabel=v["relabel"],
            reviewed_at=v["reviewed_at"], updated_at=time.time(),
        )
    )  # fmt: skip
    if result.rowcount == 0:
        return False
    seen = conn.execute(
        select(verdicts.c.id).where(
            verdicts.c.event_id == event_id,
            verdicts.c.reviewer == v["reviewer"],
            verdicts.c.reviewed_at == v["reviewed_at"],
        )
    ).first()
    if seen is None:  # a replayed spill must not record the same verdict twice
        conn.execute(verdicts.insert().values(event_id=event_id, **{c: v[c] for c in cols}))
    return True


def close_interrupted(conn: Connection, site: str) -> list[tuple[int, str, float]]:
    """Close every event of ``site`` still open, at its last recorded frame, and mark it interrupted.

    Only this box's site: another box's open events belong to a daemon that
    may well be running.

    Returns:
        ``(id, camera, end_at)`` of each event closed.
    """
    e = events.c
    end = func.coalesce(e.last_frame_at, e.start_at)
    rows = conn.execute(select(e.id, e.camera, end).where(e.end_at.is_(None), e.site == site)).all()
    now = time.time()
    for event_id, _, end_at in rows:
        conn.execute(
            events.update()
            .where(e.id == event_id)
            .values(end_at=end_at, interrupted=1, updated_at=now)
        )
    return [(int(r[0]), str(r[1]), float(r[2])) for r in rows]


def upsert_delivery(
    conn: Connection, event_id: int, channel: str, trigger: str, ok: bool, error: str | None
) -> None:
    """Record one delivery attempt (attempts add up; the last error is kept) and release any claim."""
    now = time.time()
    stmt = insert_for(conn, deliveries).values(
        event_id=event_id, channel=channel, trigger=trigger,
        status="sent" if ok else "failed", attempts=1, last_error=error, updated_at=now,
    )  # fmt: skip
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[deliveries.c.event_id, deliveries.c.channel],
            set_={
                "status": stmt.excluded.status,
                "trigger": stmt.excluded.trigger,
                "attempts": deliveries.c.attempts + 1,
                "last_error": stmt.excluded.last_error,
                "updated_at": stmt.excluded.updated_at,
                "claimed_by": None,
                "claim_until": None,
            },
        )
    )


def event_key(ev: NewEvent, site: str) -> dict[str, Any]:
    """An event's natural key, which names it before it has an id (in the spill)."""
    return {
        "site": site, "camera": ev.camera, "kind": ev.kind, "label": ev.label,
        "start_at": ev.start_at,
    }  # fmt: skip


def deliver_by_key(
    conn: Connection,
    key: Mapping[str, Any],
    channel: str,
    trigger: str,
    ok: bool,
    error: str | None,
) -> bool:
    """Record a delivery of the event with this natural key; False when no such event is stored."""
    found = conn.execute(FIND_EVENT, {f"k_{k}": v for k, v in key.items()}).scalar()
    if found is None:
        return False
    upsert_delivery(conn, int(found), channel, trigger, ok, error)
    return True


def put_snapshot(conn: Connection, event_id: int, jpeg: bytes, now: float) -> None:
    stmt = _UPSERT_SNAPSHOT.get(conn.dialect.name)
    if stmt is None:
        base = insert_for(conn, snapshots)
        stmt = _UPSERT_SNAPSHOT[conn.dialect.name] = base.on_conflict_do_update(
            index_elements=[snapshots.c.event_id],
            set_={"jpeg": base.excluded.jpeg, "updated_at": base.excluded.updated_at},
        )
    conn.execute(stmt, {"event_id": event_id, "jpeg": jpeg, "updated_at": now})


def replay_step(line: str, site: str) -> Callable[[Connection], object]:
    """Parse one spill line into the write it stands for (raises ValueError/KeyError if corrupt)."""
    rec = json.loads(line)
    jpeg = base64.b64decode(rec["snapshot_b64"]) if rec.get("snapshot_b64") else None
    if rec["op"] == "add":
        ev = NewEvent(
            **{
                **rec["event"],
                "snapshot_jpeg": jpeg,
                "drift_flags": tuple(rec["event"]["drift_flags"]),
                "box": None if rec["event"].get("box") is None else tuple(rec["event"]["box"]),
            }
        )
        return lambda c: insert_event(c, ev, rec.get("site", site))
    if rec["op"] == "update":
        return lambda c: update_event_row(c, int(rec["event_id"]), rec["changes"], jpeg)
    if rec["op"] == "verdict":
        return lambda c: apply_verdict(c, int(rec["event_id"]), rec["verdict"])
    if rec["op"] == "delivery":  # a notification sent while the event was only in the spill
        # Spill lines from before the fleet schema name no site: this box's.
        key = {"site": site, **rec["key"]}
        return lambda c: deliver_by_key(
            c, key, str(rec["channel"]), str(rec["trigger"]), bool(rec["ok"]), rec["error"]
        )
    raise ValueError(f"unknown spill op {rec['op']!r}")


def event_filters(
    camera: str | None,
    status: str | None,
    label: str | None,
    kind: str | None,
    since: float | None,
    until: float | None,
    site: str | None = None,
    suppressed: bool | None = None,
) -> list[ColumnElement[bool]]:
    """WHERE clauses of the event filters; ``suppressed``: True only repeat false alarms, False none, None both."""
    if status is not None:
        check_choice("status", status, REVIEW_STATUSES)
    if kind is not None:
        check_choice("kind", kind, EVENT_KINDS)
    clauses: list[ColumnElement[bool]] = []
    for column, value in (
        (events.c.site, site),
        (events.c.camera, camera),
        (events.c.review_status, status),
        (events.c.label, label),
        (events.c.kind, kind),
    ):
        if value is not None:
            clauses.append(column == value)
    if suppressed is not None:
        clauses.append(
            events.c.suppressed_by.is_not(None) if suppressed else events.c.suppressed_by.is_(None)
        )
    return clauses + time_filters(events.c.start_at, since, until)


def event_dict(row: RowMapping) -> EventRow:
    out = dict(row)
    out["drift_flags"] = json.loads(out["drift_flags"])
    out["details"] = json.loads(out["details"])
    out["has_snapshot"] = bool(out["has_snapshot"])
    out["unfamiliar"] = bool(out["unfamiliar"])
    out["held"] = bool(out["held"])
    out["interrupted"] = bool(out["interrupted"])
    out["box"] = None if out["box"] is None else json.loads(out["box"])
    return cast(EventRow, out)


def box_json(box: tuple[float, ...] | None) -> str | None:
    return None if box is None else json.dumps([round(float(v), 4) for v in box])


def event_record(ev: NewEvent) -> dict[str, Any]:
    """The spill form of an event: JSON-safe, the snapshot kept apart so it is never logged."""
    rec = {f.name: getattr(ev, f.name) for f in fields(ev) if f.name != "snapshot_jpeg"}
    rec["drift_flags"] = list(ev.drift_flags)
    rec["box"] = None if ev.box is None else list(ev.box)
    rec["details"] = json.loads(to_json(ev.details))
    return rec


def to_json(value: Mapping[str, Any]) -> str:
    # NumPy scalars turn up in details; anything else unknown is kept as text rather than lost.
    return json.dumps(
        dict(value), sort_keys=True, default=lambda o: o.item() if hasattr(o, "item") else str(o)
    )


def b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


def insert_audit(conn: Connection, s: AuditSample, site: str) -> int:
    result = conn.execute(
        audit_samples.insert().values(
            site=site, camera=s.camera, captured_at=float(s.captured_at), reason=s.reason,
            model_version=s.model_version, predicted_label=s.predicted_label,
            alert_score=float(s.alert_score), probs=to_json(s.probs), snapshot=s.snapshot_jpeg,
            night_class=s.night_class, created_at=time.time(),
        )
    )  # fmt: skip
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def time_filters(
    column: Column[Any] | ColumnElement[Any], since: float | None, until: float | None
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if since is not None:
        clauses.append(column >= since)
    if until is not None:
        clauses.append(column < until)
    return clauses


def any_of(*clauses: ColumnElement[bool]) -> ColumnElement[bool]:
    return or_(*clauses)
