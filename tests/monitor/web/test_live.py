"""The live endpoints: what is new, each camera's state now, its latest frame; shared between any number of pages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from monitor.alerts.latest import LatestFrames
from monitor.alerts.taps import Decided
from monitor.frames import Frame
from monitor.metrics import Metrics
from monitor.store import ReviewStore
from monitor.web.app import create_app
from monitor.web.live import Rates, Shared
from tests.monitor.web.test_auth import TOKEN, auth_config
from tests.monitor.web.test_web import T0, event, jpeg


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def health() -> dict[str, Any]:
    return {
        "ok": True,
        "cameras": {
            "gate": {"status": "online", "source": "rtsp://***", "seconds_since_frame": 0.4,
                     "last_error": None, "drift": {"state": "shifted", "flags": ["brightness"]}},
            "lake": {"status": "reconnecting", "source": "/dev/video0",
                     "seconds_since_frame": None, "last_error": "timeout", "drift": None},
        },
    }  # fmt: skip


def decided(camera: str, at: float) -> Decided:
    snapshot = np.full((48, 64, 3), 120, np.uint8)
    frame = Frame(camera, 0, 0.0, at, np.zeros((8, 8, 3), np.uint8), snapshot)

    def encode() -> bytes:
        return jpeg()

    return Decided(frame, np.array([0.1, 0.9]), None, 0.1, 0.7, False, 0.01, encode)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db")
    s.add_event(event("gate", "bear", T0, snapshot_jpeg=jpeg()))
    s.add_event(event("lake", "bear", T0 + 60))
    yield s
    s.close()


@pytest.fixture
def frames() -> LatestFrames:
    latest = LatestFrames()
    latest.on_decided(decided("gate", T0 + 5))
    return latest


@pytest.fixture
def client(store: ReviewStore, frames: LatestFrames) -> Iterator[TestClient]:
    metrics = Metrics()
    metrics.frames_offered.labels(camera="gate").inc(10)
    metrics.frames_dropped.labels(camera="gate", reason="superseded").inc(3)
    app = create_app(store, metrics, health, frames=frames)
    with TestClient(app) as c:
        yield c


def test_live_news_names_the_newest_ids_and_the_pending_count(client: TestClient) -> None:
    body = client.get("/api/live").json()
    assert body["latest_event_id"] == 2 and body["pending"] == 2 and body["latest_audit_id"] == 0
    assert body["poll_ms"] >= 1000  # pages ask every few seconds, not in a loop


def test_cameras_live_has_status_age_fps_drops_drift_and_frame_time(client: TestClient) -> None:
    cams = client.get("/api/cameras/live").json()["cameras"]
    assert cams["gate"] == {
        "status": "online", "seconds_since_frame": 0.4, "last_error": None,
        "fps_in": None, "fps_classified": None,  # one sample so far: no rate yet, not a made-up 0
        "dropped": {"superseded": 3}, "drift": "shifted", "drift_flags": ["brightness"],
        "frame_at": T0 + 5,
    }  # fmt: skip
    assert cams["lake"]["status"] == "reconnecting" and cams["lake"]["frame_at"] is None


def test_latest_frame_is_a_jpeg_never_cached(client: TestClient) -> None:
    r = client.get("/api/cameras/gate/latest.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8"
    assert r.headers["cache-control"] == "no-store"
    assert float(r.headers["x-captured-at"]) == T0 + 5


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/cameras/lake/latest.jpg", "no frame from camera lake yet"),
        ("/api/cameras/Gate%20%3Cscript%3E/latest.jpg",
         "no such camera (ids are lowercase letters, digits, - and _)"),
        ("/api/cameras/..%2F..%2Fetc%2Fpasswd/latest.jpg", "Not Found"),  # no route: a slash
        ("/api/cameras/gate%0A/latest.jpg",
         "no such camera (ids are lowercase letters, digits, - and _)"),
        ("/api/cameras/" + "a" * 300 + "/latest.jpg",
         "no such camera (ids are lowercase letters, digits, - and _)"),
    ],
)  # fmt: skip
def test_latest_frame_refuses_odd_camera_ids_with_a_clear_message(
    client: TestClient, path: str, message: str
) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json() == {"error": message}


def test_live_endpoints_need_sign_in(store: ReviewStore, frames: LatestFrames) -> None:
    app = create_app(store, Metrics(), health, auth=auth_config(), frames=frames)
    with TestClient(app) as c:
        for path in ("/api/live", "/api/cameras/live", "/api/cameras/gate/latest.jpg"):
            assert c.get(path).status_code == 401, path
            ok = c.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200, path


def test_a_thousand_polls_compute_once_per_period() -> None:
    """A thousand open pages polling at once cost one store read per period, not a thousand."""
    clock, calls = Clock(), []

    def compute() -> dict[str, Any]:
        calls.append(clock.now)
        return {"n": len(calls)}

    shared = Shared(compute, max_age_s=1.0, clock=clock)
    threads = [
        threading.Thread(target=lambda: [shared.get() for _ in range(125)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10.0)
    assert calls == [100.0]
    clock.now += 1.0
    assert shared.get() == {"n": 2}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([(0.0, 0), (1.0, 10)], {}),  # under the window: no rate yet
        ([(0.0, 0), (2.0, 10)], {"gate": 5.0}),
        ([(0.0, 0), (2.0, 10), (3.0, 100)], {"gate": 5.0}),  # the last window's rate is kept
        ([(0.0, 50), (4.0, 10)], {"gate": 0.0}),  # a counter reset is not a negative rate
    ],
)
def test_rates_over_windows(steps: list[tuple[float, int]], expected: dict[str, float]) -> None:
    clock = Clock()
    rates = Rates(window_s=2.0, clock=clock)
    got: dict[str, float] = {}
    for at, total in steps:
        clock.now = at
        got = rates.update({"gate": float(total)})
    assert got == expected


def test_cameras_page_shows_the_live_state(client: TestClient) -> None:
    html = client.get("/cameras").text
    assert 'data-live-camera="gate"' in html
    assert 'data-src="/api/cameras/gate/latest.jpg"' in html
    assert "superseded 3" in html and "shifted (brightness)" in html and "0.4 s ago" in html


def test_mode_history_starts_from_the_configured_mode(store: ReviewStore) -> None:
    """Regression: the first change read "config → review" instead of "shadow → review"."""
    from monitor.store.modes import ModeBook

    modes = ModeBook({"gate": ("shadow", None)}, "UTC", load=store.camera_modes)
    store.set_camera_mode("gate", "review", "ann", "two clean weeks")
    with TestClient(create_app(store, Metrics(), health, modes=modes)) as c:
        html = c.get("/cameras").text
        (row,) = c.get("/api/cameras").json()["cameras"][:1]
    assert "<b>shadow → review</b>" in html and "config →" not in html
    assert row["history"][0]["from_mode"] == "shadow"


def test_clients_that_vanish_mid_request_and_many_polls_leave_the_server_serving(
    store: ReviewStore, frames: LatestFrames
) -> None:
    """Bad input: pages that disconnect mid-request (half a request line, or the answer
    never read) and a burst of polls; the real server keeps answering and leaks no thread."""
    import socket

    import httpx

    from monitor.web.app import WebServer

    server = WebServer(create_app(store, Metrics(), health, frames=frames), "127.0.0.1", 0)
    server.start()
    try:
        for i in range(50):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                request = b"GET /api/cameras/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                sock.sendall(request if i % 2 else request[:20])  # half of them stop mid-line
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as c:
            answers = [c.get("/api/live").status_code for _ in range(300)]
            frame = c.get("/api/cameras/gate/latest.jpg")
        assert answers == [200] * 300 and frame.status_code == 200
        assert server.alive
    finally:
        assert server.stop(5.0)
