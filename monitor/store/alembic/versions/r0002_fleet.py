"""Fleet: a ``site`` on every row a box writes, the natural key and camera modes per site, the outbox lease.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.revision_ops import (
    add_column_if_missing,
    create_index_if_missing,
    drop_index_if_present,
)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SITE_TABLES = (
    "events",
    "mode_changes",
    "audit_samples",
    "camera_stats",
    "candidate_frames",
    "candidate_disagreements",
)


def upgrade() -> None:
    for table in SITE_TABLES:
        add_column_if_missing(table, sa.Column("site", sa.Text, nullable=False, server_default=""))
    # The same camera id at two sites is two cameras.
    drop_index_if_present("events_natural_key", "events")
    op.create_index(
        "events_natural_key", "events", ["site", "camera", "kind", "label", "start_at"], unique=True
    )
    create_index_if_missing("events_site_start", "events", ["site", "start_at"])
    add_column_if_missing("deliveries", sa.Column("claimed_by", sa.Text))
    add_column_if_missing("deliveries", sa.Column("claim_until", sa.Float))
    # camera_modes is keyed by (site, camera): a new table, the rows copied (both engines).
    if "site" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("camera_modes")}:
        _camera_modes_per_site()


def _camera_modes_per_site() -> None:
    op.create_table(
        "camera_modes_new",
        sa.Column("site", sa.Text, nullable=False, server_default=""),
        sa.Column("camera", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("active_hours", sa.Text),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("site", "camera", name="camera_modes_site_pkey"),
    )
    cols = "camera, mode, active_hours, changed_by, reason, changed_at"
    op.execute(f"INSERT INTO camera_modes_new (site, {cols}) SELECT '', {cols} FROM camera_modes")
    op.drop_table("camera_modes")
    op.rename_table("camera_modes_new", "camera_modes")


def downgrade() -> None:
    raise NotImplementedError("the fleet schema is not downgraded; restore a backup instead")
