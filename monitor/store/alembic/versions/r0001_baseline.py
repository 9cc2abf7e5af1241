"""Baseline: the schema of the hand-written SQLite migrations 1–7 (events, snapshots, verdicts, modes, audit, outbox, stats, sessions).

An old SQLite file is brought to legacy version 7 by ``legacy.py`` and then
stamped here, so this revision never runs on it: what it creates must match
what ``legacy.MIGRATIONS`` builds, table by table (a test compares them).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AUTO = {"sqlite_autoincrement": True}


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _event_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "event_id", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    text, real = sa.Text, sa.Float
    op.create_table(
        "events",
        _id(),
        sa.Column("kind", text, nullable=False),
        sa.Column("camera", text, nullable=False),
        sa.Column("label", text, nullable=False),
        sa.Column("peak_score", real, nullable=False),
        sa.Column("start_at", real, nullable=False),
        sa.Column("end_at", real),
        sa.Column("model_version", text, nullable=False),
        sa.Column("mode", text, nullable=False),
        sa.Column("drift_flags", text, nullable=False, server_default="[]"),
        sa.Column("ood_score", real),
        sa.Column("details", text, nullable=False, server_default="{}"),
        sa.Column("frames", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unfamiliar", sa.Integer, nullable=False, server_default="0"),
        sa.Column("held", sa.Integer, nullable=False, server_default="0"),
        sa.Column("night_class", text),
        sa.Column("box", text),
        sa.Column("zone", text),
        sa.Column("review_status", text, nullable=False, server_default="pending"),
        sa.Column("reviewer", text),
        sa.Column("reason_code", text),
        sa.Column("note", text),
        sa.Column("relabel", text),
        sa.Column("reviewed_at", real),
        sa.Column("created_at", real, nullable=False),
        sa.Column("updated_at", real, nullable=False),
        sa.Column("last_frame_at", real),
        sa.Column("interrupted", sa.Integer, nullable=False, server_default="0"),
        **AUTO,
    )
    op.create_index(
        "events_natural_key", "events", ["camera", "kind", "label", "start_at"], unique=True
    )
    op.create_index("events_start", "events", ["start_at"])
    op.create_table(
        "snapshots",
        sa.Column(
            "event_id",
            sa.Integer,
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", real, nullable=False),
    )
    op.create_table(
        "verdicts",
        _id(),
        _event_fk(),
        sa.Column("status", text, nullable=False),
        sa.Column("reviewer", text, nullable=False),
        sa.Column("reason_code", text),
        sa.Column("note", text),
        sa.Column("relabel", text),
        sa.Column("reviewed_at", real, nullable=False),
        **AUTO,
    )
    op.create_index("verdicts_event", "verdicts", ["event_id", "reviewed_at"])
    op.create_index("events_status_start", "events", ["review_status", "start_at"])
    op.create_index("events_camera_start", "events", ["camera", "start_at"])
    op.create_index("events_label", "events", ["label"])
    op.create_table(
        "camera_modes",
        sa.Column("camera", text, primary_key=True),
        sa.Column("mode", text, nullable=False),
        sa.Column("active_hours", text),
        sa.Column("changed_by", text, nullable=False),
        sa.Column("reason", text, nullable=False),
        sa.Column("changed_at", real, nullable=False),
    )
    op.create_table(
        "mode_changes",
        _id(),
        sa.Column("camera", text, nullable=False),
        sa.Column("old_mode", text),
        sa.Column("new_mode", text, nullable=False),
        sa.Column("active_hours", text),
        sa.Column("changed_by", text, nullable=False),
        sa.Column("reason", text, nullable=False),
        sa.Column("changed_at", real, nullable=False),
        **AUTO,
    )
    op.create_index("mode_changes_camera", "mode_changes", ["camera", "changed_at"])
    op.create_table(
        "audit_samples",
        _id(),
        sa.Column("camera", text, nullable=False),
        sa.Column("captured_at", real, nullable=False),
        sa.Column("reason", text, nullable=False),
        sa.Column("model_version", text, nullable=False),
        sa.Column("predicted_label", text, nullable=False),
        sa.Column("alert_score", real, nullable=False),
        sa.Column("probs", text, nullable=False, server_default="{}"),
        sa.Column("snapshot", sa.LargeBinary),
        sa.Column("label", text),
        sa.Column("labelled_by", text),
        sa.Column("labelled_at", real),
        sa.Column("note", text),
        sa.Column("created_at", real, nullable=False),
        sa.Column("night_class", text),
        **AUTO,
    )
    op.create_index("audit_camera_time", "audit_samples", ["camera", "captured_at"])
    op.create_index("audit_label", "audit_samples", ["label"])
    op.create_table(
        "deliveries",
        _id(),
        _event_fk(),
        sa.Column("channel", text, nullable=False),
        sa.Column("trigger", text, nullable=False),
        sa.Column("status", text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", text),
        sa.Column("updated_at", real, nullable=False),
        sa.UniqueConstraint("event_id", "channel", name="deliveries_event_channel"),
        **AUTO,
    )
    op.create_table(
        "camera_stats",
        _id(),
        sa.Column("camera", text, nullable=False),
        sa.Column("at", real, nullable=False),
        sa.Column("period_s", real, nullable=False),
        sa.Column("online_s", real, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("reconnects", sa.Integer, nullable=False),
        sa.Column("latency_p50_ms", real),
        sa.Column("latency_p99_ms", real),
        sa.Column("audit", text, nullable=False, server_default="{}"),
        sa.Column("light", text, nullable=False, server_default="{}"),
        **AUTO,
    )
    op.create_index("camera_stats_time", "camera_stats", ["camera", "at"])
    op.create_table(
        "candidate_frames",
        _id(),
        sa.Column("camera", text, nullable=False),
        sa.Column("at", real, nullable=False),
        sa.Column("production_version", text, nullable=False),
        sa.Column("candidate_version", text, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("agreements", sa.Integer, nullable=False),
        sa.Column("production_alerts", sa.Integer, nullable=False),
        sa.Column("candidate_alerts", sa.Integer, nullable=False),
        **AUTO,
    )
    op.create_table(
        "candidate_disagreements",
        _id(),
        sa.Column("camera", text, nullable=False),
        sa.Column("at", real, nullable=False),
        sa.Column("production_label", text, nullable=False),
        sa.Column("production_score", real, nullable=False),
        sa.Column("candidate_label", text, nullable=False),
        sa.Column("candidate_score", real, nullable=False),
        sa.Column("candidate_version", text, nullable=False),
        sa.Column("snapshot", sa.LargeBinary),
        **AUTO,
    )
    op.create_index("candidate_dis_time", "candidate_disagreements", ["camera", "at"])
    op.create_index("events_mode_created", "events", ["kind", "mode", "created_at"])
    op.create_index("events_status_reviewed", "events", ["review_status", "reviewed_at"])
    open_rows = sa.text("end_at IS NULL")
    op.create_index(
        "events_open", "events", ["end_at"], sqlite_where=open_rows, postgresql_where=open_rows
    )
    op.create_table(
        "revoked_sessions",
        sa.Column("session_id", text, primary_key=True),
        sa.Column("expires_at", real, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "revoked_sessions",
        "candidate_disagreements",
        "candidate_frames",
        "camera_stats",
        "deliveries",
        "audit_samples",
        "mode_changes",
        "camera_modes",
        "verdicts",
        "snapshots",
        "events",
    ):
        op.drop_table(table)
