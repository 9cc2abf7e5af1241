"""The ``bearwatch train`` and ``bearwatch quantize`` commands (loaded through the ``bearwatch.commands`` entry point).

This module imports only the standard library at import time: ``bearwatch
--help`` on an edge box without torch still lists the commands, and running
one there prints how to install the training extra instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRAIN_EXTRA_HINT = "bearwatch {command} needs the training extra: pip install 'bearwatch[train]'"
_TRAIN_MODULES = ("torch", "torchvision", "fastai", "onnx", "matplotlib")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``train`` and ``quantize`` to the ``bearwatch`` command."""
    train = subparsers.add_parser(
        "train",
        help="train a classifier with fastai and export model.onnx (needs the train extra)",
        description="Train on DIR/<class>/*.jpg, write interpretation, model.onnx and a parity check to RUN_DIR.",
    )
    _add_train_arguments(train)
    train.set_defaults(func=handle_train)

    quantize = subparsers.add_parser(
        "quantize",
        help="write an INT8 model.int8.onnx and compare it with FP32 (needs the train extra)",
        description="Static INT8 quantization with ONNX Runtime, calibrated on training images.",
    )
    _add_quantize_arguments(quantize)
    quantize.set_defaults(func=handle_quantize)

    study = subparsers.add_parser(
        "study",
        help="run a seeded end-to-end study of the review loop (needs the train extra)",
        description="Studies on generated data with known truth, through the real pipeline.",
    )
    studies = study.add_subparsers(dest="study", required=True, metavar="STUDY")
    night = studies.add_parser(
        "night-loop",
        help="day-only model → shadow on day and IR-night cameras → reviews → export → "
        "fine-tune with --init → shadow candidate → compare and recommend",
        description="Writes OUT/study.json and OUT/study.html. Resumes an interrupted run with "
        "the same settings (OUT.incomplete); OUT appears only when every step finished.",
    )
    night.add_argument("--out", type=Path, required=True, help="the study folder to create")
    night.add_argument("--seed", type=int, default=7, help="master seed (default 7)")
    night.add_argument("--verdicts", type=int, default=50, help="alert verdicts budget (50)")
    night.add_argument("--audit-labels", type=int, default=100, help="audit labels budget (100)")
    night.add_argument("--preset", choices=("full", "tiny"), default="full",
                       help="full: the measured study (~10 min on 2 cores); tiny: a smoke run")  # fmt: skip
    night.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    night.set_defaults(func=handle_night_loop)

    calibrate = subparsers.add_parser(
        "ood-calibrate",
        help="add the features output and out-of-domain statistics to an existing model.onnx (needs onnx)",
        description=(
            "Graph surgery on an exported model: expose the tensor feeding the final classifier "
            "layer as a 'features' output (and the Softmax input as 'logits'), compute the "
            "statistics from in-domain images and calibrate the threshold. No torch, no retraining."
        ),
    )
    calibrate.add_argument("--model", type=Path, required=True, help="the model.onnx to upgrade")
    calibrate.add_argument(
        "--images", type=Path, required=True, help="in-domain images (any folder layout)"
    )
    calibrate.add_argument(
        "--valid-images",
        type=Path,
        help="held-out in-domain images for the threshold (default: a seeded 30 %% of --images)",
    )
    calibrate.add_argument("--out", type=Path, required=True, help="where the upgraded model goes")
    calibrate.add_argument(
        "--method",
        choices=["knn", "mahalanobis"],
        default="knn",
        help="feature score: nearest neighbours in normalised feature space, or Mahalanobis distance",
    )
    calibrate.add_argument(
        "--tpr", type=float, default=0.95, help="share of in-domain images that pass (0.95)"
    )
    calibrate.set_defaults(func=handle_ood_calibrate)


