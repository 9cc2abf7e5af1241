"""The daemon with humans in the loop: MQTT and webhook by mode, a mode change from the page applied live."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx

from tests.brokers import MosquittoBroker, MqttListener, WebhookReceiver
from tests.media import write_clip
from tests.monitor.service.test_daemon import Daemon, config, wait_for


def test_active_alerts_notify_at_once_shadow_never(tmp_path: Path, color_model: Path) -> None:
    clip = write_clip(
        tmp_path / "bear.avi", ["empty"] * 10 + ["bear"] * 30 + ["empty"] * 20, fps=10
    )
    decision = {"window": 3, "min_hits": 2, "end_after_s": 1.0}
    cams = [
        {
            "id": "gate",
            "source": str(clip),
            "fps": 10,
            "loop": True,
            "mode": "active",
            "decision": decision,
        },
        {
            "id": "lake",
            "source": str(clip),
            "fps": 10,
            "loop": True,
            "mode": "shadow",
            "decision": decision,
        },
    ]
    with (
        MosquittoBroker(tmp_path) as broker,
        WebhookReceiver() as hook,
        MqttListener(broker.port) as mqtt,
    ):
        cfg = config(tmp_path, color_model, cams)
        cfg["notifications"] = {
            "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "webhook": {"url": hook.url, "secret": "s3cret-hook"},
        }
        d = Daemon(tmp_path, cfg)
        try:
            assert d.read_notify("READY=1"), d.output()
            msg = mqtt.wait_for("bearwatch/gate/events", timeout_s=30)
            payload = json.loads(msg.payload)
            assert (
                payload["type"] == "new"
                and payload["label"] == "bear"
                and payload["mode"] == "active"
            )
            with MqttListener(broker.port) as late:  # retained: a late subscriber learns the state
                assert late.wait_for("bearwatch/available", b"online").retain
                assert late.wait_for("bearwatch/gate/status", b"online").retain

            assert d.get("/healthz").json()["workers"]["notify"] is True
            (req,) = hook.wait_for(1, timeout_s=10)[:1]

            assert json.loads(req.body)["camera"] == "gate"
            # Both cameras see the same bear; the shadow one recorded it but told nobody.
            lake = wait_for(lambda: d.get("/api/events?camera=lake").json()["events"])
            assert lake and lake[0]["mode"] == "shadow"
            assert mqtt.on("bearwatch/lake/events") == []
            assert all(json.loads(r.body)["camera"] == "gate" for r in hook.requests)
            d.proc.send_signal(signal.SIGTERM)
            assert d.proc.wait(timeout=15) == 0
            mqtt.wait_for("bearwatch/available", b"offline")
        finally:
            d.close()


def test_a_mode_change_on_the_page_reaches_the_running_daemon(
    tmp_path: Path, color_model: Path
) -> None:
    clip = write_clip(
        tmp_path / "bear.avi", ["empty"] * 10 + ["bear"] * 20 + ["empty"] * 30, fps=10
    )
    cams = [{"id": "gate", "source": str(clip), "fps": 10, "loop": True, "mode": "shadow",
             "decision": {"window": 3, "min_hits": 2, "end_after_s": 0.5, "cooldown_s": 0}}]  # fmt: skip
    d = Daemon(tmp_path, config(tmp_path, color_model, cams))
    try:
        assert d.read_notify("READY=1"), d.output()
        first = wait_for(lambda: d.get("/api/events?kind=alert").json()["events"])
        assert first[0]["mode"] == "shadow"
        with httpx.Client(base_url=f"http://127.0.0.1:{d.port}", timeout=5) as client:
            page = client.get("/cameras")
            token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
            resp = client.post(
                "/api/cameras/gate/mode",
                json={"mode": "review", "reason": "two weeks of clean shadow runs"},
                headers={"X-CSRF-Token": token},
            )
            assert resp.status_code == 200, resp.text
        changed_at = time.time()

        def review_event() -> list[dict]:  # type: ignore[type-arg]
            events = d.get("/api/events?kind=alert").json()["events"]
            return [
                e for e in events if e["mode"] == "review" and e["start_at_epoch"] >= changed_at
            ]

        assert wait_for(review_event, timeout=30), d.output()
        health = d.get("/healthz").json()
        assert health["ok"] is True
    finally:
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=15)
        d.close()
