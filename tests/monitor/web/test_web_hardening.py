"""Regression tests from the web probe of issue 15: id ranges, forwarded headers, sign-out, the schema, health."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.config import AuthConfig, UserConfig
from monitor.metrics import Metrics
from monitor.store import ReviewStore
from monitor.web.app import create_app
from monitor.web.auth import SESSION_COOKIE, hash_password
from tests.monitor.web.test_auth import (
    FAST_N,
    TOKEN,
    auth_config,
    form_token,
    page_token,
    sign_in,
)
from tests.monitor.web.test_web import T0, event, jpeg

TOO_BIG = str(2**63)
HUGE = "9" * 40


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db")
    s.add_event(event("gate", "bear", T0, snapshot_jpeg=jpeg()))
    yield s
    s.close()


def make_client(
    store: ReviewStore,
    auth: AuthConfig | None = None,
    *,
    peer: str = "127.0.0.1",
    proxies: tuple[str, ...] = (),
    health: dict[str, Any] | None = None,
) -> TestClient:
    body = health or {"ok": True, "cameras": {"gate": {"source": "rtsp://cam/x"}}}
    app = create_app(store, Metrics(), lambda: body, auth=auth, trusted_proxies=proxies)
    return TestClient(app, client=(peer, 40000))


@pytest.mark.parametrize("bad", [TOO_BIG, HUGE])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/events/{id}"),
        ("GET", "/api/events/{id}/snapshot.jpg"),
        ("GET", "/api/events/{id}/history"),
        ("POST", "/api/events/{id}/verdict"),
        ("POST", "/api/events/{id}/undo"),
        ("GET", "/api/audit/{id}/snapshot.jpg"),
        ("POST", "/api/audit/{id}/label"),
        ("GET", "/api/events?before_id={id}"),
        ("GET", "/api/audit?before_id={id}"),
        ("GET", "/?before_id={id}"),
        ("GET", "/audit?before_id={id}"),
    ],
)
def test_ids_beyond_the_stores_range_are_422_not_500(
    store: ReviewStore, method: str, path: str, bad: str
) -> None:
    """Bug: any id or before_id above 2**63-1 gave HTTP 500 with a traceback (12 routes)."""
    with make_client(store, auth_config()) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = {"status": "confirmed"} if path.endswith("verdict") else {"label": "bear"}
        r = client.request(
            method, path.format(id=bad), headers=headers, json=body if method == "POST" else None
        )
        assert r.status_code == 422, r.text
        assert "Traceback" not in r.text


def test_forwarded_for_is_ignored_without_trusted_proxies(store: ReviewStore) -> None:
    """Bug: X-Forwarded-For from loopback was trusted: rotating it bypassed the sign-in throttle (8 of 8 guesses)."""
    with make_client(store, auth_config()) as client:
        for i in range(5):
            token = form_token(client.get("/login").text)
            r = client.post(
                "/login",
                data={"name": "bob", "password": "guess", "csrf_token": token, "next": "/"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
                follow_redirects=False,
            )
            assert r.status_code == 401
        token = form_token(client.get("/login").text)
        r = client.post(
            "/login",
            data={"name": "bob", "password": "bob-pw", "csrf_token": token, "next": "/"},
            headers={"X-Forwarded-For": "198.51.100.7"},
            follow_redirects=False,
        )
        assert (
            r.status_code == 429
        )  # the lock-out holds for the real peer, whatever the header says


def test_a_trusted_proxy_names_the_client_and_the_scheme(store: ReviewStore) -> None:
    """Bug: no Secure cookie flag behind a TLS proxy; now the proxy's X-Forwarded-Proto sets it, and its XFF keys the throttle."""
    with make_client(store, auth_config(), peer="10.0.0.2", proxies=("10.0.0.0/24",)) as client:
        xff = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(5):
            token = form_token(client.get("/login", headers=xff).text)
            r = client.post(
                "/login",
                data={"name": "bob", "password": "guess", "csrf_token": token},
                headers=xff,
                follow_redirects=False,
            )
            assert r.status_code == 401
        other = {"X-Forwarded-For": "203.0.113.10"}
        token = form_token(client.get("/login", headers=other).text)
        # The test client keeps Secure cookies off http, so only the sign-in itself says https.
        other["X-Forwarded-Proto"] = "https"
        r = client.post(
            "/login",
            data={"name": "bob", "password": "bob-pw", "csrf_token": token},
            headers=other,
            follow_redirects=False,
        )
        assert r.status_code == 303  # another client behind the same proxy is not locked out
        cookie = r.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
    with make_client(store, auth_config(), peer="192.0.2.5", proxies=("10.0.0.0/24",)) as direct:
        r = sign_in(direct, "alice", "alice-pw")
        assert "Secure" not in r.headers["set-cookie"]  # not from a trusted proxy: header ignored


