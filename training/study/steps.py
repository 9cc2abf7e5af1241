"""The night-loop study's steps, in order; each reads earlier steps' folders and writes its own."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.config import AuditConfig, DecisionConfig
from monitor.config.camera import ViewConfig
from monitor.model.onnx import OnnxClassifier
from monitor.report.dataset_export import MANIFEST, export_dataset
from monitor.store import ReviewStore
from monitor.tools.replay import ReplayOptions, run_replay
from training.pipeline import run_training
from training.study.footage import read_truth, study_cameras, write_footage
from training.study.measure import ALERT_LABEL, TruthRecorder, flat, recommend, score
from training.study.night_loop import Study, train_config
from training.study.reviewers import review
from training.synthetic import write_dataset


def _json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def day_data(s: Study) -> None:
    p = s.params
    write_dataset(s.path("day-data"), p.per_class, p.seed, (p.image_size, p.image_size),
                  night_fraction=0.0, cameras=p.train_cameras)  # fmt: skip


def model_before(s: Study) -> None:
    cfg = train_config(s, s.path("day-data"), s.path("model-before"),
                       model_version=f"study-day-{s.params.seed}")  # fmt: skip
    run_training(cfg)


def footage(s: Study) -> None:
    p = s.params
    cams = study_cameras(p.seed, p.day_cameras, p.night_cameras)
    for phase, n in (("review", 1), ("fresh", 2)):
        write_footage(s.path("footage", phase), cams, p.walks, p.frames_per_walk, p.image_size,
                      (p.seed, 1000 + n))  # fmt: skip


def _replay(s: Study, phase: str, store: Path, candidate: Path | None) -> TruthRecorder:
    p = s.params
    videos = sorted(s.path("footage", phase).glob("*.avi"))
    opts = ReplayOptions(
        fps=5.0,
        threads=1,
        decision=DecisionConfig(alert_labels=[ALERT_LABEL], threshold=p.threshold),
        view=ViewConfig(plan="full"),
        candidate=candidate,
        audit=AuditConfig(
            random_rate=p.audit_random_rate, max_per_hour=p.audit_max_per_hour, seed=p.seed
        ),  # fmt: skip
    )
    recorder = TruthRecorder()
    classifier = OnnxClassifier(s.path("model-before", "model.onnx"), threads=1)
    summary = run_replay(videos, classifier, opts, store_path=store, recorder=recorder)
    if summary["unreadable"]:
        raise RuntimeError(f"the pipeline could not read {summary['unreadable']}")
    return recorder


def shadow_before(s: Study) -> None:
    folder = s.path("shadow-before")
    folder.mkdir()
    recorder = _replay(s, "review", folder / "replay.db", None)
    truth = read_truth(s.path("footage", "review"))
    labels = OnnxClassifier(s.path("model-before", "model.onnx"), threads=1).labels
    _json(folder / "summary.json", {"first_captured_at": recorder.first_captured_at,
          "scores": score(recorder, truth, labels, s.params.threshold, candidate=False)})  # fmt: skip


def review_step(s: Study) -> None:
    folder = s.path("review")
    folder.mkdir()
    db = folder / "review.db"
    shutil.copyfile(s.path("shadow-before", "replay.db"), db)  # reviews never touch the replay's
    first = _read(s.path("shadow-before", "summary.json"))["first_captured_at"]
    labels = OnnxClassifier(s.path("model-before", "model.onnx"), threads=1).labels
    store = ReviewStore(db)
    try:
        done = review(store, read_truth(s.path("footage", "review")), first, labels,
                      s.params.verdicts, s.params.audit_labels)  # fmt: skip
    finally:
        store.close()
    done["budget"] = {"verdicts": s.params.verdicts, "audit_labels": s.params.audit_labels}
    _json(folder / "reviews.json", done)


def export_step(s: Study) -> None:
    store = ReviewStore(s.path("review", "review.db"))
    try:
        summary = export_dataset(store, s.path("export"))
    finally:
        store.close()
    _json(s.path("export", "export.json"),
          {"per_class": summary.per_class, "skipped": dict(summary.skipped)})  # fmt: skip


def merged(s: Study) -> None:
    """The export and the deployed model's training data in one folder (hard links), one manifest."""
    out = s.path("merged")
    rows: list[tuple[str, str, str, str]] = []
    sources = [("orig", s.path("day-data"), "path")]
    sources += [(f"rev{k}", s.path("export"), "file") for k in range(s.params.review_repeat)]
    for prefix, root, column in sources:
        with (root / MANIFEST).open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                rel = Path(r[column])
                # Named by camera and time, not by store id: ids follow the order the
                # cameras' threads wrote in, which a rerun need not repeat.
                name = rel.name if prefix == "orig" else _frame_name(r)
                target = out / rel.parent / f"{prefix}-{name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(root / rel, target)
                rows.append((target.relative_to(out).as_posix(), r["label"], r["camera"], prefix))
    with (out / MANIFEST).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("file", "label", "camera", "source"))
        writer.writerows(sorted(rows))


