"""Live pages in a real Chromium: a new event appears on an open queue, cameras show their state and latest frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from monitor.alerts.latest import LatestFrames
from monitor.alerts.taps import Decided
from monitor.config import AuthConfig, UserConfig
from monitor.frames import Frame
from monitor.metrics import Metrics
from monitor.records import NewEvent
from monitor.store import ReviewStore
from monitor.store.modes import ModeBook
from monitor.web.app import WebServer, create_app
from monitor.web.auth import hash_password
from tests.browser.conftest import PASSWORD, T0, USER, Site, seed_store, sign_in, snapshot

pytestmark = pytest.mark.browser


def test_a_new_event_appears_on_an_open_queue_without_reload(page: Page, site: Site) -> None:
    sign_in(page, site)
    expect(page.locator("#queue li.ev")).to_have_count(6)
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    new_id = site.store.add_event(
        NewEvent(camera="gate", label="bear", kind="alert", start_at=T0 + 3600, end_at=None,
                 peak_score=0.93, model_version="colornet-3", mode="shadow",
                 snapshot_jpeg=snapshot("bear", 7))
    )  # fmt: skip
    card = page.locator(f'#queue li.ev[data-id="{new_id}"]')
    expect(card).to_be_visible(timeout=15_000)  # the poll comes every 4 s
    assert page.evaluate("window.__same_page") is True
    expect(page.locator("#queue li.ev").first).to_have_attribute("data-id", str(new_id))
    expect(page.locator("#pending-count")).to_have_text("7")
    # The new card takes verdicts like the others, from the keyboard.
    card.click()
    page.keyboard.press("c")
    expect(card).to_have_attribute("data-status", "confirmed")
    stored = site.store.get_event(new_id)  # type: ignore[arg-type]
    assert stored is not None and stored["review_status"] == "confirmed"


def _decided(camera: str, at: float, kind: str) -> Decided:
    frame = Frame(camera, 0, 0.0, at, np.zeros((8, 8, 3), np.uint8), None)
    jpeg = snapshot(kind, 3)
    return Decided(frame, np.array([0.5, 0.5]), None, 0.5, 0.7, False, 0.01, lambda: jpeg)


class Health:
    def __call__(self) -> dict[str, Any]:
        return {
            "ok": True,
            "cameras": {
                "gate": {"status": "online", "source": "rtsp://***", "seconds_since_frame": 0.5,
                         "last_error": None, "drift": {"state": "in_domain", "flags": []}},
                "lake": {"status": "reconnecting", "source": "/dev/video0",
                         "seconds_since_frame": None, "last_error": "timeout", "drift": None},
            },
        }  # fmt: skip


@pytest.fixture
def camera_site(tmp_path: Path) -> Iterator[tuple[Site, LatestFrames]]:
    store = ReviewStore(tmp_path / "events.db")
    seed_store(store)
    auth = AuthConfig(
        users=[UserConfig(name=USER, password_hash=hash_password(PASSWORD), role="admin")]
    )
    modes = ModeBook({"gate": ("shadow", None), "lake": ("review", None)}, "UTC",
                     load=store.camera_modes)  # fmt: skip
    frames = LatestFrames()
    metrics = Metrics()
    metrics.frames_dropped.labels(camera="gate", reason="stale").inc(2)
    app = create_app(store, metrics, Health(), auth=auth, modes=modes, frames=frames)
    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield Site(f"http://127.0.0.1:{server.port}", store), frames
    finally:
        server.stop(2.0)
        store.close()


def test_cameras_page_shows_state_and_the_latest_frame_as_it_arrives(
    page: Page, camera_site: tuple[Site, LatestFrames]
) -> None:
    site, frames = camera_site
    sign_in(page, site)
    page.goto(site.url + "/cameras")
    gate = page.locator('[data-live-camera="gate"]')
    expect(gate.locator('[data-k="status"]')).to_have_text("online")
    expect(gate.locator('[data-k="dropped"]')).to_have_text("stale 2")
    expect(page.locator('[data-live-camera="lake"] [data-k="status"]')).to_have_text("reconnecting")
    expect(gate.locator("img")).to_be_hidden()  # no frame yet: no broken image
    frames.on_decided(_decided("gate", T0 + 10, "bear"))
    expect(gate.locator("img")).to_be_visible(timeout=15_000)
    expect(gate.locator('[data-k="frame"]')).to_have_text("captured 12:00:10 UTC")
    width = gate.locator("img").evaluate("img => img.naturalWidth")
    assert width > 0  # a real JPEG was decoded
