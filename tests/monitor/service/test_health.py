"""Honest health from a real ``bearwatch run``: degraded (503) when no camera is online."""

from __future__ import annotations

from pathlib import Path

from tests.media import write_clip
from tests.monitor.service.test_daemon import Daemon, config, free_port, wait_for


def test_healthz_is_degraded_when_every_camera_is_down(tmp_path: Path, color_model: Path) -> None:
    """Bug: /healthz said 200 ok:true when every camera was offline, ended or unreachable."""
    dead = f"rtsp://127.0.0.1:{free_port()}/cam"
    cams = [
        {"id": "gone", "source": dead, "open_timeout_s": 1, "reconnect": {"initial_s": 0.2}},
        {"id": "missing", "source": str(tmp_path / "nope.mp4")},
    ]
    d = Daemon(tmp_path, config(tmp_path, color_model, cams))
    try:
        assert d.read_notify("READY=1"), d.output()
        r = wait_for(lambda: (resp := d.get("/healthz")).status_code == 503 and resp)
        assert r, d.output()
        body = r.json()
        assert body["ok"] is False and body["status"] == "degraded"
        assert "no camera is online" in body["problems"]
        assert d.get("/livez").json() == {"alive": True, "status": "degraded"}
    finally:
        d.close()


def test_healthz_names_a_full_disk_beside_the_store(tmp_path: Path, color_model: Path) -> None:
    """A disk below retention.min_free_mb turns health red with its own reason, not "spilled"."""
    clip = write_clip(tmp_path / "bear.avi", ["empty"] * 5 + ["bear"] * 40, fps=10)
    cfg = config(tmp_path, color_model, [{"id": "gate", "source": str(clip)}])
    cfg["retention"] = {"min_free_mb": 10**8}  # more than any disk has
    d = Daemon(tmp_path, cfg)
    try:
        assert d.read_notify("READY=1"), d.output()
        full = "the disk beside the review store is full (events are stored without snapshots)"
        r = wait_for(
            lambda: full in (resp := d.get("/healthz")).json().get("problems", []) and resp
        )
        assert r, d.output()
        assert r.status_code == 503
        assert "the review store is failing (writes are being spilled)" not in r.json()["problems"]
    finally:
        d.close()
