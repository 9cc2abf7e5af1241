"""Rollout modes per camera (shadow → review → active) and active hours: the pure time rules.

Outside a camera's active hours it behaves as ``shadow``: the model still
runs and records, nobody is notified. The modes as they stand at run time
(config overlaid by changes recorded in the store) are ``monitor.store.modes``.
"""

from __future__ import annotations

from datetime import datetime, time


def parse_hours(hours: str) -> tuple[time, time]:
    """``"20:00-06:00"`` → (20:00, 06:00). Raises ValueError for another shape."""
    try:
        start, end = hours.split("-")
        h1, m1 = (int(x) for x in start.split(":"))
        h2, m2 = (int(x) for x in end.split(":"))
        return time(h1, m1), time(h2, m2)
    except (ValueError, TypeError):
        raise ValueError(f"hours must look like HH:MM-HH:MM, got {hours!r}") from None


def within_hours(hours: str | None, when: datetime) -> bool:
    """True when ``when`` (its own local clock) falls in ``hours``; a range may wrap past midnight.

    ``None`` means all day. ``08:00-08:00`` also means all day.
    """
    if hours is None:
        return True
    start, end = parse_hours(hours)
    t = when.time()

    if start == end:
        return True
    if start < end:
        return start <= t < end
    return t >= start or t < end
