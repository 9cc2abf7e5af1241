"""The deadline planner: how long a batch may wait, and which frames can no longer make their deadline.

Pure (no clock reads, no threads): the worker passes ``now`` in, so the rules
are tested table-driven. A frame's deadline is its capture time plus the
latency budget; the batch about to run is expected to take what the
``LatencyModel`` learned for its size, and a little slack is kept for the
decision and the hand-offs after inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.frames import Frame


class LatencyModel:
    """Expected inference seconds per batch size, learned as a moving average.

    Sizes not yet measured are estimated by scaling the nearest measured size
    linearly (batching is sub-linear in practice, so this errs on the safe side).
    """

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self._est: dict[int, float] = {}

    def observe(self, size: int, seconds: float) -> None:
        old = self._est.get(size)
        self._est[size] = seconds if old is None else (1 - self.alpha) * old + self.alpha * seconds

    def expect(self, size: int) -> float:
        if size in self._est:
            return self._est[size]
        if not self._est:
            return 0.0
        nearest = min(self._est, key=lambda s: abs(s - size))
        return self._est[nearest] * size / nearest


@dataclass(frozen=True, slots=True)
class Plan:
    """What the batcher knows about the frames waiting: a live frame is late once ``now + expected`` passes its deadline."""

    budget_s: float
    max_batch: int

    def slack_s(self) -> float:
        # Dispatch a little before the hard deadline: the decision after
        # inference and the thread hand-offs take time too.
        return min(0.05, 0.1 * self.budget_s)

    def time_left(self, pending: Sequence[Frame], now: float, latency: LatencyModel) -> float:
        """Seconds the batch may still wait before its oldest live frame would be late."""
        live = [f for f in pending if f.live]
        if not live:
            return self.budget_s
        regions = sum(f.region_count for f in pending)
        size = max(min(self.max_batch, regions + 1), live[0].region_count)
        deadline = live[0].captured_mono + self.budget_s - latency.expect(size) - self.slack_s()
        return deadline - now

    def split_stale(
        self, pending: Sequence[Frame], now: float, latency: LatencyModel
    ) -> tuple[list[Frame], list[Frame]]:
        """(frames to keep, live frames that cannot make their deadline any more); files are never stale."""
        regions = sum(f.region_count for f in pending)
        biggest = max((f.region_count for f in pending), default=1)
        expected = latency.expect(max(1, biggest, min(regions, self.max_batch)))
        keep: list[Frame] = []
        stale: list[Frame] = []
        for frame in pending:
            late = frame.live and now + expected - frame.captured_mono > self.budget_s
            (stale if late else keep).append(frame)
        return keep, stale
