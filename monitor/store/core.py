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

from sqlalchemy import Connection, text
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
)
from monitor.store.score_log import ScoreLog
from monitor.store.spill import SpillJournal
from monitor.store.sql import b64, replay_step
from monitor.store.url import StoreUrl

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF_S = 1.0
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

    def replay_spill(self) -> int:
        """Apply spilled writes in order and shrink the spill file to what is still failing.

        Stops at the first record that fails for a transient reason (the store
        is still locked, read-only or its server is down); a record that can
        never apply (corrupt line, constraint) is moved to
        ``<store>.spill.rejected.jsonl`` and logged.

        Returns:
            How many records were applied.
        """
        with self._spill.lock:
            lines = self._spill.read()
            applied, remaining = 0, []
            for i, line in enumerate(lines):
                try:
                    self._transaction(replay_step(line, self.site))
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
        """Run ``fn`` in a committed transaction, retrying; spill the record when it gives up."""
        if self._spill_pending:
            self.replay_spill()
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
        for attempt in range(self._retries + 1):
            if attempt and self._closing.wait(
                min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            ):
                break
            if self._closing.is_set():
                break
            try:
                return self._transaction(fn)
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

    def _transaction(self, fn: Callable[[Connection], T]) -> T:
        with self._write_lock:
            if self._closing.is_set():
                raise StoreClosed()
            with self._writer.begin() as conn:
                return fn(conn)

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
