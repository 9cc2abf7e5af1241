"""``bearwatch export --format camtrap-dp``: the store as a Camtrap DP 1.0 data package (deployments, media, observations).

Camtrap DP (TDWG's camera-trap data package) is a Frictionless data package:
``datapackage.json`` plus three CSV tables. Each camera is one deployment
(its location from ``--location``: the standard requires coordinates, and
bearwatch does not invent them), each alert snapshot or audit frame one
media file, and each classification one media-level observation — by a
person where someone reviewed it, else by the machine with its probability.

The standard's table schemas live at URLs an edge box cannot reach, so the
package carries them inline, transcribed from Camtrap DP 1.0 for the fields
bearwatch writes (same names, types, required flags and ranges); a Frictionless
reader validates the tables against them without a network.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.report.media import MediaItem, collect, prepare, write_images
from monitor.report.source import DatasetSource

PROFILE = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0/camtrap-dp-profile.json"
TABLE_SCHEMA_URL = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0/{}-table-schema.json"
# What a label means to an ecologist: (observationType, scientificName).
LABEL_TYPES: dict[str, tuple[str, str | None]] = {
    "bear": ("animal", "Ursus"),
    "person": ("human", "Homo sapiens"),
    "human": ("human", "Homo sapiens"),
    "vehicle": ("vehicle", None),
    "car": ("vehicle", None),
    "empty": ("blank", None),
    "blank": ("blank", None),
}


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float


def _f(name: str, kind: str, required: bool = False, **constraints: Any) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": kind}
    if kind == "datetime":
        field["format"] = "%Y-%m-%dT%H:%M:%S%z"
    c = {**({"required": True} if required else {}), **constraints}
    if c:
        field["constraints"] = c
    return field


# Camtrap DP 1.0, the fields bearwatch fills (the standard's order; optional ones it leaves out).
DEPLOYMENT_FIELDS = [
    _f("deploymentID", "string", True, unique=True), _f("locationID", "string"),
    _f("locationName", "string"),
    _f("latitude", "number", True, minimum=-90, maximum=90),
    _f("longitude", "number", True, minimum=-180, maximum=180),
    _f("cameraID", "string"), _f("cameraModel", "string"),
    _f("deploymentStart", "datetime", True), _f("deploymentEnd", "datetime", True),
    _f("deploymentComments", "string"),
]  # fmt: skip
MEDIA_FIELDS = [
    _f("mediaID", "string", True, unique=True), _f("deploymentID", "string", True),
    _f("captureMethod", "string", enum=["activityDetection", "timeLapse"]),
    _f("timestamp", "datetime", True), _f("filePath", "string", True),
    _f("filePublic", "boolean", True), _f("fileName", "string"),
    _f("fileMediatype", "string", True, pattern="^(image|video|audio)/.*$"),
    _f("mediaComments", "string"),
]  # fmt: skip
OBSERVATION_FIELDS = [
    _f("observationID", "string", True, unique=True), _f("deploymentID", "string", True),
    _f("mediaID", "string"), _f("eventID", "string"),
    _f("eventStart", "datetime", True), _f("eventEnd", "datetime", True),
    _f("observationLevel", "string", True, enum=["media", "event"]),
    _f("observationType", "string", True,
       enum=["animal", "human", "vehicle", "blank", "unknown", "unclassified"]),
    _f("scientificName", "string"), _f("count", "integer", minimum=1),
    _f("bboxX", "number", minimum=0, maximum=1), _f("bboxY", "number", minimum=0, maximum=1),
    _f("bboxWidth", "number", minimum=1e-15, maximum=1),
    _f("bboxHeight", "number", minimum=1e-15, maximum=1),
    _f("classificationMethod", "string", enum=["human", "machine"]),
    _f("classifiedBy", "string"), _f("classificationTimestamp", "datetime"),
    _f("classificationProbability", "number", minimum=0, maximum=1),
    _f("observationComments", "string"),
]  # fmt: skip
TABLES = {
    "deployments": DEPLOYMENT_FIELDS,
    "media": MEDIA_FIELDS,
    "observations": OBSERVATION_FIELDS,
}


@dataclass(frozen=True, slots=True)
class CamtrapSummary:
    deployments: int
    media: int
    observations: int
    images: int


def export_camtrap(
    store: DatasetSource,
    out: Path,
    locations: Mapping[str, Location],
    *,
    since: float | None = None,
    until: float | None = None,
    force: bool = False,
    title: str = "bearwatch camera monitoring",
) -> CamtrapSummary:
    """Write the package to the folder ``out``.

    Raises:
        ExportRefused: ``out`` exists and is not empty (without ``force``).
        ValueError: a camera in the window has no location.
    """
    items = collect(store, since, until)
    cameras = sorted({m.camera for m in items})
    missing = [c for c in cameras if c not in locations]
    if missing:
        raise ValueError(
            "Camtrap DP needs each camera's coordinates; give --location CAMERA=LAT,LON for "
            + ", ".join(missing)
        )
    prepare(out, folder=True, force=force)
    images = write_images(store, items, out)
    deployments = [
        _deployment(c, locations[c], [m for m in items if m.camera == c]) for c in cameras
    ]
    media = [_media(m) for m in items]
    observations = [_observation(m) for m in items]
    for name, rows in (("deployments", deployments), ("media", media),
                       ("observations", observations)):  # fmt: skip
        _write_csv(out / f"{name}.csv", TABLES[name], rows)
    package = _package(title, items, locations, cameras, observations)
    (out / "datapackage.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
    return CamtrapSummary(len(deployments), len(media), len(observations), images)


def stamp(epoch: float) -> str:
    """ISO-8601 with a UTC offset and no fraction, as Camtrap DP's datetimes are written."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def _deployment(camera: str, loc: Location, items: Sequence[MediaItem]) -> dict[str, Any]:
    return {
        "deploymentID": camera, "locationID": camera, "locationName": camera,
        "latitude": loc.latitude, "longitude": loc.longitude, "cameraID": camera,
        "cameraModel": "bearwatch",
        "deploymentStart": stamp(min(m.timestamp for m in items)),
        "deploymentEnd": stamp(max(m.end for m in items)),
        "deploymentComments": "bearwatch camera; start and end are its first and last exported frame",
    }  # fmt: skip


