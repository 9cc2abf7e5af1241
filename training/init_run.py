"""``--init RUN_DIR``: start a run from a finished run's weights and label list (fine-tune the deployed model).

A finished run leaves ``weights.pth`` (the whole network's state dict, tensors
only, so loading it runs no code) and ``init.json`` (architecture, input size,
labels, model version) beside ``model.onnx``. ``--init`` reads ``init.json``
before anything is built: the new run takes the old run's architecture and
input size (an explicit, different ``--arch`` or ``--size`` is refused rather
than silently resized), and its data must hold exactly the old run's classes.

A label-set change is refused, not mapped: a head extended with a new class
would start that class from random weights while the body's features and the
other classes' calibration move under it, and a dropped class would silently
disappear from a deployed camera's alert labels. Both are decisions for a
person (train from scratch, or add the missing class's images, e.g. by merging
the run's own training data), so the refusal names the difference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import TrainingError

INIT_JSON = "init.json"
WEIGHTS_PTH = "weights.pth"
_STAGING_SUFFIX = ".incomplete"
_MARKER = ".bearwatch-run"


class InitError(TrainingError):
    """``--init`` names something that cannot be fine-tuned from."""


@dataclass(frozen=True, slots=True)
class InitRun:
    """What a finished run offers a new one: its folder, architecture, input size and labels."""

    path: Path
    arch: str
    size: int
    labels: tuple[str, ...]
    model_version: str

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS_PTH


def write_init_files(
    run_dir: Path, arch: str, size: int, labels: Sequence[str], model_version: str
) -> None:
    """Write ``init.json`` (``weights.pth`` is saved by the pipeline, which holds the model)."""
    info = {"arch": arch, "size": size, "labels": list(labels), "model_version": model_version,
            "weights": WEIGHTS_PTH}  # fmt: skip
    (run_dir / INIT_JSON).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def read_init_run(path: Path) -> InitRun:
    """Check that ``path`` is a finished run that can be fine-tuned from, and describe it.

    Raises:
        InitError: a one-line reason: not a folder, an unfinished run, not a run,
            a run made before ``--init`` existed, or an unreadable ``init.json``.
    """
    path = path.expanduser()
    if not path.is_dir():
        raise InitError(f"--init {path}: no such folder; pass a finished `bearwatch train` run")
    if path.name.endswith(_STAGING_SUFFIX) or (path / _MARKER).exists():
        raise InitError(
            f"--init {path} is an unfinished or failed run (see its FAILED.txt); "
            "pass the finished run folder"
        )
    info_path = path / INIT_JSON
    if not info_path.is_file():
        if (path / "model.onnx").is_file() and (path / "config.yaml").is_file():
            raise InitError(
                f"--init {path} is a run made before --init existed (no {INIT_JSON} / "
                f"{WEIGHTS_PTH}); retrain it once, or train without --init"
            )
        raise InitError(
            f"--init {path} is not a bearwatch training run (no {INIT_JSON}, config.yaml "
            "or model.onnx); pass the folder `bearwatch train --out` wrote"
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        run = InitRun(path.resolve(), str(info["arch"]), int(info["size"]),
                      tuple(str(x) for x in info["labels"]), str(info["model_version"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InitError(f"--init {path}: cannot read {INIT_JSON} ({exc})") from exc
    if not run.weights.is_file():
        raise InitError(f"--init {path}: {WEIGHTS_PTH} is missing; the run folder is incomplete")
    return run


def apply_init(values: dict[str, Any], explicit: Mapping[str, Any]) -> InitRun | None:
    """Fill ``arch`` and ``size`` from the ``--init`` run, refusing explicit settings that differ.

    Args:
        values: the merged settings (modified in place).
        explicit: the settings the user gave (config file and flags), to tell a
            deliberate ``--size`` from a default.

    Raises:
        InitError: see :func:`read_init_run`, or when ``--arch``/``--size`` differ from the run's.
    """
    if values.get("init") is None:
        return None
    run = read_init_run(Path(values["init"]))
    for name, theirs in (("arch", run.arch), ("size", run.size)):
        mine = explicit.get(name)
        if mine is not None and mine != theirs:
            raise InitError(
                f"--init {run.path} is a {run.arch} at {run.size} px; --{name} {mine} differs "
                f"(fine-tuning keeps the network and its input size): omit --{name} or train "
                "without --init"
            )
        values[name] = theirs
    if values.get("weights") is None:
        values["pretrained"] = False  # the run's weights replace ImageNet's
    return run


def check_labels(run: InitRun, data_labels: Sequence[str], data: Path) -> None:
    """Refuse data whose classes are not exactly the run's (see the module docstring for why).

    Raises:
        InitError: naming the classes added and missing.
    """
    theirs, mine = set(run.labels), set(data_labels)
    if theirs == mine:
        return
    parts = []
    if mine - theirs:
        parts.append(f"new {', '.join(sorted(mine - theirs))}")
    if theirs - mine:
        parts.append(f"missing {', '.join(sorted(theirs - mine))}")
    raise InitError(
        f"the classes under {data} ({', '.join(sorted(mine))}) differ from the --init run's "
        f"({', '.join(run.labels)}): {'; '.join(parts)}; fine-tuning keeps the model's label list, "
        "so add the missing classes' images (e.g. merge the run's training data) or train "
        "without --init"
    )
