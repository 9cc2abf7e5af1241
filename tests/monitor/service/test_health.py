"""Honest health from a real ``bearwatch run``: degraded (503) when no camera is online."""

from __future__ import annotations

from pathlib import Path

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
