"""Per-camera bounded frame queues between capture threads and the batcher.

Live sources hold one frame and use *newest wins*: a frame arriving while the
previous one is still waiting replaces it, and the old one is dropped with
reason ``superseded`` — a slow model must never make frames pile up, because
an old frame of a bear is worth less than a new one. File sources block
instead, so a replay processes every sampled frame and is deterministic; they
may run up to ``file_depth`` frames ahead, so decoding the next frames
overlaps with the model working on the current batch. One condition variable
serves all queues so the batcher can wait for "any camera has a frame"
without polling.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from monitor.frames import Frame

DropCallback = Callable[[Frame, str], None]


class FrameHub:
    """Bounded hand-off from many capture threads to one consumer.

    Args:
        on_drop: called for every frame the hub drops (frame, reason).
        file_depth: how many frames a file source may queue before it blocks.
    """

    def __init__(self, on_drop: DropCallback, file_depth: int = 1) -> None:
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Frame]] = {}
        self._closed: set[str] = set()
        self._on_drop = on_drop
        self._file_depth = max(1, file_depth)

    def register(self, camera: str) -> None:
        with self._cond:
            self._queues.setdefault(camera, deque())
            self._closed.discard(camera)

    def close(self, camera: str) -> None:
        """Mark a camera finished (a file that ended); wakes the consumer."""
        with self._cond:
            self._closed.add(camera)
            self._cond.notify_all()

    def _waiting(self) -> bool:
        return any(self._queues.values())

    def all_closed(self) -> bool:
        """True when every registered camera has closed and no frame is waiting."""
        with self._cond:
            return self._closed >= set(self._queues) and not self._waiting()

    def put(self, frame: Frame, stop: threading.Event, poll_s: float = 0.05) -> bool:
        """Offer a frame. Live frames never block; file frames wait while their queue is full.

        Args:
            frame: the frame; ``frame.live`` picks the policy.
            stop: the caller's stop event; a blocked put gives up when it is set.
            poll_s: how often a blocked put re-checks ``stop``.

        Returns:
            True when the frame was queued, False when it was dropped for shutdown.
        """
        dropped: list[Frame] = []
        with self._cond:
            queue = self._queues.setdefault(frame.camera, deque())
            if frame.live:
                dropped = list(queue)
                queue.clear()
            else:
                while len(queue) >= self._file_depth:
                    if stop.is_set():
                        self._on_drop(frame, "shutdown")
                        return False
                    self._cond.wait(poll_s)
            queue.append(frame)
            self._cond.notify_all()
        for old in dropped:
            self._on_drop(old, "superseded")
        return True

    def take(self, limit: int) -> list[Frame]:
        """Take up to ``limit`` waiting frames, oldest capture first, without blocking."""
        with self._cond:
            ready = sorted(
                (f for q in self._queues.values() for f in q), key=lambda f: f.captured_mono
            )
            taken = ready[:limit]
            for f in taken:
                self._queues[f.camera].remove(f)
            if taken:
                self._cond.notify_all()  # wake blocked file producers
            return taken

    def wait(self, timeout_s: float) -> bool:
        """Wait until some queue holds a frame (or a camera closes); True if a frame is waiting."""
        with self._cond:
            if not self._waiting():
                self._cond.wait(max(0.0, timeout_s))
            return self._waiting()

    def drain(self) -> list[Frame]:
        """Remove and return every waiting frame (used at shutdown to account for them)."""
        with self._cond:
            left = [f for q in self._queues.values() for f in q]
            for q in self._queues.values():
                q.clear()
            self._cond.notify_all()
            return left
