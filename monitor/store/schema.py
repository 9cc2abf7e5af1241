"""The store's tables, defined once for SQLite and PostgreSQL (SQLAlchemy Core); Alembic migrates to this.

Adding a column is one line here plus one small Alembic revision under
``monitor/store/alembic/versions`` (see ``monitor/store/revision_ops.py``).
Times are UTC epoch seconds (float); JSON columns are text, so both engines
store and compare them the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


def _site() -> Column[str]:
    # The box that wrote the row: camera ids are unique only within a site.
    return Column("site", Text, nullable=False, server_default="")


# SQLite: AUTOINCREMENT never reuses an id, so a cached snapshot URL can never
# show another event's image after retention deletes rows.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("camera", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("peak_score", Float, nullable=False),
    Column("start_at", Float, nullable=False),
    Column("end_at", Float),
    Column("model_version", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("drift_flags", Text, nullable=False, server_default="[]"),
    Column("ood_score", Float),
    Column("details", Text, nullable=False, server_default="{}"),
    Column("frames", Integer, nullable=False, server_default="0"),
    # The recent frames were mostly outside what the model knows (out-of-domain).
    Column("unfamiliar", Integer, nullable=False, server_default="0"),
    # An active-mode alert held for a person because it was unfamiliar.
    Column("held", Integer, nullable=False, server_default="0"),
    Column("night_class", Text),  # day / night / ir, from the frame's pixels
    Column("box", Text),  # the peak region's box, JSON [x0, y0, x1, y1] in frame fractions
    Column("zone", Text),  # the include zone of the peak region
    Column("review_status", Text, nullable=False, server_default="pending"),
    Column("reviewer", Text),
    Column("reason_code", Text),
    Column("note", Text),
    Column("relabel", Text),
    Column("reviewed_at", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The time of the event's last recorded frame: where a crash recovery closes it.
    Column("last_frame_at", Float),
    # Closed at start by a crash recovery, not by the camera.
    Column("interrupted", Integer, nullable=False, server_default="0"),
    # The peak region's small picture (base64; monitor.decide.repeats): what a
    # rejection of this event suppresses later.
    Column("appearance", Text),
    # Like rejected event N (same spot, same look): stored, never notified.
    Column("suppressed_by", Integer),
    _site(),
    Index("events_natural_key", "site", "camera", "kind", "label", "start_at", unique=True),
    Index("events_start", "start_at"),
    Index("events_status_start", "review_status", "start_at"),
    Index("events_camera_start", "camera", "start_at"),
    Index("events_site_start", "site", "start_at"),
    Index("events_kind_label", "kind", "label"),
    Index("events_label_start", "label", "start_at"),
    Index("events_mode_created", "kind", "mode", "created_at"),
    Index("events_status_reviewed", "review_status", "reviewed_at"),
    sqlite_autoincrement=True,
)
# The events a crash left open: found at start without reading every row.
Index(
    "events_open",
    events.c.end_at,
    sqlite_where=events.c.end_at.is_(None),
    postgresql_where=events.c.end_at.is_(None),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column(
        "event_id",
        Integer,
        ForeignKey("events.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("jpeg", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("status", Text, nullable=False),
    Column("reviewer", Text, nullable=False),
    Column("reason_code", Text),
    Column("note", Text),
    Column("relabel", Text),
    Column("reviewed_at", Float, nullable=False),
    Index("verdicts_event", "event_id", "reviewed_at"),
    sqlite_autoincrement=True,
)

camera_modes = Table(
    "camera_modes",
    metadata,
    Column("site", Text, nullable=False, server_default=""),
    Column("camera", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("active_hours", Text),
    Column("changed_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", Float, nullable=False),
    PrimaryKeyConstraint("site", "camera", name="camera_modes_site_pkey"),
)

mode_changes = Table(
    "mode_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", Text, nullable=False),
    Column("old_mode", Text),
    Column("new_mode", Text, nullable=False),
    Column("active_hours", Text),
    Column("changed_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", Float, nullable=False),
    _site(),
    Index("mode_changes_camera", "camera", "changed_at"),
    sqlite_autoincrement=True,
)

audit_samples = Table(
    "audit_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", Text, nullable=False),
    Column("captured_at", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("predicted_label", Text, nullable=False),
    Column("alert_score", Float, nullable=False),
    Column("probs", Text, nullable=False, server_default="{}"),
    Column("snapshot", LargeBinary),
    Column("label", Text),
    Column("labelled_by", Text),
    Column("labelled_at", Float),
    Column("note", Text),
    Column("created_at", Float, nullable=False),
    Column("night_class", Text),
    _site(),
    Index("audit_camera_time", "camera", "captured_at"),
    Index("audit_label", "label"),
    sqlite_autoincrement=True,
)

# The outbox's state: one row per (event, channel). A box claims a row by
# setting claimed_by / claim_until (a lease); a claim past its expiry belongs
# to a box that died and may be taken by another.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("updated_at", Float, nullable=False),
    Column("claimed_by", Text),
    Column("claim_until", Float),
    UniqueConstraint("event_id", "channel", name="deliveries_event_channel"),
    sqlite_autoincrement=True,
)

camera_stats = Table(
    "camera_stats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("period_s", Float, nullable=False),
    Column("online_s", Float, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("reconnects", Integer, nullable=False),
    Column("latency_p50_ms", Float),
    Column("latency_p99_ms", Float),
    Column("audit", Text, nullable=False, server_default="{}"),
    # Frames per light class (day / night / ir) in the period, JSON.
    Column("light", Text, nullable=False, server_default="{}"),
    _site(),
    Index("camera_stats_time", "camera", "at"),
    sqlite_autoincrement=True,
)

candidate_frames = Table(
    "candidate_frames",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("production_version", Text, nullable=False),
    Column("candidate_version", Text, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("agreements", Integer, nullable=False),
    Column("production_alerts", Integer, nullable=False),
    Column("candidate_alerts", Integer, nullable=False),
    _site(),
    sqlite_autoincrement=True,
)

candidate_disagreements = Table(
    "candidate_disagreements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("production_label", Text, nullable=False),
    Column("production_score", Float, nullable=False),
    Column("candidate_label", Text, nullable=False),
    Column("candidate_score", Float, nullable=False),
    Column("candidate_version", Text, nullable=False),
    Column("snapshot", LargeBinary),
    _site(),
    Index("candidate_dis_time", "camera", "at"),
    sqlite_autoincrement=True,
)

# Web sessions signed out before their cookie expires (kept until then).
revoked_sessions = Table(
    "revoked_sessions",
    metadata,
    Column("session_id", Text, primary_key=True),
    Column("expires_at", Float, nullable=False),
)
