"""`bearwatch export-dataset`: reviewed frames as class folders with a manifest, on a real store."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import pytest

from monitor.records import AuditSample, NewEvent
from monitor.report.dataset_export import (
    COLUMNS,
    MANIFEST,
    event_label,
    export_dataset,
    is_safe_label,
)
from monitor.store import ReviewStore
from tests.media import scene

T0 = 1_717_243_200.0  # 2024-06-01T12:00:00Z


def jpeg(kind: str, seed: int = 0) -> bytes:
    ok, buf = cv2.imencode(".jpg", scene(kind, seed=seed), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    ("label", "safe"),
    [("bear", True), ("black_bear", True), ("Elk-2", True), ("v1.2", True),
     ("", False), (".", False), ("..", False), ("../evil", False), ("a/b", False),
     ("a\\b", False), (".hidden", False), ("bear ", False), ("x" * 65, False), ("ours/..", False)],
)  # fmt: skip
def test_is_safe_label(label: str, safe: bool) -> None:
    assert is_safe_label(label) is safe


@pytest.mark.parametrize(
    ("status", "relabel", "rejected_as", "expected"),
    [
        ("confirmed", None, None, ("bear", "confirmed")),
        ("relabelled", "person", None, ("person", "relabelled")),
        ("relabelled", "other", None, (None, "not_a_class")),  # none of the model's labels
        ("rejected", None, None, (None, "rejected")),  # not a bear, but what then?
        ("rejected", None, "empty", ("empty", "rejected_as")),
        ("unsure", None, "empty", (None, "unsure")),
        ("pending", None, "empty", (None, "pending")),
    ],
)
def test_event_label(
    status: str, relabel: str | None, rejected_as: str | None, expected: tuple[Any, str]
) -> None:
    ev = {"label": "bear", "review_status": status, "relabel": relabel}
    assert event_label(ev, rejected_as) == expected


class Seeded:
    """A store with one alert or audit sample of each kind; ids by name."""

    def __init__(self, path: Path) -> None:
        self.store = ReviewStore(path)
        self.ids: dict[str, int] = {}
        self.jpegs: dict[str, bytes] = {}

    def alert(self, name: str, at: float, status: str | None, relabel: str | None = None,
              kind: str = "alert") -> None:  # fmt: skip
        self.jpegs[name] = jpeg("bear", seed=len(self.jpegs))
        ev = NewEvent(camera="gate", label="bear", kind=kind, start_at=at, end_at=at + 5,
                      peak_score=0.9, model_version="m-1", mode="shadow",
                      snapshot_jpeg=self.jpegs[name])  # fmt: skip
        event_id = self.store.add_event(ev)
        assert event_id is not None
        self.ids[name] = event_id
        if status:
            assert self.store.set_verdict(event_id, status, "ann", relabel=relabel)

    def audit(self, name: str, at: float, label: str | None) -> None:
        self.jpegs[name] = jpeg("empty", seed=len(self.jpegs))
        sample = AuditSample("creek", at, "random", "m-1", "empty", 0.05, {"bear": 0.05},
                             self.jpegs[name])  # fmt: skip
        sample_id = self.store.add_audit_sample(sample)
        assert sample_id is not None
        self.ids[name] = sample_id
        if label:
            assert self.store.label_audit_sample(sample_id, label, "bob")


@pytest.fixture
def seeded(tmp_path: Path) -> Any:
    s = Seeded(tmp_path / "bearwatch.db")
    s.alert("confirmed", T0, "confirmed")
    s.alert("relabelled", T0 + 10, "relabelled", relabel="person")
    s.alert("rejected", T0 + 20, "rejected")
    s.alert("unsure", T0 + 30, "unsure")
    s.alert("pending", T0 + 40, None)
    s.alert("drift", T0 + 50, "confirmed", kind="drift")  # not a class of the model
    s.alert("evil", T0 + 60, "relabelled", relabel="../evil")
    s.audit("empty", T0 + 70, "empty")
    s.audit("unlabelled", T0 + 80, None)
    s.audit("bad", T0 + 90, "bear/../../x")
    s.audit("unsure-audit", T0 + 100, "unsure")
    s.audit("other-audit", T0 + 110, "other")
    yield s
    s.store.close()


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / MANIFEST).open(newline="") as fh:
        return list(csv.DictReader(fh))


def files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MANIFEST}


def test_class_folders_manifest_and_skips(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "data"
    summary = export_dataset(seeded.store, out)
    ids = seeded.ids
    expected = {
        f"bear/alert-{ids['confirmed']}.jpg": "confirmed",
        f"person/alert-{ids['relabelled']}.jpg": "relabelled",
        f"empty/audit-{ids['empty']}.jpg": "empty",
    }
    assert files(out) == set(expected)
    for file, name in expected.items():
        assert (out / file).read_bytes() == seeded.jpegs[name]  # the stored snapshot, untouched
    assert summary.per_class == {"bear": 1, "empty": 1, "person": 1}
    assert (summary.written, summary.unchanged, summary.removed) == (3, 0, 0)
    assert summary.skipped == {
        "rejected": 1, "unsure": 1, "pending": 1, "unsafe_label": 2, "not_a_class": 2
    }  # fmt: skip
    rows = manifest(out)
    assert tuple(rows[0]) == COLUMNS
    by_file = {r["file"]: r for r in rows}
    assert by_file[f"person/alert-{ids['relabelled']}.jpg"] == {
        "file": f"person/alert-{ids['relabelled']}.jpg", "label": "person", "source": "alert",
        "source_id": str(ids["relabelled"]), "verdict": "relabelled", "camera": "gate",
        "time": "2024-06-01T12:00:10Z", "reviewer": "ann", "model_version": "m-1", "site": "",
    }  # fmt: skip
    assert by_file[f"empty/audit-{ids['empty']}.jpg"]["reviewer"] == "bob"
    assert by_file[f"empty/audit-{ids['empty']}.jpg"]["camera"] == "creek"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "x").exists()


def test_rejected_as_puts_rejections_under_a_class(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "data"
    summary = export_dataset(seeded.store, out, rejected_as="empty")
    assert f"empty/alert-{seeded.ids['rejected']}.jpg" in files(out)
    assert summary.per_class == {"bear": 1, "empty": 2, "person": 1}
    assert "rejected" not in summary.skipped
    with pytest.raises(ValueError, match="not a safe class folder name"):
        export_dataset(seeded.store, out, rejected_as="../empty")


def test_rerun_is_idempotent_and_follows_changed_verdicts(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "data"
    export_dataset(seeded.store, out)
    before = (files(out), (out / MANIFEST).read_text())
    again = export_dataset(seeded.store, out)
    assert (files(out), (out / MANIFEST).read_text()) == before
    assert (again.written, again.unchanged, again.removed) == (0, 3, 0)
    # A second opinion: the "bear" was a person after all; the confirmed one moves class.
    seeded.store.set_verdict(seeded.ids["confirmed"], "relabelled", "cat", relabel="person")
    moved = export_dataset(seeded.store, out)
    assert f"bear/alert-{seeded.ids['confirmed']}.jpg" not in files(out)
    assert f"person/alert-{seeded.ids['confirmed']}.jpg" in files(out)
    assert (moved.written, moved.removed) == (1, 1)
    assert moved.per_class == {"empty": 1, "person": 2}
    assert len(manifest(out)) == 3


def test_a_later_window_keeps_earlier_exports(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "data"
    export_dataset(seeded.store, out)
    (out / "notes.txt").write_text("a person's own file")  # never touched
    later = export_dataset(seeded.store, out, since=T0 + 65)  # only the audit samples
    assert later.per_class == {"bear": 1, "empty": 1, "person": 1}
    assert len(files(out)) == 4 and (out / "notes.txt").is_file()


def test_training_reads_the_folder(seeded: Seeded, tmp_path: Path) -> None:
    """The export is exactly what training's data scan accepts: class folders of readable images."""
    from training.dataset import scan_images

    out = tmp_path / "data"
    export_dataset(seeded.store, out)
    scan = scan_images(out)
    assert scan.per_class == {"bear": 1, "empty": 1, "person": 1}
    assert not scan.corrupt and not scan.not_images


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "export-dataset", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_cli_prints_counts_per_class(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "data"
    db = str(tmp_path / "bearwatch.db")
    proc = run_cli("--store", db, "--out", str(out), "--rejected-as", "empty")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"exported to {out}: 4 images in 3 classes"
    assert [line.split() for line in lines[1:4]] == [["bear", "1"], ["empty", "2"], ["person", "1"]]
    assert lines[4] == (
        "written 4, unchanged 0, removed 0; skipped: not_a_class 2, pending 1, unsafe_label 2, unsure 1"
    )
    assert lines[5] == f"manifest: {out / MANIFEST}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--store", "{d}/missing.db"), "export-dataset: no review store at {d}/missing.db\n"),
        (("--store", "{db}", "--since", "soon"), "export-dataset: bad date 'soon'"),
        (("--store", "{db}", "--rejected-as", "a/b"),
         "export-dataset: --rejected-as 'a/b' is not a safe class folder name\n"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2(
    seeded: Seeded, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    fill = {"d": str(tmp_path), "db": str(tmp_path / "bearwatch.db")}
    proc = run_cli(*(a.format(**fill) for a in args), "--out", str(tmp_path / "data"))
    assert proc.returncode == 2
    assert proc.stderr.startswith(message.format(**fill))
    assert not (tmp_path / "missing.db").exists()


def test_the_manifest_names_each_frames_site(tmp_path: Path) -> None:
    """A fleet's exports say which box stored each frame (``bearwatch train --split-by site``)."""
    out = tmp_path / "data"
    for site, seed in (("north", 1), ("south", 2)):
        store = ReviewStore(tmp_path / "fleet.db", site=site)
        ev = NewEvent("gate", "bear", "alert", T0 + seed, T0 + seed + 5, 0.9, "m-1", "shadow",
                      snapshot_jpeg=jpeg("bear", seed))  # fmt: skip
        event_id = store.add_event(ev)
        assert event_id is not None and store.set_verdict(event_id, "confirmed", "ann")
        store.close()
    store = ReviewStore(tmp_path / "fleet.db")
    try:
        export_dataset(store, out)
    finally:
        store.close()
    assert sorted(r["site"] for r in manifest(out)) == ["north", "south"]
    # A manifest written before sites (no site column) is still read, and rewritten with one.
    rows = manifest(out)
    with (out / MANIFEST).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[c for c in COLUMNS if c != "site"])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "site"} for r in rows)
    store = ReviewStore(tmp_path / "fleet.db")
    try:
        export_dataset(store, out)
    finally:
        store.close()
    assert sorted(r["site"] for r in manifest(out)) == ["north", "south"]
