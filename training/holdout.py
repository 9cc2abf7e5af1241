"""``--split-by camera|site``: validate on whole cameras (or sites) the model never trained on.

A random split puts frames of every camera on both sides, so validation
accuracy measures new frames of known places; camera-trap studies find
accuracy on new locations far lower. This split holds out whole groups
(named by a ``manifest.csv`` column: ``bearwatch export-dataset`` and
``python -m training.synthetic --cameras N`` write ``camera``; ``site`` works
with any manifest that carries one — the store keeps no site per event yet)
as the validation set, and also keeps a seeded random share of the
remaining groups' images out of training, so ``metrics.json`` can put the
held-out-group accuracy beside the random-split accuracy of one model.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.dataset import MANIFEST_CSV as MANIFEST
from training.dataset import DataError

_PATH_COLUMNS = ("file", "path")  # export-dataset's name, the synthetic writer's


@dataclass(frozen=True, slots=True)
class GroupSplit:
    """Images split three ways for one training run.

    Attributes:
        by: the manifest column (``camera`` or ``site``).
        train: images trained on.
        valid: every image of the held-out groups (the validation set).
        random_valid: a random share of the other groups' images, not trained on.
        held_out: the held-out group names.
    """

    by: str
    train: tuple[Path, ...]
    valid: tuple[Path, ...]
    random_valid: tuple[Path, ...]
    held_out: tuple[str, ...]


def read_groups(data: Path, by: str) -> dict[str, str]:
    """Relative image path → group, from ``data/manifest.csv``.

    Raises:
        DataError: when the manifest is missing or has no path or ``by`` column.
    """
    path = data / MANIFEST
    hint = (
        f"--split-by {by} needs {path} with a {by!r} column (bearwatch export-dataset and "
        "python -m training.synthetic --cameras N write one)"
    )
    if not path.is_file():
        raise DataError(f"{hint}; it does not exist")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        name = next((c for c in _PATH_COLUMNS if c in columns), None)
        if name is None or by not in columns:
            raise DataError(f"{hint}; its columns are {', '.join(columns) or 'none'}")
        return {row[name]: row[by] for row in reader if row.get(name) and row.get(by)}


def split_by_group(
    data: Path, files: Sequence[Path], by: str, valid_pct: float, seed: int
) -> GroupSplit:
    """Hold out whole groups until they hold ``valid_pct`` of the images (at least one group).

    Groups are taken in a seeded order; a random ``valid_pct`` of the rest is
    kept out of training too, for the random-split figure.

    Raises:
        DataError: when images are missing from the manifest or fewer than two groups exist.
    """
    groups = read_groups(data, by)
    root = data.resolve()
    group_of: dict[Path, str] = {}
    unlisted = []
    for f in files:
        rel = f.resolve().relative_to(root).as_posix()
        if rel in groups:
            group_of[f] = groups[rel]
        else:
            unlisted.append(rel)
    if unlisted:
        raise DataError(
            f"{len(unlisted)} image(s) under {data} have no {by} in {data / MANIFEST} "
            f"(e.g. {unlisted[0]}); list every image there or split without --split-by"
        )
    names = sorted(set(group_of.values()))
    if len(names) < 2:
        raise DataError(
            f"--split-by {by}: the images under {data} come from {len(names)} {by}(s) "
            f"({', '.join(names)}); holding out whole {by}s needs at least two"
        )
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    sizes = {n: sum(1 for g in group_of.values() if g == n) for n in names}
    held: list[str] = []
    for name in order[:-1]:  # never every group: something must be left to train on
        held.append(name)
        if sum(sizes[h] for h in held) >= valid_pct * len(files):
            break
    valid = [f for f in files if group_of[f] in held]
    seen = [f for f in files if group_of[f] not in held]
    pick = set(rng.permutation(len(seen))[: int(round(valid_pct * len(seen)))].tolist())
    train = [f for i, f in enumerate(seen) if i not in pick]
    random_valid = [f for i, f in enumerate(seen) if i in pick]
    return GroupSplit(by, tuple(train), tuple(valid), tuple(random_valid), tuple(sorted(held)))
