"""The review pages: the queue with its verdict bar, audit samples, and cameras with their modes."""

from __future__ import annotations

import re
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from monitor.records import REASON_CODES
from monitor.types import EVENT_KINDS, MODES, REVIEW_STATUSES
from monitor.web.api import camera_rows
from monitor.web.audit_runs import collapse
from monitor.web.auth import User, current_user, render
from monitor.web.wire import (
    PAGE_SIZE,
    BeforeId,
    Store,
    check_choice,
    event_json,
    event_page,
    label_choices,
    parse_time,
    pending_count,
    sample_json,
)

router = APIRouter(dependencies=[Depends(current_user)])

PageText = Annotated[str | None, Query(max_length=128)]


@router.get("/")
def queue_page(
    request: Request,
    store: Store,
    site: PageText = None,
    camera: PageText = None,
    status: PageText = "pending",
    label: PageText = None,
    kind: PageText = None,
    since: PageText = None,
    until: PageText = None,
    before_id: BeforeId = None,
    repeats: PageText = "hide",
) -> Response:
    """The review queue: one page of events (keyset), filters, and the verdict bar."""
    filters = {"site": site or None, "camera": camera or None, "status": status or None,
               "label": label or None, "kind": kind or None}  # fmt: skip
    check_choice("status", filters["status"], REVIEW_STATUSES)
    check_choice("kind", filters["kind"], EVENT_KINDS)
    since_at = parse_time("since", since or None)
    until_at = parse_time("until", until or None)
    if until_at is not None and until and re.fullmatch(r"\d{4}-\d{2}-\d{2}", until):
        until_at += 86_400  # a date picked as "to" includes that whole day
    page, next_id = event_page(
        store, filters, since_at, until_at, PAGE_SIZE, before_id, repeats or "hide"
    )
    root = request.scope.get("root_path", "")
    query = {**filters, "status": status or "", "since": since, "until": until,
             "repeats": repeats or "hide"}  # fmt: skip
    context = {
        "page": "queue",
        "events": [event_json(ev, root) for ev in page],
        "next_before_id": next_id,
        "before_id": before_id,
        "filters": {k: v for k, v in query.items() if v is not None},
        "cameras": store.event_cameras(),
        "sites": store.event_sites(),
        "labels": label_choices(request, store)[:-1],
        "statuses": REVIEW_STATUSES,
        "kinds": EVENT_KINDS,
        "reasons": REASON_CODES,
        "pending": pending_count(store),
        "suppressed": store.count_events(suppressed=True),
    }
    return render(request, "queue.html", context)


@router.get("/audit")
def audit_page(
    request: Request,
    store: Store,
    camera: PageText = None,
    labelled: PageText = "no",
    before_id: BeforeId = None,
) -> Response:
    """Frames the model did not alert on, for humans to label."""
    flag = {"no": False, "yes": True}.get(labelled or "")
    rows = store.list_audit_samples(
        camera=camera or None, labelled=flag, limit=PAGE_SIZE + 1, before_id=before_id
    )
    page = rows[:PAGE_SIZE]
    root = request.scope.get("root_path", "")
    runs = collapse(page, request.app.state.audit_thumbs.get)
    modes = request.app.state.modes
    context = {
        "page": "audit",
        "samples": [
            {**sample_json(r.first, root), "run_ids": r.ids, "similar": len(r.others)} for r in runs
        ],
        "shown": len(page),
        "next_before_id": page[-1]["id"] if len(rows) > PAGE_SIZE else None,
        "filters": {"camera": camera or "", "labelled": labelled or ""},
        "choices": label_choices(request, store),
        # Every camera: configured ones, and any the store has alerts or samples from.
        "cameras": sorted(
            {*(modes.cameras() if modes else ()), *store.event_cameras(), *store.audit_cameras()}
        ),
    }
    return render(request, "audit.html", context)


@router.get("/cameras")
def cameras_page(request: Request, store: Store, user: User) -> Response:
    """Each camera's rollout mode with its history, and the form that changes it."""
    context = {
        "page": "cameras",
        "cameras": camera_rows(store, request.app.state.modes, time.time()),
        "modes": MODES,
        "can_change": user.is_admin,
        "live": request.app.state.live.cameras.get()["cameras"],
        "has_frames": request.app.state.live.frames is not None,
    }
    return render(request, "cameras.html", context)
