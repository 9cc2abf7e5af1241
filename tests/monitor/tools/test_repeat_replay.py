"""Repeat false alarms end to end: a bear carving stops alerting once rejected; a bear walking past still alerts.

The clips (``training.synthetic.repeat``) are one 720p campsite camera with a
wooden bear carving standing right of centre. The bundled demo model calls it
a bear. Day one the carving stands alone and alerts; a ranger rejects it.
Day two a real bear walks through the left third half-way through the clip:
the carving's frames are kept as a suppressed event and never notified, and
the walker raises an alert of its own (its region, and the whole frame with
him in it, no longer look like the rejected picture). Undoing the rejection
brings the carving's alert back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.store import ReviewStore
from training.synthetic.repeat import write_clip

DEMO_MODEL = Path(__file__).resolve().parents[3] / "deploy" / "models" / "demo" / "model.onnx"
SECONDS = 12.0
WALKER_AT = 0.5 * SECONDS


def replay(clip: Path, store: Path) -> list[dict]:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", str(clip), "--model", str(DEMO_MODEL), "--json",
         "--fps", "5", "--threads", "1", "--mode", "active", "--store", str(store)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["events"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same camera ("yard") on two days: the carving alone, then the carving and a walker."""
    root = tmp_path_factory.mktemp("repeat")
    alone = write_clip(
        root / "day1" / "yard.mp4", 11, seconds=SECONDS, size=(1280, 720), walker_from=1.0
    )
    walker = write_clip(root / "day2" / "yard.mp4", 11, seconds=SECONDS, size=(1280, 720))
    return alone, walker


def test_a_rejected_carving_stops_alerting_and_a_walking_bear_still_alerts(
    days: tuple[Path, Path], tmp_path: Path
) -> None:
    alone, walker = days
    db = tmp_path / "store.db"
    day1 = replay(alone, db)
    assert len(day1) == 1 and day1[0]["suppressed_by"] is None, day1
    carving = day1[0]["id"]
    store = ReviewStore(db)
    assert store.set_verdict(carving, "rejected", "ranger", "not-an-animal", note="wooden carving")
    store.close()

    day2 = replay(walker, db)
    suppressed = [e for e in day2 if e["suppressed_by"] == carving]
    alerts = [e for e in day2 if e["suppressed_by"] is None]
    assert suppressed and suppressed[0]["start"] < 1.0, day2  # the carving, from the first frames
    assert alerts and all(e["start"] >= WALKER_AT - 1.0 for e in alerts), day2  # only the walker
    store = ReviewStore(db)
    try:
        assert {r["id"] for r in store.list_events(suppressed=True)} == {
            e["id"] for e in suppressed
        }
        shown = {r["id"] for r in store.list_events(suppressed=False)}
        assert not shown & {e["id"] for e in suppressed}
        # Never notified, though the camera is active; the walker's alert is due.
        due = {
            int(d["id"])
            for d in store.due_notifications("mqtt", since=0.0, max_attempts=5, retry_before=1e12)
        }
        assert not due & {e["id"] for e in suppressed}
        assert {e["id"] for e in alerts} <= due
        # The ranger undoes the rejection: the carving alerts again from the start.
        assert store.set_verdict(carving, "pending", "ranger", "undo", restores={})
    finally:
        store.close()
    day3 = replay(walker, db)
    assert not [e for e in day3 if e["suppressed_by"] is not None], day3
    assert any(e["start"] < 1.0 for e in day3), day3
