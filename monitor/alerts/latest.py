"""A tap that remembers each camera's newest decided frame, so the cameras page can show what a camera sees."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.alerts.taps import Decided, Record


class LatestFrames:
    """The newest decided frame per camera, encoded to JPEG only when someone asks.

    Only a reference is kept (the frame's snapshot closure, which the alert
    stage memoises), so watching costs nothing until a page loads the image,
    and memory stays one snapshot per camera. Reads come from the web thread:
    each update is one dict assignment of an immutable tuple.
    """

    def __init__(self) -> None:
        self._latest: dict[str, tuple[float, Callable[[], bytes | None]]] = {}

    def on_decided(self, d: Decided) -> Sequence[Record]:
        self._latest[d.frame.camera] = (d.frame.captured_at, d.jpeg)
        return ()

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        return ()

    def captured_at(self, camera: str) -> float | None:
        """When the camera's newest decided frame was captured (UTC epoch seconds), None before the first."""
        entry = self._latest.get(camera)
        return None if entry is None else entry[0]

    def jpeg(self, camera: str) -> tuple[float, bytes] | None:
        """(captured_at, JPEG) of the camera's newest decided frame; None before the first."""
        entry = self._latest.get(camera)
        if entry is None:
            return None
        jpeg = entry[1]()
        return None if jpeg is None else (entry[0], jpeg)
