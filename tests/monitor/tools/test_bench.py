"""``bearwatch bench`` runs end to end and reports every number it promises (speed targets are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_json_has_every_key_and_accounts_for_every_frame(color_model: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "bench", "--model", str(color_model), "--json", "--seconds", "1",
         "--frames", "40", "--gate-minutes", "0.5", "--fastai-images", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in (
        "raw_ort_img_s",
        "pipeline_img_s",
        "ratio",
        "fastai_img_s",
        "overload",
        "motion_gate",
    ):
        assert key in out
    assert out["raw_ort_img_s"] > 0 and out["pipeline_img_s"] > 0
    assert out["ratio"] == round(out["pipeline_img_s"] / out["raw_ort_img_s"], 3)
    assert (
        out["pipeline_frames"] == 2 * 40
    )  # two cameras replaying the 40-frame clip, every frame sampled
    over = out["overload"]
    assert {"offered", "processed", "dropped", "p99_ms", "budget_ms"} <= set(over)
    assert over["offered"] == over["processed"] + sum(over["dropped"].values())
    gate = out["motion_gate"]
    assert gate["without_gate"]["classified"] == 60 == gate["with_gate"]["offered"]
    assert (
        gate["with_gate"]["classified"] < 10
    )  # 30 s static: the first frame and re-checks every 10 s


def test_bench_view_plan_section_reports_every_plan(color_model: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "bench", "--model", str(color_model), "--json",
         "--view-only", "--view-frames", "12"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    views = json.loads(proc.stdout)["view_plans"]
    for plan in ("full", "tiles", "motion", "auto"):
        row = views[plan]
        assert row["frames"] == 12 and row["cpu_ms_per_frame"] > 0
        assert {"regions_per_frame", "inference_img_s", "cpu_vs_full"} <= set(row)
    assert views["full"]["regions_per_frame"] == 1
    assert views["tiles"]["regions_per_frame"] > 2  # a 64 px model: 256 px tiles on 1080p
    assert 1 <= views["motion"]["regions_per_frame"] <= 1 + 4  # one walker, capped
    assert 1 < views["auto"]["regions_per_frame"] <= 1 + 4  # the whole frame + motion regions
