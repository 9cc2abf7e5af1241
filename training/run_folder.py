"""The run folder: built under a staging name and renamed into place only when everything passed.

A run that crashes, is interrupted or fails its parity check must not leave a
folder that looks like a finished run with a ``model.onnx`` in it. Work happens
in ``<out>.incomplete/``; success renames it to ``<out>``; failure leaves it
with ``FAILED.txt`` saying why, for inspection.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from training.errors import TrainingError

logger = logging.getLogger(__name__)

MARKER = ".bearwatch-run"
FAILED_TXT = "FAILED.txt"
STAGING_SUFFIX = ".incomplete"
_VERSIONED = (
    "torch",
    "torchvision",
    "fastai",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "numpy",
    "pillow",
    "bearwatch",
)


class RunFolder:
    """One run's output folder and its staging twin.

    Args:
        out: where the finished run goes.
        overwrite: replace an existing finished run at ``out`` (only once the new one succeeds).
    """

    def __init__(self, out: Path, overwrite: bool = False) -> None:
        self.out = out.resolve()
        self.staging = self.out.with_name(self.out.name + STAGING_SUFFIX)
        self.overwrite = overwrite

    def check(self) -> None:
        """Refuse early when ``out`` exists (without ``overwrite``) or the staging name is taken."""
        if self.out.exists() and not self.overwrite:
            raise TrainingError(
                f"run folder {self.out} already exists; choose another --out or pass --overwrite"
            )
        if self.staging.exists() and not (self.staging / MARKER).exists():
            raise TrainingError(
                f"{self.staging} exists and is not a bearwatch run; move it away or choose another --out"
            )

    def start(self) -> Path:
        """Create a fresh staging folder (removing one a crashed run left) and return it."""
        self.check()
        if self.staging.exists():
            logger.info("removing %s left by an earlier unfinished run", self.staging)
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        (self.staging / MARKER).write_text("bearwatch training run in progress\n")
        return self.staging

    def fail(self, reason: str) -> None:
        """Record why the run stopped; the staging folder stays for inspection."""
        if self.staging.is_dir():
            (self.staging / FAILED_TXT).write_text(reason.rstrip() + "\n", encoding="utf-8")

    def finish(self) -> Path:
        """Move the staging folder to ``out`` (replacing an old run if allowed) and return ``out``."""
        old = None
        if self.out.exists():
            old = self.out.with_name(f"{self.out.name}.old-{int(time.time())}")
            self.out.rename(old)
        (self.staging / MARKER).unlink()
        self.staging.rename(self.out)
        if old is not None:
            shutil.rmtree(old)
        return self.out


def versions() -> dict[str, str]:
    """Python, platform and package versions, for reproducing a run."""
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def write_json(path: Path, data: Any) -> None:
    """Write pretty, stable JSON."""
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_yaml(path: Path, data: Any) -> None:
    """Write YAML in the order given (a config reads best in its declared order)."""
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@contextmanager
def log_to_file(path: Path) -> Iterator[None]:
    """Copy the run's log records (at the level ``--log-level`` set) into ``path`` while the block runs."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
