"""The review queue: events, snapshots and verdicts in SQLite — the only module that speaks SQL.

Why it is shaped this way:

* Every write commits before it returns: notifications go out only after the
  event is stored, so a crash after a notification can never lose the event.
* A write that keeps failing (locked database, disk I/O error, read-only file)
  is retried with a short backoff, then appended to a JSON-lines spill file
  beside the database, so an alert is never dropped silently. The spill is
  replayed at open and before the next write; while it cannot be replayed,
  new writes queue behind it, so writes are applied in the order they were made.
* One writer connection behind a lock serialises this process's writes;
  each read (the web server's threads) opens its own connection, and WAL mode
  lets them read while the alert thread writes.
* Snapshots live in their own table keyed by event id: queue listings never drag
  JPEG bytes through the page cache, retention can later drop old images while
  keeping the verdicts, and a PostgreSQL backend can move them to BYTEA or
  object storage without touching ``events``.
* An event's natural key (camera, kind, label, start_at) is unique, so replaying
  a spill twice (a crash between replay and clearing the file) adds nothing twice.

Portability: queries are plain SQL with ``LIMIT`` and ``ON CONFLICT`` (both in
PostgreSQL). SQLite-only parts are marked ``SQLite:`` — the PRAGMAs,
``BEGIN IMMEDIATE``, ``AUTOINCREMENT``, ``lastrowid`` (PostgreSQL: ``RETURNING id``)
and the DDL types (PostgreSQL: identity columns, ``DOUBLE PRECISION``, ``BYTEA``).
Placeholders are ``?``; a PostgreSQL driver wants ``%s``.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from monitor.metrics import Metrics
from monitor.review_spill import SpillJournal

logger = logging.getLogger(__name__)

T = TypeVar("T")
EVENT_KINDS = ("alert", "drift")
MODES = ("shadow", "review", "active")
REVIEW_STATUSES = ("pending", "confirmed", "rejected", "unsure", "relabelled")
MAX_LIST_LIMIT = 1000
MAX_BACKOFF_S = 1.0


class StoreError(Exception):
    """The review store cannot be opened or used (the message says which file and why)."""


class StoreUnavailable(StoreError):
    """A read failed; the web layer answers 503 without showing the cause."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


