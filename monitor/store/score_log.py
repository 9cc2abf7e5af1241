"""The score log: every classified frame's time, per-label scores, OOD score and night class, a few bytes a frame.

Kept beside the review store (``<db>.scores/<camera>/<YYYY-MM-DD>[.n].bwscores``),
one file per camera and UTC day, so retention is deleting whole files and a
week of a camera at 2 fps is a few tens of MB at most. A file starts with
one JSON header line (labels, model version, record layout), then
fixed-size little-endian records; a change of model (labels or version)
starts a new file. ``bearwatch levers`` replays these scores through the
real decision policy to predict what other settings would have done.

Writes are buffered per camera and flushed by the alert stage's periodic
tick, so logging costs the decision path one small ``bytes`` append.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

logger = logging.getLogger(__name__)

NIGHT_CLASSES = ("day", "night-ir", "low-light")
"""Night classes as stored: their index; -1 means unknown (a model or frame without the signal)."""

_SUFFIX = ".bwscores"
_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.bwscores$")


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One classified frame, as the alert stage hands it to the log."""

    camera: str
    at: float
    scores: np.ndarray  # float32 (C,), in the model's label order
    ood: float | None = None
    night: int = -1


@dataclass(frozen=True, slots=True)
class ScoreSeries:
    """A camera's logged frames over a time range, for one label set.

    Attributes:
        labels: the model's labels (column order of ``scores``).
        at: UTC epoch seconds per frame, ascending.
        scores: float32 (N, C).
        ood: float32 (N,), NaN where unknown.
        night: int8 (N,), -1 where unknown.
    """

    labels: tuple[str, ...]
    at: np.ndarray
    scores: np.ndarray
    ood: np.ndarray
    night: np.ndarray

    def __len__(self) -> int:
        return int(self.at.size)


def _dtype(n_labels: int) -> np.dtype:
    return np.dtype(
        [("at", "<f8"), ("scores", "<f4", (n_labels,)), ("ood", "<f4"), ("night", "i1")]
    )


class _Open:
    """One camera's file being written."""

    def __init__(self, path: Path, labels: tuple[str, ...], version: str) -> None:
        self.path, self.labels, self.version = path, labels, version
        self.day = path.name[:10]
        self.dtype = _dtype(len(labels))
        new = not path.exists()
        self.fh: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by ScoreLog.close
        if new:
            header = {"format": 1, "labels": list(labels), "model_version": version}
            self.fh.write((json.dumps(header) + "\n").encode())


