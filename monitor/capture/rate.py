"""How fast a camera really delivers: a sliding-window rate, and the frames a live source never delivered.

``offered = processed + dropped`` counts only frames that were read, so a box
that reads 72 of the 240 frames per second asked of it looked healthy. The
sampler's grid says how many frames the camera's fps asked for; a slot that
passes without a frame is *missed* — counted, and visible as a read rate
below the target.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 10.0  # the rate is measured over this much of the recent past
MIN_SPAN_S = 2.0  # below this the rate is not known yet
KEEPING_UP = 0.9  # a camera reading under 90 % of its fps is falling behind


class RateWindow:
    """The rate of change of a growing value (a frame count, a video position) over the last ``window_s``."""

    def __init__(self, window_s: float = WINDOW_S, min_span_s: float = MIN_SPAN_S) -> None:
        self._window_s = window_s
        self._min_span_s = min_span_s
        self._points: deque[tuple[float, float]] = deque()

    def add(self, mono: float, value: float) -> None:
        self._points.append((mono, value))
        while len(self._points) > 2 and mono - self._points[1][0] >= self._window_s:
            self._points.popleft()

    def reset(self) -> None:
        self._points.clear()

    def rate(self) -> float | None:
        """Units per second over the window; None until ``min_span_s`` of history exists."""
        if len(self._points) < 2:
            return None
        (t0, v0), (t1, v1) = self._points[0], self._points[-1]
        span = t1 - t0
        return None if span < self._min_span_s else (v1 - v0) / span


def missed_slots(next_s: float | None, t_s: float, interval_s: float) -> int:
    """Sampling slots that passed without a frame before one at ``t_s`` (0 for the first frame)."""
    if next_s is None or t_s - next_s < interval_s:
        return 0
    return int((t_s - next_s) // interval_s)
