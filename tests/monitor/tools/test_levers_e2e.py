"""``bearwatch levers`` against reality: its prediction for another setting is what a replay under it does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monitor.config import DecisionConfig
from monitor.decide.levers import Setting, evaluate
from monitor.store import ReviewStore
from monitor.tools.levers import load_inputs
from tests.media import write_clip

# Bear visits of different lengths (10 fps; replayed at 5 fps): a strict
# k-of-n setting catches the long ones only, a loose one every one.
VISITS = [3, 14, 5, 2, 20, 7]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kinds: list[str] = ["empty"] * 20
    for n in VISITS:
        kinds += ["bear"] * n + ["empty"] * 40
    return write_clip(tmp_path_factory.mktemp("levers") / "visits.avi", kinds)


def replay(model: Path, clip: Path, store: Path | None, *flags: str) -> dict:  # type: ignore[type-arg]
    args = [sys.executable, "-m", "monitor", "replay", str(clip), "--model", str(model), "--json",
            "--fps", "5", "--cooldown-s", "0", "--end-after-s", "1", *flags]  # fmt: skip
    if store is not None:
        args += ["--store", str(store)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


LOOSE = ("--threshold", "0.5", "--min-hits", "1", "--window", "1")


def test_the_prediction_for_another_setting_matches_a_replay_under_it(
    color_model: Path, clip: Path, tmp_path: Path
) -> None:
    db = tmp_path / "strict.db"
    strict = replay(color_model, clip, db)  # default: 3 of 5 at 0.7
    loose = replay(color_model, clip, None, *LOOSE)
    assert len(loose["events"]) > len(strict["events"])  # the settings really differ

    store = ReviewStore(db)
    try:
        inputs = load_inputs(store, "visits", "bear")
    finally:
        store.close()
    assert len(inputs.at) == strict["frames"]  # every classified frame is in the log
    base = DecisionConfig(cooldown_s=0.0, end_after_s=1.0)
    for flags, result in (((), strict), (LOOSE, loose)):
        cfg = base.model_copy(
            update={"threshold": 0.5, "min_hits": 1, "window": 1} if flags else {}
        )
        predicted = evaluate(inputs, Setting.of(cfg))
        assert predicted.alerts == len(result["events"])


def test_levers_prints_current_and_recommended_and_changes_nothing(
    color_model: Path, clip: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    replay(color_model, clip, db)
    store = ReviewStore(db)
    try:
        for ev in store.list_events(kind="alert"):
            store.set_verdict(int(ev["id"]), "confirmed", "ann", None, None, None)
        before = store.count_events()
    finally:
        store.close()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": {"path": str(color_model)},
                "store": {"path": str(db)},
                "cameras": [
                    {
                        "id": "visits",
                        "source": str(clip),
                        "decision": {"cooldown_s": 0, "end_after_s": 1},
                    }
                ],
            }
        )
    )
    run = [sys.executable, "-m", "monitor", "levers", "--store", str(db), "--camera", "visits",
           "--config", str(cfg)]  # fmt: skip
    proc = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"current", "recommended", "pareto"} <= set(out)
    assert out["current"]["settings"]["min_hits"] == 3
    assert out["current"]["alerts"] == before
    table = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "recommended" in table.stdout and "false/day" in table.stdout

    frag = tmp_path / "levers.yaml"
    applied = subprocess.run(
        [*run, "--apply", str(frag)], capture_output=True, text=True, timeout=120
    )
    assert applied.returncode == 0, applied.stderr
    assert "cameras:" in frag.read_text() and "threshold:" in frag.read_text()
    again = subprocess.run(
        [*run, "--apply", str(frag)], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2 and "--force" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--camera", "nosuch"), "has no score log"),
        (("--camera", "visits", "--label", "moose"), "no label 'moose'"),
        (
            ("--camera", "visits", "--since", "2001-01-01", "--until", "2001-01-02"),
            "has no score log",
        ),
    ],
)
def test_bad_levers_input_is_one_clear_line(
    color_model: Path, clip: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    db = tmp_path / "s.db"
    replay(color_model, clip, db)
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "levers", "--store", str(db), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
