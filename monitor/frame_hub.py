"""Per-camera frame slots between capture threads and the batcher.

Each camera has a slot of depth one. Live sources use *newest wins*: a frame
arriving while the previous one is still waiting replaces it, and the old one
is dropped with reason ``superseded`` — a slow model must never make frames
pile up, because an old frame of a bear is worth less than a new one. File
sources block instead, so a replay processes every sampled frame and is
deterministic. One condition variable serves all slots so the batcher can wait
for "any camera has a frame" without polling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from monitor.frames import Frame

DropCallback = Callable[[Frame, str], None]


class FrameHub:
    """Bounded hand-off from many capture threads to one consumer."""

    def __init__(self, on_drop: DropCallback) -> None:
        self._cond = threading.Condition()
        self._slots: dict[str, Frame | None] = {}
        self._closed: set[str] = set()
        self._on_drop = on_drop

    def register(self, camera: str) -> None:
        with self._cond:
            self._slots.setdefault(camera, None)
            self._closed.discard(camera)

    def close(self, camera: str) -> None:
        """Mark a camera finished (a file that ended); wakes the consumer."""
        with self._cond:
            self._closed.add(camera)
            self._cond.notify_all()

    def all_closed(self) -> bool:
        """True when every registered camera has closed and no frame is waiting."""
        with self._cond:
            return self._closed >= set(self._slots) and not any(self._slots.values())

    def put(self, frame: Frame, stop: threading.Event, poll_s: float = 0.05) -> bool:
        """Offer a frame. Live frames never block; file frames wait for the slot to empty.

        Args:
            frame: the frame; ``frame.live`` picks the policy.
            stop: the caller's stop event; a blocked put gives up when it is set.
            poll_s: how often a blocked put re-checks ``stop``.

        Returns:
            True when the frame was placed, False when it was dropped for shutdown.
        """
        dropped: Frame | None = None
        with self._cond:
            if frame.live:
                dropped = self._slots.get(frame.camera)
            else:
                while self._slots.get(frame.camera) is not None:
                    if stop.is_set():
                        self._on_drop(frame, "shutdown")
                        return False
                    self._cond.wait(poll_s)
            self._slots[frame.camera] = frame
            self._cond.notify_all()
        if dropped is not None:
            self._on_drop(dropped, "superseded")
        return True

    def take(self, limit: int) -> list[Frame]:
        """Take up to ``limit`` waiting frames, oldest capture first, without blocking."""
        with self._cond:
            ready = sorted(
                (f for f in self._slots.values() if f is not None), key=lambda f: f.captured_mono
            )
            taken = ready[:limit]
            for f in taken:
                self._slots[f.camera] = None
            if taken:
                self._cond.notify_all()  # wake blocked file producers
            return taken

    def wait(self, timeout_s: float) -> bool:
        """Wait until some slot holds a frame (or a camera closes); True if a frame is waiting."""
        with self._cond:
            if not any(self._slots.values()):
                self._cond.wait(max(0.0, timeout_s))
            return any(self._slots.values())

    def drain(self) -> list[Frame]:
        """Remove and return every waiting frame (used at shutdown to account for them)."""
        with self._cond:
            left = [f for f in self._slots.values() if f is not None]
            for cam in self._slots:
                self._slots[cam] = None
            self._cond.notify_all()
            return left
