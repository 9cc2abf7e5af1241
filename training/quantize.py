"""INT8 static quantization with ONNX Runtime, and an honest FP32-vs-INT8 comparison.

Calibration images go through ``monitor.model.preprocess`` into the uint8 graph
input, exactly like camera frames, so the activation ranges ONNX Runtime
measures are the ranges the edge will see. Weights are quantized per channel
(int8), activations as uint8: the combination x86 VNNI kernels run fastest.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from monitor.model.metadata import PREFIX, ModelMetadata
from monitor.model.onnx import OnnxClassifier
from monitor.model.preprocess import file_to_input
from training.errors import TrainingError

logger = logging.getLogger(__name__)

INT8_ONNX = "model.int8.onnx"
INT8_JSON = "int8.json"
MAX_DROP_POINTS = 1.0
MIN_SPEEDUP = 2.0
_FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}


@dataclass(frozen=True, slots=True)
class Bench:
    """How throughput is measured: batch size, intra-op threads (0: one per core), seconds per model."""

    batch: int = 16
    threads: int = 0
    seconds: float = 3.0


class QuantizeError(TrainingError):
    """The model cannot be quantized as asked."""


class ImageCalibration(CalibrationDataReader):
    """Feeds calibration batches of preprocessed images to ``quantize_static``."""

    def __init__(
        self, files: Sequence[Path], meta: ModelMetadata, input_name: str, batch: int = 16
    ) -> None:
        self._batches = self._iterate(list(files), meta, input_name, batch)

    @staticmethod
    def _iterate(
        files: list[Path], meta: ModelMetadata, input_name: str, batch: int
    ) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            x = np.stack([file_to_input(f, meta.input_hw, meta.resize_method) for f in chunk])
            yield {input_name: x}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_model(fp32: Path, out: Path, calib_files: Sequence[Path], fmt: str = "qdq") -> Path:
    """Write an INT8 copy of ``fp32`` to ``out``, calibrated on ``calib_files``, metadata kept.

    The model version gains an ``-int8`` suffix so events record which file ran.

    Raises:
        QuantizeError: for an unknown format or no calibration images.
    """
    if fmt not in _FORMATS:
        raise QuantizeError(
            f"quantization format {fmt!r} is unknown; choose one of {', '.join(_FORMATS)}"
        )
    if not calib_files:
        raise QuantizeError("no calibration images; INT8 calibration needs training images")
    clf = OnnxClassifier(fp32)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp_dir:
        prepped, quantized = Path(tmp_dir) / "prepped.onnx", Path(tmp_dir) / "int8.onnx"
        # Shape inference and graph fusion (conv+bn etc.) first, as ONNX Runtime recommends.
        quant_pre_process(os.fspath(fp32), os.fspath(prepped), skip_symbolic_shape=True)
        quantize_static(
            os.fspath(prepped),
            os.fspath(quantized),
            ImageCalibration(calib_files, clf.meta, clf.session.get_inputs()[0].name),
            quant_format=_FORMATS[fmt],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_float_nodes(prepped),
        )
        _copy_metadata(fp32, quantized, clf.meta.model_version + "-int8")
        quantized.replace(out)
    out.chmod(0o644)
    return out


def _float_nodes(path: Path) -> list[str]:
    """Nodes kept in float: the output softmax (probabilities need their resolution near 0
    and 1) and the head's BatchNorm1d layers (not fusable into the Gemm after them; cheap)."""
    keep = {"Softmax", "BatchNormalization"}
    return [n.name for n in onnx.load(os.fspath(path)).graph.node if n.op_type in keep]


def _copy_metadata(src: Path, dst: Path, version: str) -> None:
    props = {p.key: p.value for p in onnx.load(os.fspath(src)).metadata_props}
    props[PREFIX + "model_version"] = f'"{version}"'
    model = onnx.load(os.fspath(dst))
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "bearwatch"
    onnx.save(model, os.fspath(dst))


