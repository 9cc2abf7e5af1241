"""The review store: events, snapshots, verdicts, audit samples and the notification outbox (SQLite)."""

from monitor.store.migrations import SCHEMA_VERSION, apply_migrations
from monitor.store.review_store import ReviewStore

__all__ = ["SCHEMA_VERSION", "ReviewStore", "apply_migrations"]
