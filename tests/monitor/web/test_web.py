"""The web app through FastAPI's test client on real SQLite, the real uvicorn server, and the review CLI."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from fastapi.testclient import TestClient

from monitor.errors import WebError
from monitor.metrics import Metrics
from monitor.records import UNDO_REASON, AuditSample, NewEvent
from monitor.store import ReviewStore
from monitor.store.modes import ModeBook
from monitor.web.app import WebServer, create_app
from monitor.web.wire import PAGE_SIZE
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
        mode=extra.pop("mode", "shadow"),
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


Changes = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def changes() -> Changes:
    return []


@pytest.fixture
def modes(store: ReviewStore) -> ModeBook:
    defaults = {"gate": ("shadow", None), "lake": ("review", "20:00-06:00")}
    return ModeBook(defaults, "UTC", load=store.camera_modes)


@pytest.fixture
def client(
    store: ReviewStore, metrics: Metrics, health: Health, modes: ModeBook, changes: Changes
) -> Iterator[TestClient]:
    app = create_app(
        store,
        metrics,
        health,
        modes=modes,
        labels=("bear", "empty", "person"),
        on_change=lambda kind, payload: changes.append((kind, payload)),
    )
    with TestClient(app) as c:
        yield c


def csrf_token(client: TestClient) -> str:
    """The session's CSRF token, as the page embeds it (the first page also sets the session)."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/").text)
    assert found
    return found.group(1)


def post(client: TestClient, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return client.post(path, json=body or {}, headers={"X-CSRF-Token": csrf_token(client)})


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


def test_queue_page_lists_pending_events_with_review_details(
    store: ReviewStore, client: TestClient
) -> None:
    store.set_verdict(2, "rejected", "bob", "not-an-animal")
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport"' in r.text
    assert r.headers["cache-control"] == "no-store"
    for text in (
        "gate",
        "lake",
        "90%",
        "2024-06-01 12:00:00 UTC",
        "alert · shadow · m-1",
        "drift: dark",
    ):
        assert text in r.text
    assert r.text.count('class="ev') == 3  # pending only by default; event 2 was rejected
    assert r.text.count('<img src="/api/events/') == 2
    assert 'data-id="2"' not in r.text
    assert client.get("/", params={"status": ""}).text.count('class="ev') == 4
    assert client.get("/", params={"status": "nope"}).status_code == 422


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"camera": "lake"}, [4, 3]),
        ({"label": "bear"}, [3, 1]),
        ({"kind": "drift"}, [4]),
        ({"since": "2024-06-01", "until": "2024-06-01"}, [4, 3, 2, 1]),
        ({"since": "2024-06-02"}, []),
        ({"until": "2024-05-31"}, []),
    ],
)
def test_queue_page_filters(client: TestClient, params: dict[str, str], ids: list[int]) -> None:
    r = client.get("/", params={"status": "", **params})
    assert r.status_code == 200
    assert [int(x) for x in re.findall(r'<li class="ev[^"]*" data-id="(\d+)"', r.text)] == ids


def test_pages_escape_what_they_show(store: ReviewStore, client: TestClient) -> None:
    store.add_event(event("gate", "<script>alert(1)</script>", T0 + 999))
    r = client.get("/")
    assert "<script>alert(1)" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


@pytest.mark.parametrize("path", ["/", "/audit", "/cameras"])
def test_pages_have_no_inline_script_or_style(client: TestClient, path: str) -> None:
    """The CSP forbids inline code, so a page that relied on it would silently break."""
    r = client.get(path)
    assert r.status_code == 200
    assert re.findall(r"<script(?![^>]*\bsrc=)", r.text) == []
    assert " style=" not in r.text and "<style" not in r.text
    assert " on" + "click=" not in r.text


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


# --- verdicts --------------------------------------------------------------------------


