"""SQL helpers shared by the store's parts: connections, row conversions, inserts and filters."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from monitor.records import AuditSample, NewEvent, check_choice
from monitor.types import EVENT_KINDS, REVIEW_STATUSES

logger = logging.getLogger(__name__)
MAX_LIST_LIMIT = 1000

EVENT_FIELDS = (
    "kind, camera, label, peak_score, start_at, end_at, model_version, mode,"
    " drift_flags, ood_score, details, frames, unfamiliar, held, night_class, box, zone,"
    " created_at, updated_at, last_frame_at"
)
SELECT_EVENTS = (
    "SELECT e.id, e.kind, e.camera, e.label, e.peak_score, e.start_at, e.end_at,"
    " e.model_version, e.mode, e.drift_flags, e.ood_score, e.details, e.frames,"
    " e.unfamiliar, e.held, e.night_class,"
    " e.review_status, e.reviewer, e.reason_code, e.note, e.relabel, e.reviewed_at,"
    " e.created_at, e.updated_at, e.interrupted, e.box, e.zone,"
    " s.event_id IS NOT NULL AS has_snapshot"
    " FROM events e LEFT JOIN snapshots s ON s.event_id = e.id"
)


def connect(path: Path, busy_timeout_ms: int, *, read_only: bool) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit, so "committed before returning" is visible here.
    conn = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    # SQLite: per-connection settings. NORMAL in WAL survives a process crash;
    # only a power cut can lose the last commits.
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.warning("review store: rollback failed: %s", exc)


def insert_event(conn: sqlite3.Connection, ev: NewEvent) -> int:
    found = conn.execute(
        "SELECT id FROM events WHERE camera = ? AND kind = ? AND label = ? AND start_at = ?",
        (ev.camera, ev.kind, ev.label, ev.start_at),
    ).fetchall()
    if found:
        # The same event again (a replayed spill, or a caller re-adding after a
        # spilled add): keep one row and take the newer state of what can change.
        changes: dict[str, Any] = {
            "end_at": ev.end_at,
            "peak_score": ev.peak_score,
            "frames": ev.frames,
        }
        if ev.box is not None:
            changes["box"], changes["zone"] = box_json(ev.box), ev.zone
        update_event_row(
            conn, int(found[0][0]), {**changes, "details": to_json(ev.details)}, ev.snapshot_jpeg
        )
        return int(found[0][0])
    now = time.time()
    cur = conn.execute(
        f"INSERT INTO events ({EVENT_FIELDS}) VALUES ({', '.join('?' * 20)})",
        (
            ev.kind, ev.camera, ev.label, ev.peak_score, ev.start_at, ev.end_at,
            ev.model_version, ev.mode, json.dumps(list(ev.drift_flags)), ev.ood_score,
            to_json(ev.details), ev.frames, int(ev.unfamiliar), int(ev.held), ev.night_class,
            box_json(ev.box), ev.zone, now, now,
            ev.start_at if ev.end_at is None else ev.end_at,
        ),
    )  # fmt: skip
    event_id = int(cur.lastrowid or 0)  # SQLite: PostgreSQL would use RETURNING id
    if ev.snapshot_jpeg is not None:
        put_snapshot(conn, event_id, ev.snapshot_jpeg, now)
    return event_id


def update_event_row(
    conn: sqlite3.Connection, event_id: int, changes: Mapping[str, Any], jpeg: bytes | None
) -> bool:
    now = time.time()
    # Column names come from update_event's fixed keywords, never from callers' strings.
    sets = "".join(f"{col} = ?, " for col in changes)
    cur = conn.execute(
        f"UPDATE events SET {sets}updated_at = ? WHERE id = ?", [*changes.values(), now, event_id]
    )
    if cur.rowcount == 0:
        return False
    if jpeg is not None:
        put_snapshot(conn, event_id, jpeg, now)
    return True


def apply_verdict(conn: sqlite3.Connection, event_id: int, v: Mapping[str, Any]) -> bool:
    # An undo's history row keeps its "undo" marker; the event shows the reason
    # and note of the state it went back to (none for pending), not "undo".
    shown = v.get("restores") or v
    cur = conn.execute(
        "UPDATE events SET review_status = ?, reviewer = ?, reason_code = ?, note = ?, relabel = ?,"
        " reviewed_at = ?, updated_at = ? WHERE id = ?",
        (v["status"], v["reviewer"], shown.get("reason_code"), shown.get("note"), v["relabel"],
         v["reviewed_at"], time.time(), event_id),
    )  # fmt: skip
    if cur.rowcount == 0:
        return False
    seen = conn.execute(
        "SELECT 1 FROM verdicts WHERE event_id = ? AND reviewer = ? AND reviewed_at = ?",
        (event_id, v["reviewer"], v["reviewed_at"]),
    ).fetchall()
    if not seen:  # a replayed spill must not record the same verdict twice
        conn.execute(
            "INSERT INTO verdicts (event_id, status, reviewer, reason_code, note, relabel,"
            " reviewed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event_id, v["status"], v["reviewer"], v["reason_code"], v["note"], v["relabel"],
             v["reviewed_at"]),
        )  # fmt: skip
    return True


def close_interrupted(conn: sqlite3.Connection) -> list[tuple[int, str, float]]:
    """Close every event still open, at its last recorded frame, and mark it interrupted.

    Returns:
        ``(id, camera, end_at)`` of each event closed.
    """
    rows = conn.execute(
        "SELECT id, camera, COALESCE(last_frame_at, start_at) FROM events WHERE end_at IS NULL"
    ).fetchall()
    now = time.time()
    for event_id, _, end_at in rows:
        conn.execute(
            "UPDATE events SET end_at = ?, interrupted = 1, updated_at = ? WHERE id = ?",
            (end_at, now, event_id),
        )
    return [(int(r[0]), str(r[1]), float(r[2])) for r in rows]


def upsert_delivery(
    conn: sqlite3.Connection, event_id: int, channel: str, trigger: str, ok: bool, error: str | None
) -> None:
    conn.execute(
        "INSERT INTO deliveries (event_id, channel, trigger, status, attempts, last_error, updated_at)"
        " VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (event_id, channel) DO UPDATE SET"
        " status = excluded.status, trigger = excluded.trigger,"
        " attempts = deliveries.attempts + 1, last_error = excluded.last_error,"
        " updated_at = excluded.updated_at",
        (event_id, channel, trigger, "sent" if ok else "failed", error, time.time()),
    )


def event_key(ev: NewEvent) -> dict[str, Any]:
    """An event's natural key, which names it before it has an id (in the spill)."""
    return {"camera": ev.camera, "kind": ev.kind, "label": ev.label, "start_at": ev.start_at}