# (flag, type, help) of the valued `train` options. Defaults are None so that
# only flags actually given override the --config file (see training.config).
_TRAIN_OPTIONS: tuple[tuple[str, Callable[[str], Any], str], ...] = (
    ("--data", Path, "folder with one sub-folder of images per class"),
    ("--out", Path, "run folder to create (must not exist unless --overwrite)"),
    ("--config", Path, "YAML file with any of these settings (underscored names; flags win)"),
    ("--arch", str, "torchvision architecture (default resnet18)"),
    ("--epochs", int, "epochs (after the frozen ones when pretrained; default 5)"),
    ("--freeze-epochs", int, "frozen-body epochs when pretrained (default 1)"),
    ("--lr", float, "base learning rate (default 2e-3 pretrained, 3e-3 from scratch)"),
    ("--size", int, "square input size in pixels (default 224)"),
    ("--min-scale", float, "RandomResizedCrop min_scale (default 0.75)"),
    ("--valid-pct", float, "validation fraction (default 0.2)"),
    ("--seed", int, "seed for split, augmentation and initialisation (default 42)"),
    ("--batch-size", int, "batch size (default 32)"),
    ("--workers", int, "DataLoader worker processes (default 0)"),
    ("--aug-mult", float, "aug_transforms strength multiplier (default 1.0; 0 disables)"),
    ("--camera-aug-p", float, "probability of each camera augmentation (default 0.2)"),
    ("--parity-max", int, "validation images in the parity check (default all)"),
    ("--parity-tol", float, "max probability difference in the parity check (default 0.02)"),
    ("--top-k", int, "images in top_losses.png (default 9)"),
    ("--clean-k", int, "images in top_losses.csv / cleaning.html (default 50)"),
    ("--model-version", str, "version recorded in the model (default RUN-NAME-UTCTIME)"),
    (
        "--init",
        Path,
        "fine-tune from this finished run's weights and labels (RUN_DIR); "
        "its architecture and input size are kept",
    ),
)
_TRAIN_SWITCHES = (
    ("--camera-aug", "add IR night, low-light, blur, low-resolution and noise augmentations"),
    ("--int8", "also write model.int8.onnx and int8.json (FP32 vs INT8)"),
    ("--overwrite", "replace an existing RUN_DIR once the new run has passed"),
)


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    for flag, kind, help_text in _TRAIN_OPTIONS:
        p.add_argument(flag, type=kind, help=help_text)
    for flag, help_text in _TRAIN_SWITCHES:
        p.add_argument(flag, action="store_const", const=True, help=help_text)
    p.add_argument(
        "--split-by",
        choices=("camera", "site"),
        help="validate on whole held-out cameras (or sites) named in DATA/manifest.csv; "
        "metrics.json reports their accuracy beside a random split's",
    )
    weights = p.add_mutually_exclusive_group()
    weights.add_argument(
        "--weights", type=Path, metavar="FILE", help="torchvision state dict (.pth) for --arch"
    )
    weights.add_argument(
        "--no-pretrained",
        dest="pretrained",
        action="store_const",
        const=False,
        help="train from random initialisation (no ImageNet weights)",
    )
    _add_int8_tuning(p)


def _add_int8_tuning(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-images", type=int, help="images to calibrate INT8 on (default 200)")
    p.add_argument(
        "--quant-format",
        choices=("qdq", "qoperator"),
        help="ONNX quantization format (default qdq)",
    )
    p.add_argument(
        "--bench-batch", type=int, help="batch size for the speed comparison (default 16)"
    )
    p.add_argument("--bench-threads", type=int, help="ONNX Runtime threads for it (default 0: all)")
    p.add_argument("--bench-seconds", type=float, help="seconds each model is timed (default 3)")


def _add_quantize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="the FP32 model.onnx")
    p.add_argument(
        "--data", type=Path, required=True, help="the data folder the model was trained on"
    )
    p.add_argument(
        "--out", type=Path, help="INT8 model path (default: model.int8.onnx beside --model)"
    )
    p.add_argument(
        "--valid-pct", type=float, default=0.2, help="validation fraction when no split.json (0.2)"
    )
    p.add_argument(
        "--seed", type=int, default=42, help="split seed when no split.json (default 42)"
    )
    _add_int8_tuning(p)


def _missing_training_extra(command: str) -> str | None:
    """The install hint when torch/fastai/onnx are absent (an edge box), else ``None``."""
    import importlib.util

    if all(importlib.util.find_spec(name) is not None for name in _TRAIN_MODULES):
        return None
    return TRAIN_EXTRA_HINT.format(command=command)