def test_verdict_is_stored_with_reviewer_and_reported(
    store: ReviewStore, client: TestClient, changes: Changes
) -> None:
    r = post(client, "/api/events/1/verdict", {"status": "confirmed", "note": " big one "})
    assert r.status_code == 200, r.text
    body = r.json()
    reviewer = body["event"]["reviewer"]
    assert reviewer and body["event"]["review_status"] == "confirmed"
    stored = store.get_event(1)
    assert stored is not None
    assert (stored["review_status"], stored["reviewer"], stored["note"]) == (
        "confirmed",
        reviewer,
        "big one",
    )
    assert [h["status"] for h in body["history"]] == ["confirmed"]
    assert changes == [
        (
            "verdict",
            {"camera": "gate", "label": "bear", "mode": "shadow", "kind": "alert",
             "reviewer": reviewer, "reason_code": None, "event_id": 1, "status": "confirmed",
             "relabel": None, "undo": False},
        )
    ]  # fmt: skip


def test_relabel_and_last_write_wins_with_history_kept(
    store: ReviewStore, client: TestClient
) -> None:
    assert post(client, "/api/events/2/verdict", {"status": "confirmed"}).status_code == 200
    r = post(
        client,
        "/api/events/2/verdict",
        {"status": "relabelled", "reason_code": "wrong-class", "relabel": "bear", "note": ""},
    )
    assert r.status_code == 200, r.text
    stored = store.get_event(2)
    assert stored is not None
    assert (stored["review_status"], stored["relabel"], stored["reason_code"], stored["note"]) == (
        "relabelled",
        "bear",
        "wrong-class",
        None,
    )
    history = client.get("/api/events/2/history").json()["history"]
    assert [(h["status"], h["relabel"]) for h in history] == [
        ("confirmed", None),
        ("relabelled", "bear"),
    ]
    assert history[0]["reviewed_at"].endswith("Z") and history[0]["reviewer"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "approved"}, "status must be one of confirmed, rejected, unsure, relabelled"),
        ({"status": "pending"}, "status must be one of"),
        ({"status": "rejected"}, "reason_code is required for rejected"),
        ({"status": "rejected", "reason_code": "sunspots"}, "reason_code must be one of"),
        ({"status": "rejected", "reason_code": "undo"}, "reason_code must be one of"),
        ({"status": "relabelled", "reason_code": "wrong-class"}, "relabel (the new label) is required"),
        ({"status": "confirmed", "relabel": "bear"}, "relabel is only allowed with status relabelled"),
    ],
)  # fmt: skip
def test_bad_verdicts_are_422_with_a_clear_message(
    store: ReviewStore, client: TestClient, body: dict[str, Any], message: str
) -> None:
    r = post(client, "/api/events/1/verdict", body)
    assert r.status_code == 422
    assert message in r.json()["error"]
    assert store.verdict_history(1) == []


@pytest.mark.parametrize(
    "body",
    [{}, {"status": "confirmed", "color": "red"}, {"status": "confirmed", "note": "x" * 2001}],
)
def test_malformed_verdict_bodies_are_422(client: TestClient, body: dict[str, Any]) -> None:
    assert post(client, "/api/events/1/verdict", body).status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/events/9999/verdict"),
        ("post", "/api/events/9999/undo"),
        ("get", "/api/events/9999/history"),
    ],
)
def test_unknown_event_ids_are_404(client: TestClient, method: str, path: str) -> None:
    if method == "post":
        r = post(client, path, {"status": "confirmed"})
    else:
        r = client.get(path)
    assert r.status_code == 404
    assert r.json() == {"error": "event 9999 not found"}


def test_undo_walks_back_as_new_history_rows(store: ReviewStore, client: TestClient) -> None:
    post(client, "/api/events/3/verdict", {"status": "confirmed", "reason_code": "clear"})
    post(client, "/api/events/3/verdict", {"status": "rejected", "reason_code": "blur"})
    first = post(client, "/api/events/3/undo")
    assert first.status_code == 200, first.text
    assert first.json()["event"]["review_status"] == "confirmed"
    # Regression: an undone verdict kept reason "undo" on the event.
    assert first.json()["event"]["reason_code"] == "clear"
    second = post(client, "/api/events/3/undo")
    assert second.json()["event"]["review_status"] == "pending"
    assert (second.json()["event"]["reason_code"], second.json()["event"]["note"]) == (None, None)
    assert post(client, "/api/events/3/undo").status_code == 409
    history = store.verdict_history(3)
    assert [(h["status"], h["reason_code"]) for h in history] == [
        ("confirmed", "clear"),
        ("rejected", "blur"),
        ("confirmed", UNDO_REASON),
        ("pending", UNDO_REASON),
    ]
    assert history[2]["note"] == f"undo of rejected by {history[1]['reviewer']}"


