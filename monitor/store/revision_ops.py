"""Idempotent schema steps for Alembic revisions, so a database that already has a change is left as it is.

Why idempotent: the databases a revision meets did not all come the same way.
A SQLite file adopted from the hand-written history was built by
``legacy.py``, a fresh one by the baseline revision; where the two could
differ (an index one of them has, a column added by hand on a test box), a
revision that checks first works on both, where a bare ``add_column`` or
``drop_index`` fails on one.

Adding a column is then::

    # schema.py, in the table:     Column("rating", Integer, nullable=False, server_default="0"),
    # versions/r0004_rating.py:    add_column_if_missing("events", Column("rating", Integer, nullable=False, server_default="0"))
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Column, inspect


def _columns(table: str) -> set[str]:
    return {c["name"] for c in inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    return {str(i["name"]) for i in inspect(op.get_bind()).get_indexes(table)}


def add_column_if_missing(table: str, column: Column) -> None:  # type: ignore[type-arg]
    """``ALTER TABLE … ADD COLUMN`` unless ``table`` already has a column of that name."""
    if column.name not in _columns(table):
        op.add_column(table, column)


def create_index_if_missing(
    name: str, table: str, columns: list[str], unique: bool = False
) -> None:
    if name not in _indexes(table):
        op.create_index(name, table, columns, unique=unique)


def drop_index_if_present(name: str, table: str) -> None:
    if name in _indexes(table):
        op.drop_index(name, table_name=table)