def _prepare(command: str) -> str | None:
    hint = _missing_training_extra(command)
    if hint is None:
        import warnings

        import matplotlib

        # fastai scripts a layer with torch.jit at import; the deprecation is not ours to act on.
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning
        )

        # Before fastai imports pyplot: training boxes are headless, plots go to files.
        matplotlib.use("Agg")
    return hint


def handle_train(args: argparse.Namespace) -> int:
    """``bearwatch train``: returns 0, 1 (a check failed) or 2 (bad input or setup)."""
    hint = _prepare("train")
    if hint:
        print(hint, file=sys.stderr)
        return 2
    from training.config import make_config, read_config_file
    from training.errors import TrainingError

    try:
        file_values = read_config_file(args.config) if args.config else {}
        cfg = make_config(file_values, _overrides(args))
        from training.pipeline import run_training

        run = run_training(cfg)
    except TrainingError as exc:
        print(f"bearwatch train: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"finished: {run}")
    return 0


def handle_night_loop(args: argparse.Namespace) -> int:
    """``bearwatch study night-loop``: returns 0, or 2 for bad input (1: a training check failed)."""
    hint = _prepare("study")
    if hint:
        print(hint, file=sys.stderr)
        return 2
    import time
    from dataclasses import replace

    from training.errors import TrainingError
    from training.study.night_loop import PRESETS, STUDY_JSON, run_study

    if args.verdicts < 0 or args.audit_labels < 0:
        print("bearwatch study: budgets must be >= 0", file=sys.stderr)
        return 2
    params = replace(PRESETS[args.preset], seed=args.seed, verdicts=args.verdicts,
                     audit_labels=args.audit_labels)  # fmt: skip
    t0 = time.monotonic()
    try:
        out = run_study(args.out, params, overwrite=args.overwrite)
    except TrainingError as exc:
        print(f"bearwatch study: {exc}", file=sys.stderr)
        return exc.exit_code
    import json

    study = json.loads((out / STUDY_JSON).read_text())
    for side in ("before", "after"):
        print(f"{side:>6}: " + ", ".join(
            f"{k} {study[side][k]:.3f}" if study[side][k] is not None else f"{k} n/a"
            for k in ("night_recall", "day_recall", "night_precision", "day_precision",
                      "day_accuracy")))  # fmt: skip
    print(f"recommendation: {study['recommendation']['code']}: {study['recommendation']['text']}")
    print(f"wrote {out / STUDY_JSON} and {out / 'study.html'} in {time.monotonic() - t0:.0f} s")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (``None`` where a flag was not given)."""
    from dataclasses import fields

    from training.config import TrainConfig

    return {f.name: getattr(args, f.name, None) for f in fields(TrainConfig)}


def handle_quantize(args: argparse.Namespace) -> int:
    """``bearwatch quantize``: returns 0, or 2 for bad input."""
    hint = _prepare("quantize")
    if hint:
        print(hint, file=sys.stderr)
        return 2
    from training.errors import TrainingError
    from training.quantize import quantize_command

    try:
        quantize_command(args)
    except TrainingError as exc:
        print(f"bearwatch quantize: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def handle_ood_calibrate(args: argparse.Namespace) -> int:
    """``bearwatch ood-calibrate``: returns 0, or 2 for bad input (onnx is the only extra it needs)."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        print(TRAIN_EXTRA_HINT.format(command="ood-calibrate"), file=sys.stderr)
        return 2
    from monitor.errors import ModelError
    from training.ood import calibrate_model

    if not 0.5 <= args.tpr < 1.0:
        print(
            f"bearwatch ood-calibrate: --tpr must be in [0.5, 1), got {args.tpr}", file=sys.stderr
        )
        return 2
    try:
        stats = calibrate_model(
            args.model, args.images, args.out, args.method, args.tpr, args.valid_images
        )
    except (ModelError, ValueError, OSError) as exc:
        print(f"bearwatch ood-calibrate: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out}: {stats.method} feature statistics, D={stats.dim}, "
        f"threshold {stats.threshold:.4f} (passes {stats.tpr:.0%} of in-domain images)"
    )
    return 0
