"""``bearwatch replay`` end to end on generated video files and the real exported model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import write_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "bear": write_clip(d / "bear.avi", ["empty"] * 30 + ["bear"] * 40 + ["empty"] * 30),
        "empty": write_clip(d / "empty.avi", ["empty"] * 60),
        "person": write_clip(d / "person.avi", ["empty"] * 20 + ["person"] * 40 + ["empty"] * 20),
    }


def replay(model: Path, *videos: Path, extra: tuple[str, ...] = ()) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", *map(str, videos), "--model", str(model), "--json",
         "--fps", "5", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_replay_finds_the_bear_and_nothing_in_the_empty_scene(
    color_model: Path, clips: dict[str, Path]
) -> None:
    out = replay(color_model, clips["bear"], clips["empty"], clips["person"])
    assert set(out) >= {"frames", "events", "latency_ms", "dropped", "fps"}
    # 10 s bear clip + 6 s empty + 8 s person at 5 fps sampled: every sampled frame decided.
    assert out["frames"] == pytest.approx(50 + 30 + 40, abs=3)
    assert out["dropped"] == {}
    events = out["events"]
    assert [(e["camera"], e["label"]) for e in events] == [("bear", "bear")]
    (bear,) = events
    assert 2.5 <= bear["start"] <= 3.5  # the bear enters at 3.0 s
    assert bear["end"] is not None and 6.5 <= bear["end"] <= 7.5  # and leaves at 7.0 s
    assert bear["peak_score"] > 0.8
    assert set(out["latency_ms"]) == {"p50", "p95", "p99"}
    assert out["fps"] > 0


def test_replay_alert_labels_flag(color_model: Path, clips: dict[str, Path]) -> None:
    out = replay(color_model, clips["person"], extra=("--alert-labels", "person", "bear"))
    assert [e["label"] for e in out["events"]] == ["person"]


def test_replay_is_deterministic(color_model: Path, clips: dict[str, Path]) -> None:
    a = replay(color_model, clips["bear"])
    b = replay(color_model, clips["bear"])

    def strip(r: dict) -> list:  # type: ignore[type-arg]
        return [
            (e["camera"], e["label"], e["start"], e["end"], e["peak_score"]) for e in r["events"]
        ]

    assert strip(a) == strip(b) and a["frames"] == b["frames"]


def test_replay_keeps_events_in_a_store(
    color_model: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    from monitor.store import ReviewStore

    db = tmp_path / "r.db"
    out = replay(color_model, clips["bear"], extra=("--store", str(db)))
    store = ReviewStore(db)
    try:
        rows = store.list_events()
        assert len(rows) == len(out["events"]) == 1
        assert rows[0]["label"] == "bear" and rows[0]["model_version"] == "color-test-1"
        snap = store.get_snapshot(rows[0]["id"])
        assert snap is not None and snap[:2] == b"\xff\xd8"  # a JPEG
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope.avi",), "no such video file"),
        (("{bear}", "--alert-labels", "moose"), "not in the model's labels"),
    ],
)
def test_replay_bad_input(
    color_model: Path, clips: dict[str, Path], args: tuple[str, ...], message: str
) -> None:
    argv = [a.format(bear=clips["bear"]) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", *argv, "--model", str(color_model)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr


def test_replay_refuses_a_corrupt_model(tmp_path: Path, clips: dict[str, Path]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", str(clips["bear"]), "--model", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "not a loadable ONNX model" in proc.stderr
    assert "Traceback" not in proc.stderr
