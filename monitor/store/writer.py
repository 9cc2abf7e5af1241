"""The ``store-writer`` thread: the alert stage's writes, in order, off the decision thread, within a budget each.

Why it exists: with the SQLite file locked by another process for 20 s, every
write waited out its busy timeout on the alerts thread, so decisions for all
cameras fell 20 s behind. Now the stage hands each write over as a job and
goes on deciding. The writer runs the jobs in order (an event's start before
its updates), each inside a ``write_budget`` of ``budget_s`` minus the time it
already waited in the queue: a slow or locked store costs a job at most that,
then the event goes to the fsync'd spill — durable, replayed in order once
the database takes writes again — and the store reports itself unhealthy
until then (``/healthz`` degraded). Memory stays bounded by the queue's size;
a job that finds the queue full is not dropped: it runs on the caller's
thread with a zero budget, which spills it at once.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from monitor.metrics import Metrics
from monitor.store.core import StoreCore
from monitor.worker import Worker

logger = logging.getLogger(__name__)

Job = Callable[[], None]
MAX_QUEUE = 1024  # jobs; an event job holds a snapshot JPEG (tens of KiB): tens of MiB at most
BUDGET_S = 0.5  # a job's time from submit to stored-or-spilled, when the store is slow


class StoreWriter(Worker):
    """Runs store jobs from a bounded queue on one named thread, ``store-writer``.

    Args:
        store: the store the jobs write to (for their write budget).
        metrics: queue depth and overflow counts.
        max_queue: jobs held at most.
        budget_s: what one job may cost, queue wait included, before it spills.
        clock: monotonic clock.
    """

    def __init__(
        self,
        store: StoreCore,
        metrics: Metrics,
        *,
        max_queue: int = MAX_QUEUE,
        budget_s: float = BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("store-writer", clock)
        self._store = store
        self._metrics = metrics
        self._budget_s = budget_s
        self._clock = clock
        self._queue: queue.Queue[tuple[float, Job]] = queue.Queue(maxsize=max_queue)
        self.overflows = 0

    @property
    def backlog(self) -> int:
        """Jobs waiting."""
        return self._queue.qsize()

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def submit(self, job: Job) -> None:
        """Queue a job; never waits for the store (a full queue runs it here with a zero budget: it spills)."""
        try:
            self._queue.put_nowait((self._clock(), job))
        except queue.Full:
            self.overflows += 1
            self._metrics.store_writer_overflows.inc()
            if self.overflows == 1 or self.overflows % 100 == 0:
                logger.error(
                    "store writer: %d jobs waiting; writing on the caller's thread "
                    "(spilled at once, possibly out of order) — %d times so far",
                    self._queue.maxsize, self.overflows,
                )  # fmt: skip
            self._run_job(job, 0.0)
            return
        self._metrics.store_writer_queue.set(self._queue.qsize())

    def _run(self) -> None:
        # On stop, everything queued is still written (or spilled) before the thread ends.
        while True:
            self.beat()
            try:
                queued, job = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    break
                continue
            try:
                self._run_job(job, self._budget_s - (self._clock() - queued))
            finally:
                self._queue.task_done()
                self._metrics.store_writer_queue.set(self._queue.qsize())

    def _run_job(self, job: Job, budget_s: float) -> None:
        try:
            with self._store.write_budget(budget_s):
                job()
        except Exception:  # the loop boundary: one bad job must not stop the writes behind it
            logger.exception("store writer: a write failed")
            self._metrics.batch_errors.inc()