def _frame_name(row: dict[str, str]) -> str:
    stamp = "".join(ch for ch in row["time"] if ch.isdigit())
    return f"{row['camera']}-{stamp}-{row['source']}.jpg"


def model_after(s: Study) -> None:
    cfg = train_config(s, s.path("merged"), s.path("model-after"), init=s.path("model-before"),
                       epochs=s.params.epochs_after, model_version=f"study-night-{s.params.seed}")  # fmt: skip
    run_training(cfg)


def shadow_after(s: Study) -> None:
    folder = s.path("shadow-after")
    folder.mkdir()
    recorder = _replay(s, "fresh", folder / "shadow.db", s.path("model-after", "model.onnx"))
    truth = read_truth(s.path("footage", "fresh"))
    labels = OnnxClassifier(s.path("model-before", "model.onnx"), threads=1).labels
    cand = OnnxClassifier(s.path("model-after", "model.onnx"), threads=1).labels
    if tuple(cand) != tuple(labels):
        raise RuntimeError(f"the candidate's labels {cand} are not production's {labels}")
    before = score(recorder, truth, labels, s.params.threshold, candidate=False)
    after = score(recorder, truth, labels, s.params.threshold, candidate=True)
    _json(folder / "scores.json", {"first_captured_at": recorder.first_captured_at,
          "before": before, "after": after})  # fmt: skip


def report(s: Study) -> None:
    from training.study.page import drift_timeline, store_report, write_page

    scores = _read(s.path("shadow-after", "scores.json"))
    before, after = scores["before"], scores["after"]
    metrics = {
        name: _read(s.path(name, "metrics.json")) for name in ("model-before", "model-after")
    }
    study = {
        "before": {**flat(before), "detail": before},
        "after": {**flat(after), "detail": after},
        "recommendation": recommend(before, after),
        "budget": {"verdicts": s.params.verdicts, "audit_labels": s.params.audit_labels},
        "reviews": _read(s.path("review", "reviews.json")),
        "export": _read(s.path("export", "export.json")),
        "seeds": {"study": s.params.seed},
        "params": _read(s.path("params.json")),
        "models": {
            n: {
                "model_version": _read(s.path(n, "init.json"))["model_version"],
                "valid_accuracy": m["accuracy"],
                "n_train": m["n_train"],
            }
            for n, m in metrics.items()
        },  # fmt: skip
        "review_phase_production": _read(s.path("shadow-before", "summary.json"))["scores"],
        "store_report": store_report(s.path("shadow-after", "shadow.db")),
        "drift": {
            "review": drift_timeline(
                s.path("review", "review.db"),
                _read(s.path("shadow-before", "summary.json"))["first_captured_at"],
            ),
            "fresh": drift_timeline(
                s.path("shadow-after", "shadow.db"), scores["first_captured_at"]
            ),
        },  # fmt: skip
    }
    study["wall_s"] = {**s.seconds(), "total": round(sum(s.seconds().values()), 1)}
    write_page(s.stage, study)
    _json(s.path("study.json"), study)


STEPS: tuple[tuple[str, Callable[[Study], None]], ...] = (
    ("day-data", day_data),
    ("model-before", model_before),
    ("footage", footage),
    ("shadow-before", shadow_before),
    ("review", review_step),
    ("export", export_step),
    ("merged", merged),
    ("model-after", model_after),
    ("shadow-after", shadow_after),
    ("report", report),
)
