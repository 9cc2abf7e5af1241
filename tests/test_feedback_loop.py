"""The loop closed: replay → verdicts through the web API → export → train → a new model the edge can load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.records import AuditSample
from monitor.report.dataset_export import MANIFEST
from monitor.store import ReviewStore
from monitor.web.app import create_app
from tests.media import scene, write_clip

pytestmark = pytest.mark.slow

CLIPS_PER_CLASS = 6
AUDIT_EMPTY = 8


def bearwatch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def replay_into(store: Path, model: Path, clips: Path) -> None:
    """Bear and person visits, one camera each, alerting on both labels (each visit: one event)."""
    videos = [
        write_clip(clips / f"{kind}-{i}.avi", ["empty"] * 5 + [kind] * 20 + ["empty"] * 5)
        for kind in ("bear", "person")
        for i in range(CLIPS_PER_CLASS)
    ]
    proc = bearwatch("replay", *map(str, videos), "--model", str(model), "--store", str(store),
                     "--alert-labels", "bear", "person", "--fps", "5", "--threads", "1", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = json.loads(proc.stdout)["events"]
    assert sorted(e["label"] for e in events) == ["bear"] * 6 + ["person"] * 6


def seed_empty_audits(store: ReviewStore) -> list[int]:
    """Empty scenes the model rightly did not alert on, as the runtime sampler would keep them."""
    ids = []
    for i in range(AUDIT_EMPTY):
        ok, buf = cv2.imencode(".jpg", scene("empty", seed=100 + i))
        assert ok
        sample = AuditSample("bear-0", 1_717_243_200.0 + i, "random", "color-test-1", "empty",
                             0.02, {"bear": 0.02, "empty": 0.95, "person": 0.03}, buf.tobytes())  # fmt: skip
        sample_id = store.add_audit_sample(sample)
        assert sample_id is not None
        ids.append(sample_id)
    return ids


def review_through_the_api(store: ReviewStore, audit_ids: list[int]) -> dict[str, int]:
    """Confirm every visit but one bear (rejected as a duplicate); label the audit frames empty."""
    app = create_app(store, Metrics(), lambda: {"ok": True})
    done: dict[str, int] = {"confirmed": 0, "rejected": 0, "audit": 0}
    with TestClient(app) as client:
        found = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/").text)
        assert found, "the review page embeds the session's CSRF token"
        headers = {"X-CSRF-Token": found.group(1)}
        events = client.get("/api/events", params={"kind": "alert", "limit": 100}).json()["events"]
        assert len(events) == 2 * CLIPS_PER_CLASS
        assert all(e["snapshot_url"] for e in events)
        for n, ev in enumerate(sorted(events, key=lambda e: e["camera"])):
            verdict: dict[str, Any] = {"status": "confirmed"}
            if n == 0:  # bear-0
                verdict = {"status": "rejected", "reason_code": "duplicate"}
            resp = client.post(f"/api/events/{ev['id']}/verdict", json=verdict, headers=headers)
            assert resp.status_code == 200, resp.text
            done[verdict["status"]] += 1
        for sample_id in audit_ids:
            resp = client.post(f"/api/audit/{sample_id}/label", json={"label": "empty"},
                               headers=headers)  # fmt: skip
            assert resp.status_code == 200, resp.text
            done["audit"] += 1
    return done


def test_replay_review_export_train_gives_a_loadable_model(
    color_model: Path, tmp_path: Path
) -> None:
    db = tmp_path / "bearwatch.db"
    replay_into(db, color_model, tmp_path)
    store = ReviewStore(db)
    try:
        audit_ids = seed_empty_audits(store)
        assert review_through_the_api(store, audit_ids) == {
            "confirmed": 11, "rejected": 1, "audit": AUDIT_EMPTY
        }  # fmt: skip
    finally:
        store.close()

    data = tmp_path / "data"
    proc = bearwatch("export-dataset", "--store", str(db), "--out", str(data))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"exported to {data}: 19 images in 3 classes")
    per_class = {p.name: len(list(p.glob("*.jpg"))) for p in data.iterdir() if p.is_dir()}
    assert per_class == {"bear": 5, "person": 6, "empty": AUDIT_EMPTY}
    assert len((data / MANIFEST).read_text().splitlines()) == 1 + 19

    report = bearwatch("report", "--store", str(db), "--out", str(tmp_path / "report"), "--json")
    assert report.returncode == 0, report.stderr
    cams = json.loads(report.stdout)["cameras"]
    assert cams["bear-0"]["periods"]["all"]["rejected"] == 1
    assert sum(c["periods"]["all"]["confirmed"] for c in cams.values()) == 11

    run = tmp_path / "run"
    proc = bearwatch("train", "--data", str(data), "--out", str(run), "--no-pretrained",
                     "--epochs", "1", "--size", "32", "--batch-size", "8", "--seed", "1",
                     "--top-k", "2", "--clean-k", "5", "--model-version", "feedback-1",
                     timeout=400)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    model = OnnxClassifier(run / "model.onnx", threads=1)
    assert model.labels == ("bear", "empty", "person")
    assert model.meta.model_version == "feedback-1"
    frame = cv2.cvtColor(cv2.resize(scene("bear"), model.input_hw[::-1]), cv2.COLOR_BGR2RGB)
    probs = model.predict(frame[None])
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1.0, atol=1e-4)
