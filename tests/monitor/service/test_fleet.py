"""A fleet: two ``bearwatch run`` processes (two sites, two cameras each) sharing one PostgreSQL store and one mosquitto.

Every alert is notified exactly once — also when one daemon is killed -9 while
it is delivering — and one review page lists both sites' events.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from monitor.store import ReviewStore
from tests.brokers import MosquittoBroker, MqttListener
from tests.media import write_clip
from tests.monitor.service.test_daemon import Daemon, config, wait_for
from tests.postgres import PASSWORD, USER, PostgresServer


def site_config(
    tmp: Path, model: Path, clip: Path, site: str, store_url: str, mqtt_port: int
) -> dict[str, Any]:
    cams = [
        {"id": f"cam{i}", "source": str(clip), "fps": 10, "loop": True, "mode": "active",
         "decision": {"window": 3, "min_hits": 2, "end_after_s": 0.5, "cooldown_s": 0.2}}
        for i in (1, 2)
    ]  # fmt: skip
    cfg = config(tmp, model, cams)
    cfg["site"] = site
    cfg["store"] = {"url": store_url, "path": str(tmp / "local.db")}
    cfg["notifications"] = {
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": f"bearwatch-{site}"},
        "claim_lease_s": 2,
        "retry_s": 0.5,
    }
    return cfg


def test_two_daemons_share_one_store_and_notify_each_event_exactly_once(
    tmp_path: Path,
    color_model: Path,
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = write_clip(
        tmp_path / "bear.avi", ["empty"] * 10 + ["bear"] * 15 + ["empty"] * 10, fps=10
    )
    database = postgres.create_database()
    monkeypatch.setenv("PG_PASSWORD", PASSWORD)
    url = f"postgresql://{USER}:${{PG_PASSWORD}}@127.0.0.1:{postgres.port}/{database}"
    real_url = postgres.url(database)
    up = subprocess.run([sys.executable, "-m", "monitor", "db", "upgrade", "--store", real_url],
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert up.returncode == 0, up.stderr

    daemons: list[Daemon] = []
    with MosquittoBroker(tmp_path) as broker, MqttListener(broker.port, "bearwatch/events") as mqtt:
        try:
            for site in ("north", "south"):
                (tmp_path / site).mkdir()
                cfg = site_config(tmp_path / site, color_model, clip, site, url, broker.port)
                daemons.append(Daemon(tmp_path / site, cfg))
            north, south = daemons
            for d in daemons:
                assert d.read_notify("READY=1", timeout=60), d.output()

            def sent_by_north() -> bool:
                sites = [json.loads(m.payload)["site"] for m in mqtt.on("bearwatch/events")]
                return sites.count("north") >= 3 and "south" in sites

            assert wait_for(sent_by_north, timeout=60), north.output() + south.output()
            north.proc.send_signal(signal.SIGKILL)  # mid-delivery, as far as it knows
            north.proc.wait(10)

            # One review page (south's) lists both sites' events.
            listed = south.get("/api/events?limit=200").json()["events"]
            assert {e["site"] for e in listed} == {"north", "south"}
            assert {e["site"] for e in south.get("/api/events?site=north").json()["events"]} == {
                "north"
            }
            page = south.get("/")
            assert page.status_code == 200 and 'name="site"' in page.text
            health = south.get("/healthz").json()
            assert health["store_healthy"] and health["store_size_bytes"] > 0
            assert health["workers"]["retention"] is True
            assert "bearwatch_store_size_bytes" in south.get("/metrics").text

            time.sleep(3)  # south keeps raising alerts
            store = ReviewStore(real_url, local_path=tmp_path / "reader.db")
            try:

                def all_sent() -> bool:
                    alerts = [e for e in store.iter_events(kind="alert") if e["mode"] == "active"]
                    sent = {d["event_id"] for d in store.deliveries() if d["status"] == "sent"}
                    return bool(alerts) and {e["id"] for e in alerts} <= sent

                # North's unfinished claims expire after 2 s and south sends them.
                assert wait_for(all_sent, timeout=30), south.output()
                south.proc.send_signal(signal.SIGTERM)
                assert south.proc.wait(timeout=15) == 0, south.output()
                time.sleep(0.5)  # the last publishes reach the listener
                alerts = {
                    e["id"]: e["site"]
                    for e in store.iter_events(kind="alert")
                    if e["mode"] == "active"
                }
            finally:
                store.close()
            got = Counter(
                json.loads(m.payload)["id"]
                for m in mqtt.on("bearwatch/events")
                if json.loads(m.payload)["type"] == "new"
            )
            assert set(got) == set(alerts)  # every stored alert was notified …
            assert set(got.values()) == {1}, got  # … exactly once
            assert set(alerts.values()) == {"north", "south"}
            for d in daemons:
                assert PASSWORD not in d.output()
        finally:
            for d in daemons:
                d.close()


def test_a_daemon_facing_a_database_without_the_schema_refuses_with_the_command(
    tmp_path: Path, color_model: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_clip(tmp_path / "bear.avi", ["empty"] * 5, fps=10)
    monkeypatch.setenv("PG_PASSWORD", PASSWORD)
    url = f"postgresql://{USER}:${{PG_PASSWORD}}@127.0.0.1:{postgres.port}/{postgres.create_database()}"
    cfg = site_config(tmp_path, color_model, clip, "north", url, 1883)
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([sys.executable, "-m", "monitor", "run", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    (line,) = [x for x in out.splitlines() if "refusing to start" in x]
    assert "run `bearwatch db upgrade --store postgresql://bearwatch:***@127.0.0.1" in line
    assert "store.url" in line and PASSWORD not in out and "Traceback" not in out