def test_undo_restores_a_relabel(store: ReviewStore, client: TestClient) -> None:
    post(client, "/api/events/1/verdict", {"status": "relabelled", "reason_code": "wrong-class",
                                           "relabel": "person"})  # fmt: skip
    post(client, "/api/events/1/verdict", {"status": "unsure", "reason_code": "night-ir"})
    assert post(client, "/api/events/1/undo").status_code == 200
    stored = store.get_event(1)
    assert stored is not None
    assert (stored["review_status"], stored["relabel"]) == ("relabelled", "person")


def test_a_failing_on_change_does_not_fail_the_verdict(
    store: ReviewStore, metrics: Metrics, health: Health, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(kind: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("notifier is down")

    with TestClient(create_app(store, metrics, health, on_change=broken)) as c:
        with caplog.at_level(logging.ERROR, logger="monitor.web.app"):
            r = post(c, "/api/events/1/verdict", {"status": "confirmed"})
    assert r.status_code == 200
    assert "on_change(verdict) failed" in caplog.text
    stored = store.get_event(1)
    assert stored is not None and stored["review_status"] == "confirmed"


# --- cameras and modes -----------------------------------------------------------------


def test_mode_change_is_recorded_with_who_and_why(
    store: ReviewStore, client: TestClient, modes: ModeBook, changes: Changes
) -> None:
    r = post(
        client,
        "/api/cameras/gate/mode",
        {
            "mode": "review",
            "reason": " precision 0.97 over 2 weeks ",
            "active_hours": "20:00-06:00",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["camera"]["mode"] == "review" and r.json()["camera"]["source"] == "runtime"
    (change,) = store.mode_history("gate")
    assert change["old_mode"] is None and change["new_mode"] == "review"
    assert change["reason"] == "precision 0.97 over 2 weeks"
    assert change["active_hours"] == "20:00-06:00" and change["changed_by"]
    assert modes.configured("gate") == ("review", "20:00-06:00")
    assert changes[-1][0] == "mode" and changes[-1][1]["camera"] == "gate"
    listed = {c["camera"]: c for c in client.get("/api/cameras").json()["cameras"]}
    assert listed["gate"]["history"][0]["reason"] == "precision 0.97 over 2 weeks"
    assert listed["lake"]["mode"] == "review" and listed["lake"]["source"] == "config"
    assert "precision 0.97 over 2 weeks" in client.get("/cameras").text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "auto", "reason": "x"}, "mode must be one of shadow, review, active"),
        ({"mode": "active", "reason": "   "}, "reason is required"),
        ({"mode": "active", "reason": "x", "active_hours": "8-17"}, "HH:MM-HH:MM"),
        ({"mode": "active", "reason": "x", "active_hours": "25:00-06:00"}, "HH:MM-HH:MM"),
    ],
)
def test_bad_mode_changes_are_422(
    store: ReviewStore, client: TestClient, body: dict[str, Any], message: str
) -> None:
    r = post(client, "/api/cameras/gate/mode", body)
    assert r.status_code == 422 and message in r.json()["error"]
    assert store.mode_history() == []


def test_a_mode_change_for_another_sites_camera_reaches_that_site(
    store: ReviewStore, client: TestClient, tmp_path: Path
) -> None:
    """In a fleet, any box's page may change a camera owned by another box (its site)."""
    r = post(client, "/api/cameras/gate/mode", {"mode": "active", "reason": "x", "site": "north"})
    assert r.status_code == 200, r.text
    assert "gate" not in store.camera_modes()  # this box's own camera is unchanged
    north = ReviewStore(store.url, site="north")
    try:
        assert north.camera_modes()["gate"]["mode"] == "active"  # what north's daemon reads
    finally:
        north.close()


