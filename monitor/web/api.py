"""The review JSON API under ``/api``: events, verdicts and undo, camera modes, audit samples.

Routes read and write the store through its public API only, so a PostgreSQL
store can replace SQLite without touching them. Route handlers are plain
``def``: the store blocks (SQLite), so FastAPI runs them in its worker threads
instead of the event loop. The checks a verdict or a mode change must pass
(``verdict_problem``, ``mode_problem``) are shared with the CLI.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from monitor.records import UNDO_REASON, mode_problem, verdict_problem
from monitor.store.modes import ModeBook
from monitor.types import EVENT_KINDS, REVIEW_STATUSES
from monitor.web.auth import CsrfUser, current_user
from monitor.web.queue import ReviewQueue
from monitor.web.wire import (
    PAGE_SIZE,
    BeforeId,
    EventId,
    SampleId,
    Store,
    blank,
    check_choice,
    event_json,
    event_or_404,
    event_page,
    history_json,
    label_choices,
    parse_time,
    sample_json,
    with_iso,
)

# The web's one log channel, as before these routes left monitor.web.app.
logger = logging.getLogger("monitor.web.app")

MAX_PAGE = 500
# Snapshots can show people: browsers may cache them, shared proxies may not.
# Short max-age because an open event's best frame can still be replaced.
SNAPSHOT_CACHE = "private, max-age=300"
ChangeFn = Callable[[str, dict[str, Any]], None]

router = APIRouter(dependencies=[Depends(current_user)])
Text = Annotated[str | None, Query(min_length=1, max_length=128)]
TimeArg = Annotated[str | None, Query(description="epoch seconds or ISO-8601 (naive = UTC)")]


# --- the schema --------------------------------------------------------------------


@router.get("/api/openapi.json", include_in_schema=False)
def api_schema(request: Request) -> JSONResponse:
    """The OpenAPI schema, for signed-in clients only (it maps every route)."""
    return JSONResponse(request.app.openapi())


# --- events: read ----------------------------------------------------------------


@router.get("/api/events")
def api_events(
    request: Request,
    store: Store,
    site: Text = None,
    camera: Text = None,
    status: Text = None,
    label: Text = None,
    kind: Text = None,
    since: TimeArg = None,
    until: TimeArg = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE_SIZE,
    before_id: BeforeId = None,
    repeats: Text = "show",
) -> dict[str, Any]:
    """Events newest first, every site's unless ``site`` is given; pass ``next_before_id`` back as ``before_id``.

    ``repeats``: ``show`` (default) includes repeat false alarms (``suppressed_by``
    set: like a rejected event, never notified), ``hide`` leaves them out, ``only`` lists just them.
    """
    check_choice("status", status, REVIEW_STATUSES)
    check_choice("kind", kind, EVENT_KINDS)
    filters = {
        "site": site or None,
        "camera": camera,
        "status": status,
        "label": label,
        "kind": kind,
    }
    since_at, until_at = parse_time("since", since), parse_time("until", until)
    page, next_id = event_page(
        store, filters, since_at, until_at, limit, before_id, repeats or "show"
    )
    root = request.scope.get("root_path", "")
    return {"events": [event_json(ev, root) for ev in page], "next_before_id": next_id}


@router.get("/api/events/{event_id:int}")
def api_event(event_id: EventId, request: Request, store: Store) -> dict[str, Any]:
    return event_json(event_or_404(store, event_id), request.scope.get("root_path", ""))


@router.get("/api/events/{event_id:int}/snapshot.jpg")
def api_snapshot(event_id: EventId, request: Request, store: Store) -> Response:
    """The event's JPEG, looked up by integer id only: no request text ever reaches a file path."""
    return _jpeg(request, store.get_snapshot(event_id), f"event {event_id} has no snapshot")


@router.get("/api/events/{event_id:int}/history")
def api_history(event_id: EventId, store: Store) -> dict[str, Any]:
    """Every verdict given on the event, oldest first: who, when, what and why."""
    event_or_404(store, event_id)
    return {"event_id": event_id, "history": history_json(store.verdict_history(event_id))}


