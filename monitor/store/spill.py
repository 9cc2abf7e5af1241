"""The review store's spill file: writes the database refused, kept as JSON lines until they apply."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class SpillJournal:
    """The JSON-lines file holding writes the database refused, oldest first (no SQL here).

    Callers hold ``lock`` across read → apply → keep, so an append made while a
    replay runs lands after the lines that replay is working through.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.name.removesuffix(".jsonl") + ".rejected.jsonl")
        self.lock = threading.Lock()

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one write; raises OSError when even the spill cannot be written."""
        line = json.dumps(record, default=str)
        with self.lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())  # the spill is the last copy of this alert

    def read(self) -> list[str]:
        if not self.path.exists():
            return []
        return [x for x in self.path.read_text("utf-8").splitlines() if x.strip()]

    def keep(self, remaining: list[str]) -> None:
        """Replace the file with the lines still to replay (none: remove it)."""
        if not remaining:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(x + "\n" for x in remaining), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a crash leaves the old list or the new one

    def reject(self, line: str) -> None:
        """Set aside a line that can never apply, for a human to look at."""
        with self.rejected_path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
