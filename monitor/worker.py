"""The one shape of every bearwatch thread: named, non-daemon, a stop event, a captured failure, a heartbeat.

Capture, inference, alerts, notify and web all subclass ``Worker``, so the
supervisor can treat them alike: a worker whose thread ended without being
asked to (and without finishing its job, like a file that reached its end)
has *died*; one whose heartbeat is older than a limit is *stuck*. Either way
the supervisor restarts it from a factory or gives up, and ``failure`` says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Worker:
    """Subclasses implement ``_run``, call ``beat`` while they make progress, and leave when ``stop_event`` is set.

    Args:
        name: the thread's name (``inference``, ``capture:<camera>``, …), shown in logs and dumps.
        clock: monotonic clock for the heartbeat.
    """

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.stop_event = threading.Event()
        self.failure: BaseException | None = None
        self._beat_clock = clock
        self.heartbeat_mono = clock()
        self._thread = threading.Thread(target=self._main, name=name, daemon=False)

    def _run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        self.beat()
        try:
            self._run()
        except (
            BaseException
        ) as exc:  # the thread's boundary: record why it died, for the supervisor
            self.failure = exc
            logger.exception("thread %s crashed", self.name)

    def beat(self) -> None:
        """Say the loop is alive and making progress (one attribute write: cheap, never torn)."""
        self.heartbeat_mono = self._beat_clock()

    def seconds_since_beat(self) -> float:
        return self._beat_clock() - self.heartbeat_mono

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def finished_job(self) -> bool:
        """True when the thread ended because its work is done (a file source at its end)."""
        return False

    def died(self) -> bool:
        """Started, no longer running, not asked to stop and not done: a crash (see ``failure``)."""
        return (
            self.started
            and not self._thread.is_alive()
            and not self.stop_event.is_set()
            and not self.finished_job
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish; it drains what it owns before it exits."""
        self.stop_event.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when the thread has ended (or never started).

        A thread still alive after it is named in a warning: it holds something
        (a blocked read, a request in flight) the shutdown could not take back.
        """
        if not self.started:
            return True
        self._thread.join(max(0.0, timeout))
        if self._thread.is_alive():
            logger.warning("thread %s did not stop within %.1f s", self.name, timeout)
            return False
        return True

    def is_alive(self) -> bool:
        return self._thread.is_alive()


class Deadline:
    """One shutdown budget shared by every join, so the whole stop fits under systemd's ``TimeoutStopSec``.

    Args:
        seconds: the whole budget.
        clock: monotonic clock.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self, floor_s: float = 0.0) -> float:
        """Seconds left (never below ``floor_s``: a join of 0 s still reaps a thread that has ended)."""
        return max(floor_s, self._end - self._clock())

    def expired(self) -> bool:
        return self._clock() >= self._end
