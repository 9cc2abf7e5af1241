"""What keeps the review pages live: a cheap "anything new?" answer, each camera's state now, its latest frame.

The pages poll (every few seconds, and not while the tab is hidden) instead
of holding a server-sent-event stream open: a poll is one short request that
ends, so a thousand open pages hold no connections, no per-client queue and
no thread, and a page that closes mid-way leaves nothing behind. What the
polls read is computed at most once per ``CACHE_S`` for all of them
together, so the store and the metrics registry see the same load whether
one page is open or a thousand.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from monitor.config import SLUG
from monitor.metrics import Metrics
from monitor.web.auth import current_user
from monitor.web.queue import ReviewQueue
from monitor.web.wire import pending_count

CACHE_S = 1.0  # one computation per second serves every open page
RATE_WINDOW_S = 2.0  # fps is measured over at least this long
POLL_MS = 4000  # how often the pages ask (the JavaScript reads it from the page)


class FrameSource(Protocol):
    """Each camera's newest decided frame (``monitor.alerts.latest.LatestFrames`` in the daemon)."""

    def captured_at(self, camera: str) -> float | None: ...

    def jpeg(self, camera: str) -> tuple[float, bytes] | None: ...


router = APIRouter(dependencies=[Depends(current_user)])


class Shared:
    """A value recomputed at most every ``max_age_s``, whoever asks (thread-safe)."""

    def __init__(self, compute: Callable[[], dict[str, Any]], max_age_s: float = CACHE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._compute, self._max_age_s, self._clock = compute, max_age_s, clock
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._at = 0.0

    def get(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._at >= self._max_age_s:
                self._value, self._at = self._compute(), now
            return self._value


class Rates:
    """Per-key rates (per second) of growing totals, over windows of at least ``window_s``."""

    def __init__(
        self, window_s: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ):
        self._window_s, self._clock = window_s, clock
        self._prev: tuple[float, dict[str, float]] | None = None
        self._rates: dict[str, float] = {}

    def update(self, totals: Mapping[str, float]) -> dict[str, float]:
        now = self._clock()
        if self._prev is None:
            self._prev = (now, dict(totals))
        elif now - self._prev[0] >= self._window_s:
            t0, old = self._prev
            self._rates = {k: max(0.0, v - old.get(k, 0.0)) / (now - t0) for k, v in totals.items()}
            self._prev = (now, dict(totals))
        return self._rates


def per_camera(metrics: Metrics, name: str, second: str | None = None) -> dict[str, Any]:
    """A counter's totals by camera (and by a second label, as a nested dict)."""
    out: dict[str, Any] = {}
    for family in metrics.registry.collect():
        if family.name != name:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            cam = sample.labels.get("camera", "")
            if second is None:
                out[cam] = out.get(cam, 0.0) + sample.value
            else:
                inner = out.setdefault(cam, {})
                key = sample.labels.get(second, "")
                inner[key] = inner.get(key, 0.0) + sample.value
    return out


class LiveState:
    """Everything the live endpoints answer, each part shared between all polls."""

    def __init__(self, store: ReviewQueue, metrics: Metrics,
                 health: Callable[[], Mapping[str, Any]], frames: FrameSource | None) -> None:  # fmt: skip
        self.store, self.metrics, self.health, self.frames = store, metrics, health, frames
        self._offered, self._processed = Rates(), Rates()
        self.news = Shared(self._news)
        self.cameras = Shared(self._cameras)

    def _news(self) -> dict[str, Any]:
        newest = self.store.list_events(
            limit=1, suppressed=False
        )  # what the queue shows by default
        sample = self.store.list_audit_samples(limit=1)
        return {
            "latest_event_id": newest[0]["id"] if newest else 0,
            "pending": pending_count(self.store),
            "latest_audit_id": sample[0]["id"] if sample else 0,
            "poll_ms": POLL_MS,
        }

    def _cameras(self) -> dict[str, Any]:
        health = self.health()
        cams: Mapping[str, Any] = health.get("cameras") or {}
        fps_in = self._offered.update(per_camera(self.metrics, "bearwatch_frames_offered"))
        fps_done = self._processed.update(per_camera(self.metrics, "bearwatch_frames_processed"))
        drops = per_camera(self.metrics, "bearwatch_frames_dropped", "reason")
        out = {}
        for cam, h in cams.items():
            if not isinstance(h, Mapping):  # a bare status string (the standalone review server)
                h = {"status": str(h)}
            drift = h.get("drift") or {}
            out[cam] = {
                "status": h.get("status"),
                "seconds_since_frame": h.get("seconds_since_frame"),
                "last_error": h.get("last_error"),
                "fps_in": _round(fps_in.get(cam)),
                "fps_classified": _round(fps_done.get(cam)),
                "dropped": {k: int(v) for k, v in sorted(drops.get(cam, {}).items()) if v},
                "drift": drift.get("state"),
                "drift_flags": list(drift.get("flags") or ()),
                "frame_at": None if self.frames is None else self.frames.captured_at(cam),
            }
        return {"cameras": out, "poll_ms": POLL_MS}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _live(request: Request) -> LiveState:
    state: LiveState = request.app.state.live
    return state


@router.get("/api/live")
def api_live(request: Request) -> dict[str, Any]:
    """The newest event and audit sample ids and the pending count: pages fetch more only when these move."""
    return _live(request).news.get()


@router.get("/api/cameras/live")
def api_cameras_live(request: Request) -> dict[str, Any]:
    """Per camera: status, last frame age, fps in and classified, drops by reason, drift state."""
    return _live(request).cameras.get()


@router.get("/api/cameras/{camera}/latest.jpg")
def api_latest_frame(camera: str, request: Request) -> Response:
    """The camera's newest decided frame. The id must be a camera slug: other text is refused, never echoed."""
    if not re.fullmatch(SLUG, camera):
        raise HTTPException(404, "no such camera (ids are lowercase letters, digits, - and _)")
    frames: FrameSource | None = _live(request).frames
    frame = None if frames is None else frames.jpeg(camera)
    if frame is None:
        raise HTTPException(404, f"no frame from camera {camera} yet")
    captured_at, jpeg = frame
    headers = {"Cache-Control": "no-store", "X-Captured-At": f"{captured_at:.3f}"}
    return Response(jpeg, media_type="image/jpeg", headers=headers)
