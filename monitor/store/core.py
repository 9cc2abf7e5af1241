"""The store's machinery: engines, one writer behind a lock, retries, the spill, the schema check at open."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError, StoreUnavailable
from monitor.metrics import Metrics
from monitor.store import migrate
from monitor.store.engine import (
    StoreClosed,
    create_store_engine,
    is_disk_full,
    is_transient,
    one_line,
    set_busy_timeout,
)
from monitor.store.score_log import ScoreLog
from monitor.store.spill import SpillJournal
from monitor.store.sql import b64, replay_step
from monitor.store.url import StoreUrl

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF_S = 1.0
REPLAY_EVERY_S = 1.0  # under a write budget, a spill replay is tried at most this often
DEFAULT_LOCAL = Path("bearwatch.db")
DISK_CHECK_S = 5.0


class StoreCore:
    """The review store on SQLite or PostgreSQL, safe to share between threads.

    Args:
        target: a ``sqlite:///`` or ``postgresql://`` URL, or a plain SQLite file path.
        site: this box's site, written on every row it adds (``""``: a single box).
        local_path: where the spill and the score log go beside a server
            store (``<local_path>.spill.jsonl``); a SQLite store uses its file.
        upgrade: bring an old schema up at open; None: yes for SQLite (the
            embedded store upgrades itself), no for a server (``bearwatch db upgrade``).
        retries: extra attempts for a failing write before it is spilled.
        metrics: where failures and health are counted; a private set if None.
        busy_timeout_ms: SQLite: how long one attempt waits for another writer's lock.
        backoff_s: the first pause between attempts; doubles, capped at 1 s.
        score_log_days: days of per-frame scores kept beside the store (0: keep all).
        min_free_mb: below this much free disk beside the store (or after a
            "disk full" error) snapshots are no longer written, event rows still are.

    Raises:
        StoreError: one line naming the store (password redacted) when it cannot
            be opened, has no schema or an old one and ``upgrade`` is off, or
            was upgraded by a newer bearwatch.
    """

    def __init__(
        self,
        target: str | Path | StoreUrl,
        *,
        site: str = "",
        local_path: Path | None = None,
        upgrade: bool | None = None,
        retries: int = 5,
        metrics: Metrics | None = None,
        busy_timeout_ms: int = 1000,
        backoff_s: float = 0.05,
        score_log_days: int = 30,
        min_free_mb: float = 0.0,
    ) -> None:
        self.url = target if isinstance(target, StoreUrl) else StoreUrl.parse(target)
        self.site = site
        local = self.url.path or local_path or DEFAULT_LOCAL
        self._local = Path(local)
        # Every classified frame's scores, beside the store (files, not rows:
        # a few bytes a frame, deleted a day at a time).
        self.score_log = ScoreLog(
            self._local.with_name(self._local.name + ".scores"), score_log_days
        )
        self._spill = SpillJournal(self._local.with_name(self._local.name + ".spill.jsonl"))
        self._retries = max(0, retries)
        self._metrics = metrics or Metrics()
        self._backoff_s = backoff_s
        self._write_lock = threading.Lock()
        self._closing = threading.Event()  # also cuts a retry backoff short
        self._healthy = True
        self._busy_timeout_ms = busy_timeout_ms
        self._budget = threading.local()  # this thread's write budget (see ``write_budget``)
        self._last_replay_mono = 0.0
        self._min_free_bytes = int(min_free_mb * 1024 * 1024)
        self._disk_low = False
        self._disk_checked = float("-inf")
        self.size_bytes_cached: int | None = None
        self._writer = create_store_engine(self.url, busy_timeout_ms=busy_timeout_ms, writer=True)
        self._reader = create_store_engine(self.url, busy_timeout_ms=busy_timeout_ms, writer=False)
        try:
            self._open(self.url.is_sqlite if upgrade is None else upgrade)
        except BaseException:
            self._dispose()
            raise
        self._spill_pending = self._spill.path.exists()
        self.replay_spill()
        self._metrics.store_healthy.set(1 if self.healthy else 0)
        self.refresh_size()

    def _open(self, upgrade: bool) -> None:
        try:
            if self.url.path is not None:
                self.url.path.parent.mkdir(parents=True, exist_ok=True)
            self._local.parent.mkdir(parents=True, exist_ok=True)
            with self._writer.connect() as conn:
                if self.url.is_sqlite:
                    # SQLite: WAL lets the web threads read while the alert thread writes.
                    mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                    if str(mode).lower() != "wal":
                        logger.warning(
                            "review store %s: journal mode is %s, not WAL", self.url, mode
                        )
                state = migrate.schema_state(conn)
                conn.rollback()
            if not state.known:
                raise StoreError(f"review store {self.url}: {state.describe()}")
            if not state.up_to_date:
                if not upgrade:
                    raise StoreError(
                        f"review store {self.url}: {state.describe()};"
                        f" run `bearwatch db upgrade --store {self.url}`"
                    )
                migrate.upgrade(self._writer)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open review store {self.url}: {one_line(exc)}") from exc

    @property
    def spill_path(self) -> Path:
        """Where writes that could not be stored wait (JSON lines, snapshots base64)."""
        return self._spill.path

    @property
    def healthy(self) -> bool:
        """False from a write that gave up until its spill has been replayed, and while the disk is full."""
        return self._healthy and not self._disk_low

    @property
    def spilling(self) -> bool:
        """True from a write that gave up until its spill has been replayed."""
        return not self._healthy

    @property
    def disk_low(self) -> bool:
        """True while snapshots are stopped because the disk beside the store is (nearly) full."""
        return self._disk_low

    def snapshots_allowed(self) -> bool:
        """False while the disk beside the store is (nearly) full: events are then stored without images.

        Checked at most every few seconds (one ``statvfs``); a "disk full" write
        error sets it at once.
        """
        now = time.monotonic()
        if self._min_free_bytes and now - self._disk_checked >= DISK_CHECK_S:
            self._disk_checked = now
            try:
                free = shutil.disk_usage(self._local.parent).free
            except OSError:
                free = self._min_free_bytes
            self._set_disk_low(free < self._min_free_bytes, f"{free // 2**20} MB free")
        if self._disk_low:
            self._metrics.snapshots_skipped.inc()
        return not self._disk_low

    def _set_disk_low(self, low: bool, why: str) -> None:
        if low != self._disk_low:
            log = logger.error if low else logger.info
            log(
                "review store %s: %s; snapshots %s",
                self.url, why, "stopped (events are still stored)" if low else "resumed",
            )  # fmt: skip
        self._disk_low = low
        self._metrics.store_healthy.set(1 if self.healthy else 0)

    def refresh_size(self) -> int | None:
        """Measure the store's size for the metric and ``/healthz`` (None when it cannot be read)."""
        try:
            self.size_bytes_cached = self.size_bytes()
        except (StoreError, OSError) as exc:
            logger.warning("review store %s: size unknown: %s", self.url, exc)
            return None
        self._metrics.store_size.set(self.size_bytes_cached)
        return self.size_bytes_cached

    @contextmanager
    def write_budget(self, seconds: float) -> Iterator[None]:
        """Writes made by this thread inside the block give up after ``seconds`` in all.

        The store writer (``monitor.store.writer``) runs each job inside one, so a
        locked or slow database costs it at most the budget per write: an event
        then goes to the fsync'd spill instead of waiting out the retries, and
        while the spill is pending further events go there at once (a replay is
        tried at most every ``REPLAY_EVERY_S``). Zero means one attempt that
        does not wait for a lock. Other threads (a reviewer's verdict) keep the
        full retries.

        SQLite: each attempt's lock wait (``busy_timeout``) is cut to what the
        budget has left. PostgreSQL: the budget bounds the attempts; one
        attempt waits for a lock at most ``busy_timeout_ms`` (the writer's
        ``lock_timeout``).
        """
        previous = getattr(self._budget, "deadline", None)
        self._budget.deadline = time.monotonic() + max(0.0, seconds)
        try:
            yield
        finally:
            self._budget.deadline = previous

    def _deadline(self) -> float | None:
        deadline: float | None = getattr(self._budget, "deadline", None)
        return deadline

    def _busy_ms(self, deadline: float | None) -> int | None:
        """The lock wait for the next attempt: the configured one, cut to what the budget has left."""
        if deadline is None:
            return None
        return int(min(self._busy_timeout_ms, max(0.0, deadline - time.monotonic()) * 1000))

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    def schema_version(self) -> str:
        """The Alembic revision the database is at."""
        with self._reading() as conn:
            return str(migrate.schema_state(conn).current)

    def size_bytes(self) -> int:
        """The store's size on disk: the SQLite file and its WAL, or the PostgreSQL database."""
        if self.url.path is not None:
            wal = self.url.path.with_name(self.url.path.name + "-wal")
            return sum(p.stat().st_size for p in (self.url.path, wal) if p.exists())
        with self._reading() as conn:
            return int(
                conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )

    def replay_spill(self, busy_ms: int | None = None) -> int:
        """Apply spilled writes in order and shrink the spill file to what is still failing.

        Stops at the first record that fails for a transient reason (the store
        is still locked, read-only or its server is down); a record that can
        never apply (corrupt line, constraint) is moved to
        ``<store>.spill.rejected.jsonl`` and logged.

        Args:
            busy_ms: SQLite: how long each attempt may wait for the lock (default: the store's).

        Returns:
            How many records were applied.
        """
        self._last_replay_mono = time.monotonic()
        with self._spill.lock:
            lines = self._spill.read()
            applied, remaining = 0, []
            for i, line in enumerate(lines):
                try:
                    self._transaction(replay_step(line, self.site), busy_ms)
                except SQLAlchemyError as exc:
                    if not is_transient(exc):
                        self._reject(line, one_line(exc))
                        continue
                    self._metrics.store_failures.inc()
                    logger.warning(
                        "review store: spill replay paused (%s); %d left",
                        one_line(exc), len(lines) - i,
                    )  # fmt: skip
                    remaining = lines[i:]
                    break
                except (ValueError, KeyError, TypeError) as exc:
                    self._reject(line, str(exc))
                    continue
                applied += 1
            self._spill.keep(remaining)
            self._spill_pending = bool(remaining)
        if applied:
            logger.info("review store: replayed %d spilled writes", applied)
        self._set_healthy(not remaining)
        return applied

    def _reject(self, line: str, why: str) -> None:
        logger.error(
            "review store: a spilled write cannot be applied (%s); moved to %s",
            why, self._spill.rejected_path,
        )  # fmt: skip
        self._spill.reject(line)

    def close(self) -> None:
        """Close the engines; later writes are spilled, later reads raise StoreUnavailable."""
        self._closing.set()
        self.score_log.close()
        with self._write_lock:
            self._dispose()

    def _dispose(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    def _write(
        self,
        op: str,
        record: dict[str, Any],
        jpeg: bytes | None,
        fn: Callable[[Connection], T],
    ) -> T | None:
        """Run ``fn`` in a committed transaction, retrying; spill the record when it gives up.

        Under a ``write_budget`` the attempts stop when the budget is spent, and
        while earlier writes are spilled the record joins them without touching
        the database (a replay is tried at most every ``REPLAY_EVERY_S``).
        """
        if self._spill_pending:
            deadline = self._deadline()
            due = time.monotonic() - self._last_replay_mono >= REPLAY_EVERY_S
            if deadline is None or due:
                self.replay_spill(self._busy_ms(deadline))
            if self._spill_pending:
                # Going around the spill would apply this write before older ones.
                self._give_up(op, record, jpeg, "earlier writes are still spilled", 0)
                return None
        try:
            return self._with_retries(op, fn)
        except StoreError as exc:
            self._give_up(op, record, jpeg, exc, self._retries + 1)
            return None

    def _write_or_log(self, op: str, fn: Callable[[Connection], T]) -> T | None:
        """For records worth keeping but not worth a spill (samples, statistics): retry, then log an error."""
        try:
            return self._with_retries(op, fn)
        except StoreError as exc:
            logger.error("review store: %s not stored: %s", op, exc)
            return None

    def _write_or_raise(self, op: str, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a committed transaction with the same retries as events; raise when it gives up.

        For writes a person is waiting on (a mode change, a label) or that are
        statistics: failing loudly is better than spilling them.
        """
        return self._with_retries(op, fn)

    def _with_retries(self, op: str, fn: Callable[[Connection], T]) -> T:
        error: str = "store is closed"
        deadline = self._deadline()
        for attempt in range(self._retries + 1):
            if attempt and self._pause(attempt, deadline):
                break
            if self._closing.is_set():
                break
            try:
                return self._transaction(fn, self._busy_ms(deadline))
            except SQLAlchemyError as exc:
                error = one_line(exc)
                self._metrics.store_failures.inc()
                if is_disk_full(exc):
                    # Images are what fills a disk: the next attempt stores the row without one.
                    self._set_disk_low(True, error)
                    self._disk_checked = time.monotonic()
                logger.warning("review store: %s attempt %d failed: %s", op, attempt + 1, error)
                if not is_transient(exc):
                    break  # retrying cannot help
        raise StoreError(f"{op} failed: {error}")

    def _pause(self, attempt: int, deadline: float | None) -> bool:
        """Back off before another attempt; True when it should not be made (closing, budget spent)."""
        wait = min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
        if deadline is not None and deadline - time.monotonic() <= wait:
            return True
        return self._closing.wait(wait)

    def _transaction(self, fn: Callable[[Connection], T], busy_ms: int | None = None) -> T:
        with self._write_lock:
            if self._closing.is_set():
                raise StoreClosed()
            with self._writer.connect() as conn:
                # SQLite: the lock wait is set before BEGIN IMMEDIATE takes the lock.
                # The driver connection is used so that setting it starts no transaction.
                busy = busy_ms if busy_ms is not None and self.url.is_sqlite else None
                if busy is not None:
                    set_busy_timeout(conn, busy)
                try:
                    with conn.begin():
                        return fn(conn)
                finally:
                    if busy is not None:
                        set_busy_timeout(conn, self._busy_timeout_ms)

    def _give_up(
        self, op: str, record: dict[str, Any], jpeg: bytes | None, error: object, attempts: int
    ) -> None:
        self._set_healthy(False)
        logger.error(
            "review store: %s gave up after %d attempts (%s); spilling to %s: %s",
            op, attempts, error, self._spill.path, json.dumps(record, default=str),
        )  # fmt: skip
        try:
            self._spill.append({**record, "snapshot_b64": b64(jpeg), "spilled_at": time.time()})
            self._spill_pending = True
        except OSError as exc:
            logger.critical(
                "review store: cannot write spill %s (%s); %s is LOST", self._spill.path, exc, op
            )

    def _set_healthy(self, healthy: bool) -> None:
        self._healthy = healthy
        self._metrics.store_healthy.set(1 if self.healthy else 0)

    def _distinct(self, column: Any, *where: Any) -> list[str]:
        """Distinct values by a loose index scan: one index probe per value, not a read of every row.

        Portable SQL (a recursive CTE of ``MIN(col) WHERE col > previous``), where
        ``SELECT DISTINCT`` would read every event row on both engines.
        """
        first = select(func.min(column).label("v")).where(*where).cte("vals", recursive=True)
        step = select(func.min(column)).where(column > first.c.v, *where).scalar_subquery()
        cte = first.union_all(select(step).where(first.c.v.is_not(None)))
        with self._reading() as conn:
            rows = conn.execute(select(cte.c.v).where(cte.c.v.is_not(None))).scalars()
            return [str(r) for r in rows]

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        if self._closing.is_set():
            raise StoreUnavailable(f"review store {self.url} is closed")
        try:
            with self._reader.connect() as conn:
                yield conn
                conn.rollback()
        except SQLAlchemyError as exc:
            raise StoreUnavailable(
                f"reading review store {self.url} failed: {one_line(exc)}"
            ) from exc
