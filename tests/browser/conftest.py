"""A real headless Chromium and a real review server on loopback, for the review page's browser tests.

Playwright never downloads a browser here: it drives the system Chromium. A
missing Chromium fails these tests (CI installs it); it never skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from monitor.config import AuthConfig, UserConfig
from monitor.metrics import Metrics
from monitor.records import AuditSample, NewEvent
from monitor.store import ReviewStore
from monitor.store.modes import ModeBook
from monitor.web.app import WebServer, create_app
from monitor.web.auth import hash_password
from tests.media import scene

CHROMIUM = Path(os.environ.get("BEARWATCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
T0 = 1_717_243_200.0  # 2024-06-01T12:00:00Z
USER = "ranger"
PASSWORD = "correct horse battery"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# (camera, label, what the snapshot shows), oldest first: the queue shows them newest first.
SEED = [
    ("gate", "bear", "bear"),
    ("lake", "person", "person"),
    ("gate", "bear", "empty"),
    ("lake", "bear", "bear"),
    ("gate", "person", "person"),
    ("lake", "bear", "bear"),
]


@dataclass(frozen=True, slots=True)
class Site:
    """The running review server and the store behind it."""

    url: str
    store: ReviewStore


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it (Debian: apt-get install chromium) "
            "or point BEARWATCH_CHROMIUM at it"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def snapshot(kind: str, seed: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", scene(kind, seed=seed), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


def seed_store(store: ReviewStore) -> None:
    for i, (camera, label, shows) in enumerate(SEED):
        drift = ("dark",) if i == 3 else ()
        store.add_event(
            NewEvent(camera=camera, label=label, kind="alert", start_at=T0 + 90 * i,
                     end_at=T0 + 90 * i + 20, peak_score=0.72 + 0.04 * i, model_version="colornet-3",
                     mode="review" if camera == "lake" else "shadow",
                     snapshot_jpeg=snapshot(shows, i), drift_flags=drift,
                     ood_score=0.41 if drift else 0.05,
                     details={"ood_reasons": ["brightness"]} if drift else {})
        )  # fmt: skip
    store.add_audit_sample(
        AuditSample("gate", T0 + 30, "low_confidence", "colornet-3", "empty", 0.31,
                    {"bear": 0.31, "empty": 0.6, "person": 0.09}, snapshot("bear", 99))
    )  # fmt: skip


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The real WebServer on 127.0.0.1 (any free port) with sign-in and a seeded store."""
    store = ReviewStore(tmp_path / "events.db")
    seed_store(store)
    auth = AuthConfig(
        users=[UserConfig(name=USER, password_hash=hash_password(PASSWORD), role="admin")]
    )
    modes = ModeBook(
        {"gate": ("shadow", None), "lake": ("review", "20:00-06:00")},
        "UTC",
        load=store.camera_modes,
    )
    app = create_app(
        store, Metrics(), lambda: {"ok": True}, auth=auth, modes=modes,
        labels=("bear", "empty", "person"),
    )  # fmt: skip
    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield Site(f"http://127.0.0.1:{server.port}", store)
    finally:
        server.stop(2.0)
        store.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) at laptop size; any console error fails the test.

    CSP violations and script errors only show up in the console, so a page
    that silently lost its JavaScript would otherwise pass.
    """
    context = browser.new_context(viewport=LAPTOP)
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        # A refused sign-in answers 401 by design; the browser logs that page load as an error.
        refused_sign_in = "401" in msg.text and msg.location["url"].endswith("/login")
        if msg.type == "error" and not refused_sign_in:
            errors.append(f"{msg.text} ({msg.location['url']})")

    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not errors, f"browser console errors: {errors}"


def sign_in(page: Page, site: Site, password: str = PASSWORD) -> None:
    page.goto(site.url + "/")
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()
