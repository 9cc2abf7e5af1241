"""Access to the review web: password hashes, sign-in, session cookies, bearer tokens, CSRF, headers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from monitor.config import AuthConfig, TokenConfig, UserConfig
from monitor.metrics import Metrics
from monitor.store import ReviewStore
from monitor.web.app import create_app
from monitor.web.auth import (
    SESSION_COOKIE,
    LoginThrottle,
    hash_password,
    parse_password_hash,
    verify_password,
)
from tests.monitor.web.test_web import T0, bearwatch, event, jpeg

SECRET = "s" * 32
TOKEN = "tok-" + "a" * 28
# A cheaper cost than production keeps sign-in tests fast; the format and code path are the same.
FAST_N = 2**12
ALICE_HASH = hash_password("alice-pw", n=FAST_N)
BOB_HASH = hash_password("bob-pw", n=FAST_N)


def auth_config(**overrides: Any) -> AuthConfig:
    fields: dict[str, Any] = {
        "users": [
            UserConfig(name="alice", password_hash=ALICE_HASH, role="admin"),
            UserConfig(name="bob", password_hash=BOB_HASH),
        ],
        "tokens": [TokenConfig(name="ci-bot", token=TOKEN)],
        "session_secret": SECRET,
        "session_hours": 2.0,
    }
    return AuthConfig(**{**fields, **overrides})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db")
    s.add_event(event("gate", "bear", T0, snapshot_jpeg=jpeg()))
    s.add_event(event("lake", "bear", T0 + 60))
    yield s
    s.close()


def app_client(store: ReviewStore, auth: AuthConfig | None = None) -> TestClient:
    return TestClient(create_app(store, Metrics(), lambda: {"ok": True}, auth=auth))


@pytest.fixture
def client(store: ReviewStore) -> Iterator[TestClient]:
    with app_client(store, auth_config()) as c:
        yield c


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def page_token(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str, next_path: str = "/") -> httpx.Response:
    token = form_token(client.get("/login").text)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": next_path},
        follow_redirects=False,
    )


# --- password hashes --------------------------------------------------------------------


def test_hash_round_trip() -> None:
    encoded = hash_password("correct horse")
    assert re.fullmatch(r"scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", encoded)
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horse ", encoded)
    assert not verify_password("", encoded)
    assert hash_password("correct horse") != encoded  # a fresh salt each time
    n, r, p, salt, digest = parse_password_hash(encoded)
    assert (n, r, p, len(salt), len(digest)) == (32768, 8, 1, 16, 32)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "scrypt$",
        "bcrypt$16384$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$abc$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",  # not a power of two
        "scrypt$4194304$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",  # would take 4 GiB
        "scrypt$16384$8$1$not base64!$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$16384$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",  # salt too short
        "scrypt$16384$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==$extra",
    ],
)
def test_malformed_hashes_are_refused_and_match_nothing(encoded: str) -> None:
    with pytest.raises(ValueError):
        parse_password_hash(encoded)
    assert verify_password("anything", encoded) is False


def test_a_malformed_configured_hash_fails_at_start_naming_the_user(store: ReviewStore) -> None:
    bad = auth_config(users=[UserConfig(name="eve", password_hash="scrypt$oops")])
    with pytest.raises(ValueError, match=r"web.auth.users\[eve\].password_hash"):
        create_app(store, Metrics(), lambda: {"ok": True}, auth=bad)


def test_hash_password_command_reads_stdin() -> None:
    proc = bearwatch("hash-password", "--stdin", stdin="s3cret pass\n")
    assert proc.returncode == 0, proc.stderr
    encoded = proc.stdout.strip()
    assert verify_password("s3cret pass", encoded)
    assert "s3cret" not in proc.stdout + proc.stderr
    UserConfig(name="x", password_hash=encoded)  # the config accepts what it prints


def test_hash_password_command_refuses_an_empty_password() -> None:
    proc = bearwatch("hash-password", "--stdin", stdin="\n")
    assert proc.returncode == 2 and "must not be empty" in proc.stderr


# --- sign-in throttle ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("failures", "elapsed_s", "allowed"),
    [(4, 0.0, True), (5, 0.0, False), (5, 1.0, True), (7, 3.9, False), (7, 4.0, True),
     (30, 299.0, False), (30, 300.0, True)],
)  # fmt: skip
def test_throttle_backs_off_after_free_attempts(
    failures: int, elapsed_s: float, allowed: bool
) -> None:
    clock = Clock()
    throttle = LoginThrottle(free_attempts=5, base_delay_s=1.0, max_delay_s=300.0, clock=clock)
    key = ("alice", "10.0.0.1")
    for _ in range(failures):
        throttle.failed(key)
    clock.now += elapsed_s
    assert (throttle.retry_after(key) == 0.0) is allowed
    assert throttle.retry_after(("alice", "10.0.0.2")) == 0.0  # another address is not slowed
    throttle.succeeded(key)
    assert throttle.retry_after(key) == 0.0


def test_throttle_forgets_the_oldest_keys_beyond_its_size() -> None:
    throttle = LoginThrottle(free_attempts=0, max_keys=3)
    for i in range(5):
        throttle.failed((f"u{i}", "ip"))
    assert throttle.retry_after(("u0", "ip")) == 0.0
    assert throttle.retry_after(("u4", "ip")) > 0.0


# --- sign-in and sessions -------------------------------------------------------------------


def test_pages_redirect_to_sign_in_and_the_api_answers_401(client: TestClient) -> None:
    page = client.get("/cameras?x=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fcameras%3Fx%3D1"
    api = client.get("/api/events")
    assert api.status_code == 401 and api.json() == {"error": "sign in required"}
    assert api.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/events/1/snapshot.jpg").status_code == 401
    # The health body names cameras and errors: signed in only. Probes use /livez.
    assert client.get("/healthz").status_code == 401
    assert client.get("/livez").json() == {"alive": True, "status": "ok"}
    assert client.get("/metrics").status_code == 200


def test_sign_in_sets_a_strict_session_cookie(client: TestClient) -> None:
    r = sign_in(client, "alice", "alice-pw", "/cameras")
    assert r.status_code == 303 and r.headers["location"] == "/cameras"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/", "max-age=7200"} <= flags
    assert "secure" not in flags  # plain http on loopback; https requests get Secure
    page = client.get("/cameras")
    assert page.status_code == 200 and "alice" in page.text


def test_the_session_cookie_is_secure_over_https(store: ReviewStore) -> None:
    with TestClient(
        create_app(store, Metrics(), lambda: {"ok": True}, auth=auth_config()),
        base_url="https://testserver",
    ) as c:
        r = sign_in(c, "alice", "alice-pw")
    assert "secure" in {p.strip().lower() for p in r.headers["set-cookie"].split(";")}


@pytest.mark.parametrize(("name", "password"), [("alice", "wrong"), ("mallory", "alice-pw"),
                                                ("", ""), ("alice", "")])  # fmt: skip
def test_wrong_name_or_password_is_401_without_saying_which(
    client: TestClient, name: str, password: str
) -> None:
    r = sign_in(client, name, password)
    assert r.status_code == 401
    assert "Wrong name or password." in r.text
    assert "unknown" not in r.text.lower() and "no such user" not in r.text.lower()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_without_its_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"name": "alice", "password": "alice-pw", "csrf_token": "x"})
    assert r.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_site(client: TestClient, target: str) -> None:
    r = sign_in(client, "alice", "alice-pw", target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_repeated_failures_are_slowed_down(client: TestClient) -> None:
    for _ in range(5):
        assert sign_in(client, "bob", "guess").status_code == 401
    r = sign_in(client, "bob", "bob-pw")  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert sign_in(client, "alice", "alice-pw").status_code == 303  # other names are not


def test_sessions_expire_and_forged_cookies_are_worthless(client: TestClient) -> None:
    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 2 * 3600 - 5

    sign_in(client, "alice", "alice-pw")
    fresh = URLSafeTimedSerializer(SECRET, salt="bearwatch.session")
    payload = fresh.loads(client.cookies[SESSION_COOKIE])
    client.cookies.clear()
    old = URLSafeTimedSerializer(SECRET, salt="bearwatch.session", signer=TwoHoursAgo)
    client.cookies.set(SESSION_COOKIE, old.dumps(payload))
    assert client.get("/", follow_redirects=False).status_code == 303
    forged = URLSafeTimedSerializer("another secret!!", salt="bearwatch.session")
    client.cookies.set(SESSION_COOKIE, forged.dumps(payload))
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, fresh.dumps(payload))
    assert client.get("/", follow_redirects=False).status_code == 200
    for missing in ("s", "p"):  # a session without its id or password fingerprint is refused
        partial = {k: v for k, v in payload.items() if k != missing}
        client.cookies.set(SESSION_COOKIE, fresh.dumps(partial))
        assert client.get("/", follow_redirects=False).status_code == 303


def test_a_user_removed_from_the_config_is_signed_out(store: ReviewStore) -> None:
    with app_client(store, auth_config()) as first:
        sign_in(first, "bob", "bob-pw")
        cookie = first.cookies[SESSION_COOKIE]
    alice_only = auth_config(users=[UserConfig(name="alice", password_hash=ALICE_HASH)])
    with app_client(store, alice_only) as second:
        second.cookies.set(SESSION_COOKIE, cookie)
        assert second.get("/", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session(client: TestClient) -> None:
    sign_in(client, "alice", "alice-pw")
    token = page_token(client.get("/").text)
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


# --- tokens, roles and CSRF ------------------------------------------------------------------


def test_bearer_tokens_read_and_write_without_csrf(store: ReviewStore, client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert len(client.get("/api/events", headers=auth).json()["events"]) == 2
    r = client.post("/api/events/1/verdict", json={"status": "confirmed"}, headers=auth)
    assert r.status_code == 200, r.text
    assert store.verdict_history(1)[0]["reviewer"] == "ci-bot"


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", f"bearer  {TOKEN[:-1]}"]
)
def test_bad_tokens_are_401(store: ReviewStore, client: TestClient, header: str) -> None:
    r = client.post(
        "/api/events/1/verdict", json={"status": "confirmed"}, headers={"Authorization": header}
    )
    assert r.status_code == 401 and r.json() == {"error": "invalid token"}
    assert store.verdict_history(1) == []


def test_reviewers_cannot_change_modes(store: ReviewStore, client: TestClient) -> None:
    sign_in(client, "bob", "bob-pw")
    page = client.get("/cameras")
    assert "needs the admin role" in page.text and "Change mode" not in page.text
    r = client.post(
        "/api/cameras/gate/mode",
        json={"mode": "active", "reason": "why not"},
        headers={"X-CSRF-Token": page_token(page.text)},
    )
    assert r.status_code == 403
    assert store.mode_history() == []


def test_admins_change_modes_as_themselves(store: ReviewStore, client: TestClient) -> None:
    sign_in(client, "alice", "alice-pw")
    token = page_token(client.get("/cameras").text)
    r = client.post(
        "/api/cameras/gate/mode",
        json={"mode": "review", "reason": "ready"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 200, r.text
    assert store.mode_history()[0]["changed_by"] == "alice"


def csrf_cases(client: TestClient, other: TestClient) -> dict[str, dict[str, str]]:
    """Headers for each forged request: none, made up, and a token from another session."""
    sign_in(other, "bob", "bob-pw")
    return {
        "missing": {},
        "forged": {"X-CSRF-Token": "A" * 43},
        "another session's": {"X-CSRF-Token": page_token(other.get("/").text)},
    }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/events/1/verdict", {"status": "confirmed"}),
        ("/api/events/1/undo", {}),
        ("/api/cameras/gate/mode", {"mode": "active", "reason": "x"}),
    ],
)
def test_state_changes_without_a_valid_csrf_token_are_403(
    store: ReviewStore, client: TestClient, path: str, body: dict[str, Any]
) -> None:
    store.set_verdict(1, "rejected", "bob", "blur")  # so that an undo would have work to do
    sign_in(client, "alice", "alice-pw")
    with app_client(store, auth_config()) as other:
        cases = csrf_cases(client, other)
    for name, headers in cases.items():
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 403, name
        assert "CSRF" in r.json()["error"]
    assert len(store.verdict_history(1)) == 1
    assert store.mode_history() == []
    r = client.post(path, json=body, headers={"X-CSRF-Token": page_token(client.get("/").text)})
    assert r.status_code == 200, r.text


def test_sign_out_needs_the_csrf_token(client: TestClient) -> None:
    sign_in(client, "alice", "alice-pw")
    assert client.post("/logout", data={"csrf_token": "nope"}).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for r in (client.get("/login"), client.get("/api/events"), client.get("/static/review.js")):
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp


# --- without configured users --------------------------------------------------------------


def test_without_auth_the_reviewer_name_is_typed_once_and_recorded(store: ReviewStore) -> None:
    with app_client(store) as c:
        first = c.get("/")
        assert first.status_code == 200
        assert "set-cookie" in first.headers  # the session carries the CSRF token and the name
        token = page_token(first.text)
        assert c.post("/me", data={"reviewer": "erin", "csrf_token": "bad"}).status_code == 403
        r = c.post("/me", data={"reviewer": " erin ", "csrf_token": token, "next": "/cameras"},
                   follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/cameras"
        page = c.get("/")
        assert "as erin" in page.text
        c.post("/api/events/2/verdict", json={"status": "unsure", "reason_code": "distant"},
               headers={"X-CSRF-Token": page_token(page.text)})  # fmt: skip
    assert store.verdict_history(2)[0]["reviewer"] == "erin"


def test_without_auth_a_script_without_a_session_cannot_change_state(store: ReviewStore) -> None:
    """A page on another site can POST to a loopback server without any cookie: no token, no change."""
    with app_client(store) as c:
        r = c.post("/api/events/1/verdict", json={"status": "confirmed"})
        assert r.status_code == 403
        assert c.get("/api/events").status_code == 200
        assert c.get("/login", follow_redirects=False).status_code == 303
    assert store.verdict_history(1) == []


def test_without_auth_sessions_from_before_do_not_survive_enabling_it(store: ReviewStore) -> None:
    with app_client(store, AuthConfig(session_secret=SECRET)) as open_app:
        open_app.get("/")
        cookie = open_app.cookies[SESSION_COOKIE]
    with app_client(store, auth_config()) as locked:
        locked.cookies.set(SESSION_COOKIE, cookie)
        assert locked.get("/", follow_redirects=False).status_code == 303
