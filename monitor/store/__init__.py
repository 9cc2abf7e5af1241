"""The review store: events, snapshots, verdicts, audit samples and the notification outbox (SQLite or PostgreSQL)."""

from monitor.store.migrate import NEWER, SchemaState, head_revision, schema_state
from monitor.store.review_store import ReviewStore
from monitor.store.url import StoreUrl

__all__ = ["NEWER", "ReviewStore", "SchemaState", "StoreUrl", "head_revision", "schema_state"]
