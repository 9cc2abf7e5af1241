"""The hand-written SQLite schema history (versions 1–7) from before Alembic: only to adopt old files and build them in tests."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

from monitor.errors import StoreError

logger = logging.getLogger(__name__)


def rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.warning("review store: rollback failed: %s", exc)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step; ``columns`` are (table, column, declaration) added when missing."""

    version: int
    description: str
    statements: tuple[str, ...]
    columns: tuple[tuple[str, str, str], ...] = ()


def add_column(conn: sqlite3.Connection, table: str, column: str, declaration: str) -> None:
    """``ALTER TABLE … ADD COLUMN`` unless the column exists (SQLite has no IF NOT EXISTS for columns)."""
    present = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}
    if column not in present:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


# Each statement is idempotent (IF NOT EXISTS; columns through add_column), and a migration commits together
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
    Migration(
        5,
        "the peak region's box and zone on events",
        (),
        columns=(("events", "box", "TEXT"), ("events", "zone", "TEXT")),
    ),
    Migration(
        6,
        "unfamiliar (out-of-domain) and held alerts; light class from pixels",
        (),
        columns=(
            ("events", "unfamiliar", "INTEGER NOT NULL DEFAULT 0"),
            ("events", "held", "INTEGER NOT NULL DEFAULT 0"),
            ("events", "night_class", "TEXT"),
            ("audit_samples", "night_class", "TEXT"),
            ("camera_stats", "light", "TEXT NOT NULL DEFAULT '{}'"),
        ),
    ),
    Migration(
        7,
        "interrupted events (closed at start after a crash) and revoked web sessions",
        (
            "CREATE INDEX IF NOT EXISTS events_open ON events (end_at) WHERE end_at IS NULL",
            """CREATE TABLE IF NOT EXISTS revoked_sessions (
                session_id TEXT PRIMARY KEY, expires_at REAL NOT NULL)""",
        ),
        columns=(
            # The time of the event's last recorded frame: where a crash recovery closes it.
            ("events", "last_frame_at", "REAL"),
            ("events", "interrupted", "INTEGER NOT NULL DEFAULT 0"),
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


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
                for table, column, declaration in m.columns:
                    add_column(conn, table, column, declaration)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.description, time.time()),
                )
                logger.info("review store: migrated to schema %d (%s)", m.version, m.description)
                current = m.version
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return current


def current_version(conn: sqlite3.Connection) -> int:
    """The highest hand-written version applied to the file (0 if none)."""
    rows = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchall()
    return int(rows[0][0])


def adopt(conn: sqlite3.Connection) -> int:
    """Finish the hand-written history on an old file (to version 7, the baseline's schema) before Alembic takes over.

    Returns:
        The hand-written version the file is at afterwards.
    """
    conn.isolation_level = None
    version = current_version(conn)
    if version <= SCHEMA_VERSION:
        version = apply_migrations(conn)
    return version