def evaluate(
    model: Path, files: Sequence[Path], targets: Sequence[int], batch: int = 32
) -> tuple[float, np.ndarray]:
    """Top-1 accuracy of ``model`` on labelled files through the edge preprocessing; also the probs."""
    clf = OnnxClassifier(model, warmup_batch=batch)
    probs = []
    for start in range(0, len(files), batch):
        x = np.stack(
            [
                file_to_input(f, clf.input_hw, clf.meta.resize_method)
                for f in files[start : start + batch]
            ]
        )
        probs.append(clf.predict(x))
    out = np.concatenate(probs)
    return float(np.mean(out.argmax(axis=1) == np.asarray(targets))), out


def throughputs(models: Sequence[Path], bench: Bench, rounds: int = 3) -> list[float]:
    """Images per second of ``OnnxClassifier.predict`` for each model, at a fixed batch and thread count.

    Inference only (preprocessing excluded), on a fixed random batch, after the
    classifier's own warm-up. The models take turns over ``rounds`` rounds and
    each keeps its best round, so a burst of other load on a shared machine
    lands on both rather than skewing the ratio.
    """
    classifiers = [
        OnnxClassifier(m, threads=bench.threads, warmup_batch=bench.batch) for m in models
    ]
    x = np.random.default_rng(0).integers(
        0, 256, size=(bench.batch, *classifiers[0].input_hw, 3), dtype=np.uint8
    )
    best = [0.0] * len(classifiers)
    for _ in range(rounds):
        for i, clf in enumerate(classifiers):
            best[i] = max(best[i], _rate(clf, x, bench.seconds / rounds))
    return best


def _rate(clf: OnnxClassifier, x: np.ndarray, seconds: float) -> float:
    clf.predict(x)
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs < 3:
        clf.predict(x)
        runs += 1
    return runs * len(x) / elapsed


def compare_models(
    fp32: Path,
    int8: Path,
    files: Sequence[Path],
    targets: Sequence[int],
    bench: Bench,
) -> dict[str, Any]:
    """Accuracy, agreement and throughput of the FP32 and INT8 models side by side."""
    acc32, p32 = evaluate(fp32, files, targets)
    acc8, p8 = evaluate(int8, files, targets)
    ips32, ips8 = throughputs([fp32, int8], bench)
    return {
        "n_valid": len(files),
        "fp32": {
            "path": fp32.name,
            "accuracy": acc32,
            "images_per_s": ips32,
            "size_mb": fp32.stat().st_size / 1e6,
        },
        "int8": {
            "path": int8.name,
            "accuracy": acc8,
            "images_per_s": ips8,
            "size_mb": int8.stat().st_size / 1e6,
        },
        "accuracy_drop_points": 100 * (acc32 - acc8),
        "speedup": ips8 / ips32,
        "top1_agreement": float(np.mean(p32.argmax(axis=1) == p8.argmax(axis=1))),
        "max_abs_diff": float(np.abs(p32 - p8).max()),
        "batch": bench.batch,
        "threads": bench.threads or os.cpu_count(),
        "seconds_per_model": bench.seconds,
    } | _goals(100 * (acc32 - acc8), ips8 / ips32)


def _goals(drop_points: float, speedup: float) -> dict[str, Any]:
    """The project's INT8 goals and whether this model met them (reported, never enforced)."""
    return {
        "goals": {"max_accuracy_drop_points": MAX_DROP_POINTS, "min_speedup": MIN_SPEEDUP},
        "goals_met": {"accuracy": drop_points <= MAX_DROP_POINTS, "speed": speedup >= MIN_SPEEDUP},
    }


def format_table(report: dict[str, Any]) -> str:
    """The comparison as a small text table."""
    lines = [f"{'model':<8}{'accuracy':>10}{'images/s':>12}{'size MB':>10}"]
    for name in ("fp32", "int8"):
        r = report[name]
        lines.append(
            f"{name:<8}{r['accuracy']:>10.4f}{r['images_per_s']:>12.1f}{r['size_mb']:>10.2f}"
        )
    lines.append(
        f"INT8: {report['accuracy_drop_points']:+.2f} accuracy points lost, {report['speedup']:.2f}x throughput, "
        f"top-1 agreement {report['top1_agreement']:.4f} over {report['n_valid']} validation images "
        f"(batch {report['batch']}, {report['threads']} threads)"
    )
    return "\n".join(lines)


