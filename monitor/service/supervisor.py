"""The supervisor: every registered worker is watched the same way, restarted from its factory within a budget, or the process gives up.

A worker has *died* when its thread ended without being asked to (see
``Worker.died``) and is *stuck* when its heartbeat is older than its limit.
Either way the supervisor calls the worker's restart factory, which builds a
fresh worker from config and swaps it in; restarts of all workers share one
budget (``max_restarts`` per ``window_s``), because a box that keeps
crashing is better restarted whole by systemd. A worker without a factory
(the alert stage, whose open events would be lost) makes it give up at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from monitor.config import SupervisorConfig
from monitor.metrics import Metrics
from monitor.worker import Worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Supervised:
    """One worker as the supervisor sees it.

    Attributes:
        name: shown in logs and the restart metric (``capture:<camera>``, ``notify``, …).
        current: returns the worker now in service (a restart replaces it).
        restart: builds, swaps in and starts a new worker; None: the process gives up instead.
        stuck_after_s: a heartbeat older than this is stuck; None: never judged stuck.
        restart_when_stuck: False when a second thread must not run beside a stuck one
            (an inference call cannot be interrupted): the process gives up instead.
    """

    name: str
    current: Callable[[], Worker]
    restart: Callable[[], None] | None = None
    stuck_after_s: float | None = None
    restart_when_stuck: bool = True


class Supervisor:
    """Watches registered workers; ``gave_up`` says why the process should exit.

    Args:
        cfg: the restart budget.
        metrics: ``bearwatch_worker_restarts_total{worker}``.
        clock: monotonic clock for the budget window.
    """

    def __init__(
        self,
        cfg: SupervisorConfig,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg, self.metrics, self.clock = cfg, metrics, clock
        self._workers: dict[str, Supervised] = {}
        self._restarts: deque[float] = deque()
        self.gave_up: str | None = None

    def register(self, item: Supervised) -> None:
        self._workers[item.name] = item

    def unregister(self, name: str) -> None:
        self._workers.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._workers)

    def _budget_left(self) -> bool:
        now = self.clock()
        while self._restarts and now - self._restarts[0] > self.cfg.window_s:
            self._restarts.popleft()
        return len(self._restarts) < self.cfg.max_restarts

    def _problem(self, item: Supervised, worker: Worker) -> tuple[str, bool] | None:
        """(what is wrong, may it be restarted?) or None when the worker is fine."""
        if worker.died():
            why = f": {worker.failure!r}" if worker.failure is not None else ""
            return f"{item.name} died{why}", item.restart is not None
        if (
            item.stuck_after_s is not None
            and worker.started
            and worker.is_alive()
            and worker.seconds_since_beat() > item.stuck_after_s
        ):
            stuck = f"{item.name} has been stuck for over {item.stuck_after_s:.0f} s"
            return stuck, item.restart is not None and item.restart_when_stuck
        return None

    def check(self) -> None:
        """One supervision pass over every worker; sets ``gave_up`` with a reason when the process should exit."""
        for item in list(self._workers.values()):
            if self.gave_up:
                return
            found = self._problem(item, item.current())
            if found is None:
                continue
            problem, restartable = found
            if not restartable:
                self.gave_up = f"{problem} and cannot be restarted"
            elif not self._budget_left():
                self.gave_up = (
                    f"{problem} and the restart budget "
                    f"({self.cfg.max_restarts} per {self.cfg.window_s:.0f} s) is spent"
                )
            else:
                self._restart(item, problem)

    def _restart(self, item: Supervised, problem: str) -> None:
        logger.error("%s; restarting it", problem)
        self._restarts.append(self.clock())
        if self.metrics is not None:
            self.metrics.worker_restarts.labels(worker=item.name).inc()
        old = item.current()
        old.stop()
        old.join(1.0)  # a stuck thread is left behind, named in a warning
        assert item.restart is not None
        try:
            item.restart()
        except Exception as exc:  # a factory that fails (port still taken) is one more failure
            logger.exception("restarting %s failed", item.name)
            if not self._budget_left():
                self.gave_up = f"{item.name} could not be restarted ({exc})"
