"""One training run, stage by stage: check inputs, train, interpret, export, verify, quantize.

Inputs are checked (images scanned, pretrained weights resolved) before the run
folder is created, so a typo or a missing download costs seconds and leaves
nothing behind. The rest happens in the staging folder of ``run_folder``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastai.vision.all import Learner, set_seed

from training.artifact import (
    RESIZE_METHOD,
    build_metadata,
    default_model_version,
    export_artifacts,
    reference_stats,
    write_readme,
)
from training.cleaning import write_cleaning_aid
from training.config import TrainConfig
from training.datablock import build_dataloaders
from training.dataset import ImageScan, scan_images
from training.holdout import GroupSplit, split_by_group
from training.init_run import WEIGHTS_PTH, InitRun, check_labels, read_init_run, write_init_files
from training.interpret import classification_metrics, predict_split, save_plots
from training.learner import build_learner, load_run_weights, save_run_weights, train
from training.parity import PARITY_JSON, ParityError, check_parity
from training.run_folder import RunFolder, log_to_file, versions, write_json, write_yaml
from training.weights import resolve_weights

logger = logging.getLogger(__name__)


def run_training(cfg: TrainConfig) -> Path:
    """Train, interpret, export and verify one model; returns the finished run folder.

    Raises:
        training.errors.TrainingError: for bad input (exit code 2) or a failed check (exit code 1);
            a run that started is left in ``<out>.incomplete`` with ``FAILED.txt``.
    """
    folder = RunFolder(cfg.out, cfg.overwrite)
    folder.check()
    scan = scan_images(cfg.data)
    start = _Start(None, None, None)
    if cfg.init is not None:
        start.init = read_init_run(cfg.init)
        check_labels(start.init, scan.labels, cfg.data)
    else:
        start.state = resolve_weights(cfg.arch, cfg.pretrained, cfg.weights)
    if cfg.split_by is not None:
        start.split = split_by_group(cfg.data, scan.files, cfg.split_by, cfg.valid_pct, cfg.seed)
    run_dir = folder.start()
    with log_to_file(run_dir / "train.log"):
        try:
            _run_stages(cfg, scan, start, run_dir, folder.out.name)
        except BaseException as exc:
            folder.fail(f"{type(exc).__name__}: {exc}")
            logger.error("run stopped; its files are in %s", run_dir)
            raise
    return folder.finish()


@dataclass(slots=True)
class _Start:
    """What a run starts from, resolved before its folder exists: weights, ``--init`` run, split."""

    state: Any  # torchvision body weights, or None
    init: InitRun | None
    split: GroupSplit | None


def _run_stages(cfg: TrainConfig, scan: ImageScan, start: _Start, run_dir: Path, name: str) -> None:
    version = cfg.model_version or default_model_version(name)
    write_yaml(run_dir / "config.yaml", {**cfg.to_dict(), "model_version": version})
    write_json(run_dir / "versions.json", versions())
    write_json(run_dir / "data_scan.json", scan.report())
    set_seed(cfg.seed, reproducible=True)
    dls = build_dataloaders(cfg, scan.files, start.split)
    train_files = [Path(p) for p in dls.train_ds.items]
    valid_files = [Path(p) for p in dls.valid_ds.items]
    _write_split(run_dir, cfg.data, train_files, valid_files, start.split)
    logger.info(
        "%d training and %d validation images, classes %s",
        len(train_files),
        len(valid_files),
        list(dls.vocab),
    )
    learn = build_learner(dls, cfg, start.state, run_dir)
    if start.init is not None:
        load_run_weights(learn, start.init.weights)
        logger.info("starting from %s (%s)", start.init.path, start.init.model_version)
    train(learn, cfg, run_dir)
    metrics = _interpret(learn, cfg, run_dir, scan, train_files, name, start)
    reference = reference_stats(
        train_files, cfg.size, metrics.pop("_valid_probs"), cfg.reference_images, cfg.seed
    )
    meta = build_metadata(learn, cfg.arch, cfg.size, version, metrics, reference)
    onnx_path = export_artifacts(learn, meta, run_dir)
    save_run_weights(learn, run_dir / WEIGHTS_PTH)
    write_init_files(run_dir, cfg.arch, cfg.size, [str(v) for v in dls.vocab], version)
    _feature_stats(onnx_path, train_files, valid_files, cfg)
    _verify_parity(learn, onnx_path, valid_files, cfg, run_dir)
    if cfg.int8:
        from training.quantize import Bench, quantize_and_compare

        quantize_and_compare(
            onnx_path,
            train_files,
            valid_files,
            fmt=cfg.quant_format,
            calib_images=cfg.calib_images,
            bench=Bench(cfg.bench_batch, cfg.bench_threads, cfg.bench_seconds),
            seed=cfg.seed,
        )
    write_readme(run_dir, name)


def _feature_stats(
    onnx_path: Path, train_files: list[Path], valid_files: list[Path], cfg: TrainConfig
) -> None:
    """Embed the out-of-domain statistics: a kNN bank of ≤ 2000 training images, threshold on validation."""
    from monitor.model.preprocess import file_to_input
    from training.ood import MAX_BANK, embed_stats

    pick = np.random.default_rng(cfg.seed).permutation(len(train_files))[:MAX_BANK]
    size = (cfg.size, cfg.size)
    embed_stats(
        onnx_path,
        [file_to_input(train_files[i], size, RESIZE_METHOD) for i in sorted(pick)],
        [file_to_input(p, size, RESIZE_METHOD) for p in valid_files],
    )


def _write_split(
    run_dir: Path,
    data: Path,
    train_files: list[Path],
    valid_files: list[Path],
    split: GroupSplit | None,
) -> None:
    root = data.resolve()

    def rel(paths: Sequence[Path]) -> list[str]:
        return sorted(str(p.resolve().relative_to(root)) for p in paths)

    out: dict[str, Any] = {"data": str(root), "train": rel(train_files), "valid": rel(valid_files)}
    if split is not None:
        out.update(by=split.by, held_out=list(split.held_out),
                   random_valid=rel(split.random_valid))  # fmt: skip
    write_json(run_dir / "split.json", out)


def _interpret(
    learn: Learner,
    cfg: TrainConfig,
    run_dir: Path,
    scan: ImageScan,
    train_files: list[Path],
    name: str,
    start: _Start,
) -> dict[str, Any]:
    """Write metrics.json, the plots and the cleaning aid; returns the metrics (plus valid probs)."""
    valid = predict_split(learn)
    train_preds = predict_split(learn, train_files)
    metrics = classification_metrics(valid)
    if start.split is not None:
        metrics["split"] = _split_metrics(learn, start.split, metrics["accuracy"])
    if start.init is not None:
        metrics["init"] = {"run": str(start.init.path), "model_version": start.init.model_version}
    metrics.update(
        n_train=len(train_files),
        epochs=cfg.epochs,
        train_accuracy=float(np.mean(train_preds.predicted == train_preds.targets)),
        n_skipped_corrupt=len(scan.corrupt),
        n_skipped_not_image=len(scan.not_images),
        train_loss=float(learn.recorder.values[-1][0]),
    )
    write_json(run_dir / "metrics.json", metrics)
    logger.info(
        "validation: accuracy %.4f, error rate %.4f, loss %.4f over %d images",
        metrics["accuracy"],
        metrics["error_rate"],
        metrics["valid_loss"],
        metrics["n_valid"],
    )
    save_plots(learn, run_dir, cfg.top_k)
    n = write_cleaning_aid(
        {"valid": valid, "train": train_preds}, run_dir, cfg.data, cfg.clean_k, name
    )
    logger.info("listed %d images to check in top_losses.csv / cleaning.html", n)
    return {**metrics, "_valid_probs": valid.probs}


def _split_metrics(learn: Learner, split: GroupSplit, held_out_accuracy: float) -> dict[str, Any]:
    """Held-out-group accuracy (the validation set) beside the random split's, one model."""
    random_acc = None
    if split.random_valid:
        preds = predict_split(learn, list(split.random_valid))
        random_acc = float(np.mean(preds.predicted == preds.targets))
    logger.info(
        "accuracy on %d images of held-out %ss %s: %.4f; on %d random images of the others: %s",
        len(split.valid),
        split.by,
        ", ".join(split.held_out),
        held_out_accuracy,
        len(split.random_valid),
        "n/a" if random_acc is None else f"{random_acc:.4f}",
    )
    return {
        "by": split.by,
        "held_out": list(split.held_out),
        f"held_out_{split.by}_accuracy": held_out_accuracy,
        "n_held_out": len(split.valid),
        "random_split_accuracy": random_acc,
        "n_random_split": len(split.random_valid),
    }


def _verify_parity(
    learn: Learner, onnx_path: Path, valid_files: list[Path], cfg: TrainConfig, run_dir: Path
) -> None:
    files = list(valid_files)
    if cfg.parity_max is not None and len(files) > cfg.parity_max:
        # A seeded sample, not the first N: the loader order is itself a random permutation.
        files = sorted(random.Random(cfg.seed).sample(files, cfg.parity_max))
    report = check_parity(learn, onnx_path, files, cfg.parity_tol)
    write_json(run_dir / PARITY_JSON, report)
    if not report["passed"]:
        raise ParityError(
            f"parity check failed: top-1 agreement {report['top1_agreement']:.4f} "
            f"({report['n_top1_disagreements']} disagreeing), max probability difference "
            f"{report['max_abs_diff']:.4f} (tolerance {cfg.parity_tol}); the ONNX model does not "
            f"reproduce the learner, see {run_dir / PARITY_JSON}"
        )