# Each statement is idempotent (IF NOT EXISTS), and a migration commits together
# with its schema_version row, so a half-applied upgrade cannot exist.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events and snapshots",
        (
            # SQLite: AUTOINCREMENT never reuses an id, so a cached snapshot URL
            # can never show another event's image after retention deletes rows.
            """CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL, camera TEXT NOT NULL, label TEXT NOT NULL,
                peak_score REAL NOT NULL, start_at REAL NOT NULL, end_at REAL,
                model_version TEXT NOT NULL, mode TEXT NOT NULL,
                drift_flags TEXT NOT NULL DEFAULT '[]', ood_score REAL,
                details TEXT NOT NULL DEFAULT '{}', frames INTEGER NOT NULL DEFAULT 0,
                review_status TEXT NOT NULL DEFAULT 'pending', reviewer TEXT,
                reason_code TEXT, note TEXT, relabel TEXT, reviewed_at REAL,
                created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
            "CREATE UNIQUE INDEX IF NOT EXISTS events_natural_key"
            " ON events (camera, kind, label, start_at)",
            "CREATE INDEX IF NOT EXISTS events_start ON events (start_at)",
            """CREATE TABLE IF NOT EXISTS snapshots (
                event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
                jpeg BLOB NOT NULL, updated_at REAL NOT NULL)""",
        ),
    ),
    Migration(
        2,
        "verdict history and review-queue indexes",
        (
            """CREATE TABLE IF NOT EXISTS verdicts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                status TEXT NOT NULL, reviewer TEXT NOT NULL, reason_code TEXT,
                note TEXT, relabel TEXT, reviewed_at REAL NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS verdicts_event ON verdicts (event_id, reviewed_at)",
            "CREATE INDEX IF NOT EXISTS events_status_start ON events (review_status, start_at)",
            "CREATE INDEX IF NOT EXISTS events_camera_start ON events (camera, start_at)",
            "CREATE INDEX IF NOT EXISTS events_label ON events (label)",
        ),
    ),
    Migration(
        3,
        "rollout modes, audit samples, deliveries, camera stats, candidate comparisons",
        (
            """CREATE TABLE IF NOT EXISTS camera_modes (
                camera TEXT PRIMARY KEY, mode TEXT NOT NULL, active_hours TEXT,
                changed_by TEXT NOT NULL, reason TEXT NOT NULL, changed_at REAL NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS mode_changes (
                id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL,
                old_mode TEXT, new_mode TEXT NOT NULL, active_hours TEXT,
                changed_by TEXT NOT NULL, reason TEXT NOT NULL, changed_at REAL NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS mode_changes_camera ON mode_changes (camera, changed_at)",
            """CREATE TABLE IF NOT EXISTS audit_samples (
                id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL,
                captured_at REAL NOT NULL, reason TEXT NOT NULL, model_version TEXT NOT NULL,
                predicted_label TEXT NOT NULL, alert_score REAL NOT NULL,
                probs TEXT NOT NULL DEFAULT '{}', snapshot BLOB,
                label TEXT, labelled_by TEXT, labelled_at REAL, note TEXT,
                created_at REAL NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS audit_camera_time ON audit_samples (camera, captured_at)",
            "CREATE INDEX IF NOT EXISTS audit_label ON audit_samples (label)",
            """CREATE TABLE IF NOT EXISTS deliveries (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                channel TEXT NOT NULL, trigger TEXT NOT NULL, status TEXT NOT NULL,
                attempts INTEGER NOT NULL, last_error TEXT, updated_at REAL NOT NULL,
                UNIQUE (event_id, channel))""",
            """CREATE TABLE IF NOT EXISTS camera_stats (
                id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL, at REAL NOT NULL,
                period_s REAL NOT NULL, online_s REAL NOT NULL, frames INTEGER NOT NULL,
                reconnects INTEGER NOT NULL, latency_p50_ms REAL, latency_p99_ms REAL,
                audit TEXT NOT NULL DEFAULT '{}')""",
            "CREATE INDEX IF NOT EXISTS camera_stats_time ON camera_stats (camera, at)",
            """CREATE TABLE IF NOT EXISTS candidate_frames (
                id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL, at REAL NOT NULL,
                production_version TEXT NOT NULL, candidate_version TEXT NOT NULL,
                frames INTEGER NOT NULL, agreements INTEGER NOT NULL,
                production_alerts INTEGER NOT NULL, candidate_alerts INTEGER NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS candidate_disagreements (
                id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL, at REAL NOT NULL,
                production_label TEXT NOT NULL, production_score REAL NOT NULL,
                candidate_label TEXT NOT NULL, candidate_score REAL NOT NULL,
                candidate_version TEXT NOT NULL, snapshot BLOB)""",
            "CREATE INDEX IF NOT EXISTS candidate_dis_time ON candidate_disagreements (camera, at)",
        ),
    ),
    Migration(
        4,
        "indexes for the notifier's outbox query",
        (
            "CREATE INDEX IF NOT EXISTS events_mode_created ON events (kind, mode, created_at)",
            "CREATE INDEX IF NOT EXISTS events_status_reviewed ON events (review_status, reviewed_at)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version

_EVENT_FIELDS = (
    "kind, camera, label, peak_score, start_at, end_at, model_version, mode,"
    " drift_flags, ood_score, details, frames, created_at, updated_at"
)
_SELECT_EVENTS = (
    "SELECT e.id, e.kind, e.camera, e.label, e.peak_score, e.start_at, e.end_at,"
    " e.model_version, e.mode, e.drift_flags, e.ood_score, e.details, e.frames,"
    " e.review_status, e.reviewer, e.reason_code, e.note, e.relabel, e.reviewed_at,"
    " e.created_at, e.updated_at, s.event_id IS NOT NULL AS has_snapshot"
    " FROM events e LEFT JOIN snapshots s ON s.event_id = e.id"
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event as the alert stage hands it to the store. Times are UTC epoch seconds."""

    camera: str
    label: str
    kind: str
    start_at: float
    end_at: float | None
    peak_score: float
    model_version: str
    mode: str
    snapshot_jpeg: bytes | None = None
    drift_flags: tuple[str, ...] = ()
    ood_score: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    frames: int = 1

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, EVENT_KINDS)
        _check_choice("mode", self.mode, MODES)
        if not self.camera or not self.label:
            raise ValueError(
                f"camera and label must be non-empty, got {self.camera!r}, {self.label!r}"
            )
        if self.end_at is not None and self.end_at < self.start_at:
            raise ValueError(f"end_at ({self.end_at}) is before start_at ({self.start_at})")
        if self.frames < 0:
            raise ValueError(f"frames must be >= 0, got {self.frames}")
        _check_jpeg(self.snapshot_jpeg)
        # NumPy scalars (a peak score straight from the model) are neither
        # bindable by sqlite3 nor JSON-safe for the spill: store plain numbers.
        for name in ("start_at", "end_at", "peak_score", "ood_score"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else float(value))
        object.__setattr__(self, "frames", int(self.frames))
        # Frozen all the way down: the event crosses threads.
        object.__setattr__(self, "drift_flags", tuple(self.drift_flags))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


@dataclass(frozen=True, slots=True)
class AuditSample:
    """A frame the model did not alert on, kept so humans can estimate misses."""

    camera: str
    captured_at: float
    reason: str  # "random", "low_confidence" or "near_threshold"
    model_version: str
    predicted_label: str
    alert_score: float
    probs: Mapping[str, float]
    snapshot_jpeg: bytes | None


@dataclass(frozen=True, slots=True)
class CameraStats:
    """One camera's operation over a period (for uptime, reconnects and latency in reports)."""

    camera: str
    at: float
    period_s: float
    online_s: float
    frames: int
    reconnects: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    # Audit-sampling counts for the period: {"population": {stratum: n}, "sampled": {stratum: n}}.
    audit: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CandidateCounts:
    """Production vs shadow-candidate agreement over a period, for one camera."""

    camera: str
    at: float
    production_version: str
    candidate_version: str
    frames: int
    agreements: int
    production_alerts: int
    candidate_alerts: int


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One frame where production and candidate picked different labels."""

    camera: str
    at: float
    production_label: str
    production_score: float
    candidate_label: str
    candidate_score: float
    candidate_version: str
    snapshot_jpeg: bytes | None


class ReviewStore:
    """Events, snapshots and verdicts in one SQLite file, safe to share between threads.

    Args:
        path: the database file (created, with its schema, if missing).
        retries: extra attempts for a failing write before it is spilled.
        metrics: where failures and health are counted; a private set if None.
        busy_timeout_ms: how long one attempt waits for another writer's lock.
        backoff_s: the first pause between attempts; doubles, capped at 1 s.

    Raises:
        StoreError: when the file cannot be opened or its schema is newer than this code.
    """

    def __init__(
        self,
        path: Path,
        *,
        retries: int = 5,
        metrics: Metrics | None = None,
        busy_timeout_ms: int = 1000,
        backoff_s: float = 0.05,
    ) -> None:
        self._path = Path(path)
        self._spill = SpillJournal(self._path.with_name(self._path.name + ".spill.jsonl"))
        self._retries = max(0, retries)
        self._metrics = metrics or Metrics()
        self._busy_timeout_ms = busy_timeout_ms
        self._backoff_s = backoff_s
        self._write_lock = threading.Lock()
        self._closing = threading.Event()  # also cuts a retry backoff short
        self._healthy = True
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self._path, busy_timeout_ms, read_only=False)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open review store {self._path}: {exc}") from exc

        try:
            # SQLite: WAL lets the web threads read while the alert thread writes.
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("review store %s: journal mode is %s, not WAL", self._path, mode)
            apply_migrations(self._writer)
        except (sqlite3.Error, StoreError) as exc:
            self._writer.close()
            raise StoreError(f"cannot open review store {self._path}: {exc}") from exc
        self._spill_pending = self._spill.path.exists()
        self.replay_spill()
        self._metrics.store_healthy.set(1 if self._healthy else 0)

    @property
    def spill_path(self) -> Path:
        """Where writes that could not be stored wait (JSON lines, snapshots base64)."""
        return self._spill.path

    @property
    def healthy(self) -> bool:
        """False from a write that gave up until its spill has been replayed."""
        return self._healthy

    def add_event(self, ev: NewEvent) -> int | None:
        """Store a new event (and its snapshot) and commit.

        Returns:
            The event id, or None when the write gave up and the event was spilled.
            An event whose (camera, kind, label, start_at) is already stored is
            not added twice: that row takes this end_at, peak_score, frames,
            details and snapshot, and its id is returned.
        """
        record = {"op": "add", "event": _event_record(ev)}
        return self._write("add_event", record, ev.snapshot_jpeg, lambda c: _insert(c, ev))

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
        _check_jpeg(snapshot_jpeg)
        changes: dict[str, Any] = {
            "end_at": None if end_at is None else float(end_at),
            "peak_score": None if peak_score is None else float(peak_score),
            "frames": None if frames is None else int(frames),
        }
        if details is not None:
            changes["details"] = _to_json(details)
        changes = {k: v for k, v in changes.items() if v is not None}
        record = {"op": "update", "event_id": event_id, "changes": changes}
        done = self._write(
            "update_event",
            record,
            snapshot_jpeg,
            lambda c: _update(c, event_id, changes, snapshot_jpeg),
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
        _check_choice("status", status, REVIEW_STATUSES)
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
            self._write("set_verdict", record, None, lambda c: _verdict(c, event_id, verdict))
        )

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """One event without its snapshot bytes (``has_snapshot`` says whether one exists)."""
        with self._reading() as conn:
            rows = conn.execute(_SELECT_EVENTS + " WHERE e.id = ?", (event_id,)).fetchall()
        return _event_dict(rows[0]) if rows else None

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
        clauses, params = _filters(camera, status, label, kind, since, until)
        if before_id is not None:
            anchor = "(SELECT start_at FROM events WHERE id = ?)"
            clauses.append(f"(e.start_at < {anchor} OR (e.start_at = {anchor} AND e.id < ?))")
            params += [before_id, before_id, before_id]
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = f"{_SELECT_EVENTS}{where} ORDER BY e.start_at DESC, e.id DESC LIMIT ?"
        with self._reading() as conn:
            rows = conn.execute(sql, [*params, limit]).fetchall()
        return [_event_dict(r) for r in rows]

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
        clauses, params = _filters(camera, status, label, kind, since, until)
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

    def camera_modes(self) -> dict[str, dict[str, Any]]:
        """The modes set at runtime (page or CLI), by camera; cameras never changed are absent."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT camera, mode, active_hours, changed_by, reason, changed_at FROM camera_modes"
            ).fetchall()
        return {r["camera"]: dict(r) for r in rows}

    def set_camera_mode(
        self,
        camera: str,
        mode: str,
        changed_by: str,
        reason: str,
        active_hours: str | None = None,
        *,
        changed_at: float | None = None,
    ) -> None:
        """Change a camera's rollout mode and record who, when and why.

        Raises:
            ValueError: for an unknown mode or an empty person or reason.
            StoreError: when the change could not be stored (a human retries; nothing is spilled).
        """
        _check_choice("mode", mode, MODES)
        if not changed_by or not reason.strip():
            raise ValueError("a mode change needs who (changed_by) and why (reason)")
        at = time.time() if changed_at is None else changed_at

        def write(conn: sqlite3.Connection) -> None:
            old = conn.execute(
                "SELECT mode FROM camera_modes WHERE camera = ?", (camera,)
            ).fetchall()
            conn.execute(
                "INSERT INTO camera_modes (camera, mode, active_hours, changed_by, reason, changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (camera) DO UPDATE SET mode = excluded.mode,"
                " active_hours = excluded.active_hours, changed_by = excluded.changed_by,"
                " reason = excluded.reason, changed_at = excluded.changed_at",
                (camera, mode, active_hours, changed_by, reason, at),
            )
            conn.execute(
                "INSERT INTO mode_changes (camera, old_mode, new_mode, active_hours, changed_by, reason,"
                " changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (camera, old[0][0] if old else None, mode, active_hours, changed_by, reason, at),
            )

        self._write_or_raise("set_camera_mode", write)

    def mode_history(self, camera: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Mode changes, newest first."""
        where, params = (" WHERE camera = ?", [camera]) if camera else ("", [])
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, camera, old_mode, new_mode, active_hours, changed_by, reason, changed_at"
                f" FROM mode_changes{where} ORDER BY changed_at DESC, id DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [dict(r) for r in rows]

    # --- audit samples ----------------------------------------------------------

    def add_audit_sample(self, sample: AuditSample) -> int | None:
        """Store a frame the model did not alert on, for a human to label. None if it failed (logged)."""
        _check_jpeg(sample.snapshot_jpeg)
        return self._write_or_log("add_audit_sample", lambda c: _insert_audit(c, sample))

    def list_audit_samples(
        self,
        *,
        camera: str | None = None,
        labelled: bool | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Audit samples newest first (without snapshot bytes)."""
        clauses, params = _time_filters("captured_at", since, until)
        if camera is not None:
            clauses.append("camera = ?")
            params.append(camera)
        if labelled is not None:
            clauses.append("label IS NOT NULL" if labelled else "label IS NULL")
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, camera, captured_at, reason, model_version, predicted_label, alert_score,"
                " probs, label, labelled_by, labelled_at, note, snapshot IS NOT NULL AS has_snapshot"
                f" FROM audit_samples{where} ORDER BY id DESC LIMIT ?",
                [*params, min(max(limit, 1), 100_000)],
            ).fetchall()
        return [
            {**dict(r), "probs": json.loads(r["probs"]), "has_snapshot": bool(r["has_snapshot"])}
            for r in rows
        ]

    def get_audit_snapshot(self, sample_id: int) -> bytes | None:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT snapshot FROM audit_samples WHERE id = ?", (sample_id,)
            ).fetchall()
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def label_audit_sample(
        self, sample_id: int, label: str, labelled_by: str, note: str | None = None
    ) -> bool:
        """Record what a human sees in an audit sample. Raises StoreError when it cannot be stored."""
        if not label or not labelled_by:
            raise ValueError("an audit label needs a label and who gave it")

        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE audit_samples SET label = ?, labelled_by = ?, labelled_at = ?, note = ? WHERE id = ?",
                (label, labelled_by, time.time(), note, sample_id),
            )
            return cur.rowcount > 0

        return bool(self._write_or_raise("label_audit_sample", write))

    # --- notifications ----------------------------------------------------------

    def record_delivery(
        self, event_id: int, channel: str, trigger: str, ok: bool, error: str | None = None
    ) -> None:
        """Note one delivery attempt (attempts add up; the last error is kept)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO deliveries (event_id, channel, trigger, status, attempts, last_error, updated_at)"
                " VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (event_id, channel) DO UPDATE SET"
                " status = excluded.status, trigger = excluded.trigger,"
                " attempts = deliveries.attempts + 1, last_error = excluded.last_error,"
                " updated_at = excluded.updated_at",
                (event_id, channel, trigger, "sent" if ok else "failed", error, time.time()),
            )

        self._write_or_raise("record_delivery", write)

    def deliveries(self, event_id: int | None = None) -> list[dict[str, Any]]:
        where, params = (" WHERE event_id = ?", [event_id]) if event_id is not None else ("", [])
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT event_id, channel, trigger, status, attempts, last_error, updated_at"
                f" FROM deliveries{where} ORDER BY event_id, channel",
                params,
            ).fetchall()
        return [dict(r) for r in rows]

    # --- operations: camera stats and the shadow candidate ----------------------

    def add_camera_stats(self, rows: list[CameraStats]) -> None:
        """Append per-camera operating statistics (the daemon writes them every minute)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO camera_stats (camera, at, period_s, online_s, frames, reconnects,"
                " latency_p50_ms, latency_p99_ms, audit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.camera, r.at, r.period_s, r.online_s, r.frames, r.reconnects, r.latency_p50_ms,
                     r.latency_p99_ms, json.dumps({k: dict(v) for k, v in r.audit.items()}))
                    for r in rows
                ],

            )  # fmt: skip

        self._write_or_log("add_camera_stats", write)

    def camera_stats(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        clauses, params = _time_filters("at", since, until)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._reading() as conn:
            rows = conn.execute(f"SELECT * FROM camera_stats{where} ORDER BY at", params).fetchall()
        return [{**dict(r), "audit": json.loads(r["audit"])} for r in rows]

    def add_candidate_comparison(
        self, counts: CandidateCounts, disagreements: list[Disagreement]
    ) -> None:
        """Store a period's production-vs-candidate counts and the frames where they disagreed."""

        def write(conn: sqlite3.Connection) -> None:
            c = counts
            conn.execute(
                "INSERT INTO candidate_frames (camera, at, production_version, candidate_version, frames,"
                " agreements, production_alerts, candidate_alerts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (c.camera, c.at, c.production_version, c.candidate_version, c.frames, c.agreements,
                 c.production_alerts, c.candidate_alerts),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO candidate_disagreements (camera, at, production_label, production_score,"
                " candidate_label, candidate_score, candidate_version, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(d.camera, d.at, d.production_label, d.production_score, d.candidate_label,
                  d.candidate_score, d.candidate_version, d.snapshot_jpeg) for d in disagreements],
            )  # fmt: skip

        self._write_or_log("add_candidate_comparison", write)

    def candidate_summary(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        """Per camera and candidate version: frames, agreements, alert counts."""
        clauses, params = _time_filters("at", since, until)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT camera, production_version, candidate_version, SUM(frames) AS frames,"
                " SUM(agreements) AS agreements, SUM(production_alerts) AS production_alerts,"
                f" SUM(candidate_alerts) AS candidate_alerts FROM candidate_frames{where}"
                " GROUP BY camera, production_version, candidate_version ORDER BY camera",
                params,
            ).fetchall()
        return [dict(r) for r in rows]

    def candidate_disagreements(
        self, camera: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        where, params = (" WHERE camera = ?", [camera]) if camera else ("", [])
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, camera, at, production_label, production_score, candidate_label,"
                " candidate_score, candidate_version, snapshot IS NOT NULL AS has_snapshot"
                f" FROM candidate_disagreements{where} ORDER BY at DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [dict(r) for r in rows]

    def get_disagreement_snapshot(self, row_id: int) -> bytes | None:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT snapshot FROM candidate_disagreements WHERE id = ?", (row_id,)
            ).fetchall()
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def schema_version(self) -> int:
        """The highest migration applied to the file."""
        with self._reading() as conn:
            return int(conn.execute("SELECT MAX(version) FROM schema_version").fetchall()[0][0])

    def replay_spill(self) -> int:
        """Apply spilled writes in order and shrink the spill file to what is still failing.

        Stops at the first record that fails for a transient reason (the store
        is still locked or read-only); a record that can never apply (corrupt
        line, constraint) is moved to ``<db>.spill.rejected.jsonl`` and logged.

        Returns:
            How many records were applied.
        """
        with self._spill.lock:
            lines = self._spill.read()
            applied, remaining = 0, []
            for i, line in enumerate(lines):
                try:
                    self._transaction(_replay_step(line))
                except sqlite3.OperationalError as exc:
                    self._metrics.store_failures.inc()
                    logger.warning(
                        "review store: spill replay paused (%s); %d left", exc, len(lines) - i
                    )
                    remaining = lines[i:]
                    break
                except (ValueError, KeyError, TypeError, sqlite3.Error) as exc:
                    logger.error(
                        "review store: a spilled write cannot be applied (%s); moved to %s",
                        exc, self._spill.rejected_path,
                    )  # fmt: skip
                    self._spill.reject(line)
                    continue
                applied += 1
            self._spill.keep(remaining)
            self._spill_pending = bool(remaining)
        if applied:
            logger.info("review store: replayed %d spilled writes", applied)
        self._set_healthy(not remaining)
        return applied

    def close(self) -> None:
        """Close the writer; later writes are spilled, later reads raise StoreUnavailable."""
        self._closing.set()
        with self._write_lock:
            self._writer.close()

    def _write(
        self,
        op: str,
        record: dict[str, Any],
        jpeg: bytes | None,
        fn: Callable[[sqlite3.Connection], T],
    ) -> T | None:
        """Run ``fn`` in a committed transaction, retrying; spill the record when it gives up."""
        if self._spill_pending:
            self.replay_spill()
            if self._spill_pending:
                # Going around the spill would apply this write before older ones.
                self._give_up(op, record, jpeg, "earlier writes are still spilled", 0)
                return None
        error: Exception | None = None
        attempt = 0
        while attempt <= self._retries and not self._closing.is_set():
            if attempt and self._closing.wait(
                min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            ):
                break
            attempt += 1
            try:
                return self._transaction(fn)
            except sqlite3.Error as exc:
                error = exc
                self._metrics.store_failures.inc()
                logger.warning("review store: %s attempt %d failed: %s", op, attempt, exc)
                if not isinstance(exc, sqlite3.OperationalError):
                    break  # not transient: retrying cannot help
        self._give_up(op, record, jpeg, error or StoreError("store is closed"), attempt)
        return None

    def _write_or_log(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T | None:
        """For records worth keeping but not worth a spill (samples, statistics): retry, then log an error."""
        try:
            return self._write_or_raise(op, fn)
        except StoreError as exc:
            logger.error("review store: %s not stored: %s", op, exc)
            return None

    def _write_or_raise(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a committed transaction with the same retries as events; raise when it gives up.

        For writes a person is waiting on (a mode change, a label) or that are
        statistics: failing loudly is better than spilling them.
        """
        error: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt and self._closing.wait(
                min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            ):
                break
            try:
                return self._transaction(fn)
            except sqlite3.Error as exc:
                error = exc
                self._metrics.store_failures.inc()
                logger.warning("review store: %s attempt %d failed: %s", op, attempt + 1, exc)
                if not isinstance(exc, sqlite3.OperationalError):
                    break
        raise StoreError(f"{op} failed: {error or 'store is closed'}")

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:

        with self._write_lock:
            if self._closing.is_set():
                raise sqlite3.OperationalError("review store is closed")
            conn = self._writer
            # SQLite: take the write lock up front so busy_timeout applies here
            # rather than failing at a lock upgrade halfway through.
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return result

    def _give_up(
        self, op: str, record: dict[str, Any], jpeg: bytes | None, error: object, attempts: int
    ) -> None:
        self._set_healthy(False)
        logger.error(
            "review store: %s gave up after %d attempts (%s); spilling to %s: %s",
            op, attempts, error, self._spill.path, json.dumps(record, default=str),
        )  # fmt: skip
        try:
            self._spill.append({**record, "snapshot_b64": _b64(jpeg), "spilled_at": time.time()})
            self._spill_pending = True
        except OSError as exc:
            logger.critical(
                "review store: cannot write spill %s (%s); %s is LOST", self._spill.path, exc, op
            )

    def _set_healthy(self, healthy: bool) -> None:
        self._healthy = healthy
        self._metrics.store_healthy.set(1 if healthy else 0)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        # A connection per read: reads are rare (a reviewer, a scraper) and
        # opening SQLite is cheap, so there is no pool to leak or to close.
        if self._closing.is_set():
            raise StoreUnavailable(f"review store {self._path} is closed")
        try:
            conn = _connect(self._path, self._busy_timeout_ms, read_only=True)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open review store {self._path}: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"reading review store {self._path} failed: {exc}") from exc
        finally:
            conn.close()

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

    # --- report queries ---

    def disagreements_between(
        self,
        camera: str,
        since: float | None = None,
        until: float | None = None,
        limit: int = 12,
    ) -> list[dict[str, Any]]:
        """One camera's production-vs-candidate disagreements in [since, until), newest first.

        Like ``candidate_disagreements`` but bounded in time, so a report over
        last month does not show this morning's frames.
        """
        clauses, params = _time_filters("at", since, until)
        where = " AND ".join(["camera = ?", *clauses])
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, camera, at, production_label, production_score, candidate_label,"
                " candidate_score, candidate_version, snapshot IS NOT NULL AS has_snapshot"
                f" FROM candidate_disagreements WHERE {where} ORDER BY at DESC, id DESC LIMIT ?",
                [camera, *params, max(1, limit)],
            ).fetchall()
        return [{**dict(r), "has_snapshot": bool(r["has_snapshot"])} for r in rows]

    # --- notifier queries ---

    def due_notifications(
        self,
        channel: str,
        *,
        since: float,
        max_attempts: int,
        retry_before: float,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Alert events ``channel`` should send now, oldest first, each with its ``attempts`` so far.

        Gated by the mode recorded on the event (``active``, or ``review``
        once confirmed; never ``shadow``). A failed delivery comes back only once its last attempt is
        older than ``retry_before`` (so events waiting out a retry cannot fill
        ``limit`` and starve new ones), and a review-mode event counts from its
        verdict, so one raised before a restart and confirmed after it (perhaps
        on the standalone review page) is still sent.

        Args:
            channel: ``mqtt`` or ``webhook``.
            since: UTC epoch; active events created, or review events confirmed, before it are skipped.
            max_attempts: a delivery that failed this many times is not tried again.
            retry_before: UTC epoch; a failed delivery last tried after it waits.
            limit: at most this many events.
        """
        sql = (
            "SELECT COALESCE(d.attempts, 0) AS attempts, "
            + _SELECT_EVENTS.removeprefix("SELECT ")
            + " LEFT JOIN deliveries d ON d.event_id = e.id AND d.channel = ?"
            " WHERE e.kind = 'alert'"
            " AND ((e.mode = 'active' AND e.created_at >= ?)"
            " OR (e.mode = 'review' AND e.review_status = 'confirmed'"
            " AND COALESCE(e.reviewed_at, e.created_at) >= ?))"
            " AND (d.id IS NULL OR (d.status = 'failed' AND d.attempts < ? AND d.updated_at <= ?))"
            " ORDER BY e.id LIMIT ?"
        )
        params = (channel, since, since, max_attempts, retry_before, limit)
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_event_dict(r) for r in rows]


def apply_migrations(conn: sqlite3.Connection, upto: int | None = None) -> int:
    """Bring a database up to ``upto`` (default: the latest) in one transaction.

    Args:
        conn: a connection in autocommit mode (``isolation_level=None``).
        upto: the version to stop at; tests use it to build an older file.

    Returns:
        The schema version after migrating.

    Raises:
        StoreError: when the file's schema is newer than this code knows.
    """
    target = SCHEMA_VERSION if upto is None else upto
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
            " description TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = int(
            conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchall()[0][0]
        )
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"schema version {current} is newer than this bearwatch knows ({SCHEMA_VERSION})"
            )
        for m in MIGRATIONS:
            if current < m.version <= target:
                for statement in m.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.description, time.time()),
                )
                logger.info("review store: migrated to schema %d (%s)", m.version, m.description)
                current = m.version
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return current


