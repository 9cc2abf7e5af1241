"""SQLAlchemy engines for the store: SQLite with WAL and an up-front write lock, PostgreSQL via psycopg 3."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from monitor.config import redact_url
from monitor.store.url import StoreUrl

CONNECT_TIMEOUT_S = 5


def create_store_engine(url: StoreUrl, *, busy_timeout_ms: int, writer: bool) -> Engine:
    """An engine for ``url``; ``writer`` engines of SQLite take the write lock at BEGIN.

    SQLite: the stdlib driver in autocommit mode with transactions started here,
    so ``BEGIN IMMEDIATE`` makes ``busy_timeout`` apply at the start of a write
    rather than failing at a lock upgrade halfway through; WAL lets readers
    read while the writer writes; ``synchronous = NORMAL`` in WAL survives a
    process crash (only a power cut can lose the last commits).
    PostgreSQL: small pools. Readers ping a connection before use, so a
    restarted server costs a reader nothing; the writer does not (a round trip
    per event): a dead connection fails its attempt, is dropped from the pool,
    and the retry takes a fresh one. The writer's ``lock_timeout`` is
    ``busy_timeout_ms``, as SQLite's lock wait: a table locked by someone else
    fails the attempt instead of holding the store writer indefinitely.
    """
    if not url.is_sqlite:
        args: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "bearwatch",
        }
        if writer:
            args["options"] = f"-c lock_timeout={int(busy_timeout_ms)}"
        return create_engine(
            url.url,
            pool_pre_ping=not writer,
            pool_size=4,
            max_overflow=4,
            pool_timeout=CONNECT_TIMEOUT_S,
            connect_args=args,
        )
    engine = create_engine(
        url.url,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLite: we say BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        if writer:
            # Outside any transaction: the journal mode cannot change inside one.
            cur.execute("PRAGMA journal_mode = WAL")
        else:
            cur.execute("PRAGMA query_only = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def set_busy_timeout(conn: Connection, busy_ms: int) -> None:
    """SQLite: how long the next statements on ``conn`` wait for another writer's lock.

    Set on the driver connection, outside SQLAlchemy's transaction handling, so
    it can run before ``BEGIN IMMEDIATE``.
    """
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    statement = f"PRAGMA busy_timeout = {max(0, int(busy_ms))}"
    try:
        driver.execute(statement)
    except sqlite3.Error as exc:
        # As SQLAlchemy would raise it, so the write is retried or spilled, never lost.
        raise OperationalError(statement, None, exc) from exc


class StoreClosed(SQLAlchemyError):
    """A write reached a closed store (transient: it is spilled and replayed at the next open)."""

    def __init__(self) -> None:
        super().__init__("review store is closed")


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass (locked file, server restarting, dropped connection)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | StoreClosed):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL or PostgreSQL's disk_full (53100)."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "53100":
        return True
    text = str(orig or exc).lower()
    return "disk is full" in text or "no space left" in text


def one_line(exc: BaseException) -> str:
    """The driver's own message, first line, without SQL or SQLAlchemy's help links."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = str(exc.orig)
    elif isinstance(exc, SQLAlchemyError):
        text = str(exc).split("\n(Background", 1)[0]
    else:
        text = str(exc)
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return redact_url(lines[0] if lines else type(exc).__name__)
