"""Per-camera operating statistics, written to the store once a period for the rollout report.

Uptime, reconnects, frames and capture→decision latency are runtime facts the
review store would otherwise never see; the report needs them next to the
verdicts to say whether a camera is ready to act on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from monitor.decide.audit import AuditSampler
from monitor.metrics import Metrics
from monitor.records import CameraStats


class StatsRecorder:
    """Accumulates one period per camera; ``due`` → ``rows`` → the store.

    Args:
        cameras: camera ids.
        metrics: where reconnect counts are read from.
        status: returns camera id → current status (``online``, …).
        period_s: seconds per row.
        sampler: the audit sampler, whose per-stratum counts ride along.
    """

    def __init__(
        self,
        cameras: list[str],
        metrics: Metrics,
        status: Callable[[], Mapping[str, str]],
        period_s: float,
        sampler: AuditSampler | None,
    ) -> None:
        self.cameras, self.metrics, self.status, self.period_s, self.sampler = (
            cameras,
            metrics,
            status,
            period_s,
            sampler,
        )
        self._start: float | None = None
        self._last_sample: float | None = None
        self._online_s: dict[str, float] = dict.fromkeys(cameras, 0.0)
        self._latency_ms: dict[str, list[float]] = {c: [] for c in cameras}
        self._light: dict[str, dict[str, int]] = {}
        self._reconnects0 = self._reconnects()

    def _reconnects(self) -> dict[str, float]:
        return self.metrics.counter_totals("bearwatch_camera_reconnects", by="camera")

    def decided(self, camera: str, latency_s: float, light: str | None = None) -> None:
        """Count one decided frame: its latency and, when known, the camera's light class."""
        self._latency_ms.setdefault(camera, []).append(latency_s * 1000.0)
        if light is not None:
            counts = self._light.setdefault(camera, {})
            counts[light] = counts.get(light, 0) + 1

    def tick(self, now: float) -> None:
        """Sample camera statuses (called often; counts time spent online)."""
        if self._start is None:
            self._start = self._last_sample = now
            return
        assert self._last_sample is not None
        dt = now - self._last_sample
        self._last_sample = now
        for cam, st in self.status().items():
            if st == "online":
                self._online_s[cam] = self._online_s.get(cam, 0.0) + dt

    def due(self, now: float) -> bool:
        return self._start is not None and now - self._start >= self.period_s

    def rows(self, now: float, wall: float) -> list[CameraStats]:
        """Close the period: one row per camera, then start the next period."""
        start = self._start if self._start is not None else now
        reconnects = self._reconnects()
        out = []
        for cam in self.cameras:
            lat = np.asarray(self._latency_ms.get(cam, []))
            out.append(
                CameraStats(
                    camera=cam,
                    at=wall,
                    period_s=round(now - start, 3),
                    online_s=round(min(self._online_s.get(cam, 0.0), now - start), 3),
                    frames=int(lat.size),
                    reconnects=int(reconnects.get(cam, 0) - self._reconnects0.get(cam, 0)),
                    latency_p50_ms=round(float(np.percentile(lat, 50)), 2) if lat.size else None,
                    latency_p99_ms=round(float(np.percentile(lat, 99)), 2) if lat.size else None,
                    audit=self.sampler.take_counts(cam) if self.sampler else {},
                    light=dict(self._light.get(cam, {})),
                )
            )
        self._start = self._last_sample = now
        self._online_s = dict.fromkeys(self.cameras, 0.0)
        self._latency_ms = {c: [] for c in self.cameras}
        self._light = {}
        self._reconnects0 = reconnects
        return out