class ScoreLog:
    """Appends and reads the per-camera score files below ``folder``.

    Args:
        folder: the log's folder (created when first written).
        keep_days: files older than this many days are deleted (0: keep everything).
    """

    def __init__(self, folder: Path, keep_days: int = 30) -> None:
        self.folder = Path(folder)
        self.keep_days = keep_days
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._model: tuple[tuple[str, ...], str] = ((), "")
        self._pruned_day = ""

    def set_model(self, labels: Sequence[str], model_version: str) -> None:
        """The labels and version of the rows that follow (a change starts new files)."""
        self._model = (tuple(labels), model_version)

    def append(self, row: ScoreRow) -> None:
        """Buffer one frame (never raises: a full disk costs the log, not the decision)."""
        labels, version = self._model
        if len(labels) != row.scores.shape[0]:
            labels = tuple(f"class{i}" for i in range(row.scores.shape[0]))
        try:
            with self._lock:
                f = self._file(row.camera, row.at, labels, version)
                rec = np.zeros((), dtype=f.dtype)
                rec["at"], rec["scores"] = row.at, row.scores
                rec["ood"] = math.nan if row.ood is None else row.ood
                rec["night"] = row.night
                f.fh.write(rec.tobytes())
        except OSError as exc:
            logger.error("score log: cannot write for camera %s: %s", row.camera, exc)

    def _file(self, camera: str, at: float, labels: tuple[str, ...], version: str) -> _Open:
        day = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
        f = self._open.get(camera)
        if f is not None and f.day == day and f.labels == labels and f.version == version:
            return f
        if f is not None:
            f.fh.close()
        folder = self.folder / camera
        folder.mkdir(parents=True, exist_ok=True)
        path, n = folder / f"{day}{_SUFFIX}", 0
        while path.exists() and _header(path) != (labels, version):
            n += 1
            path = folder / f"{day}.{n}{_SUFFIX}"
        self._open[camera] = f = _Open(path, labels, version)
        return f

    def flush(self, now: float | None = None) -> None:
        """Write buffered rows to disk; once a day, delete files past ``keep_days``."""
        self._flush_buffers()
        self._maybe_prune(time.time() if now is None else now)

    def _flush_buffers(self) -> None:
        with self._lock:
            for f in self._open.values():
                try:
                    f.fh.flush()
                except OSError as exc:
                    logger.error("score log: cannot flush %s: %s", f.path, exc)

    def close(self) -> None:
        with self._lock:
            for f in self._open.values():
                f.fh.close()
            self._open.clear()

    def _maybe_prune(self, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        if self.keep_days <= 0 or today == self._pruned_day or not self.folder.is_dir():
            return
        self._pruned_day = today
        cutoff = datetime.fromtimestamp(now - self.keep_days * 86400, UTC).strftime("%Y-%m-%d")
        for path in self.folder.glob(f"*/*{_SUFFIX}"):
            m = _NAME.match(path.name)
            if m and m.group(1) < cutoff:
                try:
                    path.unlink()
                except OSError as exc:
                    logger.warning("score log: cannot delete %s: %s", path, exc)

    def save_recommendation(self, camera: str, body: str) -> Path:
        """Keep the latest ``bearwatch levers`` recommendation of a camera (JSON), for the review page."""
        folder = self.folder / camera
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "recommendation.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body)
        tmp.replace(path)
        return path

    def recommendation(self, camera: str) -> dict[str, object] | None:
        """The latest recommendation saved for ``camera``, or None."""
        try:
            data = json.loads((self.folder / camera / "recommendation.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def cameras(self) -> list[str]:
        """Cameras with a score log."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir())

    def read(
        self, camera: str, since: float | None = None, until: float | None = None
    ) -> Iterator[ScoreSeries]:
        """The camera's frames in [since, until), one series per file (label set), oldest first."""
        self._flush_buffers()
        folder = self.folder / camera
        if not folder.is_dir():
            return
        for path in sorted(folder.glob(f"*{_SUFFIX}"), key=_order):
            series = _read(path)
            if series is None:
                continue
            keep = np.ones(len(series), dtype=bool)
            if since is not None:
                keep &= series.at >= since
            if until is not None:
                keep &= series.at < until
            if keep.any():
                yield ScoreSeries(
                    series.labels,
                    series.at[keep],
                    series.scores[keep],
                    series.ood[keep],
                    series.night[keep],
                )


def _order(path: Path) -> tuple[str, int]:
    m = _NAME.match(path.name)
    return (m.group(1), int(m.group(2) or 0)) if m else (path.name, 0)


def _header(path: Path) -> tuple[tuple[str, ...], str] | None:
    try:
        with open(path, "rb") as fh:
            head = json.loads(fh.readline())
        return tuple(head["labels"]), str(head["model_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read(path: Path) -> ScoreSeries | None:
    try:
        data = path.read_bytes()
        newline = data.index(b"\n")
        head = json.loads(data[:newline])
        labels = tuple(str(x) for x in head["labels"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("score log: skipping unreadable %s (%s)", path, exc)
        return None
    dtype = _dtype(len(labels))
    body = data[newline + 1 :]
    whole = len(body) - len(body) % dtype.itemsize  # a crash may leave half a record
    recs = np.frombuffer(body[:whole], dtype=dtype)
    return ScoreSeries(
        labels,
        recs["at"].astype(np.float64),
        recs["scores"].astype(np.float32),
        recs["ood"].astype(np.float32),
        recs["night"].astype(np.int8),
    )
