"""Repeat false alarms: the peak region's picture on every event, and which rejected event an event is like.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa

from monitor.store.revision_ops import add_column_if_missing

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column_if_missing("events", sa.Column("appearance", sa.Text))
    add_column_if_missing("events", sa.Column("suppressed_by", sa.Integer))


def downgrade() -> None:
    from alembic import op

    with op.batch_alter_table("events") as batch:
        batch.drop_column("suppressed_by")
        batch.drop_column("appearance")
