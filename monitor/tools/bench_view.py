"""``bearwatch bench``'s view-plan section: what each plan costs on one 1080p clip with one walker.

Each plan runs the same loop a camera runs — decode, the plan's regions and
their inputs (``ViewPlanner.prepare``), the model on batches of whole frames'
regions — over every frame of a generated 1080p clip in which one textured
walker crosses a static, noisy scene. Reported per plan: regions per frame,
inference images/s (regions ÷ time in ONNX Runtime), process CPU per frame
(user + system, all threads: decode + plan + preprocess + inference), and CPU
relative to ``full``. Targets: ``motion`` ≤ 2× ``full``; ``tiles`` ≤ tile count × ``full``.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monitor.capture.view import ViewPlanner
from monitor.config.camera import ViewConfig
from monitor.model.onnx import OnnxClassifier

BENCH_PLANS = ("full", "tiles", "motion", "auto")


def make_walker_clip(
    path: Path, frames: int, fps: float = 10.0, size: tuple[int, int] = (1920, 1080)
) -> Path:
    """A static textured 1080p scene with sensor noise and one walker crossing it (MJPG/AVI)."""
    w, h = size
    rng = np.random.default_rng(4)
    base = cv2.GaussianBlur(
        rng.integers(60, 190, size=(h // 4, w // 4, 3), dtype=np.uint8), (0, 0), 2
    )
    base = cv2.resize(base, size, interpolation=cv2.INTER_LINEAR).astype(np.int16)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for i in range(frames):
            frame = np.clip(base + rng.integers(-3, 4, size=base.shape, dtype=np.int16), 0, 255)
            frame = frame.astype(np.uint8)
            x = int(100 + (w - 300) * i / max(1, frames - 1))
            cv2.ellipse(frame, (x, int(0.6 * h)), (45, 80), 0, 0, 360, (40, 55, 80), -1)
            cv2.ellipse(frame, (x, int(0.6 * h) - 95), (22, 22), 0, 0, 360, (60, 80, 120), -1)
            writer.write(frame)
    finally:
        writer.release()
    return path


def _cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def plan_cost(clip: Path, clf: OnnxClassifier, plan: str, batch: int, fps: float) -> dict[str, Any]:
    """Run one plan over every frame of ``clip``; returns its cost figures."""
    planner = ViewPlanner("bench", ViewConfig(plan=plan), clf.input_hw, batch, fps)  # type: ignore[arg-type]
    cap = cv2.VideoCapture(str(clip))
    frames, regions, infer_s = 0, 0, 0.0
    pending: list[np.ndarray] = []
    cpu0, wall0 = _cpu_s(), time.perf_counter()

    def run(chunk: list[np.ndarray]) -> float:
        x = np.concatenate(chunk)
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            clf.predict(x[i : i + batch])
        return time.perf_counter() - t0

    try:
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            view = planner.prepare(bgr, frames / fps)
            frames += 1
            if view is None:
                continue
            regions += len(view.inputs)
            if pending and sum(len(p) for p in pending) + len(view.inputs) > batch:
                infer_s += run(pending)
                pending = []
            pending.append(view.inputs)
        if pending:
            infer_s += run(pending)
    finally:
        cap.release()
    cpu, wall = _cpu_s() - cpu0, time.perf_counter() - wall0
    return {
        "frames": frames,
        "regions_per_frame": round(regions / max(1, frames), 2),
        "inference_img_s": round(regions / infer_s, 1) if infer_s > 0 else None,
        "cpu_ms_per_frame": round(1000 * cpu / max(1, frames), 2),
        "wall_ms_per_frame": round(1000 * wall / max(1, frames), 2),
        "plan": planner.describe(),
    }


def view_plan_bench(
    clf: OnnxClassifier, batch: int, frames: int = 60, fps: float = 10.0
) -> dict[str, Any]:
    """The view-plan section: every plan on the same 1080p walker clip."""
    with tempfile.TemporaryDirectory(prefix="bearwatch-bench-view-") as tmp:
        clip = make_walker_clip(Path(tmp) / "walker1080.avi", frames, fps)
        plan_cost(clip, clf, "full", batch, fps)  # warm the decoder and caches; not reported
        out: dict[str, Any] = {p: plan_cost(clip, clf, p, batch, fps) for p in BENCH_PLANS}
    full = out["full"]["cpu_ms_per_frame"] or 1e-9
    for p in BENCH_PLANS:
        out[p]["cpu_vs_full"] = round(out[p]["cpu_ms_per_frame"] / full, 2)
    out["clip"] = {"size": [1920, 1080], "frames": frames, "walkers": 1}
    return out


def format_view_plans(section: dict[str, Any]) -> str:
    """The section as a table."""
    lines = [
        f"{'plan':<8} {'regions/frame':>13} {'inference img/s':>16} {'CPU ms/frame':>13} {'× full':>7}  regions"
    ]
    for p in BENCH_PLANS:
        r = section[p]
        lines.append(
            f"{p:<8} {r['regions_per_frame']:>13} {r['inference_img_s']!s:>16} "
            f"{r['cpu_ms_per_frame']:>13} {r['cpu_vs_full']:>7}  {r['plan']}"
        )
    return "\n".join(lines)
