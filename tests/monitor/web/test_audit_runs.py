"""The audit page groups look-alike frames of a still scene, lists every camera, and can take a label back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from fastapi.testclient import TestClient

from monitor.metrics import Metrics
from monitor.records import AuditSample
from monitor.store import ReviewStore
from monitor.store.modes import ModeBook
from monitor.web.app import create_app
from monitor.web.audit_runs import MAX_DIFFERENCE, collapse, difference, thumbnail
from tests.media import scene
from tests.monitor.web.test_web import T0, post


def frame(kind: str, seed: int, x_frac: float = 0.3) -> bytes:
    ok, buf = cv2.imencode(".jpg", scene(kind, seed=seed, x_frac=x_frac))
    assert ok
    return buf.tobytes()


def test_the_comparison_ignores_sensor_noise_and_sees_a_bear() -> None:
    still = [thumbnail(frame("empty", seed)) for seed in range(5)]
    first = still[0]
    assert first is not None and all(t is not None for t in still)
    assert max(difference(first, t) for t in still if t is not None) < MAX_DIFFERENCE
    bear = thumbnail(frame("bear", 0))
    assert bear is not None and difference(first, bear) > MAX_DIFFERENCE
    assert thumbnail(b"not a jpeg") is None


def _row(i: int, camera: str = "gate", label: str | None = None) -> dict[str, Any]:
    return {"id": i, "camera": camera, "predicted_label": "empty", "label": label,
            "has_snapshot": True}  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "pictures", "runs"),
    [
        # newest first, as the page lists them
        ([_row(i) for i in range(5, 0, -1)], "eeeee", [[5, 4, 3, 2, 1]]),
        ([_row(i) for i in range(5, 0, -1)], "eebee", [[5, 4], [3], [2, 1]]),  # a bear breaks the run
        ([_row(3), _row(2, "lake"), _row(1)], "eee", [[3, 1], [2]]),  # cameras interleave
        ([_row(4), _row(3, "lake"), _row(2), _row(1)], "eebe", [[4], [3], [2], [1]]),  # a bear between
        ([_row(3), _row(2, label="empty"), _row(1, label="empty")], "eee", [[3], [2, 1]]),
        ([_row(2), {**_row(1), "has_snapshot": False}], "ee", [[2], [1]]),
    ],
)  # fmt: skip
def test_collapse(rows: list[dict[str, Any]], pictures: str, runs: list[list[int]]) -> None:
    by_id = {
        int(r["id"]): thumbnail(frame("bear" if p == "b" else "empty", int(r["id"])))
        for r, p in zip(rows, pictures, strict=True)
    }
    assert [run.ids for run in collapse(rows, by_id.__getitem__)] == runs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReviewStore]:
    s = ReviewStore(tmp_path / "events.db")
    for i in range(6):  # the looping meadow: the same picture six times
        s.add_audit_sample(AuditSample("meadow", T0 + i, "random", "m-1", "empty", 0.05,
                                       {"bear": 0.05}, frame("empty", i)))  # fmt: skip
    s.add_audit_sample(AuditSample("meadow", T0 + 10, "near_threshold", "m-1", "empty", 0.6,
                                   {"bear": 0.6}, frame("bear", 1)))  # fmt: skip
    yield s
    s.close()


@pytest.fixture
def client(store: ReviewStore) -> Iterator[TestClient]:
    modes = ModeBook({"gate": ("shadow", None)}, "UTC", load=store.camera_modes)
    app = create_app(store, Metrics(), lambda: {"ok": True}, modes=modes,
                     labels=("bear", "empty", "person"))  # fmt: skip
    with TestClient(app) as c:
        yield c


def test_audit_page_shows_one_card_per_run_with_its_count_and_every_camera(
    client: TestClient,
) -> None:
    html = client.get("/audit").text
    assert html.count('<li class="ev') == 2
    assert 'data-ids="6 5 4 3 2 1"' in html and "+5 similar" in html
    assert 'data-ids="7"' in html
    assert "7 shown as 2" in html
    # Regression: the filter listed only cameras with alerts (here: none).
    options = html[html.index('<select name="camera">') : html.index("</select>")]
    assert ">gate<" in options
    assert ">meadow<" in options


def test_a_label_can_be_taken_back(client: TestClient, store: ReviewStore) -> None:
    assert post(client, "/api/audit/7/label", {"label": "bear"}).status_code == 200
    r = post(client, "/api/audit/7/unlabel")
    assert r.status_code == 200 and r.json()["label"] is None
    (sample,) = [s for s in store.list_audit_samples() if s["id"] == 7]
    assert (sample["label"], sample["labelled_by"], sample["labelled_at"]) == (None, None, None)
    assert post(client, "/api/audit/999/unlabel").status_code == 404
    assert client.post("/api/audit/7/unlabel").status_code == 403  # no CSRF token