def _media(m: MediaItem) -> dict[str, Any]:
    return {
        "mediaID": m.media_id, "deploymentID": m.camera,
        # Alerts are what the model detected; audit frames are sampled on a schedule.
        "captureMethod": "activityDetection" if m.kind == "event" else "timeLapse",
        "timestamp": stamp(m.timestamp), "filePath": m.file, "filePublic": "false",
        "fileName": m.file.rsplit("/", 1)[-1], "fileMediatype": "image/jpeg",
        "mediaComments": "alert snapshot" if m.kind == "event" else "audit sample (no alert)",
    }  # fmt: skip


def _observation(m: MediaItem) -> dict[str, Any]:
    by_person = m.human_status in ("confirmed", "relabelled", "labelled", "rejected")
    if m.human_status == "rejected":
        kind, name = "unknown", None  # a person said "not that"; what is there was not said
    else:
        kind, name = LABEL_TYPES.get(
            (m.human_label if by_person else m.model_label) or "", ("unclassified", None)
        )
    box = m.box if kind in ("animal", "human", "vehicle") else None
    comment = "; ".join(x for x in (
        f"bearwatch label {m.human_label or m.model_label}",
        f"review {m.human_status}" if m.human_status else "not reviewed",
        m.comment,
    ) if x)  # fmt: skip
    return {
        "observationID": f"obs-{m.media_id}", "deploymentID": m.camera, "mediaID": m.media_id,
        "eventID": m.media_id if m.kind == "event" else "",
        "eventStart": stamp(m.timestamp), "eventEnd": stamp(m.end),
        "observationLevel": "media", "observationType": kind, "scientificName": name or "",
        "count": 1 if kind in ("animal", "human", "vehicle") else "",
        "bboxX": box[0] if box else "", "bboxY": box[1] if box else "",
        "bboxWidth": box[2] if box else "", "bboxHeight": box[3] if box else "",
        "classificationMethod": "human" if by_person else "machine",
        "classifiedBy": (m.reviewer or "") if by_person else f"bearwatch {m.model_version}",
        "classificationTimestamp": stamp(m.reviewed_at) if by_person and m.reviewed_at else "",
        "classificationProbability": "" if by_person else round(m.model_score, 4),
        "observationComments": comment,
    }  # fmt: skip


def _write_csv(path: Path, fields: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f["name"] for f in fields], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _package(title: str, items: Sequence[MediaItem], locations: Mapping[str, Location],
             cameras: Sequence[str], observations: Sequence[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    lats = [locations[c].latitude for c in cameras] or [0.0]
    lons = [locations[c].longitude for c in cameras] or [0.0]
    start = min((m.timestamp for m in items), default=0.0)
    end = max((m.end for m in items), default=0.0)
    names = sorted({o["scientificName"] for o in observations if o["scientificName"]})
    return {
        "profile": PROFILE,
        "name": "bearwatch-export",
        "created": stamp(datetime.now(UTC).timestamp()),
        "title": title,
        "contributors": [{"title": "bearwatch", "role": "publisher"}],
        "licenses": [{"name": "CC-BY-4.0", "scope": "data"}],
        "project": {
            "title": title,
            "samplingDesign": "targeted",
            "captureMethod": ["activityDetection", "timeLapse"],
            "individualAnimals": False,
            "observationLevel": ["media"],
        },
        "spatial": {
            "type": "Polygon",
            "coordinates": [
                [
                    [min(lons), min(lats)],
                    [max(lons), min(lats)],
                    [max(lons), max(lats)],
                    [min(lons), max(lats)],
                    [min(lons), min(lats)],
                ]
            ],
        },  # fmt: skip
        "temporal": {"start": stamp(start)[:10], "end": stamp(end)[:10]},
        "taxonomic": [{"scientificName": n} for n in names],
        "resources": [
            {
                "name": name,
                "path": f"{name}.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                # The standard names its schema by URL; it is inlined so the package
                # validates offline. ``camtrapSchema`` keeps the URL it transcribes.
                "camtrapSchema": TABLE_SCHEMA_URL.format(name),
                "schema": {"fields": fields, **_keys(name)},
            }
            for name, fields in TABLES.items()
        ],
    }


def _keys(name: str) -> dict[str, Any]:
    if name == "deployments":
        return {"primaryKey": ["deploymentID"]}
    ref = {"foreignKeys": [{"fields": "deploymentID",
                            "reference": {"resource": "deployments", "fields": "deploymentID"}}]}  # fmt: skip
    if name == "media":
        return {"primaryKey": ["mediaID"], **ref}
    ref["foreignKeys"].append(
        {"fields": "mediaID", "reference": {"resource": "media", "fields": "mediaID"}}
    )
    return {"primaryKey": ["observationID"], **ref}