def test_mode_change_of_an_unknown_camera_is_404(store: ReviewStore, client: TestClient) -> None:
    r = post(client, "/api/cameras/moon/mode", {"mode": "active", "reason": "x"})
    assert r.status_code == 404
    assert store.mode_history() == []


def test_without_a_mode_book_cameras_come_from_the_store(
    store: ReviewStore, metrics: Metrics, health: Health
) -> None:
    store.set_camera_mode("gate", "active", "ops", "trusted")
    with TestClient(create_app(store, metrics, health)) as c:
        rows = {r["camera"]: r for r in c.get("/api/cameras").json()["cameras"]}
    assert rows["gate"]["mode"] == "active" and rows["gate"]["effective_now"] is None
    assert rows["lake"]["mode"] is None  # seen in events only: its config is not known here


# --- audit samples ------------------------------------------------------------------


def audit_sample(camera: str = "gate", with_snapshot: bool = True) -> AuditSample:
    return AuditSample(camera, T0, "random", "m-1", "empty", 0.05,
                       {"bear": 0.05, "empty": 0.9, "person": 0.05},
                       jpeg() if with_snapshot else None)  # fmt: skip


def test_audit_samples_are_listed_labelled_and_served(
    store: ReviewStore, client: TestClient
) -> None:
    sample_id = store.add_audit_sample(audit_sample())
    body = client.get("/api/audit", params={"labelled": "false"}).json()
    assert [s["id"] for s in body["samples"]] == [sample_id]
    assert body["labels"] == ["bear", "empty", "person", "other"]
    url = body["samples"][0]["snapshot_url"]
    assert url == f"/api/audit/{sample_id}/snapshot.jpg"
    assert client.get(url).content == jpeg()
    r = post(client, f"/api/audit/{sample_id}/label", {"label": "other", "note": "a moose"})
    assert r.status_code == 200, r.text
    (labelled,) = store.list_audit_samples(labelled=True)
    assert (labelled["label"], labelled["note"], labelled["labelled_by"]) == (
        "other",
        "a moose",
        r.json()["labelled_by"],
    )
    assert post(client, f"/api/audit/{sample_id}/label", {"label": "moose"}).status_code == 422
    assert post(client, "/api/audit/9999/label", {"label": "bear"}).status_code == 404
    assert client.get("/api/audit/9999/snapshot.jpg").status_code == 404
    assert "a moose" in client.get("/audit", params={"labelled": "yes"}).text


