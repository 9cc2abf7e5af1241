"""The review web's wire format, shared by the JSON API and the pages: store rows as JSON, query values checked.

Times go out as ISO-8601 UTC plus ``<name>_epoch``; times come in as epoch
seconds or ISO-8601 (naive = UTC). Problems are ``HTTPException`` with a
message that names the parameter, never the exception text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request

from monitor.records import EventRow
from monitor.web.queue import ReviewQueue

PAGE_SIZE = 50
TIME_FIELDS = ("start_at", "end_at", "reviewed_at", "created_at", "updated_at")
OTHER_LABEL = "other"


def _store(request: Request) -> ReviewQueue:
    store: ReviewQueue = request.app.state.store
    return store


Store = Annotated[ReviewQueue, Depends(_store)]
# SQLite's INTEGER range: a larger id is refused (422), not bound (500).
MAX_ID = 2**63 - 1
BeforeId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
EventId = Annotated[int, Path(ge=1, le=MAX_ID, description="an event id")]
SampleId = Annotated[int, Path(ge=1, le=MAX_ID, description="an audit sample id")]


def event_or_404(store: ReviewQueue, event_id: int) -> EventRow:
    ev = store.get_event(event_id)
    if ev is None:
        raise HTTPException(404, f"event {event_id} not found")
    return ev


def event_json(ev: Mapping[str, Any], root: str) -> dict[str, Any]:
    """An event for clients: each time as ISO-8601 UTC plus ``<name>_epoch``, and its snapshot URL."""
    out = {k: v for k, v in ev.items() if k != "has_snapshot"}
    for name in TIME_FIELDS:
        out[name] = _iso(ev[name])
        out[f"{name}_epoch"] = ev[name]
    out["snapshot_url"] = (
        f"{root}/api/events/{ev['id']}/snapshot.jpg" if ev["has_snapshot"] else None
    )
    return out


def sample_json(sample: dict[str, Any], root: str) -> dict[str, Any]:
    out = with_iso(with_iso(sample, "captured_at"), "labelled_at")
    out["snapshot_url"] = (
        f"{root}/api/audit/{sample['id']}/snapshot.jpg" if sample["has_snapshot"] else None
    )
    del out["has_snapshot"]
    return out


def history_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [with_iso(r, "reviewed_at") for r in rows]


def with_iso(row: dict[str, Any], name: str) -> dict[str, Any]:
    return {**row, name: _iso(row[name]), f"{name}_epoch": row[name]}


def blank(value: str | None) -> str | None:
    """Forms send empty strings for untouched fields: treat them as absent."""
    return value.strip() or None if value is not None else None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    stamp = datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def parse_time(name: str, value: str | None) -> float | None:
    """Epoch seconds or ISO-8601; a time without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        epoch = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise HTTPException(
                422,
                f"{name}: expected epoch seconds or an ISO-8601 time such as 2024-06-01T12:00:00Z",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(epoch):
        raise HTTPException(422, f"{name}: must be a finite number of seconds")
    return epoch


REPEAT_CHOICES_MAP: dict[str, bool | None] = {"hide": False, "show": None, "only": True}
REPEAT_CHOICES = tuple(REPEAT_CHOICES_MAP)


def check_choice(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise HTTPException(422, f"{name}: must be one of {', '.join(allowed)}")


def event_page(
    store: ReviewQueue,
    filters: dict[str, str | None],
    since: float | None,
    until: float | None,
    limit: int,
    before_id: int | None,
    repeats: str = "show",
) -> tuple[list[EventRow], int | None]:
    """One keyset page and the id to continue from (None on the last page).

    ``repeats``: ``hide`` leaves out repeat false alarms (events like a
    rejected one), ``only`` lists just them, ``show`` both.
    """
    check_choice("repeats", repeats, REPEAT_CHOICES)
    rows = store.list_events(
        **filters,
        since=since,
        until=until,
        suppressed=REPEAT_CHOICES_MAP[repeats],
        limit=limit + 1,
        before_id=before_id,
    )  # one extra row tells whether another page exists
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)


def pending_count(store: ReviewQueue) -> int:
    """The queue's "pending" figure: unreviewed events, repeat false alarms left out (the page and its poll)."""
    return store.count_events(status="pending", suppressed=False)


def label_choices(request: Request, store: ReviewQueue) -> list[str]:
    """The model's labels (given at start, and as seen in the store), then ``other``."""
    seen = set(request.app.state.labels) | set(store.seen_labels())
    return sorted(seen - {OTHER_LABEL}) + [OTHER_LABEL]
