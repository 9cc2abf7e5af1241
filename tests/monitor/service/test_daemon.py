"""``bearwatch run`` as a real process: sd_notify, web endpoints, SIGTERM, kill -9, bad cameras, the unit file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.media import write_clip

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """A ``bearwatch run`` subprocess with a notify socket the test owns."""

    def __init__(self, tmp: Path, cfg: dict[str, Any], watchdog_usec: int = 2_000_000) -> None:
        self.port = cfg["web"]["port"]
        self.cfg_path = tmp / "config.yaml"
        self.cfg_path.write_text(yaml.safe_dump(cfg))
        self.sock_path = tmp / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.sock.settimeout(0.2)
        self.log_path = tmp / "daemon.log"
        self.log = self.log_path.open("w")
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.sock_path),
            "WATCHDOG_USEC": str(watchdog_usec),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(self.cfg_path)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.messages: list[str] = []

    def read_notify(self, until: str, timeout: float = 30.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.messages += self.sock.recv(4096).decode().splitlines()
            except TimeoutError:
                if self.proc.poll() is not None:
                    return False
            if any(m.startswith(until) for m in self.messages):
                return True
        return False

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5.0)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.sock.close()
        self.log.close()


def config(tmp: Path, model: Path, cameras: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": {"path": str(model), "providers": "cpu", "threads": 1},
        "batching": {"max_batch": 4, "latency_budget_ms": 1000},
        "store": {"path": str(tmp / "events.db")},
        "web": {"host": "127.0.0.1", "port": free_port()},
        "supervisor": {"drain_timeout_s": 3},
        "cameras": cameras,
    }


@pytest.fixture
def bear_clip(tmp_path: Path) -> Path:
    return write_clip(
        tmp_path / "bear.avi", ["empty"] * 10 + ["bear"] * 30 + ["empty"] * 10, fps=10
    )


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.close()


def wait_for(fn, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return last


def test_daemon_notifies_serves_and_stops_on_sigterm(
    tmp_path: Path, color_model: Path, bear_clip: Path, daemons: list[Daemon]
) -> None:
    cams = [{"id": "trail", "source": str(bear_clip), "fps": 10, "loop": True, "mode": "review",
             "decision": {"window": 3, "min_hits": 2, "end_after_s": 1.0}}]  # fmt: skip
    d = Daemon(tmp_path, config(tmp_path, color_model, cams))
    daemons.append(d)
    assert d.read_notify("READY=1"), d.output()
    assert d.read_notify("WATCHDOG=1", timeout=10), d.output()
    assert any(m.startswith("STATUS=") and "cameras online" in m for m in d.messages)

    events = wait_for(lambda: d.get("/api/events").json()["events"])
    assert events, d.output()
    assert (
        events[0]["camera"] == "trail"
        and events[0]["label"] == "bear"
        and events[0]["mode"] == "review"
    )
    health = d.get("/healthz")
    assert health.status_code == 200 and health.json()["cameras"]["trail"]["status"] == "online"
    metrics = d.get("/metrics").text
    assert 'bearwatch_frames_processed_total{camera="trail"}' in metrics
    assert "bearwatch_capture_to_decision_seconds_bucket" in metrics
    # The cameras page's live parts: the pipeline's latest frame and the camera's state now.
    frame = d.get("/api/cameras/trail/latest.jpg")
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8", frame.text
    live = d.get("/api/cameras/live").json()["cameras"]["trail"]
    assert live["status"] == "online" and live["frame_at"] is not None

    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 8
    out = d.output()
    assert "received SIGTERM" in out and "did not stop" not in out
    d.read_notify("STOPPING=1", timeout=1)
    assert "STOPPING=1" in d.messages


def test_one_stop_request_delivered_twice_still_drains(
    tmp_path: Path, color_model: Path, bear_clip: Path, daemons: list[Daemon]
) -> None:
    """Regression: coreutils ``timeout`` signals the process and its group, so one SIGTERM
    arrived twice at once and the "second signal forces" rule skipped the drain."""
    cams = [{"id": "trail", "source": str(bear_clip), "fps": 10, "loop": True}]
    d = Daemon(tmp_path, config(tmp_path, color_model, cams))
    daemons.append(d)
    assert d.read_notify("READY=1"), d.output()
    d.proc.send_signal(signal.SIGTERM)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0
    out = d.output()
    assert "exiting without draining" not in out and "stopped" in out


def test_kill_9_loses_no_stored_event(
    tmp_path: Path, color_model: Path, bear_clip: Path, daemons: list[Daemon]
) -> None:
    cams = [{"id": "trail", "source": str(bear_clip), "fps": 10, "loop": True,
             "decision": {"window": 3, "min_hits": 2, "end_after_s": 1.0}}]  # fmt: skip
    cfg = config(tmp_path, color_model, cams)
    d = Daemon(tmp_path, cfg)
    daemons.append(d)
    assert d.read_notify("READY=1"), d.output()
    before = wait_for(lambda: d.get("/api/events").json()["events"])
    assert before
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)
    d.close()
    from monitor.store import ReviewStore

    store = ReviewStore(Path(cfg["store"]["path"]))
    try:
        ids = {e["id"] for e in store.list_events(limit=500)}
    finally:
        store.close()
    assert {e["id"] for e in before} <= ids


def test_a_bad_camera_does_not_stop_the_others(
    tmp_path: Path, color_model: Path, bear_clip: Path, daemons: list[Daemon]
) -> None:
    cams = [
        {"id": "good", "source": str(bear_clip), "fps": 5, "loop": True},
        {"id": "missing", "source": str(tmp_path / "nope.mp4"), "reconnect": {"initial_s": 0.2, "offline_after": 1}},
        {"id": "nohost", "source": "rtsp://viewer:topsecret@127.0.0.1:9/none", "open_timeout_s": 1,
         "reconnect": {"initial_s": 0.2, "offline_after": 1}},
    ]  # fmt: skip
    d = Daemon(tmp_path, config(tmp_path, color_model, cams))
    daemons.append(d)
    assert d.read_notify("READY=1"), d.output()

    def statuses() -> dict[str, str] | None:
        cams = d.get("/healthz").json()["cameras"]
        s = {k: v["status"] for k, v in cams.items()}
        return (
            s
            if s["missing"] == "offline" and s["nohost"] == "offline" and s["good"] == "online"
            else None
        )

    assert wait_for(statuses), d.get("/healthz").text
    health = d.get("/healthz").json()
    assert "nope.mp4" in (health["cameras"]["missing"]["last_error"] or "")
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=15) == 0
    out = d.output()
    assert "topsecret" not in out + str(health)


def test_corrupt_model_is_refused_at_start(tmp_path: Path, bear_clip: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    cfg = config(tmp_path, bad, [{"id": "a", "source": str(bear_clip)}])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "monitor", "run", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "refusing to start" in proc.stdout and "not a loadable ONNX model" in proc.stdout


def test_wrong_alert_label_is_refused_at_start(
    tmp_path: Path, color_model: Path, bear_clip: Path
) -> None:
    cfg = config(
        tmp_path,
        color_model,
        [{"id": "a", "source": str(bear_clip), "decision": {"alert_labels": ["moose"]}}],
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "monitor", "run", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "moose" in proc.stdout and "not in the model's labels" in proc.stdout


def test_systemd_unit_verifies_cleanly(tmp_path: Path) -> None:
    """systemd-analyze exits 0 even on bad values, so any stderr output is a failure."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, (
        "systemd-analyze is missing: install the Debian package systemd (make system-deps)"
    )
    exe = shutil.which("bearwatch") or str(Path(sys.executable).with_name("bearwatch"))
    unit = (
        (REPO / "deploy" / "bearwatch.service")
        .read_text()
        .replace("/opt/bearwatch/venv/bin/bearwatch", exe)
    )
    (tmp_path / "bearwatch.service").write_text(unit)
    proc = subprocess.run([analyze, "verify", "--man=no", "./bearwatch.service"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.stderr.strip() == "", proc.stderr
    assert proc.returncode == 0
    for key in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "StateDirectory=", "ProtectSystem=strict",
                "NoNewPrivileges=yes"):  # fmt: skip
        assert key in unit


def test_an_unusable_store_path_is_refused_with_the_key(
    tmp_path: Path, color_model: Path, bear_clip: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    cfg = config(tmp_path, color_model, [{"id": "a", "source": str(bear_clip)}])
    cfg["store"]["path"] = str(blocker / "events.db")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "monitor", "run", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert (
        "refusing to start: cannot open review store" in proc.stdout and "store.path" in proc.stdout
    )
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_store_folder_is_created(
    tmp_path: Path, color_model: Path, bear_clip: Path, daemons: list[Daemon]
) -> None:
    """Regression: `make demo` on a fresh clone failed because var/ did not exist yet."""
    cfg = config(tmp_path, color_model, [{"id": "a", "source": str(bear_clip), "loop": True}])
    cfg["store"]["path"] = str(tmp_path / "var" / "deeper" / "events.db")
    d = Daemon(tmp_path, cfg)
    daemons.append(d)
    assert d.read_notify("READY=1"), d.output()
    assert (tmp_path / "var" / "deeper" / "events.db").exists()
