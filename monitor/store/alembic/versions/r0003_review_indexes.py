"""Review-page indexes: (kind, label) for the label list, (label, start_at) for the label filter.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from monitor.store.revision_ops import create_index_if_missing, drop_index_if_present

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index_if_missing("events_kind_label", "events", ["kind", "label"])
    create_index_if_missing("events_label_start", "events", ["label", "start_at"])
    drop_index_if_present("events_label", "events")  # (label, start_at) serves it


def downgrade() -> None:
    create_index_if_missing("events_label", "events", ["label"])
    drop_index_if_present("events_label_start", "events")
    drop_index_if_present("events_kind_label", "events")
