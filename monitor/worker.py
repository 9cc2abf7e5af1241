"""A named, non-daemon worker thread with a stop event — the shape every bearwatch stage shares."""

from __future__ import annotations

import threading


class Worker:
    """Subclasses implement ``_run`` and leave it when ``stop_event`` is set.

    Args:
        name: the thread's name (``inference``, ``alerts``, …), shown in logs and dumps.
    """

    def __init__(self, name: str) -> None:
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=False)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish; it drains what it owns before it exits."""
        self.stop_event.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when the thread has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread.is_alive()
