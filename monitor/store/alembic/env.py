"""Alembic's entry point for the review store: runs on the connection bearwatch hands it (see ``migrate.py``)."""

from __future__ import annotations

from alembic import context

from monitor.store.schema import metadata


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
