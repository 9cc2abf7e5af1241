"""The store's other tables: rollout modes, audit samples, web sessions, camera statistics, candidate comparisons (the outbox is ``outbox.py``)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import Connection, func, select

from monitor.records import (
    AuditSample,
    CameraStats,
    CandidateCounts,
    Disagreement,
    check_choice,
    check_jpeg,
)
from monitor.store.core import StoreCore
from monitor.store.schema import (
    audit_samples,
    camera_modes,
    camera_stats,
    candidate_disagreements,
    candidate_frames,
    mode_changes,
    revoked_sessions,
)
from monitor.store.sql import (
    insert_audit,
    insert_for,
    time_filters,
)
from monitor.types import MODES

logger = logging.getLogger(__name__)


class OperationQueries(StoreCore):
    """Everything beside events that the daemon records and the report reads."""

    def camera_modes(self, site: str | None = None) -> dict[str, dict[str, Any]]:
        """The modes set at runtime (page or CLI) for ``site`` (default: this box's), by camera."""
        m = camera_modes.c
        query = select(m.camera, m.mode, m.active_hours, m.changed_by, m.reason, m.changed_at)
        query = query.where(m.site == (self.site if site is None else site))
        with self._reading() as conn:
            return {r["camera"]: dict(r) for r in conn.execute(query).mappings()}

    def set_camera_mode(
        self,
        camera: str,
        mode: str,
        changed_by: str,
        reason: str,
        active_hours: str | None = None,
        *,
        changed_at: float | None = None,
        site: str | None = None,
    ) -> None:
        """Change a camera's rollout mode and record who, when and why.

        The daemon that owns the camera (``site``, default this box's) re-reads
        the modes every few seconds, so a change made on any box's page reaches it.

        Raises:
            ValueError: for an unknown mode or an empty person or reason.
            StoreError: when the change could not be stored (a human retries; nothing is spilled).
        """
        check_choice("mode", mode, MODES)
        if not changed_by or not reason.strip():
            raise ValueError("a mode change needs who (changed_by) and why (reason)")
        at = time.time() if changed_at is None else changed_at
        where = self.site if site is None else site

        def write(conn: Connection) -> None:
            m = camera_modes.c
            old = conn.execute(select(m.mode).where(m.site == where, m.camera == camera)).scalar()
            row = {
                "mode": mode,
                "active_hours": active_hours,
                "changed_by": changed_by,
                "reason": reason,
                "changed_at": at,
            }
            stmt = insert_for(conn, camera_modes).values(site=where, camera=camera, **row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[m.site, m.camera],
                    set_={k: stmt.excluded[k] for k in row},
                )
            )
            conn.execute(
                mode_changes.insert().values(
                    site=where, camera=camera, old_mode=old, new_mode=mode,
                    active_hours=active_hours, changed_by=changed_by, reason=reason, changed_at=at,
                )
            )  # fmt: skip

        self._write_or_raise("set_camera_mode", write)

    def mode_history(self, camera: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Mode changes, newest first."""
        c = mode_changes.c
        query = select(
            c.id, c.site, c.camera, c.old_mode, c.new_mode, c.active_hours, c.changed_by,
            c.reason, c.changed_at,
        )  # fmt: skip
        if camera:
            query = query.where(c.camera == camera)
        query = query.order_by(c.changed_at.desc(), c.id.desc()).limit(limit)
        with self._reading() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # --- audit samples ----------------------------------------------------------

    def add_audit_sample(self, sample: AuditSample) -> int | None:
        """Store a frame the model did not alert on, for a human to label. None if it failed (logged)."""
        check_jpeg(sample.snapshot_jpeg)
        return self._write_or_log("add_audit_sample", lambda c: insert_audit(c, sample, self.site))

    def audit_cameras(self) -> list[str]:
        """Every camera that has audit samples, sorted, all sites (a loose scan of the camera/time index)."""
        return self._distinct(audit_samples.c.camera)

    def list_audit_samples(
        self,
        *,
        camera: str | None = None,
        labelled: bool | None = None,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Audit samples newest first (without snapshot bytes); every site's unless ``site`` is given."""
        a = audit_samples.c
        clauses = time_filters(a.captured_at, since, until)
        if site is not None:
            clauses.append(a.site == site)
        if camera is not None:
            clauses.append(a.camera == camera)
        if labelled is not None:
            clauses.append(a.label.is_not(None) if labelled else a.label.is_(None))
        if before_id is not None:
            clauses.append(a.id < before_id)
        query = (
            select(
                a.id,
                a.site,
                a.camera,
                a.captured_at,
                a.reason,
                a.model_version,
                a.predicted_label,
                a.alert_score,
                a.probs,
                a.label,
                a.labelled_by,
                a.labelled_at,
                a.note,
                a.night_class,
                a.snapshot.is_not(None).label("has_snapshot"),
            )  # fmt: skip
            .where(*clauses)
            .order_by(a.id.desc())
            .limit(min(max(limit, 1), 100_000))
        )
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {**dict(r), "probs": json.loads(r["probs"]), "has_snapshot": bool(r["has_snapshot"])}
            for r in rows
        ]

    def get_audit_snapshot(self, sample_id: int) -> bytes | None:
        a = audit_samples.c
        with self._reading() as conn:
            jpeg = conn.execute(select(a.snapshot).where(a.id == sample_id)).scalar()
        return bytes(jpeg) if jpeg is not None else None

    def label_audit_sample(
        self, sample_id: int, label: str, labelled_by: str, note: str | None = None
    ) -> bool:
        """Record what a human sees in an audit sample. Raises StoreError when it cannot be stored."""
        if not label or not labelled_by:
            raise ValueError("an audit label needs a label and who gave it")

        def write(conn: Connection) -> bool:
            result = conn.execute(
                audit_samples.update()
                .where(audit_samples.c.id == sample_id)
                .values(label=label, labelled_by=labelled_by, labelled_at=time.time(), note=note)
            )
            return result.rowcount > 0

        return bool(self._write_or_raise("label_audit_sample", write))

    def clear_audit_label(self, sample_id: int) -> bool:
        """Take a human label back (an undo on the audit page); False when there is no such sample."""

        def write(conn: Connection) -> bool:
            result = conn.execute(
                audit_samples.update()
                .where(audit_samples.c.id == sample_id)
                .values(label=None, labelled_by=None, labelled_at=None, note=None)
            )
            return result.rowcount > 0

        return bool(self._write_or_raise("clear_audit_label", write))

    # --- web sessions -----------------------------------------------------------

    def revoke_session(self, session_id: str, expires_at: float) -> None:
        """Remember a signed-out session until its cookie would have expired anyway.

        Shared by every box's web server on a fleet store, so a sign-out on one
        page ends the session on all of them.

        Raises:
            StoreError: when it cannot be stored (the web still refuses the
                session in this process).
        """

        def write(conn: Connection) -> None:
            r = revoked_sessions.c
            conn.execute(revoked_sessions.delete().where(r.expires_at < time.time()))
            conn.execute(
                insert_for(conn, revoked_sessions)
                .values(session_id=session_id, expires_at=float(expires_at))
                .on_conflict_do_nothing(index_elements=[r.session_id])
            )

        self._write_or_raise("revoke_session", write)

    def revoked_sessions(self) -> dict[str, float]:
        """Session ids signed out and not yet expired, with when each would expire."""
        r = revoked_sessions.c
        query = select(r.session_id, r.expires_at).where(r.expires_at >= time.time())
        with self._reading() as conn:
            return {str(row[0]): float(row[1]) for row in conn.execute(query)}

    # --- operations: camera stats and the shadow candidate ----------------------

    def add_camera_stats(self, rows: list[CameraStats]) -> None:
        """Append per-camera operating statistics (the daemon writes them every minute)."""
        if not rows:
            return

        def write(conn: Connection) -> None:
            conn.execute(
                camera_stats.insert(),
                [
                    {
                        "site": self.site, "camera": r.camera, "at": r.at, "period_s": r.period_s,
                        "online_s": r.online_s, "frames": r.frames, "reconnects": r.reconnects,
                        "latency_p50_ms": r.latency_p50_ms, "latency_p99_ms": r.latency_p99_ms,
                        "audit": json.dumps({k: dict(v) for k, v in r.audit.items()}),
                        "light": json.dumps(dict(r.light)),
                    }
                    for r in rows
                ],
            )  # fmt: skip

        self._write_or_log("add_camera_stats", write)

    def camera_stats(
        self, since: float | None = None, until: float | None = None, *, site: str | None = None
    ) -> list[dict[str, Any]]:
        s = camera_stats.c
        where = time_filters(s.at, since, until) + ([s.site == site] if site is not None else [])
        query = select(camera_stats).where(*where).order_by(s.at)
        with self._reading() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {**dict(r), "audit": json.loads(r["audit"]), "light": json.loads(r["light"])}
            for r in rows
        ]

    def add_candidate_comparison(
        self, counts: CandidateCounts, disagreements: list[Disagreement]
    ) -> None:
        """Store a period's production-vs-candidate counts and the frames where they disagreed."""

        def write(conn: Connection) -> None:
            c = counts
            conn.execute(
                candidate_frames.insert().values(
                    site=self.site, camera=c.camera, at=c.at,
                    production_version=c.production_version,
                    candidate_version=c.candidate_version, frames=c.frames,
                    agreements=c.agreements, production_alerts=c.production_alerts,
                    candidate_alerts=c.candidate_alerts,
                )
            )  # fmt: skip
            if disagreements:
                conn.execute(
                    candidate_disagreements.insert(),
                    [
                        {
                            "site": self.site, "camera": d.camera, "at": d.at,
                            "production_label": d.production_label,
                            "production_score": d.production_score,
                            "candidate_label": d.candidate_label,
                            "candidate_score": d.candidate_score,
                            "candidate_version": d.candidate_version, "snapshot": d.snapshot_jpeg,
                        }
                        for d in disagreements
                    ],
                )  # fmt: skip

        self._write_or_log("add_candidate_comparison", write)

    def candidate_summary(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        """Per camera and candidate version: frames, agreements, alert counts."""
        c = candidate_frames.c
        query = (
            select(
                c.camera,
                c.production_version,
                c.candidate_version,
                func.sum(c.frames).label("frames"),
                func.sum(c.agreements).label("agreements"),
                func.sum(c.production_alerts).label("production_alerts"),
                func.sum(c.candidate_alerts).label("candidate_alerts"),
            )  # fmt: skip
            .where(*time_filters(c.at, since, until))
            .group_by(c.camera, c.production_version, c.candidate_version)
            .order_by(c.camera)
        )
        with self._reading() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _disagreements(self, *where: Any) -> Any:
        d = candidate_disagreements.c
        return select(
            d.id, d.camera, d.at, d.production_label, d.production_score, d.candidate_label,
            d.candidate_score, d.candidate_version, d.snapshot.is_not(None).label("has_snapshot"),
        ).where(*where)  # fmt: skip

    def candidate_disagreements(
        self, camera: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        d = candidate_disagreements.c
        query = self._disagreements(*([d.camera == camera] if camera else []))
        query = query.order_by(d.at.desc()).limit(limit)
        with self._reading() as conn:
            return [
                {**dict(r), "has_snapshot": bool(r["has_snapshot"])}
                for r in conn.execute(query).mappings()
            ]

    def get_disagreement_snapshot(self, row_id: int) -> bytes | None:
        d = candidate_disagreements.c
        with self._reading() as conn:
            jpeg = conn.execute(select(d.snapshot).where(d.id == row_id)).scalar()
        return bytes(jpeg) if jpeg is not None else None

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
        d = candidate_disagreements.c
        query = self._disagreements(d.camera == camera, *time_filters(d.at, since, until))
        query = query.order_by(d.at.desc(), d.id.desc()).limit(max(1, limit))
        with self._reading() as conn:
            return [
                {**dict(r), "has_snapshot": bool(r["has_snapshot"])}
                for r in conn.execute(query).mappings()
            ]
