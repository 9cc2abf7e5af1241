"""``bearwatch bench --capacity VIDEO``: what one camera costs against a bare decode, and how many this box holds.

Two measurements in one run:

1. CPU seconds per minute of video for the whole pipeline (decode, convert,
   infer, decide) replaying ``VIDEO`` as fast as it goes, net of the replay's
   fixed start-up cost (measured on a 2 s cut of the same file), next to a
   decode-only loop over the same file (PyAV, one thread, every frame; and
   FFmpeg's own CLI when it is installed) — and their ratio.
2. Capacity: copies of ``VIDEO`` replayed as *live* cameras (frames released at
   their timestamps, looping), the camera count stepped up until the box no
   longer keeps up: a step passes with no stale drops, p99 capture→decision
   latency inside the budget, and every camera's decoder within the budget of
   the live edge. Each step also reports the cores this process used and the
   box's load average: on a shared box the count says what was left over.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from monitor.alerts.taps import ReplayRecorder
from monitor.capture.picture import Picture
from monitor.capture.pyav_source import PyAvSource, open_pyav
from monitor.capture.worker import CaptureWorker
from monitor.config import BatchingConfig, CameraConfig, Config, ModelConfig, StoreConfig, WebConfig
from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.service.pipeline import Pipeline
from monitor.store import ReviewStore
from monitor.tools.replay import ReplayOptions, run_replay

logger = logging.getLogger(__name__)

FIXED_CUT_S = 2.0  # the cut whose replay measures the fixed start-up cost
MAX_STEPS = 8
START_CAP = 48  # the first step never tries more cameras than this (a tiny clip's cost rounds to 0)
MAX_CAMERAS = 400


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the capacity table says about the clip."""

    duration_s: float
    width: int
    height: int
    fps: float
    keyframe_interval_s: float | None


