"""Benchmarks of the daemon under faults and time: decisions while the store is locked, and a soak of the demo.

Both print numbers; neither is a test (no timed assertions in the suite).

* ``store_locked_run``: live frames from several cameras go through the real
  pipeline while a second process holds the SQLite file's write lock for
  ``lock_s`` seconds. It reports capture → decision latency percentiles
  before, during and after the lock, against the budget, and what was spilled.
* ``soak_run``: ``bearwatch run`` on the demo config as a child process,
  sampling its RSS, threads and open file descriptors; it reports the growth
  after warm-up and over the last half.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from monitor.alerts.taps import Decided, Record
from monitor.config import (
    BatchingConfig,
    CameraConfig,
    Config,
    DecisionConfig,
    ModelConfig,
    StoreConfig,
    WebConfig,
)
from monitor.frames import Frame
from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.service.pipeline import Pipeline
from monitor.store import ReviewStore

LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


@dataclass
class LatencyTap:
    """A tap that keeps (captured_mono, latency_s) of every decided frame."""

    points: list[tuple[float, float]] = field(default_factory=list)

    def on_decided(self, d: Decided) -> Sequence[Record]:
        self.points.append((d.frame.captured_mono, d.latency_s))
        return ()

    def flush(self, now_mono: float, wall: float, force: bool) -> Sequence[Record]:
        return ()


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    arr = np.asarray(values, dtype=np.float64) * 1000.0
    return {
        f"p{q}_ms": round(float(np.percentile(arr, q)), 1) if arr.size else None for q in (50, 99)
    } | {"max_ms": round(float(arr.max()), 1) if arr.size else None, "frames": int(arr.size)}


def store_locked_run(
    clf: OnnxClassifier,
    *,
    lock_s: float = 30.0,
    before_s: float = 5.0,
    after_s: float = 10.0,
    cameras: int = 4,
    fps: float = 5.0,
    budget_ms: float = 1000.0,
    threads: int = 1,
) -> dict[str, Any]:
    """Feed live frames while another process locks the store; latency per phase.

    The alert threshold is set at the median score of the bench images, so
    events start and end all the time and the store is written throughout.
    """
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(16, *clf.input_hw, 3), dtype=np.uint8)
    label = clf.labels[0]
    scores = clf.predict(images)[:, 0]
    threshold = float(min(max(np.median(scores), 0.01), 1.0))
    decision = DecisionConfig(
        alert_labels=[label], threshold=threshold, release_threshold=threshold,
        window=1, min_hits=1, end_after_s=0.3, cooldown_s=0.0,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bearwatch-stress-") as tmp:
        db = Path(tmp) / "locked.db"
        cams = [
            CameraConfig(
                id=f"cam{i}", source=f"rtsp://127.0.0.1/cam{i}", fps=fps, decision=decision
            )
            for i in range(cameras)
        ]
        cfg = Config(
            cameras=cams,
            model=ModelConfig(path=clf.path, providers="cpu", threads=threads),
            batching=BatchingConfig(max_batch=8, latency_budget_ms=budget_ms),
            store=StoreConfig(path=db),
            web=WebConfig(enabled=False),
        )
        metrics = Metrics()
        store = ReviewStore(db, metrics=metrics, retries=cfg.store.write_retries)
        pipeline = Pipeline(cfg, clf, store, metrics, capture=False)
        tap = LatencyTap()
        pipeline.alerts.taps.append(tap)
        stop = threading.Event()
        unhealthy_seen = threading.Event()

        def feed(cam: str) -> None:
            period, seq, t_next = 1.0 / fps, 0, time.monotonic()
            pipeline.hub.register(cam)
            while not stop.is_set():
                now = time.monotonic()
                img = images[seq % len(images)]
                frame = Frame(cam, seq, now, time.time(), img, img[:, :, ::-1].copy(), True)
                metrics.frames_offered.labels(camera=cam).inc()
                pipeline.hub.put(frame, stop)
                if not store.healthy:
                    unhealthy_seen.set()
                seq += 1
                t_next += period
                stop.wait(max(0.0, t_next - time.monotonic()))

        feeders = [threading.Thread(target=feed, args=(c.id,), name=f"stress:{c.id}") for c in cams]
        pipeline.start()
        for t in feeders:
            t.start()
        stop.wait(before_s)
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db), str(lock_s)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert locker.stdout is not None
        locker.stdout.readline()  # "locked"
        lock_start = time.monotonic()
        locker.wait(lock_s + 30)
        lock_end = time.monotonic()
        stop.wait(after_s)
        stop.set()
        for t in feeders:
            t.join(2.0)
        for c in cams:
            pipeline.hub.close(c.id)
        pipeline.stop(10.0)
        spilled = store.spill_path.exists()
        store.close()
        reopened = ReviewStore(db)
        try:
            stored_events = reopened.count_events()
        finally:
            reopened.close()

    def phase(lo: float, hi: float) -> dict[str, float | None]:
        return _percentiles([lat for cap, lat in tap.points if lo <= cap < hi])

    processed = int(metrics.counter_totals("bearwatch_frames_processed").get("", 0))
    during = phase(lock_start, lock_end)
    return {
        "cameras": cameras,
        "fps_per_camera": fps,
        "lock_s": round(lock_end - lock_start, 1),
        "budget_ms": budget_ms,
        "before_lock": phase(0.0, lock_start),
        "during_lock": during,
        "after_lock": phase(lock_end, float("inf")),
        "within_budget_during_lock": during["p99_ms"] is not None and during["p99_ms"] <= budget_ms,
        "frames_processed": processed,
        "store_failures": int(metrics.counter_totals("bearwatch_store_write_failures").get("", 0)),
        "health_said_store_degraded": unhealthy_seen.is_set(),
        "spill_left_at_stop": spilled,
        "events_stored_after_reopen": stored_events,
    }


# --- soak ------------------------------------------------------------------------------


def _proc_sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024.0,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _soak_config(demo: Path, tmp: Path) -> Path:
    """The demo config with absolute paths, a temporary store and a free loopback port."""
    data = yaml.safe_load(demo.read_text())
    base = demo.resolve().parent

    def absolute(p: str) -> str:
        return str(p if Path(p).is_absolute() else (base / p).resolve())

    data["model"]["path"] = absolute(data["model"]["path"])
    for cam in data["cameras"]:
        if "://" not in cam["source"] and not str(cam["source"]).isdigit():
            cam["source"] = absolute(cam["source"])
    data.setdefault("store", {})["path"] = str(tmp / "soak.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data.setdefault("web", {}).update(host="127.0.0.1", port=port)
    out = tmp / "soak.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def soak_run(
    config: Path, minutes: float, every_s: float = 10.0, warmup_s: float = 60.0
) -> dict[str, Any]:
    """Run the daemon on ``config`` for ``minutes`` and report RSS, threads and fds over time."""
    samples: list[tuple[float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bearwatch-soak-") as tmp:
        cfg = _soak_config(config, Path(tmp))
        log = (Path(tmp) / "daemon.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(cfg)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < minutes * 60 and proc.poll() is None:
                try:
                    sample = _proc_sample(proc.pid)
                    if sample["threads"] > 1:  # the interpreter is up, not still exec'ing
                        samples.append((time.monotonic() - t0, sample))
                except (OSError, KeyError, ValueError):
                    pass
                time.sleep(every_s)
        finally:
            exited = proc.poll()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            log.close()
    warm = [s for t, s in samples if t >= min(warmup_s, minutes * 30)]
    half = [s for t, s in samples if t >= minutes * 30]

    def growth(points: list[dict[str, float]]) -> float | None:
        if len(points) < 2:
            return None
        return round(
            100.0 * (points[-1]["rss_mib"] - points[0]["rss_mib"]) / points[0]["rss_mib"], 2
        )

    return {
        "minutes": minutes,
        "samples": len(samples),
        "exited_early": exited is not None,
        "rss_mib_first": round(samples[0][1]["rss_mib"], 1) if samples else None,
        "rss_mib_after_warmup": round(warm[0]["rss_mib"], 1) if warm else None,
        "rss_mib_last": round(samples[-1][1]["rss_mib"], 1) if samples else None,
        "rss_growth_after_warmup_pct": growth(warm),
        "rss_growth_last_half_pct": growth(half),
        "threads_min_max": [
            min(s["threads"] for _, s in samples),
            max(s["threads"] for _, s in samples),
        ]
        if samples
        else None,
        "fds_min_max": [min(s["fds"] for _, s in samples), max(s["fds"] for _, s in samples)]
        if samples
        else None,
        "rss_series_mib": [[round(t), round(s["rss_mib"], 1)] for t, s in samples],
    }