def _connect(path: Path, busy_timeout_ms: int, *, read_only: bool) -> sqlite3.Connection:
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


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.warning("review store: rollback failed: %s", exc)


def _insert(conn: sqlite3.Connection, ev: NewEvent) -> int:
    found = conn.execute(
        "SELECT id FROM events WHERE camera = ? AND kind = ? AND label = ? AND start_at = ?",
        (ev.camera, ev.kind, ev.label, ev.start_at),
    ).fetchall()
    if found:
        # The same event again (a replayed spill, or a caller re-adding after a
        # spilled add): keep one row and take the newer state of what can change.
        changes = {"end_at": ev.end_at, "peak_score": ev.peak_score, "frames": ev.frames}
        _update(
            conn, int(found[0][0]), {**changes, "details": _to_json(ev.details)}, ev.snapshot_jpeg
        )
        return int(found[0][0])
    now = time.time()
    cur = conn.execute(
        f"INSERT INTO events ({_EVENT_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ev.kind, ev.camera, ev.label, ev.peak_score, ev.start_at, ev.end_at,
            ev.model_version, ev.mode, json.dumps(list(ev.drift_flags)), ev.ood_score,
            _to_json(ev.details), ev.frames, now, now,
        ),
    )  # fmt: skip
    event_id = int(cur.lastrowid or 0)  # SQLite: PostgreSQL would use RETURNING id
    if ev.snapshot_jpeg is not None:
        _put_snapshot(conn, event_id, ev.snapshot_jpeg, now)
    return event_id


