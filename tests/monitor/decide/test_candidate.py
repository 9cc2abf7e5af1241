"""The shadow candidate beside production: counts, disagreements with snapshots, never an event of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.decide.candidate import CandidateTracker
from monitor.errors import ModelError
from monitor.store import ReviewStore
from tests.conftest import COLOR_INPUT_HW, COLOR_LABELS, _build_color_net
from tests.media import write_clip


@pytest.fixture(scope="module")
def swapped_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A candidate that calls red blobs 'person' and blue ones 'bear' (a bad retrain)."""
    torch = pytest.importorskip("torch")
    from monitor.model.metadata import ModelMetadata
    from training.export import export_onnx

    net = _build_color_net()
    with torch.no_grad():
        w = net.head.weight.clone()
        net.head.weight.copy_(w[[2, 1, 0]])
    meta = ModelMetadata(labels=COLOR_LABELS, input_hw=COLOR_INPUT_HW, model_version="swapped-2")
    return export_onnx(net, meta, tmp_path_factory.mktemp("cand") / "cand.onnx")


def test_tracker_counts_agreement_and_keeps_disagreements() -> None:
    labels = ["bear", "empty", "person"]
    tracker = CandidateTracker(
        labels, ["person", "bear", "empty"], {"cam": (["bear"], 0.7)}, ("p1", "c1"), 60.0, 10
    )
    bear, empty = np.array([0.9, 0.05, 0.05]), np.array([0.05, 0.9, 0.05])
    cand_bear, cand_empty = (
        np.array([0.05, 0.9, 0.05]),
        np.array([0.05, 0.05, 0.9]),
    )  # candidate's own order
    snaps: list[int] = []
    for i in range(10):
        tracker.observe("cam", float(i), bear, cand_bear, lambda: snaps.append(1) or b"\xff\xd8")
    for i in range(10, 15):
        tracker.observe("cam", float(i), bear, cand_empty, lambda: snaps.append(1) or b"\xff\xd8")
    tracker.observe("cam", 15.0, empty, cand_empty, lambda: b"\xff\xd8")
    assert tracker.flush(30.0) == []  # period not over
    ((counts, dis),) = tracker.flush(61.0)
    assert (
        counts.frames,
        counts.agreements,
        counts.production_alerts,
        counts.candidate_alerts,
    ) == (16, 11, 15, 10)
    assert len(dis) == 5 == len(snaps)
    assert {(d.production_label, d.candidate_label) for d in dis} == {("bear", "empty")}


def test_candidate_missing_an_alert_label_is_refused() -> None:
    with pytest.raises(ModelError, match="no label"):
        CandidateTracker(
            ["bear", "empty"], ["cat", "empty"], {"cam": (["bear"], 0.7)}, ("a", "b"), 60.0, 1
        )


def test_replay_with_a_candidate_stores_the_comparison(
    color_model: Path, swapped_model: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "trail.avi", ["empty"] * 20 + ["bear"] * 30 + ["empty"] * 20)
    db = tmp_path / "c.db"
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", str(clip), "--model", str(color_model), "--candidate",
         str(swapped_model), "--store", str(db), "--json", "--fps", "5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [e["label"] for e in out["events"]] == ["bear"]  # only production raises events
    store = ReviewStore(db)
    try:
        (summary,) = store.candidate_summary()
        assert summary["frames"] == out["frames"] == 35
        assert summary["candidate_version"] == "swapped-2"
        assert summary["production_alerts"] >= 14 and summary["candidate_alerts"] == 0
        assert summary["agreements"] == summary["frames"] - summary["production_alerts"]
        dis = store.candidate_disagreements()
        assert dis and all(
            d["production_label"] == "bear" and d["candidate_label"] == "person" for d in dis
        )
        assert store.get_disagreement_snapshot(dis[0]["id"])[:2] == b"\xff\xd8"  # type: ignore[index]
        (stats,) = store.camera_stats()
        assert (
            stats["camera"] == "trail"
            and stats["frames"] == 35
            and stats["latency_p99_ms"] is not None
        )
        assert sum(stats["audit"]["population"].values()) > 0
        (alert,) = store.list_events(kind="alert")
        assert alert["mode"] == "shadow"
    finally:
        store.close()
