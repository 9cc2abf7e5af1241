"""``bearwatch ood-eval``: how well MSP, energy and the feature score tell in-domain from foreign images.

Two folders of images go through the runtime's own preprocessing and model.
For each score, in-domain images are the positives (they should pass); the
table gives AUROC (the chance a random foreign image scores as more foreign
than a random in-domain one) and FPR at 95 % TPR (the share of foreign images
that still pass when the cut lets 95 % of in-domain images through), beside
the model's calibrated threshold as it ships, and a ROC plot.

- MSP (Hendrycks & Gimpel 2017): 1 − the top softmax probability;
- energy (Liu et al. 2020): −logsumexp(logits), from the graph's ``logits`` output;
- feature: the model's feature score (``monitor.model.features``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from monitor.model.onnx import FEATURES_OUTPUT, LOGITS_OUTPUT, OnnxClassifier
from monitor.model.preprocess import file_to_input

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
TPR = 0.95


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted.

    Raises:
        ValueError: when the folder holds none.
    """
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve, foreign = higher score (Mann–Whitney with average ranks for ties)."""
    scores = np.concatenate([in_scores, out_scores])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n_in, n_out = len(in_scores), len(out_scores)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0) / (n_in * n_out))


def fpr_at_tpr(in_scores: np.ndarray, out_scores: np.ndarray, tpr: float = TPR) -> float:
    """Share of foreign images at or under the cut that passes ``tpr`` of the in-domain images."""
    cut = float(np.quantile(in_scores, tpr))
    return float(np.mean(out_scores <= cut))


def roc_curve(in_scores: np.ndarray, out_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) over every cut: share of foreign / in-domain images that pass."""
    cuts = np.unique(np.concatenate([in_scores, out_scores, [-np.inf]]))
    tpr = np.array([np.mean(in_scores <= c) for c in cuts])
    fpr = np.array([np.mean(out_scores <= c) for c in cuts])
    return fpr, tpr


def _scores(clf: OnnxClassifier, files: list[Path], batch: int) -> dict[str, np.ndarray]:
    names = [o.name for o in clf.session.get_outputs()]
    wanted = [names[0]] + [n for n in (FEATURES_OUTPUT, LOGITS_OUTPUT) if n in names]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in wanted}
    for i in range(0, len(files), batch):
        chunk = np.stack(
            [file_to_input(p, clf.input_hw, clf.meta.resize_method) for p in files[i : i + batch]]
        )
        for name, out in zip(
            wanted, clf.session.run(wanted, {clf.session.get_inputs()[0].name: chunk}), strict=True
        ):
            parts[name].append(np.asarray(out, dtype=np.float32))
    outs = {n: np.concatenate(p) for n, p in parts.items()}
    result = {"msp": 1.0 - outs[names[0]].max(axis=1)}
    if LOGITS_OUTPUT in outs:
        z = outs[LOGITS_OUTPUT].astype(np.float64)
        top = z.max(axis=1, keepdims=True)
        result["energy"] = -(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))
    if FEATURES_OUTPUT in outs and clf.feature_stats is not None:
        result["feature"] = clf.feature_stats.scores(outs[FEATURES_OUTPUT])
    return result


def _cost(clf: OnnxClassifier, batch: int, rounds: int = 30) -> dict[str, float] | None:
    """Per-frame seconds of the network vs the feature score, measured on the run-time path."""
    if clf.feature_stats is None:
        return None
    frames = np.random.default_rng(0).integers(0, 256, (batch, *clf.input_hw, 3), dtype=np.uint8)
    clf.classify(frames)
    clf.model_seconds = clf.score_seconds = 0.0
    for _ in range(rounds):
        clf.classify(frames)
    return {
        "batch": batch,
        "model_ms_per_frame": round(1000 * clf.model_seconds / (rounds * batch), 4),
        "score_ms_per_frame": round(1000 * clf.score_seconds / (rounds * batch), 4),
        "score_share_of_model": round(clf.score_seconds / max(clf.model_seconds, 1e-12), 4),
    }


def evaluate(
    model: Path, in_dir: Path, out_dir: Path, report_dir: Path, batch: int = 16
) -> dict[str, Any]:
    """Score both folders with every available score; write ``ood_eval.json`` and ``roc.png`` to ``report_dir``.

    Raises:
        ModelError: when the model does not load.
        ValueError: when a folder holds no images.
    """
    clf = OnnxClassifier(model, "cpu", 0, warmup_batch=batch)
    in_files, out_files = image_files(in_dir), image_files(out_dir)
    t0 = time.perf_counter()
    ins, outs = _scores(clf, in_files, batch), _scores(clf, out_files, batch)
    table = {
        name: {
            "auroc": round(auroc(ins[name], outs[name]), 4),
            "fpr_at_95_tpr": round(fpr_at_tpr(ins[name], outs[name]), 4),
        }
        for name in ins
    }
    if "feature" in ins:
        table["feature"]["in_domain_pass_at_threshold"] = round(
            float(np.mean(ins["feature"] <= 1.0)), 4
        )
        table["feature"]["foreign_flagged_at_threshold"] = round(
            float(np.mean(outs["feature"] > 1.0)), 4
        )
    report_dir.mkdir(parents=True, exist_ok=True)
    plot = report_dir / "roc.png"
    _plot(ins, outs, table, plot)
    result = {
        "model": str(model),
        "model_version": clf.meta.model_version,
        "in_domain": {"folder": str(in_dir), "images": len(in_files)},
        "foreign": {"folder": str(out_dir), "images": len(out_files)},
        "feature_method": None if clf.feature_stats is None else clf.feature_stats.method,
        "scores": table,
        "score_cost": _cost(clf, batch),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "roc_png": str(plot),
    }
    import json

    (report_dir / "ood_eval.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _plot(
    ins: Mapping[str, np.ndarray],
    outs: Mapping[str, np.ndarray],
    table: Mapping[str, Mapping[str, float]],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for name in ins:
        fpr, tpr = roc_curve(ins[name], outs[name])
        ax.plot(fpr, tpr, label=f"{name} (AUROC {table[name]['auroc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.axhline(TPR, color="grey", linewidth=0.5)
    ax.set_xlabel("foreign images passing (FPR)")
    ax.set_ylabel("in-domain images passing (TPR)")
    ax.set_title("out-of-domain detection")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_table(result: Mapping[str, Any]) -> str:
    """The human-readable table ``bearwatch ood-eval`` prints."""
    lines = [
        f"{result['in_domain']['images']} in-domain images ({result['in_domain']['folder']}) vs "
        f"{result['foreign']['images']} foreign ({result['foreign']['folder']})",
        f"{'score':<10} {'AUROC':>7} {'FPR@95%TPR':>11}",
    ]
    for name, row in result["scores"].items():
        lines.append(f"{name:<10} {row['auroc']:>7.4f} {row['fpr_at_95_tpr']:>11.4f}")
    feat = result["scores"].get("feature")
    if feat is None:
        lines.append("feature    -  (the model has no features output with statistics)")
    else:
        lines.append(
            f"at the model's threshold: {feat['in_domain_pass_at_threshold']:.1%} of in-domain pass, "
            f"{feat['foreign_flagged_at_threshold']:.1%} of foreign flagged"
        )
    cost = result.get("score_cost")
    if cost:
        lines.append(
            f"score cost {cost['score_ms_per_frame']} ms/frame = {cost['score_share_of_model']:.1%} "
            f"of the model's {cost['model_ms_per_frame']} ms/frame (batch {cost['batch']})"
        )
    lines.append(f"ROC plot: {result['roc_png']}")
    return "\n".join(lines)
