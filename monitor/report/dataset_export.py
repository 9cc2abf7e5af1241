"""Reviewed frames back to training: class folders ``DIR/<label>/<source>-<id>.jpg`` plus a manifest.

The folder is what ``bearwatch train --data DIR`` reads. What goes where:

* a confirmed alert → its own label;
* a relabelled alert → the reviewer's label;
* a rejected alert → skipped: the snapshot is *not* the alert label, but what
  it is instead is unknown — unless ``rejected_as`` names a class for it
  (e.g. ``empty`` at a site where rejections are nearly always empty scenes);
* unsure and pending alerts → skipped (nobody knows what they show);
* a labelled audit sample → the label the human gave it;
* "other" (none of the model's labels), as a relabel or an audit label → skipped.

Re-running into the same folder is idempotent: a file whose bytes are already
there is left alone, and a frame whose verdict changed since the last export
moves to its new class (its old file, listed in the previous manifest, is
removed) instead of sitting in two classes at once. Frames outside this run's
window keep their manifest rows and files.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.report.source import DatasetSource

logger = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
COLUMNS = ("file", "label", "source", "source_id", "verdict", "camera", "time", "reviewer",
           "model_version", "site")  # fmt: skip
# A label becomes a folder name: letters, digits, "_", "-", "." — never a path
# separator, never "." or "..", never hidden (training skips dot-folders).
SAFE_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Answers that are not a class of their own: "other" is the review page's
# "none of the model's labels", whose true class is as unknown as "unsure".
NOT_A_CLASS = frozenset({"other", "unsure", "unknown"})


def is_safe_label(label: str) -> bool:
    """True when ``label`` can be used as a class folder name as it is."""
    return bool(SAFE_LABEL.match(label))


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One exported image, as written to the manifest."""

    file: str  # relative to the export folder: <label>/<source>-<id>.jpg
    label: str
    source: str  # "alert" or "audit"
    source_id: int
    verdict: str
    camera: str
    time: str
    reviewer: str
    model_version: str
    site: str = ""  # the box that stored it (``bearwatch train --split-by site``)


@dataclass(slots=True)
class ExportSummary:
    """What an export did. ``per_class`` counts every image now in the folder's manifest."""

    per_class: dict[str, int] = field(default_factory=dict)
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def event_label(event: Mapping[str, Any], rejected_as: str | None) -> tuple[str | None, str]:
    """The class an alert's snapshot belongs to (None: not exported) and why, from its verdict."""
    status = event["review_status"]
    if status == "confirmed":
        return event["label"], status
    if status == "relabelled":
        if event["relabel"] in NOT_A_CLASS:
            return None, "not_a_class"
        return event["relabel"], status
    if status == "rejected":
        return rejected_as, "rejected_as" if rejected_as else "rejected"
    return None, status


def export_dataset(
    store: DatasetSource,
    out: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    rejected_as: str | None = None,
    tick: Callable[[], None] | None = None,
) -> ExportSummary:
    """Write the reviewed frames in [since, until) to ``out`` as class folders with a manifest.

    Args:
        tick: called once per reviewed frame looked at (the CLI's progress counter).

    Raises:
        ValueError: when ``rejected_as`` is not a safe folder name.
    """
    if rejected_as is not None and not is_safe_label(rejected_as):
        raise ValueError(f"--rejected-as {rejected_as!r} is not a safe class folder name")
    out.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    looked_at: set[tuple[str, int]] = set()
    rows: list[ExportRow] = []
    for key, row, jpeg in _candidates(store, since, until, rejected_as, summary):
        if tick is not None:
            tick()
        looked_at.add(key)
        if row is None:
            continue
        if jpeg is None:
            summary.skipped["no_snapshot"] += 1
            continue
        rows.append(row)
        if _write_if_changed(out / row.file, jpeg):
            summary.written += 1
        else:
            summary.unchanged += 1
    kept = _reconcile(out, _read_manifest(out), looked_at, {r.file for r in rows}, summary)
    final = sorted([*kept, *rows], key=lambda r: (r.label, r.file))
    _write_manifest(out, final)
    summary.per_class = dict(sorted(Counter(r.label for r in final).items()))
    return summary


