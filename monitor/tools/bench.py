"""``bearwatch bench``: raw ONNX Runtime vs the full pipeline vs fastai, and a 2× overload run."""

from __future__ import annotations

import importlib.util
import json
import logging
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from monitor.alerts.taps import ReplayRecorder
from monitor.config import (
    BatchingConfig,
    CameraConfig,
    Config,
    ModelConfig,
    MotionGateConfig,
    StoreConfig,
    WebConfig,
)
from monitor.frames import Frame
from monitor.metrics import Metrics
from monitor.model.onnx import EXECUTION_PROVIDERS, OnnxClassifier
from monitor.service.pipeline import Pipeline
from monitor.store import ReviewStore
from monitor.tools.bench_view import view_plan_bench
from monitor.tools.replay import ReplayOptions, run_replay

logger = logging.getLogger(__name__)


def raw_ort_rate(clf: OnnxClassifier, batch: int, seconds: float) -> float:
    """Images/s of ``clf.predict`` alone on a fixed random batch."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch, *clf.input_hw, 3), dtype=np.uint8)
    clf.predict(x)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict(x)
        n += batch
    return n / (time.perf_counter() - t0)


def installed_providers() -> list[str]:
    """Our provider names ONNX Runtime offers here, the CPU first."""
    available = set(ort.get_available_providers())
    return ["cpu"] + [n for n in ("openvino", "cuda") if EXECUTION_PROVIDERS[n] in available]


def provider_rates(model: Path, batch: int, threads: int, seconds: float) -> dict[str, Any]:
    """Raw inference speed of every installed provider on ``model`` (same batch, threads and
    inputs), with each one's outputs against the CPU provider's.

    The providers take turns in short rounds, so a busy box slows them alike;
    ``img_per_cpu_s`` (images per CPU-second of this process) is the steadier
    number where other work shares the cores.
    """
    x = np.random.default_rng(5).integers(
        0, 256, size=(batch, *_input_hw(model), 3), dtype=np.uint8
    )
    clfs = {
        name: OnnxClassifier(model, name, threads, warmup_batch=batch)
        for name in installed_providers()
    }
    ref = clfs["cpu"].predict(x)
    out: dict[str, Any] = {"batch": batch, "threads": threads}
    totals = {name: [0, 0.0, 0.0] for name in clfs}  # images, wall s, CPU s
    rounds = 10
    for _ in range(rounds):
        for name, clf in clfs.items():
            wall0, cpu0, t_end = (
                time.perf_counter(),
                time.process_time(),
                time.perf_counter() + seconds / rounds,
            )
            while time.perf_counter() < t_end:
                clf.predict(x)
                totals[name][0] += batch
            totals[name][1] += time.perf_counter() - wall0
            totals[name][2] += time.process_time() - cpu0
    for name, clf in clfs.items():
        probs = clf.predict(x)
        images, wall, cpu = totals[name]
        out[name] = {
            "img_s": round(images / wall, 1),
            "img_per_cpu_s": round(images / cpu, 1) if cpu > 0 else None,
            "max_abs_diff_vs_cpu": float(np.abs(probs - ref).max()),
            "top1_agreement": float(np.mean(probs.argmax(1) == ref.argmax(1))),
        }
    best = max(clfs, key=lambda n: out[n]["img_s"])
    out["fastest"] = best
    out["speedup_vs_cpu"] = round(out[best]["img_s"] / out["cpu"]["img_s"], 2)
    return out


def _input_hw(model: Path) -> tuple[int, int]:
    return OnnxClassifier(model, "cpu", 1).input_hw


def make_bench_clip(path: Path, frames: int, size: tuple[int, int] = (640, 360)) -> Path:
    """A real video file with a moving blob over a textured background (MJPG/AVI)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, size)
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.integers(40, 200, size=(h, w, 3), dtype=np.uint8), (0, 0), 3)
    try:
        for i in range(frames):
            frame = base.copy()
            x = int((i * 7) % (w - 120))
            cv2.ellipse(frame, (x + 60, h // 2), (60, 35), 0, 0, 360, (30, 50, 90), -1)
            writer.write(frame)
    finally:
        writer.release()
    return path


def make_static_clip(
    path: Path, frames: int, fps: float, size: tuple[int, int] = (640, 360)
) -> Path:
    """A static camera: a textured scene with only sensor noise changing between frames (MJPG/AVI)."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(
        rng.integers(40, 200, size=(h, w, 3), dtype=np.uint8), (0, 0), 3
    ).astype(np.int16)
    try:
        for _ in range(frames):
            noise = rng.integers(-3, 4, size=base.shape, dtype=np.int16)
            writer.write(np.clip(base + noise, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return path


def _replay_cpu(
    clip: Path, clf: OnnxClassifier, opts: ReplayOptions
) -> tuple[float, dict[str, Any]]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    summary = run_replay([clip], clf, opts)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), summary


def motion_gate_cpu(
    clf: OnnxClassifier, threads: int, minutes: float = 2.0, fps: float = 2.0
) -> dict[str, Any]:
    """Process CPU seconds to watch a static camera, without and with the motion gate.

    Both runs replay the same static clip (every frame sampled) through the
    whole pipeline; CPU is the process's user + system time, all threads. A
    replay also has a fixed cost (opening the store, warming the model up,
    starting threads) that a camera watched for days does not pay per frame,
    so a one-frame replay is measured too and subtracted: ``net_cpu_s`` is
    the cost of watching, and ``cpu_ratio`` compares those.
    """
    frames = int(minutes * 60 * fps)
    out: dict[str, Any] = {"video_s": minutes * 60, "fps": fps}
    with tempfile.TemporaryDirectory(prefix="bearwatch-bench-") as tmp:
        clip = make_static_clip(Path(tmp) / "static.avi", frames, fps)
        one = make_static_clip(Path(tmp) / "one.avi", 1, fps)
        for name, gate in (("without_gate", False), ("with_gate", True)):
            opts = ReplayOptions(
                fps=fps, threads=threads, motion_gate=MotionGateConfig(enabled=gate, recheck_s=10.0)
            )
            fixed, _ = _replay_cpu(one, clf, opts)
            cpu, summary = _replay_cpu(clip, clf, opts)
            out[name] = {
                "cpu_s": round(cpu, 3),
                "fixed_cpu_s": round(fixed, 3),
                "net_cpu_s": round(max(cpu - fixed, 0.0), 3),
                "classified": summary["frames"],
                "offered": summary["offered"],
            }
    out["cpu_ratio"] = round(
        out["with_gate"]["net_cpu_s"] / max(out["without_gate"]["net_cpu_s"], 1e-9), 3
    )
    return out


def pipeline_rate(
    clf: OnnxClassifier, batch: int, threads: int, clip: Path, cameras: int
) -> dict[str, Any]:
    """Replay ``cameras`` copies of ``clip`` with every frame sampled; images/s decided."""
    opts = ReplayOptions(fps=60.0, pacing="fast", threads=threads, max_batch=batch)
    summary = run_replay([clip] * cameras, clf, opts)
    return {
        "img_s": summary["fps"],
        "frames": summary["frames"],
        "latency_ms": summary["latency_ms"],
    }


FASTAI_MISSING = "fastai/torch not installed (pip install -e '.[train]')"


def fastai_rate(
    model_meta_arch: str, size: int, n_labels: int, images: int
) -> tuple[float | None, str | None]:
    """``learn.predict`` images/s for the same architecture, in a subprocess (the edge never imports torch).

    Returns:
        (images/s, None), or (None, why it could not be measured): the figure is
        optional on an edge box, and a bare ``None`` in the output told nobody why.
    """
    if importlib.util.find_spec("fastai") is None or importlib.util.find_spec("torch") is None:
        return None, FASTAI_MISSING
    if not model_meta_arch:
        return None, "the model's metadata names no architecture to rebuild in fastai"
    cmd = [sys.executable, "-m", "training.bench_fastai", "--arch", model_meta_arch, "--size", str(size),
           "--labels", str(n_labels), "--images", str(images)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        logger.warning("fastai benchmark failed: %s", last)
        return None, f"the fastai run failed: {last}"
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["img_s"]), None


def overload_run(clf: OnnxClassifier, batch: int, threads: int, rate: float, budget_ms: float,
                 seconds: float, cameras: int = 4) -> dict[str, Any]:  # fmt: skip
    """Offer live frames at ``rate`` frames/s across ``cameras`` and measure what the pipeline does.

    The frames are pre-rendered model inputs pushed straight into the frame hub
    by one pacing thread per camera, so the offered rate is exact and the
    measurement is about batching, dropping and deciding — not decoding.
    """
    with tempfile.TemporaryDirectory(prefix="bearwatch-bench-") as tmp:
        cams = [
            CameraConfig(id=f"load{i}", source=f"rtsp://127.0.0.1/load{i}") for i in range(cameras)
        ]
        cfg = Config(
            cameras=cams,
            model=ModelConfig(path=clf.path, providers="cpu", threads=threads),
            batching=BatchingConfig(max_batch=batch, latency_budget_ms=budget_ms),
            store=StoreConfig(path=Path(tmp) / "bench.db"),
            web=WebConfig(enabled=False),
        )
        metrics = Metrics()
        store = ReviewStore(cfg.store.path, metrics=metrics)
        pipeline = Pipeline(cfg, clf, store, metrics, capture=False)  # fed by the threads below
        recorder = pipeline.alerts.record_to(ReplayRecorder())
        rng = np.random.default_rng(2)
        images = rng.integers(0, 256, size=(16, *clf.input_hw, 3), dtype=np.uint8)
        stop = threading.Event()

        def feed(cam: str) -> None:
            period, seq, t_next = cameras / rate, 0, time.monotonic()
            pipeline.hub.register(cam)
            while not stop.is_set():
                now = time.monotonic()
                frame = Frame(cam, seq, now, time.time(), images[seq % len(images)], None, True)
                metrics.frames_offered.labels(camera=cam).inc()
                pipeline.hub.put(frame, stop)
                seq += 1
                t_next += period
                stop.wait(max(0.0, t_next - time.monotonic()))

        feeders = [
            threading.Thread(target=feed, args=(c.id,), name=f"bench-feed:{c.id}") for c in cams
        ]
        pipeline.start()
        for t in feeders:
            t.start()
        stop.wait(seconds)
        stop.set()
        for t in feeders:
            t.join(2.0)
        for c in cams:
            pipeline.hub.close(c.id)
        pipeline.stop(5.0)
        store.close()
    offered = int(metrics.counter_totals("bearwatch_frames_offered").get("", 0))
    processed = int(metrics.counter_totals("bearwatch_frames_processed").get("", 0))
    dropped = {
        k: int(v)
        for k, v in metrics.counter_totals("bearwatch_frames_dropped", by="reason").items()
    }
    lat = np.asarray(recorder.latencies_s) * 1000.0
    return {
        "target_rate": round(rate, 1),
        "offered_rate": round(offered / seconds, 1),
        "offered": offered,
        "processed": processed,
        "dropped": dropped,
        "accounted": offered == processed + sum(dropped.values()),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
        "budget_ms": budget_ms,
    }


STEPS = ("raw ONNX Runtime", "pipeline", "fastai", "overload 2x", "motion gate")


def run_bench(model: Path, batch: int, threads: int, seconds: float, cameras: int, frames: int,
              budget_ms: float, fastai_images: int, gate_minutes: float = 2.0,
              view_frames: int = 60,
              step: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything ``bearwatch bench`` reports, in one dict.

    Args:
        view_frames: frames of the 1080p view-plan clip (0: skip that section).
        step: called with each name of ``STEPS`` as that part starts (the CLI's progress bar).
    """
    tell = step or (lambda _name: None)
    clf = OnnxClassifier(model, "cpu", threads, warmup_batch=batch)
    tell(STEPS[0])
    views = view_plan_bench(clf, batch, view_frames) if view_frames > 0 else None
    raw = raw_ort_rate(clf, batch, seconds)
    tell(STEPS[1])
    with tempfile.TemporaryDirectory(prefix="bearwatch-bench-") as tmp:
        clip = make_bench_clip(Path(tmp) / "bench.avi", frames)
        pipe = pipeline_rate(clf, batch, threads, clip, cameras)
    h, _ = clf.input_hw
    tell(STEPS[2])
    fastai, fastai_why = fastai_rate(clf.meta.arch, h, len(clf.labels), fastai_images)
    # Twice what the model alone can do: frames arrive pre-decoded, so the
    # inference worker is the bottleneck being overloaded.
    tell(STEPS[3])
    overload = overload_run(clf, batch, threads, 2.0 * raw, budget_ms, seconds)
    tell(STEPS[4])
    gate = motion_gate_cpu(clf, threads, minutes=gate_minutes)

    return {
        "model": str(model),
        "model_version": clf.meta.model_version,
        "input_hw": list(clf.input_hw),
        "batch": batch,
        "threads": threads,
        "raw_ort_img_s": round(raw, 1),
        "pipeline_img_s": pipe["img_s"],
        "pipeline_frames": pipe["frames"],
        "ratio": round(pipe["img_s"] / raw, 3),
        "fastai_img_s": None if fastai is None else round(fastai, 1),
        "pipeline_vs_fastai": None if not fastai else round(pipe["img_s"] / fastai, 2),
        "missing": {}
        if fastai_why is None
        else {"fastai_img_s": fastai_why, "pipeline_vs_fastai": fastai_why},  # fmt: skip
        "overload": overload,
        "motion_gate": gate,
        "view_plans": views,
    }