class _DropShapeTensorWarnings(logging.Filter):
    """ONNX Runtime's quantizer warns (on the root logger) for every int64 shape tensor it
    rightly leaves alone; dozens of those lines would bury the run's own log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Inference failed or unsupported type to quantize")


def labelled(files: Sequence[Path], labels: Sequence[str]) -> list[int]:
    """Class indices for files labelled by their folder name.

    Raises:
        QuantizeError: for a folder that is not one of the model's labels.
    """
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({f.parent.name for f in files} - set(index))
    if unknown:
        raise QuantizeError(
            f"images in class folder(s) {', '.join(unknown)} are not among the model's labels "
            f"{list(labels)}; pass the --data folder the model was trained on"
        )
    return [index[f.parent.name] for f in files]


def quantize_and_compare(
    fp32: Path,
    train_files: Sequence[Path],
    valid_files: Sequence[Path],
    fmt: str,
    calib_images: int,
    bench: Bench,
    seed: int,
    out: Path | None = None,
) -> dict[str, Any]:
    """Quantize ``fp32`` (to ``model.int8.onnx`` beside it unless ``out``), compare, write ``int8.json``.

    Returns:
        The comparison report (also printed as a table).
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_files), size=min(calib_images, len(train_files)), replace=False)
    calib = [train_files[i] for i in sorted(pick)]
    out = out or fp32.with_name(INT8_ONNX)
    root = logging.getLogger()
    drop = _DropShapeTensorWarnings()
    root.addFilter(drop)
    try:
        logger.info(
            "quantizing %s (%s, per-channel) on %d calibration images", fp32, fmt, len(calib)
        )
        quantize_model(fp32, out, calib, fmt)
    finally:
        root.removeFilter(drop)
    labels = OnnxClassifier(fp32).labels
    report = compare_models(fp32, out, valid_files, labelled(valid_files, labels), bench)
    report.update(format=fmt, per_channel=True, n_calibration=len(calib))
    (out.parent / INT8_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(format_table(report), flush=True)
    if report["speedup"] < 1.0:
        logger.warning(
            "INT8 is slower than FP32 for this model on this CPU (%.2fx); deploy %s",
            report["speedup"],
            fp32.name,
        )
    return report


def saved_split(
    model: Path, data: Path, files: Sequence[Path]
) -> tuple[list[Path], list[Path]] | None:
    """The training run's own train/valid split (``split.json`` beside the model), if it is for ``data``."""
    split_file = model.parent / "split.json"
    if not split_file.is_file():
        return None
    split = json.loads(split_file.read_text(encoding="utf-8"))
    if Path(split.get("data", "")) != data.resolve():
        logger.warning(
            "%s is for %s, not %s; splitting afresh", split_file, split.get("data"), data
        )
        return None
    present = {f.resolve() for f in files}
    train = [data.resolve() / p for p in split["train"] if data.resolve() / p in present]
    valid = [data.resolve() / p for p in split["valid"] if data.resolve() / p in present]
    logger.info("using the training run's split from %s", split_file)
    return train, valid


def random_split(
    files: Sequence[Path], valid_pct: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """A seeded split for a model without its run folder (not fastai's; the images may overlap its training set)."""
    order = np.random.default_rng(seed).permutation(len(files))
    cut = max(1, int(valid_pct * len(files)))
    return [files[i] for i in sorted(order[cut:])], [files[i] for i in sorted(order[:cut])]


def quantize_command(args: Any) -> dict[str, Any]:
    """``bearwatch quantize``: quantize ``args.model`` with images from ``args.data`` and compare.

    Raises:
        training.errors.TrainingError: for a missing model or an unusable data folder.
    """
    from training.dataset import scan_images

    if not args.model.is_file():
        raise QuantizeError(
            f"model {args.model} does not exist; pass --model the FP32 model.onnx of a run"
        )
    scan = scan_images(args.data)
    split = saved_split(args.model, args.data, scan.files)
    train, valid = split or random_split(scan.files, args.valid_pct, args.seed)
    if not train or not valid:
        raise QuantizeError(
            f"too few images under {args.data} to calibrate and validate; add images"
        )
    return quantize_and_compare(
        args.model,
        train,
        valid,
        fmt=args.quant_format or "qdq",
        calib_images=args.calib_images or 200,
        bench=Bench(args.bench_batch or 16, args.bench_threads or 0, args.bench_seconds or 3.0),
        seed=args.seed,
        out=args.out,
    )
