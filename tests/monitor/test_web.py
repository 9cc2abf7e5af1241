"""The web app through FastAPI's test client, and once through the real threaded uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from fastapi.testclient import TestClient

from monitor.metrics import Metrics
from monitor.review_store import NewEvent, ReviewStore
from monitor.web import WebError, WebServer, create_app
from tests.media import scene

T0 = 1_717_243_200.0  # 2024-06-01T12:00:00Z


def jpeg() -> bytes:
    ok, buf = cv2.imencode(".jpg", scene("bear"))
    assert ok
    return buf.tobytes()


def event(camera: str, label: str, start_at: float, **extra: Any) -> NewEvent:
    return NewEvent(
        camera=camera,
        label=label,
        kind=extra.pop("kind", "alert"),
        start_at=start_at,
        end_at=extra.pop("end_at", None),
        peak_score=0.9,
        model_version="m-1",
        mode="shadow",
        **extra,
    )


class Health:
    """The daemon's health callback, switchable by the test."""

    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> dict[str, Any]:
        return {"ok": self.ok, "cameras": {"gate": "online"}, "store": "ok" if self.ok else "down"}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def store(tmp_path: Path, metrics: Metrics) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db", metrics=metrics)
    s.add_event(event("gate", "bear", T0, snapshot_jpeg=jpeg(), end_at=T0 + 12.5))
    s.add_event(event("gate", "person", T0 + 60))
    s.add_event(event("lake", "bear", T0 + 120, snapshot_jpeg=jpeg()))
    s.add_event(event("lake", "dark", T0 + 180, kind="drift", drift_flags=("dark",)))
    yield s
    s.close()


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
def client(store: ReviewStore, metrics: Metrics, health: Health) -> Iterator[TestClient]:
    with TestClient(create_app(store, metrics, health)) as c:
        yield c


def labels(body: dict[str, Any]) -> list[str]:
    return [f"{e['camera']}/{e['label']}" for e in body["events"]]


def test_events_are_listed_newest_first_with_times_and_snapshot_urls(client: TestClient) -> None:
    r = client.get("/api/events")
    assert r.status_code == 200
    body = r.json()
    assert labels(body) == ["lake/dark", "lake/bear", "gate/person", "gate/bear"]
    assert body["next_before_id"] is None
    oldest = body["events"][-1]
    assert oldest["start_at"] == "2024-06-01T12:00:00.000Z" and oldest["start_at_epoch"] == T0
    assert oldest["end_at"] == "2024-06-01T12:00:12.500Z" and oldest["end_at_epoch"] == T0 + 12.5
    assert oldest["snapshot_url"] == f"/api/events/{oldest['id']}/snapshot.jpg"
    assert body["events"][0]["snapshot_url"] is None
    assert body["events"][0]["drift_flags"] == ["dark"]