def deliver_by_key(
    conn: sqlite3.Connection,
    key: Mapping[str, Any],
    channel: str,
    trigger: str,
    ok: bool,
    error: str | None,
) -> bool:
    """Record a delivery of the event with this natural key; False when no such event is stored."""
    found = conn.execute(
        "SELECT id FROM events WHERE camera = ? AND kind = ? AND label = ? AND start_at = ?",
        (key["camera"], key["kind"], key["label"], key["start_at"]),
    ).fetchall()
    if not found:
        return False
    upsert_delivery(conn, int(found[0][0]), channel, trigger, ok, error)
    return True


def put_snapshot(conn: sqlite3.Connection, event_id: int, jpeg: bytes, now: float) -> None:
    conn.execute(
        "INSERT INTO snapshots (event_id, jpeg, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET jpeg = excluded.jpeg, updated_at = excluded.updated_at",
        (event_id, jpeg, now),
    )


def replay_step(line: str) -> Callable[[sqlite3.Connection], object]:
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
        return lambda c: insert_event(c, ev)
    if rec["op"] == "update":
        return lambda c: update_event_row(c, int(rec["event_id"]), rec["changes"], jpeg)
    if rec["op"] == "verdict":
        return lambda c: apply_verdict(c, int(rec["event_id"]), rec["verdict"])
    if rec["op"] == "delivery":  # a notification sent while the event was only in the spill
        return lambda c: deliver_by_key(
            c, rec["key"], str(rec["channel"]), str(rec["trigger"]), bool(rec["ok"]), rec["error"]
        )
    raise ValueError(f"unknown spill op {rec['op']!r}")


def event_filters(
    camera: str | None,
    status: str | None,
    label: str | None,
    kind: str | None,
    since: float | None,
    until: float | None,
) -> tuple[list[str], list[Any]]:
    if status is not None:
        check_choice("status", status, REVIEW_STATUSES)
    if kind is not None:
        check_choice("kind", kind, EVENT_KINDS)
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("camera", camera),
        ("review_status", status),
        ("label", label),
        ("kind", kind),
    ):
        if value is not None:
            clauses.append(f"e.{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("e.start_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("e.start_at < ?")
        params.append(until)
    return clauses, params


def event_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["drift_flags"] = json.loads(out["drift_flags"])
    out["details"] = json.loads(out["details"])
    out["has_snapshot"] = bool(out["has_snapshot"])
    out["unfamiliar"] = bool(out.get("unfamiliar"))
    out["held"] = bool(out.get("held"))
    out["interrupted"] = bool(out["interrupted"])
    out["box"] = None if out.get("box") is None else json.loads(out["box"])
    return out


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


def insert_audit(conn: sqlite3.Connection, s: AuditSample) -> int:
    cur = conn.execute(
        "INSERT INTO audit_samples (camera, captured_at, reason, model_version, predicted_label,"
        " alert_score, probs, snapshot, night_class, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (s.camera, float(s.captured_at), s.reason, s.model_version, s.predicted_label,
         float(s.alert_score), to_json(s.probs), s.snapshot_jpeg, s.night_class, time.time()),
    )  # fmt: skip
    return int(cur.lastrowid or 0)


def time_filters(
    column: str, since: float | None, until: float | None
) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(until)
    return clauses, params