def test_sign_out_revokes_the_session_server_side(store: ReviewStore) -> None:
    """Bug: logout only deleted the browser's cookie; a copy stayed valid up to session_hours."""
    with make_client(store, auth_config()) as client:
        sign_in(client, "alice", "alice-pw")
        copied = client.cookies[SESSION_COOKIE]
        token = page_token(client.get("/").text)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 200
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, copied)
        assert client.get("/", follow_redirects=False).status_code == 303
    with make_client(store, auth_config()) as restarted:  # same secret, same store: still refused
        restarted.cookies.set(SESSION_COOKIE, copied)
        assert restarted.get("/", follow_redirects=False).status_code == 303


def test_a_password_change_ends_the_old_sessions(store: ReviewStore) -> None:
    """Bug: changing a user's password left sessions signed in with the old one valid."""
    with make_client(store, auth_config()) as client:
        sign_in(client, "alice", "alice-pw")
        cookie = client.cookies[SESSION_COOKIE]
        assert client.get("/", follow_redirects=False).status_code == 200
    changed = auth_config(
        users=[
            UserConfig(name="alice", password_hash=hash_password("new-pw", n=FAST_N), role="admin")
        ]
    )
    with make_client(store, changed) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        assert client.get("/", follow_redirects=False).status_code == 303
        assert sign_in(client, "alice", "new-pw").status_code == 303


def test_the_openapi_schema_needs_sign_in(store: ReviewStore) -> None:
    """Bug: /api/openapi.json needed no sign-in."""
    with make_client(store, auth_config()) as client:
        assert client.get("/api/openapi.json").status_code == 401
        r = client.get("/api/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and "/api/events" in r.json()["paths"]


def test_healthz_needs_sign_in_and_livez_tells_no_details(store: ReviewStore) -> None:
    """Bug: /healthz (camera sources, errors) was served without sign-in even with auth on."""
    down = {"ok": False, "problems": ["no camera online"], "cameras": {"gate": {"source": "x"}}}
    with make_client(store, auth_config(), health=down) as client:
        assert client.get("/healthz").status_code == 401
        live = client.get("/livez")
        assert live.status_code == 200 and live.json() == {"alive": True, "status": "degraded"}
        r = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 503 and r.json()["status"] == "degraded"


def test_the_real_server_ignores_forwarded_for_from_loopback(store: ReviewStore) -> None:
    """Bug: uvicorn's own proxy_headers believed X-Forwarded-For from 127.0.0.1, so each guess looked new."""
    import httpx

    from monitor.web.app import WebServer

    server = WebServer(create_app(store, Metrics(), dict, auth=auth_config()), "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as http:
            codes = []
            for i in range(6):
                token = form_token(http.get("/login").text)
                r = http.post(
                    "/login",
                    data={
                        "name": "bob",
                        "password": "bob-pw" if i == 5 else "x",
                        "csrf_token": token,
                    },
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                )
                codes.append(r.status_code)
        assert codes == [401] * 5 + [429]
    finally:
        assert server.stop(5.0)
