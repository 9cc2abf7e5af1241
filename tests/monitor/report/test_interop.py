"""`bearwatch export`: a Camtrap DP package checked by an independent reader (frictionless) and the standard's
field list, and MegaDetector batch output; existing output is never overwritten without --force.

What is checked for Camtrap DP (its JSON profile and table schemas are URLs this machine cannot fetch):
frictionless validates the package and every table against the schemas the package declares (types,
required, ranges, enums, primary and foreign keys); ``CAMTRAP_REQUIRED`` below, transcribed from the
Camtrap DP 1.0 table schemas independently of the exporter, checks that every column the standard
requires is present with the standard's type and filled in every row, and that every column written
is one the standard defines.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from frictionless import Package, validate

from monitor.records import AuditSample, NewEvent
from monitor.store import ReviewStore
from tests.monitor.report.test_report import jpeg

T0 = 1_717_243_200.0  # 2024-06-01T12:00:00Z

# Camtrap DP 1.0: (table, field) → type, for the fields the standard marks required.
CAMTRAP_REQUIRED = {
    "deployments": {"deploymentID": "string", "latitude": "number", "longitude": "number",
                    "deploymentStart": "datetime", "deploymentEnd": "datetime"},
    "media": {"mediaID": "string", "deploymentID": "string", "timestamp": "datetime",
              "filePath": "string", "filePublic": "boolean", "fileMediatype": "string"},
    "observations": {"observationID": "string", "deploymentID": "string",
                     "eventStart": "datetime", "eventEnd": "datetime",
                     "observationLevel": "string", "observationType": "string"},
}  # fmt: skip
# Every field Camtrap DP 1.0 defines per table (an exporter may leave optional ones out).
CAMTRAP_FIELDS = {
    "deployments": set(CAMTRAP_REQUIRED["deployments"]) | {
        "locationID", "locationName", "coordinateUncertainty", "cameraID", "cameraModel",
        "cameraDelay", "cameraHeight", "cameraDepth", "cameraTilt", "cameraHeading",
        "detectionDistance", "timestampIssues", "baitUse", "featureType", "habitat",
        "deploymentGroups", "deploymentTags", "deploymentComments"},
    "media": set(CAMTRAP_REQUIRED["media"]) | {"captureMethod", "fileName", "exifData",
                                               "favorite", "mediaComments"},
    "observations": set(CAMTRAP_REQUIRED["observations"]) | {
        "mediaID", "eventID", "cameraSetupType", "scientificName", "count", "lifeStage", "sex",
        "behavior", "individualID", "individualPositionRadius", "individualPositionAngle",
        "individualSpeed", "bboxX", "bboxY", "bboxWidth", "bboxHeight", "classificationMethod",
        "classifiedBy", "classificationTimestamp", "classificationProbability",
        "observationTags", "observationComments"},
}  # fmt: skip
OBSERVATION_TYPES = {"animal", "human", "vehicle", "blank", "unknown", "unclassified"}


def _event(store: ReviewStore, camera: str, label: str, at: float, status: str | None = None,
           relabel: str | None = None, box: list[float] | None = None) -> int:  # fmt: skip
    ev = NewEvent(camera=camera, label=label, kind="alert", start_at=at, end_at=at + 20,
                  peak_score=0.91, model_version="m-7", mode="shadow", snapshot_jpeg=jpeg(),
                  details={"box": box} if box else {})  # fmt: skip
    event_id = store.add_event(ev)
    assert event_id is not None
    if status:
        reason = None if status == "confirmed" else "wrong-class"
        store.set_verdict(event_id, status, "ann", reason, None, relabel)
    return event_id


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("interop") / "bw.db"
    store = ReviewStore(path)
    try:
        _event(store, "gate", "bear", T0, "confirmed", box=[0.1, 0.2, 0.3, 0.4])
        _event(store, "gate", "bear", T0 + 60, "rejected")
        _event(store, "gate", "bear", T0 + 120, "relabelled", relabel="person")
        _event(store, "creek", "bear", T0 + 180)  # pending
        store.add_event(NewEvent(camera="gate", label="dark", kind="drift", start_at=T0 + 5,
                                 end_at=None, peak_score=0.0, model_version="m-7", mode="shadow"))  # fmt: skip
        for i, label in enumerate(["bear", None, "empty"]):
            sid = store.add_audit_sample(AuditSample("creek", T0 + 300 + i, "random", "m-7", "empty",
                                                     0.1, {"bear": 0.1, "empty": 0.9}, jpeg()))  # fmt: skip
            if label and sid:
                store.label_audit_sample(sid, label, "bob")
    finally:
        store.close()
    return path


def bearwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "export", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


LOCATIONS = ("--location", "gate=46.5,7.9", "--location", "creek=46.6,8.1")


@pytest.fixture(scope="module")
def package(db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("camtrap") / "pkg"
    proc = bearwatch("--store", str(db), "--format", "camtrap-dp", str(out), *LOCATIONS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"Camtrap DP package in {out}: 2 deployments, 7 media (7 images), 7 observations"
    )
    return out


def rows(package: Path, table: str) -> list[dict[str, str]]:
    with (package / f"{table}.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def offline(package: Path) -> Path:
    """The descriptor without its profile URL, which frictionless would try (and fail) to fetch."""
    meta = json.loads((package / "datapackage.json").read_text())
    del meta["profile"]
    path = package / "datapackage.offline.json"
    path.write_text(json.dumps(meta))
    return path


def test_frictionless_finds_the_package_valid(package: Path) -> None:
    report = validate(str(offline(package)))
    errors = [e.message for task in report.tasks for e in task.errors] + [
        e.message for e in report.errors
    ]
    assert report.valid, errors
    assert {t.name for t in report.tasks} == {"deployments", "media", "observations"}
    assert all(t.stats["rows"] > 0 for t in report.tasks)


def test_tables_have_the_camtrap_dp_columns_types_and_required_values(package: Path) -> None:
    pkg = Package(str(offline(package)))
    meta = json.loads((package / "datapackage.json").read_text())
    assert meta["profile"].endswith("/camtrap-dp/1.0/camtrap-dp-profile.json")
    for key in ("name", "created", "contributors", "project", "spatial", "temporal", "taxonomic"):
        assert meta[key], key
    assert meta["project"]["samplingDesign"] in {"simpleRandom", "systematicRandom",
                                                 "clusteredRandom", "experimental", "targeted",
                                                 "opportunistic"}  # fmt: skip
    for table, required in CAMTRAP_REQUIRED.items():
        schema = pkg.get_resource(table).schema
        types = {f.name: f.type for f in schema.fields}
        assert set(types) <= CAMTRAP_FIELDS[table], set(types) - CAMTRAP_FIELDS[table]
        for name, kind in required.items():
            assert types.get(name) == kind, (table, name)
            assert schema.get_field(name).required, (table, name)
        for row in rows(package, table):
            assert all(row[name] for name in required), (table, row)
            assert list(row) == list(types)  # the CSV header is the declared schema's order


def test_observations_say_who_classified_what(package: Path) -> None:
    obs = {o["mediaID"]: o for o in rows(package, "observations")}
    media = {m["mediaID"]: m for m in rows(package, "media")}
    assert set(obs) == set(media) and all(
        Path(package, m["filePath"]).is_file() for m in media.values()
    )
    assert {o["observationType"] for o in obs.values()} <= OBSERVATION_TYPES
    confirmed = obs["event-1"]
    assert (confirmed["observationType"], confirmed["scientificName"]) == ("animal", "Ursus")
    assert (confirmed["classificationMethod"], confirmed["classifiedBy"]) == ("human", "ann")
    assert [confirmed[k] for k in ("bboxX", "bboxY", "bboxWidth", "bboxHeight")] == [
        "0.1", "0.2", "0.3", "0.4"
    ]  # fmt: skip
    assert obs["event-2"]["observationType"] == "unknown"  # rejected: not a bear, but what?
    assert obs["event-3"]["observationType"] == "human"  # relabelled to person
    pending = obs["event-4"]
    assert (pending["classificationMethod"], pending["classificationProbability"]) == (
        "machine", "0.91"
    )  # fmt: skip
    audit = [o for k, o in obs.items() if k.startswith("audit-")]
    assert sorted(o["observationType"] for o in audit) == ["animal", "blank", "blank"]
    assert "event-5" not in obs  # drift events have no animal frame
    assert {d["deploymentID"]: (d["latitude"], d["longitude"]) for d in rows(package, "deployments")} == {
        "creek": ("46.6", "8.1"), "gate": ("46.5", "7.9")
    }  # fmt: skip


def test_a_folder_that_is_not_empty_is_refused_without_force(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    proc = bearwatch("--store", str(db), "--format", "camtrap-dp", str(out), *LOCATIONS)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == f"export: {out} exists and is not empty; pass --force to replace it"
    )
    assert (out / "notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1
    proc = bearwatch("--store", str(db), "--format", "camtrap-dp", str(out), *LOCATIONS, "--force")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "notes.txt").exists() and (out / "datapackage.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--location", "gate=46.5,7.9"),
         "export: Camtrap DP needs each camera's coordinates; give --location CAMERA=LAT,LON for creek"),
        (("--location", "gate=north"),
         "export: --location 'gate=north': expected CAMERA=LAT,LON such as gate=46.52,7.96"),
        (("--location", "gate=95,7"),
         "export: --location 'gate=95,7': latitude within ±90, longitude within ±180"),
    ],
)  # fmt: skip
def test_camtrap_bad_locations(
    db: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    proc = bearwatch("--store", str(db), "--format", "camtrap-dp", str(tmp_path / "p"), *args)
    assert proc.returncode == 2 and proc.stderr.strip() == message
    assert not (tmp_path / "p").exists()


def test_megadetector_batch_output(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "md.json"
    proc = bearwatch("--store", str(db), "--format", "megadetector", str(out))
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(out.read_text())
    assert doc["info"]["format_version"] == "1.4"
    assert doc["detection_categories"] == {"1": "animal", "2": "person", "3": "vehicle"}
    classes = doc["classification_categories"]
    images = {Path(i["file"]).stem: i for i in doc["images"]}
    assert len(images) == 7
    for image in doc["images"]:
        assert (out.parent / image["file"]).is_file()  # relative to the JSON's folder
        for d in image["detections"]:
            assert d["category"] in doc["detection_categories"]
            x, y, w, h = d["bbox"]
            assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9
            assert all(c in classes for c, _ in d["classifications"])
        assert image["max_detection_conf"] == max(
            (d["conf"] for d in image["detections"]), default=0.0
        )
    first = images["event-1"]["detections"][0]
    assert (first["category"], first["conf"], first["bbox"]) == ("1", 1.0, [0.1, 0.2, 0.3, 0.4])
    assert classes[first["classifications"][0][0]] == "bear"
    assert images["event-2"]["detections"] == []  # rejected
    assert images["event-3"]["detections"][0]["category"] == "2"  # relabelled person
    pending = images["event-4"]["detections"][0]
    assert (pending["conf"], pending["bbox"]) == (0.91, [0.0, 0.0, 1.0, 1.0])
    proc = bearwatch("--store", str(db), "--format", "megadetector", str(out))
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"export: {out} exists; pass --force to replace it"
    )
