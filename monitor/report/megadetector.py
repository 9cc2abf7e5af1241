"""``bearwatch export --format megadetector``: the store's frames in MegaDetector's batch-output JSON (format 1.4).

Timelapse, the MegaDetector postprocessing tools and other camera-trap
software read this format: one entry per image, each with detections in the
detector's categories (animal, person, vehicle) and normalised boxes
``[x_min, y_min, width, height]``, and per detection the classifier's
categories with confidences. bearwatch is a classifier, not a detector: the
box is the region the view plan looked at where the store has one, else the
whole frame; a frame whose label is not an animal, person or vehicle (an
empty scene) has no detections.

Where a person reviewed a frame, their label is what the file says (with
confidence 1.0), because the file is read to decide what was there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.report.camtrap import LABEL_TYPES
from monitor.report.media import MediaItem, collect, prepare, write_images
from monitor.report.source import DatasetSource

FORMAT_VERSION = "1.4"
DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
TYPE_TO_CATEGORY = {"animal": "1", "human": "2", "vehicle": "3"}
WHOLE_FRAME = [0.0, 0.0, 1.0, 1.0]


@dataclass(frozen=True, slots=True)
class MegadetectorSummary:
    images: int
    detections: int
    folder: Path


def image_folder(out: Path) -> Path:
    """Where the images go: ``<name>_images/`` beside the JSON (its ``file`` paths are relative to the JSON's folder)."""
    return out.with_name(out.stem + "_images")


def export_megadetector(
    store: DatasetSource,
    out: Path,
    *,
    since: float | None = None,
    until: float | None = None,
    force: bool = False,
) -> MegadetectorSummary:
    """Write ``out`` (JSON) and the images beside it.

    Raises:
        ExportRefused: ``out`` or its image folder exists (without ``force``).
    """
    prepare(out, folder=False, force=force)
    folder = image_folder(out)
    prepare(folder, folder=True, force=force)
    items = collect(store, since, until)
    write_images(store, items, folder)
    labels = sorted({lab for m in items for lab in _labels(m)})
    classes = {str(i): lab for i, lab in enumerate(labels)}
    index = {lab: key for key, lab in classes.items()}
    images = [_image(m, folder.name, index) for m in items]
    versions = sorted({m.model_version for m in items})
    doc = {
        "info": {
            "format_version": FORMAT_VERSION,
            "detector": "bearwatch " + ", ".join(versions) if versions else "bearwatch",
            "detection_completion_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "classifier": "bearwatch " + ", ".join(versions) if versions else "bearwatch",
            "detector_metadata": {
                "typical_detection_threshold": 0.5,
                "conservative_detection_threshold": 0.25,
            },
            "comment": "bearwatch is a whole-frame classifier: boxes are the region it looked at"
            " (the whole frame unless its view plan stored one); reviewed frames carry the"
            " reviewer's label with confidence 1.0",
        },
        "detection_categories": DETECTION_CATEGORIES,
        "classification_categories": classes,
        "images": images,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return MegadetectorSummary(len(images), sum(len(i["detections"]) for i in images), folder)


def _labels(m: MediaItem) -> list[str]:
    return [x for x in (m.model_label, m.human_label) if x]


def _image(m: MediaItem, folder: str, index: dict[str, str]) -> dict[str, Any]:
    reviewed = m.human_status in ("confirmed", "relabelled", "labelled")
    label = m.human_label if reviewed else m.model_label
    conf = 1.0 if reviewed else round(m.model_score, 4)
    entry: dict[str, Any] = {
        "file": f"{folder}/{m.file}",
        "datetime": datetime.fromtimestamp(m.timestamp, UTC).strftime("%Y:%m:%d %H:%M:%S"),
        "location": m.camera,
    }
    kind = LABEL_TYPES.get(label or "", ("unknown", None))[0]
    category = TYPE_TO_CATEGORY.get(kind)
    if m.human_status == "rejected" or category is None:
        entry.update(max_detection_conf=0.0, detections=[])
        return entry
    assert label is not None
    detection = {
        "category": category,
        "conf": conf,
        "bbox": [round(v, 4) for v in m.box] if m.box else WHOLE_FRAME,
        "classifications": [[index[label], conf]],
    }
    entry.update(max_detection_conf=conf, detections=[detection])
    return entry