def test_pages_chain_through_next_before_id(client: TestClient) -> None:
    first = client.get("/api/events", params={"limit": 3}).json()
    assert len(first["events"]) == 3 and first["next_before_id"] == first["events"][-1]["id"]
    rest = client.get("/api/events", params={"limit": 3, "before_id": first["next_before_id"]})
    assert labels(rest.json()) == ["gate/bear"] and rest.json()["next_before_id"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"camera": "gate"}, ["gate/person", "gate/bear"]),
        ({"label": "bear"}, ["lake/bear", "gate/bear"]),
        ({"kind": "drift"}, ["lake/dark"]),
        ({"status": "pending", "camera": "lake"}, ["lake/dark", "lake/bear"]),
        ({"status": "confirmed"}, []),
        ({"since": "2024-06-01T12:01:00Z"}, ["lake/dark", "lake/bear", "gate/person"]),
        ({"since": "2024-06-01T12:01:00"}, ["lake/dark", "lake/bear", "gate/person"]),
        ({"since": "2024-06-01T14:01:00+02:00"}, ["lake/dark", "lake/bear", "gate/person"]),
        ({"until": str(T0 + 60)}, ["gate/bear"]),
        ({"since": str(T0 + 60), "until": "2024-06-01T12:03:00Z"}, ["lake/bear", "gate/person"]),
    ],
)
def test_filters(client: TestClient, params: dict[str, str], expected: list[str]) -> None:
    r = client.get("/api/events", params=params)
    assert r.status_code == 200, r.text
    assert labels(r.json()) == expected


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before_id": "abc"}, "before_id"),
        ({"before_id": "-3"}, "before_id"),
        ({"status": "approved"}, "status"),
        ({"kind": "motion"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"until": "nan"}, "until"),
        ({"camera": ""}, "camera"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter(
    client: TestClient, params: dict[str, str], names: str
) -> None:
    r = client.get("/api/events", params=params)
    assert r.status_code == 422
    body = r.json()
    assert names in body["error"] + " ".join(body.get("details", []))
    assert "Traceback" not in r.text and "sqlite" not in r.text.lower()


def test_one_event_and_unknown_ids(client: TestClient) -> None:
    listed = client.get("/api/events", params={"label": "person"}).json()["events"][0]
    r = client.get(f"/api/events/{listed['id']}")
    assert r.status_code == 200 and r.json() == listed
    missing = client.get("/api/events/9999")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json() == {"error": "event 9999 not found"}


def test_snapshot_is_served_as_jpeg_with_cache_headers(client: TestClient) -> None:
    url = client.get("/api/events", params={"camera": "lake", "label": "bear"}).json()["events"][0][
        "snapshot_url"
    ]
    r = client.get(url)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"].startswith("private")
    assert r.content == jpeg()
    again = client.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_missing_snapshots_are_404(client: TestClient) -> None:
    no_snapshot = client.get("/api/events", params={"label": "person"}).json()["events"][0]["id"]
    for event_id in (no_snapshot, 9999):
        r = client.get(f"/api/events/{event_id}/snapshot.jpg")
        assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/events/../../etc/passwd",
        "/api/events/..%2F..%2Fetc%2Fpasswd",
        "/api/events/%2e%2e/%2e%2e/etc/passwd/snapshot.jpg",
        "/api/events/1/../../../../etc/passwd",
        "/api/events/%2Fetc%2Fpasswd/snapshot.jpg",
        "/api/events/1%2F..%2F..%2Fetc%2Fpasswd/snapshot.jpg",
    ],
)
def test_path_tricks_never_serve_files(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "root:" not in r.text


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "bearwatch_store_healthy 1.0" in r.text
    assert "bearwatch_store_write_failures_total" in r.text


def test_healthz_follows_the_health_callback(client: TestClient, health: Health) -> None:
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.json()["cameras"] == {"gate": "online"}
    health.ok = False
    down = client.get("/healthz")
    assert down.status_code == 503 and down.json()["store"] == "down"


def test_index_page_lists_events(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport"' in r.text
    assert "content-security-policy" in r.headers
    for text in ("gate", "lake", "person", "90%", "2024-06-01 12:00:00 UTC", "pending"):
        assert text in r.text
    assert r.text.count('<img src="/api/events/') == 2
    assert client.get("/", params={"status": "confirmed"}).text.count('class="event"') == 0
    assert client.get("/", params={"status": "nope"}).status_code == 422


def test_index_page_escapes_what_it_shows(store: ReviewStore, client: TestClient) -> None:
    store.add_event(event("gate", "<script>alert(1)</script>", T0 + 999))
    r = client.get("/")
    assert "<script>alert(1)" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_a_closed_store_is_503_without_internals(store: ReviewStore, client: TestClient) -> None:
    store.close()
    r = client.get("/api/events")
    assert r.status_code == 503
    assert r.json() == {"error": "review store unavailable"}


def test_real_server_serves_and_stops_within_a_second(
    store: ReviewStore, metrics: Metrics, health: Health
) -> None:
    server = WebServer(create_app(store, metrics, health), "127.0.0.1", 0)
    server.start()
    try:
        assert server.port > 0
        assert [t for t in threading.enumerate() if t.name == "web"][0].daemon is False
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as http:
            assert http.get("/healthz").json()["ok"] is True
            assert len(http.get("/api/events").json()["events"]) == 4
            # Stop while this keep-alive connection is still open.
            started = time.monotonic()
            assert server.stop(timeout=2.0) is True
            assert time.monotonic() - started < 1.0
    finally:
        server.stop(timeout=2.0)
    assert not server.alive
    assert not [t for t in threading.enumerate() if t.name == "web"]


def test_a_taken_port_is_an_error_not_an_exit(
    store: ReviewStore, metrics: Metrics, health: Health
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer(create_app(store, metrics, health), "127.0.0.1", port)
        with pytest.raises(WebError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.start()
    assert not server.alive
