"""The store's schema history: Alembic on both engines, and the adoption of old hand-written SQLite files.

* A fresh database runs every revision from ``0001``.
* A SQLite file from before Alembic (a ``schema_version`` table, versions 1–7)
  is brought to the last hand-written version (7, ``legacy.py``), whose schema
  is the baseline revision's, stamped at the baseline and upgraded from there,
  its rows kept.
* A database at a revision this code does not know was upgraded by a newer
  bearwatch and is refused.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError
from monitor.store import legacy
from monitor.store.url import StoreUrl

logger = logging.getLogger(__name__)
SCRIPTS = Path(__file__).with_name("alembic")
BASELINE = "0001"
# The last hand-written SQLite version: the baseline revision's schema.
LEGACY_ADOPTABLE = legacy.SCHEMA_VERSION
NEWER = "this database was upgraded by a newer bearwatch"


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this code."""

    current: str | None  # the Alembic revision, None when there is none
    legacy: int | None  # the hand-written version of a file not yet adopted
    head: str
    known: bool  # False: a revision from a newer bearwatch

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head and self.legacy is None

    @property
    def empty(self) -> bool:
        return self.current is None and self.legacy is None

    def describe(self) -> str:
        if not self.known:
            return f"{NEWER} (revision {self.current}; this bearwatch knows up to {self.head})"
        if self.legacy is not None:
            return f"hand-written schema version {self.legacy}, before Alembic (head {self.head})"
        if self.current is None:
            return f"no schema (head {self.head})"
        if self.up_to_date:
            return f"revision {self.current} (up to date)"
        return f"revision {self.current}, behind head {self.head}"


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def _sqlite(driver_conn: object) -> sqlite3.Connection:
    # Only SQLite files have a hand-written history.
    assert isinstance(driver_conn, sqlite3.Connection)
    return driver_conn


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def schema_state(conn: Connection) -> SchemaState:
    """Read the revision (or the legacy version) of the database behind ``conn``."""
    scripts = ScriptDirectory.from_config(_config())
    head = scripts.get_current_head() or BASELINE
    current = MigrationContext.configure(conn).get_current_revision()
    legacy_version: int | None = None
    if current is None and "schema_version" in inspect(conn).get_table_names():
        legacy_version = legacy.current_version(_sqlite(conn.connection.driver_connection))
    known = True
    if current is not None:
        try:
            known = scripts.get_revision(current) is not None
        except Exception:  # alembic raises its own errors for unknown ids
            known = False
    if legacy_version is not None and legacy_version > LEGACY_ADOPTABLE:
        known = False
    return SchemaState(current, legacy_version, head, known)


def upgrade(engine: Engine) -> SchemaState:
    """Bring the database to the head revision, adopting an old SQLite file first.

    Raises:
        StoreError: for a schema newer than this code.
    """
    with engine.connect() as conn:
        state = schema_state(conn)
        conn.rollback()
    if not state.known:
        raise StoreError(state.describe())
    if state.up_to_date:
        return state
    if state.legacy is not None:
        raw = engine.raw_connection()
        try:
            legacy.adopt(_sqlite(raw.driver_connection))
        finally:
            raw.close()
    with engine.begin() as conn:
        cfg = _config(conn)
        # Looked at again under the write lock: another process may have adopted
        # the file meanwhile, and stamping it again would replay its revisions.
        if schema_state(conn).legacy is not None:
            command.stamp(cfg, BASELINE)
            logger.info(
                "review store: adopted hand-written schema %d at revision %s",
                state.legacy,
                BASELINE,
            )
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        after = schema_state(conn)
    logger.info("review store: schema %s → %s", state.current or state.legacy, after.current)
    return after


def _engine_for(url: StoreUrl) -> Engine:
    from monitor.store.engine import create_store_engine

    if url.path is not None:
        url.path.parent.mkdir(parents=True, exist_ok=True)
    return create_store_engine(url, busy_timeout_ms=5000, writer=True)


def status_of(url: StoreUrl) -> SchemaState:
    """``bearwatch db status``: where the store's schema stands.

    Raises:
        StoreError: when the store cannot be reached (one line, password redacted).
    """
    from monitor.store.engine import one_line

    if url.path is not None and not url.path.is_file():
        raise StoreError(f"no review store at {url}")
    engine = _engine_for(url)
    try:
        with engine.connect() as conn:
            return schema_state(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open review store {url}: {one_line(exc)}") from None
    finally:
        engine.dispose()


def upgrade_url(url: StoreUrl) -> tuple[SchemaState, SchemaState]:
    """``bearwatch db upgrade``: bring the store (created if it is a new SQLite file) to the head revision.

    Returns:
        The state before and after.

    Raises:
        StoreError: unreachable, refused, or upgraded by a newer bearwatch.
    """
    from monitor.store.engine import one_line

    engine = _engine_for(url)
    try:
        with engine.connect() as conn:
            before = schema_state(conn)
            conn.rollback()
        return before, upgrade(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade review store {url}: {one_line(exc)}") from None
    except StoreError as exc:
        raise StoreError(f"review store {url}: {exc}") from None
    finally:
        engine.dispose()