def _jpeg(request: Request, jpeg: bytes | None, missing: str) -> Response:
    if jpeg is None:
        raise HTTPException(404, missing)
    etag = '"' + hashlib.sha256(jpeg).hexdigest()[:32] + '"'
    headers = {"Cache-Control": SNAPSHOT_CACHE, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(jpeg, media_type="image/jpeg", headers=headers)


# --- events: verdicts --------------------------------------------------------------


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(max_length=32)
    reason_code: str | None = Field(None, max_length=32)
    note: str | None = Field(None, max_length=2000)
    relabel: str | None = Field(None, max_length=64)


@router.post("/api/events/{event_id:int}/verdict")
def api_verdict(
    event_id: EventId, body: VerdictIn, request: Request, store: Store, user: CsrfUser
) -> JSONResponse:
    """Record a verdict; on an already reviewed event the last one wins and history keeps all."""
    reason, note, relabel = blank(body.reason_code), blank(body.note), blank(body.relabel)
    problem = verdict_problem(body.status, reason, relabel)
    if problem:
        raise HTTPException(422, problem)
    event_or_404(store, event_id)
    ok = store.set_verdict(event_id, body.status, user.name, reason, note, relabel)
    return _after_verdict(request, store, event_id, ok, undo=False)


@router.post("/api/events/{event_id:int}/undo")
def api_undo(event_id: EventId, request: Request, store: Store, user: CsrfUser) -> JSONResponse:
    """Go back to the state before the latest verdict, as a new history row (nothing is deleted)."""
    event_or_404(store, event_id)
    last, target = undo_step(store.verdict_history(event_id))
    if last is None:
        raise HTTPException(409, f"event {event_id} has no verdict to undo")
    note = f"undo of {last['status']} by {last['reviewer']}"
    ok = store.set_verdict(
        event_id, target["status"], user.name, UNDO_REASON, note, target["relabel"], restores=target
    )
    return _after_verdict(request, store, event_id, ok, undo=True)


def undo_step(history: Sequence[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the verdict an undo takes back, the state it restores) from a history, oldest first.

    Undo rows pop the verdict they took back, so repeated undos walk further
    back (confirm, reject, undo, undo → pending) instead of toggling.
    """
    stack: list[dict[str, Any]] = []
    for row in history:
        if row["reason_code"] == UNDO_REASON:
            if stack:
                stack.pop()
        else:
            stack.append(row)
    pending = {"status": "pending", "relabel": None}
    if not stack:
        return None, pending
    last = stack.pop()
    return last, (stack[-1] if stack else pending)


def _after_verdict(
    request: Request, store: ReviewQueue, event_id: int, ok: bool, *, undo: bool
) -> JSONResponse:
    ev = event_or_404(store, event_id)
    body = event_json(ev, request.scope.get("root_path", ""))
    if not ok:
        # The store spilled it: it is applied when the store recovers, in order.
        return JSONResponse({"queued": True, "event": body}, 202)
    payload: dict[str, Any] = {
        k: ev[k] for k in ("camera", "label", "mode", "kind", "reviewer", "reason_code")
    }
    payload.update(event_id=event_id, status=ev["review_status"], relabel=ev["relabel"], undo=undo)
    _changed(request, "verdict", payload)
    history = history_json(store.verdict_history(event_id))
    return JSONResponse({"event": body, "history": history})


# --- cameras and rollout modes ------------------------------------------------------


class ModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    active_hours: str | None = Field(None, max_length=16)
    # Another box's camera (a fleet's shared store): its daemon picks the change
    # up from the store within seconds. None: this box's site.
    site: str | None = Field(None, max_length=64, pattern=r"^([a-z0-9][a-z0-9_-]{0,62})?$")


@router.get("/api/cameras")
def api_cameras(request: Request, store: Store) -> dict[str, Any]:
    """Each camera's mode (runtime change over config), active hours and recent mode changes."""
    return {"cameras": camera_rows(store, request.app.state.modes, time.time())}


@router.post("/api/cameras/{camera}/mode")
def api_set_mode(
    camera: str, body: ModeIn, request: Request, store: Store, user: CsrfUser
) -> dict[str, Any]:
    """Change a camera's rollout mode (admins only); who, when and why are recorded."""
    hours = blank(body.active_hours)
    problem = mode_problem(body.mode, body.reason, hours)
    if problem:
        raise HTTPException(422, problem)
    if not user.is_admin:
        raise HTTPException(403, "changing a camera's mode needs the admin role")
    modes: ModeBook | None = request.app.state.modes
    known = set(modes.cameras() if modes else ()) | set(store.camera_modes())
    if camera not in known and camera not in store.event_cameras():
        raise HTTPException(404, f"camera {camera} not found")
    reason = body.reason.strip()
    store.set_camera_mode(camera, body.mode, user.name, reason, hours, site=body.site)
    logger.info("web: camera %s set to %s by %s: %s", camera, body.mode, user.name, reason)
    if modes is not None:
        modes.refresh()
    payload = {"camera": camera, "mode": body.mode, "active_hours": hours}
    _changed(request, "mode", {**payload, "changed_by": user.name, "reason": reason})
    rows = camera_rows(store, modes, time.time())
    return {"camera": next(r for r in rows if r["camera"] == camera)}


def camera_rows(store: ReviewQueue, modes: ModeBook | None, now: float) -> list[dict[str, Any]]:
    """Cameras from the config, runtime changes and events, each with its mode and history."""
    overrides = store.camera_modes()
    names = list(modes.cameras()) if modes is not None else []
    names += sorted({*overrides, *store.event_cameras()} - set(names))
    history: dict[str, list[dict[str, Any]]] = {}
    for change in store.mode_history(limit=500):
        history.setdefault(change["camera"], []).append(with_iso(change, "changed_at"))
    rows = []
    for cam in names:
        row: dict[str, Any] = {"camera": cam, "mode": None, "active_hours": None, "source": None}
        if cam in overrides:
            o = overrides[cam]
            row.update(mode=o["mode"], active_hours=o["active_hours"], source="runtime")
        elif modes is not None and cam in modes.cameras():
            mode, hours = modes.configured(cam)
            row.update(mode=mode, active_hours=hours, source="config")
        # "Now" only when the book agrees with what is shown (a book without the store may lag).
        agrees = modes is not None and modes.configured(cam) == (row["mode"], row["active_hours"])
        row["effective_now"] = modes.effective(cam, now) if modes is not None and agrees else None
        # The first change has no stored old mode: it left the config's mode, so name it.
        default = modes.default(cam) if modes is not None else None
        configured = default[0] if default is not None else None
        row["history"] = [
            {**h, "from_mode": h["old_mode"] or configured or "config"}
            for h in history.get(cam, [])[:20]
        ]
        row["levers"] = _levers_summary(store.score_log.recommendation(cam))
        rows.append(row)
    return rows


def _levers_summary(rec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The latest ``bearwatch levers --apply`` recommendation, as the cameras page shows it."""
    if not rec or not isinstance(rec.get("recommended"), dict):
        return None
    current, best = rec.get("current") or {}, rec["recommended"]
    return {
        "settings": best.get("settings"),
        "same": best.get("settings") == current.get("settings"),
        "false_alerts_per_day": best.get("false_alerts_per_day"),
        "recall": best.get("recall"),
        "current_false_alerts_per_day": current.get("false_alerts_per_day"),
        "current_recall": current.get("recall"),
        "warning": rec.get("warning"),
    }


# --- audit samples -----------------------------------------------------------------


class AuditLabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=64)
    note: str | None = Field(None, max_length=2000)


@router.get("/api/audit")
def api_audit(
    request: Request,
    store: Store,
    camera: Text = None,
    labelled: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE_SIZE,
    before_id: BeforeId = None,
) -> dict[str, Any]:
    """Audit samples newest first, with the labels a human may give them."""
    rows = store.list_audit_samples(
        camera=camera, labelled=labelled, limit=limit + 1, before_id=before_id
    )
    page = rows[:limit]
    root = request.scope.get("root_path", "")
    return {
        "samples": [sample_json(s, root) for s in page],
        "next_before_id": page[-1]["id"] if len(rows) > limit else None,
        "labels": label_choices(request, store),
    }


@router.get("/api/audit/{sample_id:int}/snapshot.jpg")
def api_audit_snapshot(sample_id: SampleId, request: Request, store: Store) -> Response:
    """An audit sample's JPEG, by integer id only."""
    return _jpeg(
        request, store.get_audit_snapshot(sample_id), f"audit sample {sample_id} has no snapshot"
    )


@router.post("/api/audit/{sample_id:int}/label")
def api_audit_label(
    sample_id: SampleId, body: AuditLabelIn, request: Request, store: Store, user: CsrfUser
) -> dict[str, Any]:
    """Record what a human sees in an audit sample (to estimate what the model misses)."""
    choices = label_choices(request, store)
    if body.label not in choices:
        raise HTTPException(422, f"label must be one of {', '.join(choices)}; got {body.label!r}")
    note = blank(body.note)
    if not store.label_audit_sample(sample_id, body.label, user.name, note):
        raise HTTPException(404, f"audit sample {sample_id} not found")
    payload = {"sample_id": sample_id, "label": body.label, "labelled_by": user.name}
    _changed(request, "audit_label", payload)
    return payload


@router.post("/api/audit/{sample_id:int}/unlabel")
def api_audit_unlabel(
    sample_id: int, request: Request, store: Store, user: CsrfUser
) -> dict[str, Any]:
    """Take an audit label back (the audit page's undo)."""
    if not store.clear_audit_label(sample_id):
        raise HTTPException(404, f"audit sample {sample_id} not found")
    payload = {"sample_id": sample_id, "label": None, "labelled_by": user.name}
    _changed(request, "audit_label", payload)
    return payload


def _changed(request: Request, kind: str, payload: dict[str, Any]) -> None:
    """Tell the daemon about a stored change; its failure must not undo or hide the change."""
    callback: ChangeFn | None = request.app.state.on_change
    if callback is None:
        return
    try:
        callback(kind, payload)
    except Exception:
        logger.exception("web: on_change(%s) failed", kind)
