"""Idempotent schema steps for Alembic revisions, so a database that already has a change is left as it is.

Why idempotent: SQLite files written by the hand-written migrations of other
branches (schema versions 5–7) already carry some columns when they are
adopted into the Alembic history at the baseline. A revision that adds a
column with ``add_column`` would fail on them; with ``add_column_if_missing``
it skips what is there and adds the rest.

Adding a column is then::

    # schema.py, in the table:          Column("interrupted", Integer, nullable=False, server_default="0"),
    # versions/r0003_interrupted.py:    add_column_if_missing("events", Column("interrupted", Integer, nullable=False, server_default="0"))
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
