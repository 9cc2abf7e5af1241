"""``bearwatch replay``: the daemon's pipeline over recorded files, as fast as possible."""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.alerts.taps import ReplayRecorder
from monitor.config import (
    AuditConfig,
    BatchingConfig,
    CameraConfig,
    CandidateConfig,
    Config,
    DecisionConfig,
    DriftConfig,
    ModelConfig,
    MotionGateConfig,
    OodConfig,
    StoreConfig,
    WebConfig,
)
from monitor.config.camera import ViewConfig
from monitor.metrics import Metrics
from monitor.model.onnx import OnnxClassifier
from monitor.service.pipeline import Pipeline
from monitor.store import ReviewStore, StoreUrl


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What a replay runs with; defaults match a daemon camera's defaults."""

    fps: float = 5.0
    pacing: str = "fast"
    providers: str = "cpu"
    threads: int = 1
    max_batch: int = 8
    latency_budget_ms: float = 60_000.0
    decision: DecisionConfig = DecisionConfig()
    motion_gate: MotionGateConfig = MotionGateConfig()
    drift: DriftConfig = DriftConfig()
    candidate: Path | None = None
    mode: str = "shadow"
    ood: OodConfig = OodConfig()
    view: ViewConfig | None = None  # None: each camera's default (auto)
    decode: str = "all"
    audit: AuditConfig = AuditConfig()


def camera_ids(paths: Sequence[Path]) -> list[str]:
    """Unique slugs from file names (``Bear Day.mp4`` → ``bear-day``)."""
    ids: list[str] = []
    for p in paths:
        base = re.sub(r"[^a-z0-9_-]+", "-", p.stem.lower()).strip("-_") or "video"
        cam, n = base[:60], 2
        while cam in ids:
            cam, n = f"{base[:57]}-{n}", n + 1
        ids.append(cam)
    return ids


def replay_config(videos: Sequence[Path], model: Path, store: Path, opts: ReplayOptions) -> Config:
    cams = [
        CameraConfig(
            id=cid,
            source=str(v),
            fps=opts.fps,
            pacing=opts.pacing,  # type: ignore[arg-type]
            decision=opts.decision,
            motion_gate=opts.motion_gate,
            mode=opts.mode,  # type: ignore[arg-type]
            view=opts.view or ViewConfig(),
            decode=opts.decode,  # type: ignore[arg-type]
        )
        for cid, v in zip(camera_ids(videos), videos, strict=True)
    ]
    return Config(
        cameras=cams,
        model=ModelConfig(path=model, providers=opts.providers, threads=opts.threads),  # type: ignore[arg-type]
        batching=BatchingConfig(max_batch=opts.max_batch, latency_budget_ms=opts.latency_budget_ms),
        store=StoreConfig(path=store),
        web=WebConfig(enabled=False),
        drift=opts.drift,
        ood=opts.ood,
        audit=opts.audit,
        candidate=None if opts.candidate is None else CandidateConfig(path=opts.candidate),
    )


def run_replay(
    videos: Sequence[Path],
    classifier: OnnxClassifier,
    opts: ReplayOptions,
    store_path: str | Path | None = None,
    stop: threading.Event | None = None,
    recorder: ReplayRecorder | None = None,
) -> dict[str, Any]:
    """Run the pipeline over ``videos`` until every file ends; returns the summary dict.

    Args:
        videos: video files, one camera each.
        classifier: the loaded model.
        opts: sampling, batching and decision settings.
        store_path: keep events in this store, a SQLite file or a URL (default: a temporary file).
        stop: set to end early.
        recorder: records what the replay reports (a subclass may keep more, e.g. every
            frame's probabilities); default a plain ``ReplayRecorder``.
    """
    stop = stop or threading.Event()
    with tempfile.TemporaryDirectory(prefix="bearwatch-replay-") as tmp:
        local = Path(tmp) / "replay.db"
        url = StoreUrl.for_file(local) if store_path is None else StoreUrl.parse(store_path)
        cfg = replay_config(videos, classifier.path, url.path or local, opts)
        metrics = Metrics()
        store = ReviewStore(url, local_path=local, metrics=metrics)
        try:
            pipeline = Pipeline(cfg, classifier, store, metrics)
            recorder = pipeline.alerts.record_to(recorder or ReplayRecorder())
            t0 = time.monotonic()
            pipeline.start()
            while not pipeline.finished() and not stop.wait(0.02):
                pass
            pipeline.stop(10.0)
            elapsed = time.monotonic() - t0
        finally:
            store.close()
        summary = summarize(pipeline, metrics, elapsed, recorder)
        by_camera = dict(zip(camera_ids(videos), videos, strict=True))
        summary["unreadable"] = [
            str(by_camera[cid]) for cid, w in pipeline.captures.items() if w.frames_read == 0
        ]
        return summary


def summarize(
    pipeline: Pipeline, metrics: Metrics, elapsed_s: float, recorder: ReplayRecorder
) -> dict[str, Any]:
    """The replay's JSON: frames, events, latency percentiles, drops by reason, fps."""
    processed = int(metrics.counter_totals("bearwatch_frames_processed").get("", 0))
    offered = int(metrics.counter_totals("bearwatch_frames_offered").get("", 0))
    dropped = {
        k: int(v)
        for k, v in metrics.counter_totals("bearwatch_frames_dropped", by="reason").items()
    }
    lat = np.asarray(recorder.latencies_s, dtype=np.float64) * 1000.0
    pct = {
        f"p{q}": round(float(np.percentile(lat, q)), 2) if lat.size else None for q in (50, 95, 99)
    }
    events = []
    for ev in sorted(recorder.events.values(), key=lambda e: (e.camera, e.start)):
        base = recorder.first_captured_at.get(ev.camera, ev.start)
        events.append(
            {
                "id": ev.id,
                "camera": ev.camera,
                "label": ev.label,
                "start": round(ev.start - base, 3),
                "end": None if ev.end is None else round(ev.end - base, 3),
                "peak_score": round(ev.peak_score, 4),
                "frames": ev.frames,
                "unfamiliar": ev.unfamiliar,
                "ood_score": ev.ood_score,
                "box": None if ev.box is None else [round(v, 4) for v in ev.box],
                "zone": ev.zone,
                "suppressed_by": ev.suppressed_by,
            }
        )
    return {
        "frames": processed,
        "offered": offered,
        "events": events,
        "latency_ms": pct,
        "dropped": dropped,
        "fps": round(processed / elapsed_s, 2) if elapsed_s > 0 else None,
        "elapsed_s": round(elapsed_s, 3),
        "model_version": pipeline.classifier.meta.model_version,
        "cameras": {cid: w.status for cid, w in pipeline.captures.items()},
        "drift": {cid: pipeline.health()["cameras"][cid]["drift"] for cid in pipeline.captures},
        "regions_per_frame": _regions_per_frame(metrics),
        "audit_samples": {
            k: int(v)
            for k, v in metrics.counter_totals("bearwatch_audit_samples", by="reason").items()
        },
    }


def _regions_per_frame(metrics: Metrics) -> float | None:
    """Mean regions the model looked at per classified frame (the cameras' view plans)."""
    total = count = 0.0
    for family in metrics.registry.collect():
        if family.name == "bearwatch_regions_per_frame":
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    total += sample.value
                elif sample.name.endswith("_count"):
                    count += sample.value
    return round(total / count, 2) if count else None
