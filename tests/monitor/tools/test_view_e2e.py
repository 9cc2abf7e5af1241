"""View plans end to end: a 1080p replay finds an edge bear and a distant bear, with the right box.

The centre-crop preprocessing this replaces never looked at the left and right
fifths of a 16:9 frame, and shrank a bear a tenth of the frame high to a few
pixels; these clips are the issue's "tried as a new user would" cases, on the
test colour model (it scores the share of red in what it sees).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media import wide_clip

EDGE = (0.01, 0.45, 0.11, 0.55)  # wholly inside the left fifth, a tenth of the frame high
DISTANT = (0.78, 0.25, 0.86, 0.35)  # far away near the top right, a tenth high


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("wide")
    return {
        "edge": wide_clip(d / "edge.avi", EDGE),
        "distant": wide_clip(d / "distant.avi", DISTANT),
        "empty": wide_clip(d / "empty.avi", None),
    }


def replay(model: Path, *videos: Path, view: str | None = None, store: Path | None = None) -> dict:  # type: ignore[type-arg]
    extra = ([] if view is None else ["--view", view]) + (
        [] if store is None else ["--store", str(store)]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", *map(str, videos), "--model", str(model),
         "--json", "--fps", "5", *extra],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def contains(box: list[float], blob: tuple[float, float, float, float]) -> bool:
    # the blob walks 8 px a frame: its box at the peak contains where it stood at some frame
    bx0, by0, bx1, by1 = blob
    return box[0] <= bx0 + 0.09 and box[1] <= by0 and bx1 <= box[2] and by1 <= box[3]


@pytest.mark.parametrize("view", [None, "tiles"])
def test_an_edge_bear_and_a_distant_bear_raise_events_with_their_box(
    color_model: Path, clips: dict[str, Path], view: str | None
) -> None:
    out = replay(color_model, clips["edge"], clips["distant"], clips["empty"], view=view)
    events = {e["camera"]: e for e in out["events"]}
    assert sorted(events) == ["distant", "edge"], out["events"]  # and none on the empty scene
    for cam, blob in (("edge", EDGE), ("distant", DISTANT)):
        ev = events[cam]
        assert ev["label"] == "bear" and ev["zone"] is None
        box = ev["box"]
        assert box is not None and contains(box, blob), (cam, box)
        assert (box[2] - box[0]) < 0.5  # a tile or a motion region, not the whole frame
    assert out["offered"] == out["frames"] + sum(out["dropped"].values())
    assert out["regions_per_frame"] > (1.0 if view is None else 2.0)


def test_the_whole_frame_alone_misses_what_tiles_find(
    color_model: Path, clips: dict[str, Path]
) -> None:
    """Why auto adds tiles on a 1080p camera: letterboxed whole, a bear a tenth high is a few pixels."""
    out = replay(color_model, clips["edge"], clips["distant"], view="full")
    assert out["events"] == []


def test_motion_regions_find_the_moving_bear(color_model: Path, clips: dict[str, Path]) -> None:
    out = replay(color_model, clips["edge"], clips["empty"], view="motion")
    (ev,) = out["events"]
    assert ev["camera"] == "edge" and contains(ev["box"], EDGE)
    assert out["offered"] == out["frames"] + sum(out["dropped"].values())


def test_the_event_snapshot_shows_the_box_and_the_region_beside_the_frame(
    color_model: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    import cv2
    import numpy as np

    from monitor.store import ReviewStore

    db = tmp_path / "events.db"
    (ev,) = replay(color_model, clips["edge"], store=db)["events"]
    store = ReviewStore(db)
    try:
        row = store.get_event(ev["id"])
        jpeg = store.get_snapshot(ev["id"])
    finally:
        store.close()
    assert row is not None and row["box"] == ev["box"] and row["zone"] is None
    assert jpeg is not None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    # the 640 x 360 snapshot, a 4 px gap, and the peak region at the snapshot's height
    assert image.shape[0] == 360 and image.shape[1] == 640 + 4 + 360
    x0 = int(ev["box"][0] * 640)
    y0 = int(ev["box"][1] * 360)
    amber = image[y0 : y0 + 3, x0 + 5 : x0 + 40].reshape(-1, 3).mean(axis=0)
    assert amber[2] > 150 and amber[0] < 100  # the box's amber line (BGR)
