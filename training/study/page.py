"""The study's page: before/after recall and precision with 95 % intervals, drift over time, reviews spent."""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.report.build import ReportSettings, build_report
from monitor.store import ReviewStore

_STATES = ("in_domain",)  # drift states plotted at 0; every other state at 1


def store_report(db: Path) -> dict[str, Any]:
    """What ``bearwatch report`` says per camera about the shadow phase: candidate agreement and rollout."""
    store = ReviewStore(db)
    try:
        data = build_report(store, ReportSettings(until=time.time() + 86400.0))
    finally:
        store.close()
    return {
        cam: {
            "candidate": c["candidate"],
            "rollout_recommendation": c["recommendation"]["code"],
            "drift": c["drift"]["states"],
        }  # fmt: skip
        for cam, c in data.summary["cameras"].items()
    }


def drift_timeline(db: Path, first: Mapping[str, float]) -> dict[str, list[tuple[float, str]]]:
    """Per camera, the drift monitor's state changes as (seconds into the footage, state)."""
    store = ReviewStore(db)
    try:
        rows = list(store.iter_events(kind="drift"))
    finally:
        store.close()
    out: dict[str, list[tuple[float, str]]] = {cam: [] for cam in sorted(first)}
    for r in sorted(rows, key=lambda r: (r["camera"], r["start_at"])):
        base = first.get(r["camera"], r["start_at"])
        out.setdefault(r["camera"], []).append((round(r["start_at"] - base, 2), r["label"]))
    return out


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _quality_plot(study: Mapping[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, what in zip(axes, ("recall", "precision"), strict=True):
        for i, side in enumerate(("before", "after")):
            xs: list[float] = []
            ys: list[float] = []
            err: list[list[float]] = [[], []]
            for j, period in enumerate(("night", "day")):
                est = study[side]["detail"][period][what]
                if est is None:
                    continue
                xs.append(j + (i - 0.5) * 0.35)
                ys.append(est["value"])
                err[0].append(est["value"] - est["low"])
                err[1].append(est["high"] - est["value"])
            ax.bar(xs, ys, 0.35, yerr=err, capsize=4, label=side)
        ax.set_xticks([0, 1], ["night (IR)", "day"])
        ax.set_title(f"{what} with 95 % intervals")
        ax.set_ylim(0, 1.05)
    axes[0].legend()
    return _png(fig)


def _drift_plot(study: Mapping[str, Any]) -> str:
    import matplotlib.pyplot as plt

    phases = study["drift"]
    fig, axes = plt.subplots(1, len(phases), figsize=(10, 3.2), sharey=True)
    for ax, (phase, cams) in zip(axes, phases.items(), strict=True):
        for k, (cam, changes) in enumerate(sorted(cams.items())):
            xs = [0.0] + [t for t, _ in changes]
            ys = [0] + [0 if state in _STATES else 1 for _, state in changes]
            ax.step(xs, [y + 0.04 * k for y in ys], where="post", label=cam)
        ax.set_yticks([0, 1], ["in domain", "drifted"])
        ax.set_xlabel("seconds into the footage")
        ax.set_title(f"drift state, {phase} clips (production model)")
    axes[-1].legend(fontsize=7)
    return _png(fig)


def _reviews_plot(study: Mapping[str, Any]) -> str:
    import matplotlib.pyplot as plt

    r = study["reviews"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    names, counts = zip(*sorted(r["verdicts"].items()), strict=True) if r["verdicts"] else ((), ())
    axes[0].barh(list(names), list(counts))
    axes[0].set_title(f"verdicts: {r['verdicts_spent']} of {r['budget']['verdicts']} "
                      f"({r['alerts']} alerts)")  # fmt: skip
    strata = r["audit_labels_by_stratum"]
    axes[1].bar(list(strata), list(strata.values()), label="labelled")
    axes[1].bar(list(strata), [r["audit_available_by_stratum"][s] for s in strata], fill=False,
                label="sampled")  # fmt: skip
    axes[1].set_title(f"audit labels: {r['audit_labels_spent']} of {r['budget']['audit_labels']}")
    axes[1].legend()
    return _png(fig)


def _table(study: Mapping[str, Any]) -> str:
    rows = []
    for key in ("night_recall", "day_recall", "night_precision", "day_precision",
                "night_accuracy", "day_accuracy"):  # fmt: skip
        period, what = key.split("_")
        cells = []
        for side in ("before", "after"):
            est = study[side]["detail"][period][what]
            cells.append("–" if est is None else
                         f"{est['value']:.1%} [{est['low']:.1%}, {est['high']:.1%}] "
                         f"({est['successes']}/{est['trials']})")  # fmt: skip
        rows.append(f"<tr><td>{key}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>")
    return "".join(rows)


def write_page(folder: Path, study: Mapping[str, Any]) -> Path:
    """Write ``study.html`` (plots inline) into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    rec = study["recommendation"]
    plots = [_quality_plot(study), _drift_plot(study), _reviews_plot(study)]
    imgs = "".join(f'<p><img alt="plot" src="data:image/png;base64,{p}"></p>' for p in plots)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>night-loop study</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td,th{{padding:2px 10px;
border-bottom:1px solid #ddd}}</style></head><body>
<h1>Night-loop study</h1>
<p><b>Recommendation: {html.escape(rec["code"])}</b> — {html.escape(rec["text"])}</p>
<table><tr><th>figure</th><th>before (deployed)</th><th>after (candidate)</th></tr>{_table(study)}</table>
<p>Scored on the same fresh clips' frames; frames with only a sliver of a subject are not scored.
Wilson 95 % intervals; frames of one walk are correlated, so the intervals are optimistic.</p>
{imgs}
<p>Wall time per step (s): {html.escape(str(study["wall_s"]))}</p>
</body></html>
"""
    path = folder / "study.html"
    path.write_text(page, encoding="utf-8")
    return path
