"""``bearwatch view-eval``: bear recall and empty-scene false positives per view plan, side by side.

Reads an evaluation set written by ``python -m training.synthetic.wide eval``
(wide frames, each with a subject-free background frame, and a
``manifest.csv`` with path, background, label, night, height) and classifies
every frame the way each plan would:

* ``centre`` — the preprocessing before view plans: the centre square, resized;
* ``full``, ``tiles`` — the plan's regions (``monitor.capture.view``);
* ``motion`` — the motion regions found against the background frame (the
  periodic whole-frame pass left out, so the number is the motion regions' own);
* ``auto`` — the default: the whole frame plus those motion regions;
* ``auto-tiles`` — ``auto`` with ``auto_adds: tiles``: the whole frame plus the tiles.

A frame is a bear when its best region's bear score reaches the threshold —
the frame score the decision policy steps on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monitor.capture.view import ViewPlanner
from monitor.config.camera import TilesConfig, ViewConfig
from monitor.model.onnx import OnnxClassifier
from monitor.model.preprocess import frame_to_input

PLANS = ("centre", "full", "tiles", "motion", "auto", "auto-tiles")


@dataclass(slots=True)
class _Tally:
    bears: int = 0
    bears_found: int = 0
    night_bears: int = 0
    night_found: int = 0
    small_bears: int = 0  # under 10 % of the frame high
    small_found: int = 0
    empty: int = 0
    empty_alerts: int = 0
    people: int = 0
    people_alerts: int = 0
    regions: list[int] = field(default_factory=list)

    def add(self, label: str, night: bool, height: float, alert: bool, regions: int) -> None:
        self.regions.append(regions)
        if label == "bear":
            self.bears += 1
            self.bears_found += alert
            self.night_bears += night
            self.night_found += alert and night
            self.small_bears += height < 0.10
            self.small_found += alert and height < 0.10
        elif label == "empty":
            self.empty += 1
            self.empty_alerts += alert
        else:
            self.people += 1
            self.people_alerts += alert

    def row(self) -> dict[str, Any]:
        def rate(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        return {
            "regions_per_frame": round(float(np.mean(self.regions)), 2) if self.regions else 0.0,
            "bear_recall": rate(self.bears_found, self.bears),
            "bear_recall_night": rate(self.night_found, self.night_bears),
            "bear_recall_small": rate(self.small_found, self.small_bears),
            "empty_fp_rate": rate(self.empty_alerts, self.empty),
            "person_as_bear_rate": rate(self.people_alerts, self.people),
            "bears": self.bears,
            "empty": self.empty,
            "people": self.people,
        }


def _inputs(
    plan: str,
    planners: dict[str, ViewPlanner],
    bgr: np.ndarray,
    bg: np.ndarray,
    clf: OnnxClassifier,
) -> np.ndarray | None:
    if plan == "centre":
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return frame_to_input(rgb, clf.input_hw, "crop")[None]
    if plan in ("motion", "auto"):
        planner = ViewPlanner("eval", ViewConfig(plan=plan), clf.input_hw, max_batch=64)  # type: ignore[arg-type]
        planner.prepare(bg, 0.0)  # the background; for motion also its whole-frame pass
        view = planner.prepare(bgr, 0.5)
    else:
        view = planners[plan].prepare(bgr, 0.0)
    return None if view is None else view.inputs


def evaluate(
    folder: Path,
    clf: OnnxClassifier,
    threshold: float = 0.7,
    label: str = "bear",
    tiles: TilesConfig | None = None,
) -> dict[str, Any]:
    """Classify every frame of the set under every plan; returns per-plan rates.

    Raises:
        ValueError: when the folder has no manifest or the model has no ``label``.
    """
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        raise ValueError(
            f"{folder} has no manifest.csv; write the set with `python -m training.synthetic.wide eval --out {folder}`"
        )
    if label not in clf.labels:
        raise ValueError(f"the model has no label {label!r} (labels: {', '.join(clf.labels)})")
    index = clf.labels.index(label)
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    tiling = tiles or TilesConfig()
    configs: dict[str, ViewConfig] = {
        "full": ViewConfig(plan="full"),
        "tiles": ViewConfig(plan="tiles", tiles=tiling),
        "auto-tiles": ViewConfig(plan="auto", auto_adds="tiles", tiles=tiling),
    }
    planners = {p: ViewPlanner("eval", c, clf.input_hw, max_batch=64) for p, c in configs.items()}
    tallies = {p: _Tally() for p in PLANS}
    for row in rows:
        bgr = cv2.imread(str(folder / row["path"]), cv2.IMREAD_COLOR)
        bg = cv2.imread(str(folder / row["background"]), cv2.IMREAD_COLOR)
        if bgr is None or bg is None:
            raise ValueError(f"cannot read {row['path']} or its background in {folder}")
        night, height = row["night"] == "1", float(row["height"] or 0.0)
        for plan in PLANS:
            x = _inputs(plan, planners, bgr, bg, clf)
            score = 0.0 if x is None else float(clf.predict(x)[:, index].max())
            tallies[plan].add(
                row["label"], night, height, score >= threshold, 0 if x is None else len(x)
            )
    return {
        "frames": len(rows),
        "threshold": threshold,
        "model_version": clf.meta.model_version,
        "input_hw": list(clf.input_hw),
        "tiles": tiling.model_dump(),
        "plans": {p: t.row() for p, t in tallies.items()},
    }


def format_table(result: dict[str, Any]) -> str:
    """The side-by-side table the command prints."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:5.1f} %"

    head = f"{'plan':<10} {'regions/frame':>13} {'bear recall':>12} {'night':>8} {'<10% high':>10} {'empty FP':>9} {'person→bear':>12}"
    lines = [
        f"{result['frames']} frames, threshold {result['threshold']}, model {result['model_version']} "
        f"({result['input_hw'][0]}x{result['input_hw'][1]})",
        head,
    ]
    for plan, r in result["plans"].items():
        lines.append(
            f"{plan:<10} {r['regions_per_frame']:>13} {pct(r['bear_recall']):>12} {pct(r['bear_recall_night']):>8} "
            f"{pct(r['bear_recall_small']):>10} {pct(r['empty_fp_rate']):>9} {pct(r['person_as_bear_rate']):>12}"
        )
    return "\n".join(lines)
