"""``bearwatch study night-loop`` at tiny sizes: every step runs, an interruption resumes, nothing half-done looks finished."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.main import main
from training.study.measure import recommend
from training.study.night_loop import PRESETS, STEPS_DIR, StudyError, run_study
from training.study.reviewers import verdict_for

pytestmark = pytest.mark.slow

TINY = PRESETS["tiny"]


def test_tiny_study_interrupted_then_resumed_writes_a_complete_study(tmp_path: Path) -> None:
    out = tmp_path / "study"
    stage = run_study(out, TINY, stop_after="review")
    assert stage.name == "study.incomplete" and not out.exists()
    assert not (stage / "study.json").exists()
    done = sorted(p.stem for p in (stage / STEPS_DIR).glob("*.done"))
    assert done == ["day-data", "footage", "model-before", "review", "shadow-before"]
    # What an interruption inside the next step leaves behind: a half-written export.
    (stage / "export").mkdir()
    (stage / "export" / "half-written.jpg").write_bytes(b"\xff\xd8")
    assert run_study(out, TINY) == out.resolve()
    assert not stage.exists() and not (out / "export" / "half-written.jpg").exists()
    study = json.loads((out / "study.json").read_text())
    for side in ("before", "after"):
        assert set(study[side]) >= {"night_recall", "day_recall", "night_precision",
                                    "day_precision"}  # fmt: skip
    assert study["recommendation"]["code"] in (
        "promote-candidate-for-night", "candidate-better-at-night-only", "keep-production"
    )  # fmt: skip
    assert study["budget"] == {"verdicts": TINY.verdicts, "audit_labels": TINY.audit_labels}
    assert study["reviews"]["audit_labels_spent"] <= TINY.audit_labels
    assert study["seeds"] == {"study": TINY.seed}
    assert sum(study["export"]["per_class"].values()) >= 1
    assert json.loads((out / "model-after" / "metrics.json").read_text())["init"]["run"].endswith(
        "model-before"
    )
    page = (out / "study.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    with pytest.raises(StudyError, match="already exists"):
        run_study(out, TINY)


def test_a_staging_folder_with_other_settings_is_started_clean(tmp_path: Path) -> None:
    out = tmp_path / "study"
    stage = run_study(out, TINY, stop_after="day-data")
    (stage / "day-data" / "stray.txt").write_text("from another seed")
    run_study(out, replace(TINY, seed=TINY.seed + 1), stop_after="day-data")
    assert not (stage / "day-data" / "stray.txt").exists()
    assert json.loads((stage / "params.json").read_text())["seed"] == TINY.seed + 1


def test_cli_refuses_an_existing_study_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "done").mkdir()
    assert main(["study", "night-loop", "--out", str(tmp_path / "done"), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bearwatch study: {(tmp_path / 'done').resolve()} already exists; "
                   "choose another --out or pass --overwrite"]  # fmt: skip


@pytest.mark.parametrize(
    ("seen", "night", "status", "reason"),
    [
        ({"bear", "empty"}, False, "confirmed", "clear"),
        ({"bear"}, True, "confirmed", "night-ir"),
        ({"person", "empty"}, False, "rejected", "wrong-class"),
        ({"empty"}, False, "rejected", "not-an-animal"),
        ({"empty"}, True, "rejected", "night-ir"),
    ],
)
def test_reviewer_verdicts_follow_the_truth(
    seen: set[str], night: bool, status: str, reason: str
) -> None:
    assert verdict_for(seen, night) == {"status": status, "reason_code": reason}


def _scores(night_recall: tuple[int, int], day_acc: tuple[int, int]) -> dict[str, Any]:
    from monitor.report.stats import proportion

    def est(k: int, n: int) -> dict[str, float]:
        e = proportion(k, n)
        assert e is not None
        return {"value": e.value, "low": e.low, "high": e.high}

    return {
        "night": {"recall": est(*night_recall), "precision": est(9, 10), "accuracy": est(5, 10)},
        "day": {"recall": est(9, 10), "precision": est(90, 100), "accuracy": est(*day_acc)},
    }


@pytest.mark.parametrize(
    ("after", "code"),
    [
        (_scores((80, 100), (900, 1000)), "promote-candidate-for-night"),
        (_scores((80, 100), (850, 1000)), "candidate-better-at-night-only"),
        (_scores((25, 100), (900, 1000)), "keep-production"),
    ],
)
def test_recommendation_needs_night_beyond_the_intervals_and_day_within_a_point(
    after: dict[str, Any], code: str
) -> None:
    before = _scores((20, 100), (905, 1000))
    assert recommend(before, after)["code"] == code
