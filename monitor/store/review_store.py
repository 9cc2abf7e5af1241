"""The review queue: events, snapshots and verdicts in SQLite or PostgreSQL — the store package is the only one that speaks SQL.

Why it is shaped this way:

* Every write commits before it returns: notifications go out only after the
  event is stored, so a crash after a notification can never lose the event.
* A write that keeps failing (locked database, disk I/O error, read-only file)
  is retried with a short backoff, then appended to a JSON-lines spill file
  beside the database, so an alert is never dropped silently. The spill is
  replayed at open and before the next write; while it cannot be replayed,
  new writes queue behind it, so writes are applied in the order they were made.
* One writer behind a lock serialises this process's writes; reads (the web
  server's threads) take pooled connections, and SQLite's WAL mode lets them
  read while the alert thread writes.
* Snapshots live in their own table keyed by event id: queue listings never drag
  JPEG bytes through the page cache, and retention drops old images while
  keeping the verdicts.
* An event's natural key (site, camera, kind, label, start_at) is unique, so
  replaying a spill twice (a crash between replay and clearing the file) adds
  nothing twice.
* One schema for SQLite (embedded, the default) and PostgreSQL (a fleet's
  shared store): tables in ``schema.py``, queries built from them with
  SQLAlchemy Core, migrations by Alembic (``migrate.py``).
* Many boxes may write one PostgreSQL store: each writes its ``site`` on its
  rows, and the outbox is claimed with a lease (``claim_notifications``), so
  each notification is sent by one box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.errors import StoreError
from monitor.store.events import EventQueries
from monitor.store.operations import OperationQueries
from monitor.store.outbox import OutboxQueries
from monitor.store.url import StoreUrl


class ReviewStore(EventQueries, OperationQueries, OutboxQueries):
    """Events, snapshots and verdicts in SQLite or PostgreSQL, safe to share between threads (see ``StoreCore``)."""


def open_existing(target: str | Path, **kwargs: Any) -> ReviewStore:
    """The store at ``target`` (a URL or a SQLite path) for a command: a missing file is an error.

    A typo must not create an empty store, and a command never upgrades a
    server's schema behind its operator's back (``bearwatch db upgrade`` does).

    Raises:
        StoreError: one line naming the store (password redacted).
    """
    url = StoreUrl.parse(target)
    if url.path is not None and not url.path.is_file():
        raise StoreError(f"no review store at {url}")
    return ReviewStore(url, **kwargs)
