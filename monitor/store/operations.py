"""The store's other tables: rollout modes, audit samples, deliveries, camera statistics, candidate comparisons."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any

from monitor.records import (
    AuditSample,
    CameraStats,
    CandidateCounts,
    Disagreement,
    check_choice,
    check_jpeg,
)
from monitor.store.core import StoreCore
from monitor.store.sql import (
    SELECT_EVENTS,
    event_dict,
    insert_audit,
    time_filters,
    upsert_delivery,
)
from monitor.types import MODES

logger = logging.getLogger(__name__)


class OperationQueries(StoreCore):
    """Everything beside events that the daemon records and the report reads."""

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
        check_choice("mode", mode, MODES)
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
        check_jpeg(sample.snapshot_jpeg)
        return self._write_or_log("add_audit_sample", lambda c: insert_audit(c, sample))

    def audit_cameras(self) -> list[str]:
        """Every camera that has audit samples, sorted (a loose scan of the camera/time index)."""
        sql = (
            "WITH RECURSIVE c(camera) AS (SELECT MIN(camera) FROM audit_samples UNION ALL"
            " SELECT (SELECT MIN(camera) FROM audit_samples WHERE camera > c.camera) FROM c"
            " WHERE c.camera IS NOT NULL) SELECT camera FROM c WHERE camera IS NOT NULL"
        )
        with self._reading() as conn:
            return [str(r[0]) for r in conn.execute(sql).fetchall()]

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
        clauses, params = time_filters("captured_at", since, until)
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
                " probs, label, labelled_by, labelled_at, note, night_class,"
                " snapshot IS NOT NULL AS has_snapshot"
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

    def clear_audit_label(self, sample_id: int) -> bool:
        """Take a human label back (an undo on the audit page); False when there is no such sample."""

        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE audit_samples SET label = NULL, labelled_by = NULL, labelled_at = NULL,"
                " note = NULL WHERE id = ?",
                (sample_id,),
            )
            return cur.rowcount > 0

        return bool(self._write_or_raise("clear_audit_label", write))

    # --- notifications ----------------------------------------------------------

    # --- web sessions -------------------------------------------------------------

    def revoke_session(self, session_id: str, expires_at: float) -> None:
        """Remember a signed-out session until its cookie would have expired anyway.

        Raises:
            StoreError: when it cannot be stored (the web still refuses the
                session in this process).
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM revoked_sessions WHERE expires_at < ?", (time.time(),))
            conn.execute(
                "INSERT INTO revoked_sessions (session_id, expires_at) VALUES (?, ?)"
                " ON CONFLICT (session_id) DO NOTHING",
                (session_id, float(expires_at)),
            )

        self._write_or_raise("revoke_session", write)

    def revoked_sessions(self) -> dict[str, float]:
        """Session ids signed out and not yet expired, with when each would expire."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT session_id, expires_at FROM revoked_sessions WHERE expires_at >= ?",
                (time.time(),),
            ).fetchall()
        return {str(r[0]): float(r[1]) for r in rows}

    def record_delivery(
        self, event_id: int, channel: str, trigger: str, ok: bool, error: str | None = None
    ) -> None:
        """Note one delivery attempt (attempts add up; the last error is kept)."""

        def write(conn: sqlite3.Connection) -> None:
            upsert_delivery(conn, event_id, channel, trigger, ok, error)

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
                " latency_p50_ms, latency_p99_ms, audit, light) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.camera, r.at, r.period_s, r.online_s, r.frames, r.reconnects, r.latency_p50_ms,
                     r.latency_p99_ms, json.dumps({k: dict(v) for k, v in r.audit.items()}),
                     json.dumps(dict(r.light)))
                    for r in rows
                ],

            )  # fmt: skip

        self._write_or_log("add_camera_stats", write)

    def camera_stats(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        clauses, params = time_filters("at", since, until)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._reading() as conn:
            rows = conn.execute(f"SELECT * FROM camera_stats{where} ORDER BY at", params).fetchall()
        return [
            {**dict(r), "audit": json.loads(r["audit"]), "light": json.loads(r["light"])}
            for r in rows
        ]

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
        clauses, params = time_filters("at", since, until)
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
        clauses, params = time_filters("at", since, until)
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
        once confirmed; never ``shadow``); an active alert *held* because it was
        unfamiliar goes out like a review one, once a person confirms it. A failed delivery comes back only once its last attempt is
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
            + SELECT_EVENTS.removeprefix("SELECT ")
            + " LEFT JOIN deliveries d ON d.event_id = e.id AND d.channel = ?"
            " WHERE e.kind = 'alert'"
            " AND ((e.mode = 'active' AND e.held = 0 AND e.created_at >= ?)"
            " OR ((e.mode = 'review' OR e.held = 1) AND e.review_status = 'confirmed'"
            " AND COALESCE(e.reviewed_at, e.created_at) >= ?))"
            " AND (d.id IS NULL OR (d.status = 'failed' AND d.attempts < ? AND d.updated_at <= ?))"
            " ORDER BY e.id LIMIT ?"
        )
        params = (channel, since, since, max_attempts, retry_before, limit)
        with self._reading() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [event_dict(r) for r in rows]