def probe(video: Path) -> VideoInfo:
    """Duration, size, frame rate and mean keyframe interval (from packet flags, nothing decoded)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        keys: list[float] = []
        last = 0.0
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            t = float(packet.pts * packet.time_base)
            last = max(last, t)
            if packet.is_keyframe:
                keys.append(t)
        rate = float(stream.average_rate or stream.guessed_rate or 0.0)
        start = keys[0] if keys else 0.0
        interval = (keys[-1] - keys[0]) / (len(keys) - 1) if len(keys) > 1 else None
        duration = last - start + (1.0 / rate if rate else 0.0)
        return VideoInfo(duration, stream.width, stream.height, rate, interval)


def cut(video: Path, seconds: float, out: Path) -> Path:
    """The first ``seconds`` of ``video``, packets copied (no re-encode)."""
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        start: float | None = None
        for packet in src.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            t = float(packet.pts * packet.time_base)
            start = t if start is None else start
            if t - start >= seconds and packet.is_keyframe:
                break
            packet.stream = copy
            dst.mux(packet)
    return out


def decode_only_cpu(video: Path, keyframes: bool = False) -> float:
    """CPU seconds for a bare decode loop over ``video`` (PyAV, one thread, nothing converted)."""
    before = _cpu_s()
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        if keyframes:
            stream.codec_context.skip_frame = "NONKEY"
        for packet in container.demux(stream):
            if keyframes and not packet.is_keyframe and packet.size:
                continue
            stream.codec_context.decode(packet if packet.size else None)
    return _cpu_s() - before


def ffmpeg_cpu(video: Path) -> float | None:
    """CPU seconds of ``ffmpeg -threads 1 -i VIDEO -f null -`` (None without an ffmpeg binary)."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [binary, "-hide_banner", "-loglevel", "error", "-threads", "1", "-i", str(video), "-f", "null", "-"]  # fmt: skip
    subprocess.run(cmd, check=False, timeout=3600, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pipeline_cpu(video: Path, clf: OnnxClassifier, fps: float, decode: str, threads: int) -> dict[str, Any]:  # fmt: skip
    """Net CPU seconds of ``bearwatch replay`` (in this process) over ``video``."""
    opts = ReplayOptions(fps=fps, pacing="fast", threads=threads, decode=decode)
    with tempfile.TemporaryDirectory(prefix="bearwatch-capacity-") as tmp:
        short = cut(video, FIXED_CUT_S, Path(tmp) / f"cut{video.suffix or '.mkv'}")
        before = _cpu_s()
        run_replay([short], clf, opts)
        fixed = _cpu_s() - before
        before = _cpu_s()
        summary = run_replay([video], clf, opts)
        total = _cpu_s() - before
    return {"cpu_s": total, "fixed_cpu_s": fixed, "net_cpu_s": max(total - fixed, 0.0),
            "frames": summary["frames"], "offered": summary["offered"]}  # fmt: skip


class LiveReplay:
    """A video file played as a live camera: each frame released at its timestamp, looping forever.

    Decoding is real (a :class:`PyAvSource` on the file, in the camera's decode
    mode); only the network is missing. ``behind_s`` is how far the decoder fell
    behind the live edge at worst: a box that cannot decode in real time shows
    it here (a real camera's frames would pile up in the socket buffer).
    """

    def __init__(self, cfg: CameraConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._cfg = cfg
        self._clock = clock
        self._source: PyAvSource = open_pyav(cfg)
        self._anchor: float | None = None
        self._offset_s = 0.0
        self._last_s = 0.0
        self._never = threading.Event()  # waits are bounded by one frame period
        self.behind_s = 0.0

    def grab(self) -> bool:
        if not self._source.grab():
            if self._source.skip():
                return False
            self._offset_s += self._last_s + self._source.frame_period_s
            self._source.release()
            self._source = open_pyav(self._cfg)
            if not self._source.grab():
                return False
        self._last_s = self._source.position_ms() / 1000.0
        t = self._offset_s + self._last_s
        now = self._clock()
        if self._anchor is None:
            self._anchor = now - t
        delay = self._anchor + t - now
        if delay > 0:
            self._never.wait(delay)
        else:
            self.behind_s = max(self.behind_s, -delay)
        return True

    def retrieve(self) -> Picture | None:
        return self._source.retrieve()

    def position_ms(self) -> float:
        return self._source.position_ms()

    def skip(self) -> bool:
        return self._source.skip()

    def age_s(self) -> float | None:
        return None

    def release(self) -> None:
        self._source.release()


def live_step(video: Path, clf: OnnxClassifier, cameras: int, fps: float, decode: str,
              budget_ms: float, seconds: float, threads: int) -> dict[str, Any]:  # fmt: skip
    """Run ``cameras`` live copies of ``video`` for ``seconds``; did the box keep up?"""
    warmup_s = min(5.0, seconds / 3)
    with tempfile.TemporaryDirectory(prefix="bearwatch-capacity-") as tmp:
        cams = [
            CameraConfig(
                id=f"cap{i}", source=f"rtsp://127.0.0.1/capacity{i}", fps=fps, decode=decode
            )  # type: ignore[arg-type]  # fmt: skip
            for i in range(cameras)
        ]
        cfg = Config(
            cameras=cams,
            model=ModelConfig(path=clf.path, providers="cpu", threads=threads),
            batching=BatchingConfig(latency_budget_ms=budget_ms),
            store=StoreConfig(path=Path(tmp) / "capacity.db"),
            web=WebConfig(enabled=False),
        )
        metrics = Metrics()
        store = ReviewStore(cfg.store.path, metrics=metrics)
        pipeline = Pipeline(cfg, clf, store, metrics, capture=False)  # captures made below
        recorder = pipeline.alerts.record_to(ReplayRecorder())
        sources: list[LiveReplay] = []

        def opener(cam: CameraConfig) -> LiveReplay:
            source = LiveReplay(cam.model_copy(update={"source": str(video)}))
            sources.append(source)
            return source

        meta = clf.meta
        workers = [
            CaptureWorker(
                c,
                meta.input_hw,
                meta.resize_method,
                pipeline.hub,
                metrics,
                opener=opener,
                gate_state=pipeline.decisions.gate_state,
            )  # fmt: skip
            for c in cams
        ]
        stop = threading.Event()
        pipeline.start()
        for w in workers:
            w.start()
        try:
            stop.wait(warmup_s)
            for s in sources:
                s.behind_s = 0.0
            recorder.latencies_s.clear()
            stale_before = _stale(metrics)
            offered_before = _offered(metrics)
            superseded_before = _dropped(metrics, "superseded")
            cpu_before, wall_before = _cpu_s(), time.monotonic()
            stop.wait(seconds - warmup_s)
            cpu = _cpu_s() - cpu_before
            wall = time.monotonic() - wall_before
            stale = _stale(metrics) - stale_before
            offered = _offered(metrics) - offered_before
            superseded = _dropped(metrics, "superseded") - superseded_before
            lat = np.asarray(recorder.latencies_s, dtype=np.float64) * 1000.0
            behind = max((s.behind_s for s in sources), default=0.0)
        finally:
            for w in workers:
                w.stop()
            for w in workers:
                w.join(timeout=cfg.cameras[0].open_timeout_s + 2.0)
            pipeline.stop(5.0)
            store.close()
    p99 = float(np.percentile(lat, 99)) if lat.size else None
    ok = stale == 0 and p99 is not None and p99 <= budget_ms and behind * 1000.0 <= budget_ms
    return {"cameras": cameras, "offered": int(offered), "decided": int(lat.size),
            "superseded": int(superseded), "stale": int(stale),
            "p99_ms": None if p99 is None else round(p99, 1), "behind_s": round(behind, 3),
            "cpu_cores": round(cpu / wall, 2), "loadavg": round(os.getloadavg()[0], 1),
            "ok": bool(ok)}  # fmt: skip


def _stale(metrics: Metrics) -> float:
    return _dropped(metrics, "stale")


def _dropped(metrics: Metrics, reason: str) -> float:
    return metrics.counter_totals("bearwatch_frames_dropped", by="reason").get(reason, 0.0)


def _offered(metrics: Metrics) -> float:
    return metrics.counter_totals("bearwatch_frames_offered").get("", 0.0)


def run_capacity(video: Path, model: Path, fps: float = 2.0, decode: str = "all",
                 budget_ms: float = 1000.0, step_s: float = 20.0, threads: int = 1,
                 providers: str = "auto", max_steps: int = MAX_STEPS,
                 start: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything ``bearwatch bench --capacity`` reports, in one dict."""
    info = probe(video)
    clf = OnnxClassifier(model, providers, threads, warmup_batch=8)
    minutes = info.duration_s / 60.0
    pipe = pipeline_cpu(video, clf, fps, decode, threads)
    bare = decode_only_cpu(video)
    bare_key = decode_only_cpu(video, keyframes=True)
    ff = ffmpeg_cpu(video)
    per_min = pipe["net_cpu_s"] / minutes
    cores = _cores()
    # Start from what the CPU cost alone allows, then step up or down.
    guess = min(START_CAP, max(1, int(0.8 * cores * 60.0 / max(per_min, 1e-3))))
    steps: list[dict[str, Any]] = []
    tried: dict[int, bool] = {}
    n = start or guess
    for _ in range(max_steps):
        if n in tried or n < 1:
            break
        step = live_step(video, clf, n, fps, decode, budget_ms, step_s, threads)
        logger.info("capacity: %s", step)
        steps.append(step)
        tried[n] = step["ok"]
        passed = [k for k, ok in tried.items() if ok]
        failed = [k for k, ok in tried.items() if not ok]
        lo, hi = max(passed, default=0), min(failed, default=None)
        if hi is not None and hi - lo <= max(1, lo // 10):
            break
        n = (lo + hi) // 2 if hi is not None else min(MAX_CAMERAS, max(lo + 1, int(lo * 1.5)))
    best = max((k for k, ok in tried.items() if ok), default=0)
    return {
        "video": str(video),
        "video_s": round(info.duration_s, 2),
        "size": [info.width, info.height],
        "video_fps": round(info.fps, 2),
        "keyframe_interval_s": None if info.keyframe_interval_s is None else round(info.keyframe_interval_s, 2),
        "fps": fps,
        "decode": decode,
        "providers": clf.providers[0],
        "cores": cores,
        "pipeline_cpu_s_per_min": round(per_min, 3),
        "decode_only_cpu_s_per_min": round(bare / minutes, 3),
        "decode_keyframes_cpu_s_per_min": round(bare_key / minutes, 3),
        "ffmpeg_cpu_s_per_min": None if ff is None else round(ff / minutes, 3),
        "ratio_vs_decode": round(pipe["net_cpu_s"] / bare, 3) if bare > 0 else None,
        "ratio_vs_ffmpeg": round(pipe["net_cpu_s"] / ff, 3) if ff else None,
        "frames": pipe["frames"],
        "budget_ms": budget_ms,
        "steps": steps,
        "cameras_sustained": best,
    }  # fmt: skip


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def format_capacity(r: dict[str, Any]) -> str:
    """The capacity result as the table ``bearwatch bench --capacity`` prints."""
    key = r["keyframe_interval_s"]
    lines = [
        f"{r['video']}: {r['size'][0]}x{r['size'][1]}, {r['video_fps']:g} fps, {r['video_s']:g} s, "
        f"keyframe every {key if key is not None else '?'} s; sampled at {r['fps']:g} fps, decode {r['decode']}, "
        f"{r['providers']}, {r['cores']} cores",
        "CPU s per minute of video:",
        f"  pipeline (decode+convert+infer+decide) {r['pipeline_cpu_s_per_min']:8.3f}",
        f"  bare decode, every frame (PyAV)        {r['decode_only_cpu_s_per_min']:8.3f}   ratio {r['ratio_vs_decode']}",
    ]
    if r["ffmpeg_cpu_s_per_min"] is not None:
        lines.append(
            f"  ffmpeg -threads 1 -f null              {r['ffmpeg_cpu_s_per_min']:8.3f}   ratio {r['ratio_vs_ffmpeg']}"
        )
    lines += [
        f"  bare decode, keyframes only (PyAV)     {r['decode_keyframes_cpu_s_per_min']:8.3f}",
        f"live cameras (budget {r['budget_ms']:g} ms): cameras  offered  decided  superseded  stale  p99 ms  behind s  cores  load  ok",
    ]
    for s in r["steps"]:
        lines.append(
            f"{'':38}{s['cameras']:7d}  {s['offered']:7d}  {s['decided']:7d}  {s['superseded']:10d}  {s['stale']:5d}  "
            f"{s['p99_ms'] if s['p99_ms'] is not None else '-':>6}  "
            f"{s['behind_s']:8.3f}  {s['cpu_cores']:5.2f}  {s['loadavg']:4.1f}  {'yes' if s['ok'] else 'no'}"
        )
    lines.append(f"sustained: {r['cameras_sustained']} cameras at {r['fps']:g} fps ({r['decode']})")
    return "\n".join(lines)