def _update(
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
        _put_snapshot(conn, event_id, jpeg, now)
    return True


def _verdict(conn: sqlite3.Connection, event_id: int, v: Mapping[str, Any]) -> bool:
    cur = conn.execute(
        "UPDATE events SET review_status = ?, reviewer = ?, reason_code = ?, note = ?, relabel = ?,"
        " reviewed_at = ?, updated_at = ? WHERE id = ?",
        (v["status"], v["reviewer"], v["reason_code"], v["note"], v["relabel"], v["reviewed_at"],
         time.time(), event_id),
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


def _put_snapshot(conn: sqlite3.Connection, event_id: int, jpeg: bytes, now: float) -> None:
    conn.execute(
        "INSERT INTO snapshots (event_id, jpeg, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET jpeg = excluded.jpeg, updated_at = excluded.updated_at",
        (event_id, jpeg, now),
    )


def _replay_step(line: str) -> Callable[[sqlite3.Connection], object]:
    """Parse one spill line into the write it stands for (raises ValueError/KeyError if corrupt)."""
    rec = json.loads(line)
    jpeg = base64.b64decode(rec["snapshot_b64"]) if rec.get("snapshot_b64") else None
    if rec["op"] == "add":
        ev = NewEvent(
            **{
                **rec["event"],
                "snapshot_jpeg": jpeg,
                "drift_flags": tuple(rec["event"]["drift_flags"]),
            }
        )
        return lambda c: _insert(c, ev)
    if rec["op"] == "update":
        return lambda c: _update(c, int(rec["event_id"]), rec["changes"], jpeg)
    if rec["op"] == "verdict":
        return lambda c: _verdict(c, int(rec["event_id"]), rec["verdict"])
    raise ValueError(f"unknown spill op {rec['op']!r}")


def _filters(
    camera: str | None,
    status: str | None,
    label: str | None,
    kind: str | None,
    since: float | None,
    until: float | None,
) -> tuple[list[str], list[Any]]:
    if status is not None:
        _check_choice("status", status, REVIEW_STATUSES)
    if kind is not None:
        _check_choice("kind", kind, EVENT_KINDS)
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


def _event_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["drift_flags"] = json.loads(out["drift_flags"])
    out["details"] = json.loads(out["details"])
    out["has_snapshot"] = bool(out["has_snapshot"])
    return out


def _event_record(ev: NewEvent) -> dict[str, Any]:
    """The spill form of an event: JSON-safe, the snapshot kept apart so it is never logged."""
    rec = {f.name: getattr(ev, f.name) for f in fields(ev) if f.name != "snapshot_jpeg"}
    rec["drift_flags"] = list(ev.drift_flags)
    rec["details"] = json.loads(_to_json(ev.details))
    return rec


def _to_json(value: Mapping[str, Any]) -> str:
    # NumPy scalars turn up in details; anything else unknown is kept as text rather than lost.
    return json.dumps(
        dict(value), sort_keys=True, default=lambda o: o.item() if hasattr(o, "item") else str(o)
    )


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_jpeg(data: bytes | None) -> None:
    if data is not None and not bytes(data[:2]) == b"\xff\xd8":
        raise ValueError("snapshot_jpeg must be JPEG bytes (starting FF D8)")


def _insert_audit(conn: sqlite3.Connection, s: AuditSample) -> int:
    cur = conn.execute(
        "INSERT INTO audit_samples (camera, captured_at, reason, model_version, predicted_label,"
        " alert_score, probs, snapshot, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (s.camera, float(s.captured_at), s.reason, s.model_version, s.predicted_label,
         float(s.alert_score), _to_json(s.probs), s.snapshot_jpeg, time.time()),
    )  # fmt: skip
    return int(cur.lastrowid or 0)


def _time_filters(
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
