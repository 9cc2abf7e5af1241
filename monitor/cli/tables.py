"""Plain aligned text tables and progress bars for the CLI's human output (``--json`` stays machine-readable).

Plain text rather than a rich console: the output goes to terminals, pipes,
journald and CI logs alike, and a column of numbers must stay a column in all
of them. Progress goes to stderr through tqdm and only when stderr is a
terminal, so a cron job or ``| jq`` never sees a bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
MISSING = "—"


def cell(value: object) -> str:
    """One value as table text: None is a dash, floats keep what they were rounded to."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], right: Sequence[int] = ()
) -> str:
    """Rows under headers, columns padded to their widest cell; ``right`` columns align right.

    Args:
        headers: column titles.
        rows: one sequence of values per row (``cell`` turns each into text).
        right: indexes of columns to align right (numbers).
    """
    text = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in text]
    return "\n".join(out)


def pairs(rows: Iterable[tuple[str, object]]) -> str:
    """``name  value`` lines with the names padded: a two-column table without headers."""
    items = [(k, cell(v)) for k, v in rows]
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in items)


def show_progress() -> bool:
    """Bars only for a person watching: stderr is a terminal."""
    return sys.stderr.isatty()


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress bar on stderr when it is a terminal (quiet otherwise)."""
    yield from tqdm(items, desc=desc, total=total, disable=not show_progress(), leave=False)


class Steps:
    """A bar over named steps (``step(name)`` as each starts); silent when stderr is not a terminal."""

    def __init__(self, names: Sequence[str], desc: str) -> None:
        self._bar = tqdm(total=len(names), desc=desc, disable=not show_progress(), leave=False)
        self._started = False

    def __call__(self, name: str) -> None:
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.set_postfix_str(name)

    def close(self) -> None:
        self._bar.close()


class Counting:
    """A running count with a rate on stderr (``tick()`` per item) when the length is unknown."""

    def __init__(self, desc: str, unit: str = "item") -> None:
        self._bar = tqdm(desc=desc, unit=unit, disable=not show_progress(), leave=False)

    def tick(self) -> None:
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