def _candidates(
    store: DatasetSource,
    since: float | None,
    until: float | None,
    rejected_as: str | None,
    summary: ExportSummary,
) -> Iterator[tuple[tuple[str, int], ExportRow | None, bytes | None]]:
    """Every alert and labelled audit sample in the window: (key, row or None, snapshot)."""
    for ev in store.iter_events(kind="alert", since=since, until=until):
        label, verdict = event_label(ev, rejected_as)
        key = ("alert", int(ev["id"]))
        row = _row(key, label, verdict, ev["camera"], ev["start_at"], ev["reviewer"],
                   ev["model_version"], summary, str(ev.get("site") or ""))  # fmt: skip
        yield key, row, store.get_snapshot(key[1]) if row else None
    for a in _labelled_audits(store, since, until):
        key = ("audit", int(a["id"]))
        label = None if a["label"] in NOT_A_CLASS else a["label"]
        verdict = "audit_label" if label else "not_a_class"
        row = _row(key, label, verdict, a["camera"], a["captured_at"], a["labelled_by"],
                   a["model_version"], summary, str(a.get("site") or ""))  # fmt: skip
        yield key, row, store.get_audit_snapshot(key[1]) if row else None


def _row(
    key: tuple[str, int],
    label: str | None,
    verdict: str,
    camera: str,
    at: float,
    reviewer: str | None,
    model_version: str,
    summary: ExportSummary,
    site: str = "",
) -> ExportRow | None:
    if label is None:
        summary.skipped[verdict] += 1
        return None
    if not is_safe_label(label):
        logger.warning("export: %s %d has an unsafe label %r; skipped", key[0], key[1], label)
        summary.skipped["unsafe_label"] += 1
        return None
    source, sid = key
    time = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return ExportRow(f"{label}/{source}-{sid}.jpg", label, source, sid, verdict, camera, time,
                     reviewer or "", model_version, site)  # fmt: skip


def _labelled_audits(
    store: DatasetSource, since: float | None, until: float | None
) -> Iterator[dict[str, Any]]:
    before: int | None = None
    while True:
        page = store.list_audit_samples(
            labelled=True, since=since, until=until, limit=1000, before_id=before
        )
        yield from page
        if len(page) < 1000:
            return
        before = int(page[-1]["id"])


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless the file already holds exactly it; True when written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def _reconcile(
    out: Path,
    previous: list[ExportRow],
    looked_at: set[tuple[str, int]],
    current: set[str],
    summary: ExportSummary,
) -> list[ExportRow]:
    """Previous manifest rows to keep; stale files of re-examined frames are deleted.

    A row is stale when this run looked at its frame and now puts it elsewhere
    (or nowhere). Only files the previous manifest names, inside ``out``, are
    ever deleted: nothing a person put in the folder by hand.
    """
    kept: list[ExportRow] = []
    root = out.resolve()
    for row in previous:
        if row.file in current:
            continue  # rewritten by this run
        if (row.source, row.source_id) not in looked_at:
            if (out / row.file).is_file():
                kept.append(row)
            continue
        path = (out / row.file).resolve()
        ours = row.file == f"{row.label}/{row.source}-{row.source_id}.jpg" and is_safe_label(
            row.label
        )
        if ours and path.is_relative_to(root) and path.is_file():
            path.unlink()
            summary.removed += 1
    return kept


def _read_manifest(out: Path) -> list[ExportRow]:
    path = out / MANIFEST
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        rows = []
        for rec in csv.DictReader(fh):
            try:
                # A manifest from before sites has no site column: "".
                values = {c: str(rec[c]) for c in COLUMNS if c not in ("source_id", "site")}
                values["site"] = str(rec.get("site") or "")
                rows.append(ExportRow(**values, source_id=int(rec["source_id"])))
            except (TypeError, ValueError, KeyError):
                logger.warning("export: ignoring a malformed manifest row in %s: %s", path, rec)
        return rows


def _write_manifest(out: Path, rows: list[ExportRow]) -> None:
    tmp = out / f".{MANIFEST}.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    os.replace(tmp, out / MANIFEST)
