"""One training run, stage by stage: check inputs, train, interpret, export, verify, quantize.

Inputs are checked (images scanned, pretrained weights resolved) before the run
folder is created, so a typo or a missing download costs seconds and leaves
nothing behind. The rest happens in the staging folder of ``run_folder``.
"""

from __future__ import annotations

import logging
import random
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
from training.interpret import classification_metrics, predict_split, save_plots
from training.learner import build_learner, train
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
    state = resolve_weights(cfg.arch, cfg.pretrained, cfg.weights)
    run_dir = folder.start()
    with log_to_file(run_dir / "train.log"):
        try:
            _run_stages(cfg, scan, state, run_dir, folder.out.name)
        except BaseException as exc:
            folder.fail(f"{type(exc).__name__}: {exc}")
            logger.error("run stopped; its files are in %s", run_dir)
            raise
    return folder.finish()


def _run_stages(cfg: TrainConfig, scan: ImageScan, state: Any, run_dir: Path, name: str) -> None:
    version = cfg.model_version or default_model_version(name)
    write_yaml(run_dir / "config.yaml", {**cfg.to_dict(), "model_version": version})
    write_json(run_dir / "versions.json", versions())
    write_json(run_dir / "data_scan.json", scan.report())
    set_seed(cfg.seed, reproducible=True)
    dls = build_dataloaders(cfg, scan.files)
    train_files = [Path(p) for p in dls.train_ds.items]
    valid_files = [Path(p) for p in dls.valid_ds.items]
    _write_split(run_dir, cfg.data, train_files, valid_files)
    logger.info(
        "%d training and %d validation images, classes %s",
        len(train_files),
        len(valid_files),
        list(dls.vocab),
    )
    learn = build_learner(dls, cfg, state, run_dir)
    train(learn, cfg, run_dir)
    metrics = _interpret(learn, cfg, run_dir, scan, train_files, name)
    reference = reference_stats(
        train_files, cfg.size, metrics.pop("_valid_probs"), cfg.reference_images, cfg.seed
    )
    meta = build_metadata(learn, cfg.arch, cfg.size, version, metrics, reference)
    onnx_path = export_artifacts(learn, meta, run_dir)
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
    run_dir: Path, data: Path, train_files: list[Path], valid_files: list[Path]
) -> None:
    root = data.resolve()

    def rel(paths: list[Path]) -> list[str]:
        return sorted(str(p.resolve().relative_to(root)) for p in paths)

    write_json(
        run_dir / "split.json",
        {"data": str(root), "train": rel(train_files), "valid": rel(valid_files)},
    )


def _interpret(
    learn: Learner,
    cfg: TrainConfig,
    run_dir: Path,
    scan: ImageScan,
    train_files: list[Path],
    name: str,
) -> dict[str, Any]:
    """Write metrics.json, the plots and the cleaning aid; returns the metrics (plus valid probs)."""
    valid = predict_split(learn)
    train_preds = predict_split(learn, train_files)
    metrics = classification_metrics(valid)
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
