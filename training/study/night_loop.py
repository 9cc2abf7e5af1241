"""``bearwatch study night-loop``: a day-only model, night misses found by reviewers, fine-tuned, compared.

The loop the deployment story promises, run end to end on generated data
with known truth, through the real pipeline, store, web API, export and
training:

1. ``day-data`` — seeded day scenes from synthetic cameras (no night at all);
2. ``model-before`` — ``bearwatch train`` on them: the deployed model;
3. ``footage`` — clips of new day and IR-night cameras: a review phase and
   fresh clips of the same cameras for the comparison;
4. ``shadow-before`` — the deployed model in shadow over the review clips
   (``run_replay``: the daemon's pipeline into a SQLite store);
5. ``review`` — simulated reviewers spend the budget through the web API;
6. ``export`` — ``export-dataset`` of the reviewed frames;
7. ``merged`` — the export (each reviewed frame ``review_repeat`` times)
   plus the deployed model's own training data;
8. ``model-after`` — ``train --init model-before`` on the merged folder;
9. ``shadow-after`` — the fresh clips, production = before, shadow
   candidate = after; both scored on the same frames;
10. ``report`` — the comparison with intervals, the recommendation, the page.

Everything happens in ``OUT.incomplete/``; each step ends with a marker in
``.steps/``. A rerun with the same settings resumes at the first unmarked
step (its partial output removed first); with other settings it starts
clean. ``OUT`` appears, renamed from the staging folder, only when every
step has finished: nothing half-written looks like a finished study.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.errors import TrainingError

logger = logging.getLogger(__name__)

STAGING_SUFFIX = ".incomplete"
STEPS_DIR = ".steps"
PARAMS_JSON = "params.json"
STUDY_JSON = "study.json"
STUDY_HTML = "study.html"
STUDY_VERSION = 1


@dataclass(frozen=True, slots=True)
class StudyParams:
    """Everything that decides a study's numbers (a rerun resumes only when they are equal)."""

    seed: int = 7
    verdicts: int = 50
    audit_labels: int = 100
    train_cameras: int = 8
    per_class: int = 150
    image_size: int = 96
    model_size: int = 64
    arch: str = "resnet18"
    epochs_before: int = 10
    epochs_after: int = 8
    # Each reviewed frame appears this many times in the fine-tuning data: a
    # hundred frames of the cameras that failed would otherwise drown in the
    # original data and the model would keep its old view of those cameras.
    review_repeat: int = 3
    batch_size: int = 32
    day_cameras: int = 3
    night_cameras: int = 3
    walks: tuple[str, ...] = ("bear", "person", "bear", "empty", "bear", "person")
    frames_per_walk: int = 40
    threshold: float = 0.7
    audit_random_rate: float = 0.1
    audit_max_per_hour: int = 60
    version: int = STUDY_VERSION


PRESETS = {
    "full": StudyParams(),
    # The suite's variant: every step, tiny sizes; its numbers mean nothing.
    "tiny": StudyParams(
        verdicts=4,
        audit_labels=8,
        train_cameras=3,
        per_class=6,
        image_size=48,
        model_size=32,
        epochs_before=1,
        epochs_after=1,
        batch_size=8,
        day_cameras=1,
        night_cameras=1,
        walks=("bear", "empty"),
        frames_per_walk=15,
    ),  # fmt: skip
}


class StudyError(TrainingError):
    """The study cannot start or continue as asked."""


@dataclass(slots=True)
class Study:
    """One study's staging folder and settings; the steps read and write under ``stage``."""

    out: Path
    params: StudyParams
    stage: Path = field(init=False)

    def __post_init__(self) -> None:
        self.out = self.out.resolve()
        self.stage = self.out.with_name(self.out.name + STAGING_SUFFIX)

    def path(self, *parts: str) -> Path:
        return self.stage.joinpath(*parts)

    def done(self, step: str) -> bool:
        return self.path(STEPS_DIR, f"{step}.done").is_file()

    def mark(self, step: str, seconds: float) -> None:
        self.path(STEPS_DIR, f"{step}.done").write_text(
            json.dumps({"seconds": round(seconds, 2)}) + "\n"
        )

    def seconds(self) -> dict[str, float]:
        return {
            p.stem: json.loads(p.read_text())["seconds"]
            for p in sorted(self.path(STEPS_DIR).glob("*.done"))
        }


def run_study(
    out: Path, params: StudyParams, overwrite: bool = False, stop_after: str | None = None
) -> Path:
    """Run (or resume) the study into ``out``; returns ``out`` once every step has finished.

    Args:
        stop_after: end after this step, leaving the staging folder to resume
            (what an interruption leaves; the tests use it).

    Raises:
        StudyError: when ``out`` exists without ``overwrite``, or the staging name is taken.
        TrainingError: from a training step, with its one-line reason.
    """
    from training.study.steps import STEPS

    study = Study(out, params)
    if study.out.exists() and not overwrite:
        raise StudyError(f"{study.out} already exists; choose another --out or pass --overwrite")
    _open_stage(study)
    for name, step in STEPS:
        if study.done(name):
            logger.info("study: %s already done, kept", name)
            continue
        _run_step(study, name, step)
        if name == stop_after:
            return study.stage
    if study.out.exists():
        shutil.rmtree(study.out)
    study.stage.rename(study.out)
    return study.out


def _open_stage(study: Study) -> None:
    """Resume a staging folder made with the same settings; start clean otherwise."""
    wanted = _params_json(study.params)
    params = study.path(PARAMS_JSON)
    if study.stage.exists():
        if not params.is_file():
            raise StudyError(
                f"{study.stage} exists and is not a bearwatch study; move it away or choose another --out"
            )
        if json.loads(params.read_text()) == wanted:
            logger.info("study: resuming %s", study.stage)
            return
        logger.warning("study: %s was made with other settings; starting clean", study.stage)
        shutil.rmtree(study.stage)
    study.path(STEPS_DIR).mkdir(parents=True)
    tmp = study.path(PARAMS_JSON + ".tmp")
    tmp.write_text(json.dumps(wanted, indent=2) + "\n")
    os.replace(tmp, params)


def _params_json(params: StudyParams) -> dict[str, Any]:
    data = asdict(params)
    data["walks"] = list(params.walks)
    return data


def _run_step(study: Study, name: str, step: Callable[[Study], None]) -> None:
    # A step interrupted earlier left part of its output: remove it, never build on it.
    for leftover in (study.path(name), study.path(name + STAGING_SUFFIX)):
        if leftover.exists():
            shutil.rmtree(leftover)
    logger.info("study: %s ...", name)
    t0 = time.monotonic()
    step(study)
    study.mark(name, time.monotonic() - t0)
    logger.info("study: %s done in %.1f s", name, time.monotonic() - t0)


def train_config(study: Study, data: Path, out: Path, **changes: Any) -> TrainConfig:
    """The study's ``bearwatch train`` settings (small and quick; the run folder is a normal run)."""
    p = study.params
    cfg = TrainConfig(data=data, out=out, arch=p.arch, pretrained=False, size=p.model_size,
                      epochs=p.epochs_before, seed=p.seed, batch_size=p.batch_size, top_k=4,
                      clean_k=10, parity_max=64, reference_images=200)  # fmt: skip
    return replace(cfg, **changes)
