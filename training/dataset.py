"""Find and verify the training images before fastai sees them: one sub-folder per class.

A corrupt JPEG that reaches a DataLoader kills the run mid-epoch with a
traceback from a worker; checking every file up front turns that into a counted,
logged skip, and an unusable folder into one line saying what to fix.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from training.errors import TrainingError

logger = logging.getLogger(__name__)

# The extensions fastai's ``get_image_files`` picks up that PIL decodes everywhere.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
_LOGGED_SKIPS = 10
MANIFEST_CSV = "manifest.csv"


class DataError(TrainingError):
    """The data folder cannot be trained on as it is."""


@dataclass(frozen=True, slots=True)
class ImageScan:
    """What a data folder holds.

    Attributes:
        root: the data folder.
        files: readable images in class sub-folders, sorted.
        corrupt: (path, reason) for image files PIL could not decode.
        not_images: files skipped because their extension is not an image's.
        per_class: readable images per class.
    """

    root: Path
    files: tuple[Path, ...]
    corrupt: tuple[tuple[Path, str], ...] = ()
    not_images: tuple[Path, ...] = ()
    per_class: dict[str, int] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted(self.per_class))

    def report(self) -> dict[str, Any]:
        """A JSON-ready summary for the run folder."""
        return {
            "root": str(self.root),
            "n_images": len(self.files),
            "per_class": dict(sorted(self.per_class.items())),
            "n_skipped_corrupt": len(self.corrupt),
            "n_skipped_not_image": len(self.not_images),
            "skipped_corrupt": [{"path": str(p), "reason": r} for p, r in self.corrupt],
            "skipped_not_image": [str(p) for p in self.not_images],
        }


def check_image(path: Path) -> str | None:
    """Decode one image fully; returns why it is unusable, or ``None`` when it is fine."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                return "image has no pixels"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # PIL reports truncated/garbled files as OSError or SyntaxError depending on format.
        return f"{type(exc).__name__}: {exc}"
    return None


def _candidate_files(root: Path) -> list[Path]:
    """Files in class sub-folders, skipping hidden files and folders (.DS_Store, .ipynb_checkpoints)."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if len(rel.parts) < 2:
            if rel.name == MANIFEST_CSV:
                continue  # export-dataset's and the synthetic writer's own list of the images
            logger.warning("ignoring %s: it is not inside a class sub-folder", path)
            continue
        found.append(path)
    return found


def scan_images(root: Path) -> ImageScan:
    """Find and verify the images under ``root``; labels come from each file's folder.

    Raises:
        DataError: when the folder is missing, holds no readable image, or only one class.
    """
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; pass --data a folder with one sub-folder of images per class"
        )
    good, corrupt, not_images = [], [], []
    for path in _candidate_files(root):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            not_images.append(path)
            continue
        reason = check_image(path)
        if reason is None:
            good.append(path)
        else:
            corrupt.append((path, reason))
    per_class = dict(Counter(p.parent.name for p in good))
    scan = ImageScan(root, tuple(good), tuple(corrupt), tuple(not_images), per_class)
    _log_skips(scan)
    _require_usable(scan)
    return scan


def _log_skips(scan: ImageScan) -> None:
    for path, reason in scan.corrupt[:_LOGGED_SKIPS]:
        logger.warning("skipping unreadable image %s (%s)", path, reason)
    for path in scan.not_images[:_LOGGED_SKIPS]:
        logger.warning("skipping %s: not an image file", path)
    hidden = max(0, len(scan.corrupt) - _LOGGED_SKIPS) + max(
        0, len(scan.not_images) - _LOGGED_SKIPS
    )
    if hidden:
        logger.warning("... and %d more skipped files (listed in data_scan.json)", hidden)
    if scan.corrupt or scan.not_images:
        logger.warning(
            "skipped %d unreadable image(s) and %d non-image file(s) under %s",
            len(scan.corrupt),
            len(scan.not_images),
            scan.root,
        )


def _require_usable(scan: ImageScan) -> None:
    root = scan.root
    if not scan.files:
        skipped = ""
        if scan.corrupt or scan.not_images:
            skipped = f" ({len(scan.corrupt)} unreadable and {len(scan.not_images)} non-image files skipped)"
        raise DataError(
            f"no readable images under {root}{skipped}; put them in one sub-folder per class, "
            f"e.g. {root / 'bear'}/*.jpg and {root / 'empty'}/*.jpg"
        )
    if len(scan.per_class) < 2:
        (only,) = scan.per_class
        raise DataError(
            f"only one class ({only!r}) found under {root}; a classifier needs at least two "
            f"class sub-folders of images, e.g. {root / 'bear'} and {root / 'empty'}"
        )
    for label, count in sorted(scan.per_class.items()):
        if count < 5:
            logger.warning(
                "class %r has only %d image(s) in %s; its validation numbers will be noise",
                label,
                count,
                root / label,
            )