# --- paths that must never reach the file system -----------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../etc/passwd",
        "/static/..%2F..%2Fetc%2Fpasswd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/review.js/../../../../etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/",
        "/static/.%2e/pyproject.toml",
        "/static/..%5C..%5Cweb.py",
        "/api/events/..%2F..%2Fetc%2Fpasswd/snapshot.jpg",
        "/api/audit/..%2F..%2Fetc%2Fpasswd/snapshot.jpg",
        "/api/audit/1%2F..%2F..%2Fetc%2Fpasswd/snapshot.jpg",
    ],
)
def test_static_and_snapshot_routes_never_serve_other_files(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "root:" not in r.text and "import" not in r.text


def test_static_files_are_served_by_name(client: TestClient) -> None:
    js = client.get("/static/review.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "X-CSRF-Token" in js.text
    css = client.get("/static/review.css")
    assert css.headers["content-type"].startswith("text/css")


# --- tens of thousands of events ------------------------------------------------------


def bulk_events(db: Path, n: int) -> None:
    """Insert ``n`` pending events straight into the table: the store API commits each (minutes).

    Pairs of events share a start time (on different cameras), so the keyset's
    tie-break on id is exercised.
    """
    now = time.time()
    rows = [
        (
            "alert",
            ("gate", "lake")[i % 2],
            "bear",
            0.8,
            T0 + 1000 + i // 2,
            "m-1",
            "shadow",
            now,
            now,
        )
        for i in range(n)
    ]
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.executemany(
            "INSERT INTO events (kind, camera, label, peak_score, start_at, model_version, mode,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def test_keyset_pages_over_20000_events_have_no_duplicates(
    tmp_path: Path, store: ReviewStore, client: TestClient
) -> None:
    bulk_events(tmp_path / "events.db", 20_000)
    seen: list[tuple[float, int]] = []
    before: int | None = None
    for _ in range(4):
        params: dict[str, Any] = {"status": "pending", "limit": 500}
        if before is not None:
            params["before_id"] = before
        body = client.get("/api/events", params=params).json()
        assert len(body["events"]) == 500
        seen += [(e["start_at_epoch"], e["id"]) for e in body["events"]]
        before = body["next_before_id"]
        assert before == body["events"][-1]["id"]
    assert len({i for _, i in seen}) == 2000
    assert seen == sorted(seen, reverse=True)  # newest first, ties by id, across pages

    lake = client.get("/api/events", params={"camera": "lake", "limit": 300}).json()
    page2 = client.get(
        "/api/events", params={"camera": "lake", "limit": 300, "before_id": lake["next_before_id"]}
    ).json()
    ids = [e["id"] for e in lake["events"] + page2["events"]]
    assert len(set(ids)) == 600
    assert {e["camera"] for e in lake["events"] + page2["events"]} == {"lake"}


def test_queue_page_shows_one_page_of_20000(tmp_path: Path, client: TestClient) -> None:
    bulk_events(tmp_path / "events.db", 20_000)
    r = client.get("/")
    assert r.status_code == 200
    assert r.text.count('<li class="ev') == PAGE_SIZE
    assert ">20004</span> pending in all" in r.text
    next_id = re.search(r"before_id=(\d+)", r.text)
    assert next_id
    older = client.get("/", params={"status": "pending", "before_id": next_id.group(1)})
    first = set(re.findall(r'data-id="(\d+)"', r.text))
    second = set(re.findall(r'data-id="(\d+)"', older.text))
    assert len(second) == PAGE_SIZE and not first & second


# --- the CLI ------------------------------------------------------------------------------


def bearwatch(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verdict_command_records_a_verdict(tmp_path: Path, store: ReviewStore) -> None:
    db = str(tmp_path / "events.db")
    proc = bearwatch("verdict", "--store", db, "3", "relabelled", "--reviewer", "carol",
                     "--reason", "wrong-class", "--relabel", "person", "--note", "two hikers")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "event 3: relabelled → person by carol" in proc.stdout
    (verdict,) = store.verdict_history(3)
    assert (verdict["reviewer"], verdict["relabel"], verdict["note"]) == (
        "carol",
        "person",
        "two hikers",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1", "approved"], "status must be one of"),
        (["1", "rejected"], "reason_code is required for rejected"),
        (["1", "rejected", "--reason", "sunspots"], "reason_code must be one of"),
        (["9999", "confirmed"], "event 9999 not found"),
    ],
)
def test_verdict_command_refuses_bad_input_with_exit_2(
    tmp_path: Path, store: ReviewStore, args: list[str], message: str
) -> None:
    proc = bearwatch("verdict", "--store", str(tmp_path / "events.db"), *args, "--reviewer", "x")
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert store.verdict_history(1) == []


def test_verdict_command_refuses_a_missing_store(tmp_path: Path) -> None:
    proc = bearwatch("verdict", "--store", str(tmp_path / "nope.db"), "1", "confirmed",
                     "--reviewer", "x")  # fmt: skip
    assert proc.returncode == 2 and "no review store at" in proc.stderr
    assert not (tmp_path / "nope.db").exists()


def test_mode_commands_set_and_show(tmp_path: Path, store: ReviewStore) -> None:
    db = str(tmp_path / "events.db")
    proc = bearwatch("mode", "set", "--store", db, "lake", "active", "--by", "dana",
                     "--reason", "two weeks without a false alarm", "--active-hours", "06:00-22:00")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (change,) = store.mode_history("lake")
    assert (change["new_mode"], change["changed_by"], change["active_hours"]) == (
        "active",
        "dana",
        "06:00-22:00",
    )
    assert change["reason"] == "two weeks without a false alarm"
    shown = bearwatch("mode", "show", "--store", db)
    assert shown.returncode == 0
    lake = next(line for line in shown.stdout.splitlines() if line.startswith("lake"))
    assert "active" in lake and "06:00-22:00" in lake and "dana" in lake


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lake", "auto", "--by", "d", "--reason", "x"], "mode must be one of"),
        (["lake", "active", "--by", "d", "--reason", " "], "reason is required"),
        (["lake", "active", "--by", "d", "--reason", "x", "--active-hours", "9-5"], "HH:MM-HH:MM"),
        (["Lake/..", "active", "--by", "d", "--reason", "x"], "camera must be a camera id"),
    ],
)
def test_mode_set_refuses_bad_input_with_exit_2(
    tmp_path: Path, store: ReviewStore, args: list[str], message: str
) -> None:
    proc = bearwatch("mode", "set", "--store", str(tmp_path / "events.db"), *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert store.mode_history() == []


def test_review_command_serves_until_sigterm(tmp_path: Path, store: ReviewStore) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "review", "--store", str(tmp_path / "events.db"),
         "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line
        with httpx.Client(base_url=f"http://127.0.0.1:{found.group(1)}", timeout=5) as http:
            assert len(http.get("/api/events").json()["events"]) == 4
            assert "gate" in http.get("/cameras").text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_review_command_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    proc = bearwatch("review", "--store", str(tmp_path / "x.db"), "--host", "0.0.0.0")
    assert proc.returncode == 2 and "reachable from other machines" in proc.stderr


def test_without_sign_in_only_loopback_host_headers_are_served(tmp_path: Path) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not reach the review API."""
    from monitor.web.app import LOOPBACK_HOSTS, create_app

    store = ReviewStore(tmp_path / "h.db")
    try:
        app = create_app(store, Metrics(), lambda: {"ok": True}, allowed_hosts=LOOPBACK_HOSTS)
        with TestClient(app, base_url="http://127.0.0.1:8080") as client:
            assert client.get("/api/events").status_code == 200
            assert client.get("/api/events", headers={"host": "evil.example"}).status_code == 400
    finally:
        store.close()


def test_an_unfamiliar_alert_is_marked_in_the_api_and_on_the_review_page(
    store: ReviewStore, client: TestClient
) -> None:
    """Issue 10: out-of-domain alerts carry unfamiliar/held and a badge a reviewer cannot miss."""
    held = store.add_event(
        event("gate", "bear", T0 + 240, mode="active", unfamiliar=True, held=True,
              ood_score=2.3, night_class="night_ir",
              details={"ood_reasons": ["unfamiliar scene (90% of recent frames over the model's threshold)"]})
    )  # fmt: skip
    body = client.get(f"/api/events/{held}").json()
    assert (body["unfamiliar"], body["held"], body["night_class"]) == (True, True, "night_ir")
    assert client.get(f"/api/events/{held - 1}").json()["unfamiliar"] is False
    page = client.get("/").text
    assert '<span class="badge unfamiliar"' in page and "held for you" in page
    assert "night ir" in page and "unfamiliar scene (90%" in page


def test_an_events_region_box_and_zone_are_in_the_api_and_on_the_page(
    store: ReviewStore, client: TestClient
) -> None:
    """The peak region's box and zone (view plans) reach reviewers: JSON for tools, a line on the page."""
    eid = store.add_event(event("gate", "bear", T0 + 240, box=(0.0, 0.25, 0.2, 0.6), zone="meadow"))
    body = client.get(f"/api/events/{eid}").json()
    assert body["box"] == [0.0, 0.25, 0.2, 0.6] and body["zone"] == "meadow"
    assert client.get("/api/events/1").json()["box"] is None
    page = client.get("/").text
    assert "region x 0.00–0.20, y 0.25–0.60" in page and "zone meadow" in page
