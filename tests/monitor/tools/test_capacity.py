"""``bearwatch bench --capacity`` on real H.264: every number it promises (the numbers themselves are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monitor.tools.capacity import format_capacity, probe, run_capacity
from tests.media import write_h264


def test_probe_reads_the_keyframe_interval_without_decoding(tmp_path: Path) -> None:
    info = probe(write_h264(tmp_path / "cam.mp4", 40, fps=10, gop=20))
    assert (info.width, info.height, info.fps) == (320, 240, 10.0)
    assert info.keyframe_interval_s == 2.0 and info.duration_s == 4.0


def test_capacity_reports_cost_against_the_bare_decode_and_camera_steps(
    color_model: Path, tmp_path: Path
) -> None:
    clip = write_h264(tmp_path / "cam.mp4", 40, fps=10, gop=10)
    r = run_capacity(clip, color_model, fps=2.0, decode="keyframes", step_s=3.0, providers="cpu",
                     max_steps=1, start=2)  # fmt: skip
    assert r["frames"] == 4, "keyframe mode at 2 fps: one frame per keyframe"
    assert r["keyframe_interval_s"] == 1.0 and r["decode"] == "keyframes"
    assert r["pipeline_cpu_s_per_min"] >= 0 and r["decode_only_cpu_s_per_min"] > 0
    assert r["decode_keyframes_cpu_s_per_min"] > 0
    (step,) = r["steps"]
    assert {"cameras", "decided", "stale", "p99_ms", "behind_s", "ok"} <= set(step)
    assert step["cameras"] == 2 and step["decided"] > 0
    assert r["cameras_sustained"] in (0, 2)
    table = format_capacity(r)
    assert "bare decode, every frame" in table and "sustained:" in table


def test_bench_offers_capacity_and_providers() -> None:
    proc = subprocess.run([sys.executable, "-m", "monitor", "bench", "--help"], capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    assert "--capacity VIDEO" in proc.stdout and "--providers" in proc.stdout
    assert "--decode" in proc.stdout
