"""The store's machinery: one writer behind a lock, read connections, retries, the spill."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from monitor.errors import StoreError, StoreUnavailable
from monitor.metrics import Metrics
from monitor.store.migrations import apply_migrations
from monitor.store.score_log import ScoreLog
from monitor.store.spill import SpillJournal
from monitor.store.sql import b64, connect, replay_step, rollback

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF_S = 1.0
REPLAY_EVERY_S = 1.0  # under a write budget, a spill replay is tried at most this often


class StoreCore:
    """Events, snapshots and verdicts in one SQLite file, safe to share between threads.

    Args:
        path: the database file (created, with its schema, if missing).
        retries: extra attempts for a failing write before it is spilled.
        metrics: where failures and health are counted; a private set if None.
        busy_timeout_ms: how long one attempt waits for another writer's lock.
        backoff_s: the first pause between attempts; doubles, capped at 1 s.
        score_log_days: days of per-frame scores kept beside the file (0: keep all).

    Raises:
        StoreError: when the file cannot be opened or its schema is newer than this code.
    """

    def __init__(
        self,
        path: Path,
        *,
        retries: int = 5,
        metrics: Metrics | None = None,
        busy_timeout_ms: int = 1000,
        backoff_s: float = 0.05,
        score_log_days: int = 30,
    ) -> None:
        self._path = Path(path)
        # Every classified frame's scores, beside the database (files, not rows:
        # a few bytes a frame, deleted a day at a time).
        self.score_log = ScoreLog(self._path.with_name(self._path.name + ".scores"), score_log_days)
        self._spill = SpillJournal(self._path.with_name(self._path.name + ".spill.jsonl"))
        self._retries = max(0, retries)
        self._metrics = metrics or Metrics()
        self._busy_timeout_ms = busy_timeout_ms
        self._backoff_s = backoff_s
        self._write_lock = threading.Lock()
        self._closing = threading.Event()  # also cuts a retry backoff short
        self._healthy = True
        self._budget = threading.local()  # this thread's write budget (see ``write_budget``)
        self._last_replay_mono = 0.0
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = connect(self._path, busy_timeout_ms, read_only=False)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open review store {self._path}: {exc}") from exc

        try:
            # SQLite: WAL lets the web threads read while the alert thread writes.
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("review store %s: journal mode is %s, not WAL", self._path, mode)
            apply_migrations(self._writer)
        except (sqlite3.Error, StoreError) as exc:
            self._writer.close()
            raise StoreError(f"cannot open review store {self._path}: {exc}") from exc
        self._spill_pending = self._spill.path.exists()
        self.replay_spill()
        self._metrics.store_healthy.set(1 if self._healthy else 0)

    @property
    def spill_path(self) -> Path:
        """Where writes that could not be stored wait (JSON lines, snapshots base64)."""
        return self._spill.path

    @property
    def healthy(self) -> bool:
        """False from a write that gave up until its spill has been replayed."""
        return self._healthy

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

    def schema_version(self) -> int:
        """The highest migration applied to the file."""
        with self._reading() as conn:
            return int(conn.execute("SELECT MAX(version) FROM schema_version").fetchall()[0][0])

    def replay_spill(self, busy_ms: int | None = None) -> int:
        """Apply spilled writes in order and shrink the spill file to what is still failing.

        Stops at the first record that fails for a transient reason (the store
        is still locked or read-only); a record that can never apply (corrupt
        line, constraint) is moved to ``<db>.spill.rejected.jsonl`` and logged.

        Args:
            busy_ms: how long each attempt may wait for the lock (default: the store's).

        Returns:
            How many records were applied.
        """
        self._last_replay_mono = time.monotonic()
        with self._spill.lock:
            lines = self._spill.read()
            applied, remaining = 0, []
            for i, line in enumerate(lines):
                try:
                    self._transaction(replay_step(line), busy_ms)
                except sqlite3.OperationalError as exc:
                    self._metrics.store_failures.inc()
                    logger.warning(
                        "review store: spill replay paused (%s); %d left", exc, len(lines) - i
                    )
                    remaining = lines[i:]
                    break
                except (ValueError, KeyError, TypeError, sqlite3.Error) as exc:
                    logger.error(
                        "review store: a spilled write cannot be applied (%s); moved to %s",
                        exc, self._spill.rejected_path,
                    )  # fmt: skip
                    self._spill.reject(line)
                    continue
                applied += 1
            self._spill.keep(remaining)
            self._spill_pending = bool(remaining)
        if applied:
            logger.info("review store: replayed %d spilled writes", applied)
        self._set_healthy(not remaining)
        return applied

    def close(self) -> None:
        """Close the writer; later writes are spilled, later reads raise StoreUnavailable."""
        self._closing.set()
        self.score_log.close()
        with self._write_lock:
            self._writer.close()

    def _write(
        self,
        op: str,
        record: dict[str, Any],
        jpeg: bytes | None,
        fn: Callable[[sqlite3.Connection], T],
    ) -> T | None:
        """Run ``fn`` in a committed transaction, retrying; spill the record when it gives up.

        Under a ``write_budget`` the attempts stop when the budget is spent, and
        while earlier writes are spilled the record joins them without touching
        the database (a replay is tried at most every ``REPLAY_EVERY_S``).
        """
        deadline = self._deadline()
        if self._spill_pending:
            due = time.monotonic() - self._last_replay_mono >= REPLAY_EVERY_S
            if deadline is None or due:
                self.replay_spill(self._busy_ms(deadline))
            if self._spill_pending:
                # Going around the spill would apply this write before older ones.
                self._give_up(op, record, jpeg, "earlier writes are still spilled", 0)
                return None
        error: Exception | None = None
        attempt = 0
        while attempt <= self._retries and not self._closing.is_set():
            if attempt and self._pause(attempt, deadline):
                break
            attempt += 1
            try:
                return self._transaction(fn, self._busy_ms(deadline))
            except sqlite3.Error as exc:
                error = exc
                self._metrics.store_failures.inc()
                logger.warning("review store: %s attempt %d failed: %s", op, attempt, exc)
                if not isinstance(exc, sqlite3.OperationalError):
                    break  # not transient: retrying cannot help
        self._give_up(op, record, jpeg, error or StoreError("store is closed"), attempt)
        return None

    def _write_or_log(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T | None:
        """For records worth keeping but not worth a spill (samples, statistics): retry, then log an error."""
        try:
            return self._write_or_raise(op, fn)
        except StoreError as exc:
            logger.error("review store: %s not stored: %s", op, exc)
            return None

    def _write_or_raise(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a committed transaction with the same retries as events; raise when it gives up.

        For writes a person is waiting on (a mode change, a label) or that are
        statistics: failing loudly is better than spilling them.
        """
        error: Exception | None = None
        deadline = self._deadline()
        for attempt in range(self._retries + 1):
            if attempt and self._pause(attempt, deadline):
                break
            try:
                return self._transaction(fn, self._busy_ms(deadline))
            except sqlite3.Error as exc:
                error = exc
                self._metrics.store_failures.inc()
                logger.warning("review store: %s attempt %d failed: %s", op, attempt + 1, exc)
                if not isinstance(exc, sqlite3.OperationalError):
                    break
        raise StoreError(f"{op} failed: {error or 'store is closed'}")

    def _pause(self, attempt: int, deadline: float | None) -> bool:
        """Back off before another attempt; True when it should not be made (closing, budget spent)."""
        wait = min(self._backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= wait:
                return True
        return self._closing.wait(wait)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T], busy_ms: int | None = None) -> T:
        with self._write_lock:
            if self._closing.is_set():
                raise sqlite3.OperationalError("review store is closed")
            conn = self._writer
            if busy_ms is not None:
                conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
            try:
                # SQLite: take the write lock up front so busy_timeout applies here
                # rather than failing at a lock upgrade halfway through.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    rollback(conn)
                    raise
                return result
            finally:
                if busy_ms is not None:
                    conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")

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
        self._metrics.store_healthy.set(1 if healthy else 0)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        # A connection per read: reads are rare (a reviewer, a scraper) and
        # opening SQLite is cheap, so there is no pool to leak or to close.
        if self._closing.is_set():
            raise StoreUnavailable(f"review store {self._path} is closed")
        try:
            conn = connect(self._path, self._busy_timeout_ms, read_only=True)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open review store {self._path}: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"reading review store {self._path} failed: {exc}") from exc
        finally:
            conn.close()
