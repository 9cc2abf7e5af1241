"""The HTTP face of bearwatch: review pages, the review JSON API, snapshots, /metrics, /healthz.

Routes read and write the store through its public API only, so a PostgreSQL
store can replace SQLite without touching them. Route handlers are plain
``def``: the store blocks (SQLite), so FastAPI runs them in its worker threads
instead of the event loop. Errors are JSON ``{"error": ...}`` written here,
never the exception text, which can carry file paths and SQL. Who may do what
(sign-in, tokens, sessions, CSRF) lives in ``monitor.auth``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Generator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.auth import Access, CsrfUser, SignInRequired, User, current_user, render
from monitor.auth import router as auth_router
from monitor.config import HOURS, AuthConfig
from monitor.metrics import Metrics
from monitor.review_store import EVENT_KINDS, MODES, REVIEW_STATUSES, ReviewStore, StoreError
from monitor.rollout import ModeBook

logger = logging.getLogger(__name__)

MAX_PAGE = 500
PAGE_SIZE = 50
TIME_FIELDS = ("start_at", "end_at", "reviewed_at", "created_at", "updated_at")
VERDICTS = ("confirmed", "rejected", "unsure", "relabelled")
# Why a reviewer decided as they did: a fixed list, so reports can count them.
REASON_CODES = (
    "clear",
    "night-ir",
    "blur",
    "occlusion",
    "wrong-class",
    "not-an-animal",
    "distant",
    "duplicate",
    "other",
)
# Marks the history rows an undo wrote; never offered to reviewers, so it is unambiguous.
UNDO_REASON = "undo"
OTHER_LABEL = "other"
# Snapshots can show people: browsers may cache them, shared proxies may not.
# Short max-age because an open event's best frame can still be replaced.
SNAPSHOT_CACHE = "private, max-age=300"
# No inline script or style anywhere: scripts and CSS come from /static only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATIC_DIR = Path(__file__).with_name("static")
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
HealthFn = Callable[[], dict[str, Any]]
ChangeFn = Callable[[str, dict[str, Any]], None]

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
open_router = APIRouter()  # health, metrics, static files: no sign-in
router = APIRouter(dependencies=[Depends(current_user)])


# Without sign-in the web is loopback-only; these are the Host headers it then accepts.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class WebError(Exception):
    """The web server could not start (the message names the address and why)."""


def create_app(
    store: ReviewStore,
    metrics: Metrics,
    health: HealthFn,
    *,
    auth: AuthConfig | None = None,
    modes: ModeBook | None = None,
    labels: Sequence[str] = (),
    on_change: ChangeFn | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """Build the web app around one store, one metrics registry and a health callback.

    Args:
        store: where events are read from and verdicts written to.
        metrics: rendered at ``/metrics``.
        health: returns the daemon's health; ``/healthz`` answers 200 when its
            ``"ok"`` is true, else 503, with the dict as the JSON body.
        auth: users and tokens; None or empty: no sign-in (loopback only).
        modes: the cameras' configured modes; None: only what the store knows.
        labels: the model's labels, offered for relabelling and audit labels.
        on_change: called with ``("verdict" | "mode" | "audit_label", payload)``
            after each stored change (wakes the notifier, refreshes modes).
        allowed_hosts: accepted ``Host`` headers (None: any). Without sign-in the
            daemon passes the loopback names, so a web page elsewhere cannot reach
            the review API through DNS rebinding.

    Raises:
        ValueError: when a configured password hash is malformed.
    """
    # The interactive docs load scripts from a CDN, which an edge box cannot reach.
    app = FastAPI(title="bearwatch", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.store = store
    app.state.metrics = metrics
    app.state.health = health
    app.state.access = Access(auth)
    app.state.modes = modes
    app.state.labels = tuple(labels)
    app.state.on_change = on_change
    app.state.templates = templates
    app.include_router(open_router)
    app.include_router(auth_router)
    app.include_router(router)
    app.add_middleware(SecurityHeaders)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreError, _store_unavailable)
    app.add_exception_handler(Exception, _internal_error)
    return app


class SecurityHeaders:
    """Adds the security headers to every response (a plain ASGI middleware: no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _store(request: Request) -> ReviewStore:
    store: ReviewStore = request.app.state.store
    return store


Store = Annotated[ReviewStore, Depends(_store)]
Text = Annotated[str | None, Query(min_length=1, max_length=128)]
TimeArg = Annotated[str | None, Query(description="epoch seconds or ISO-8601 (naive = UTC)")]
BeforeId = Annotated[int | None, Query(ge=1)]


# --- open routes ---------------------------------------------------------------


@open_router.get("/metrics")
def prometheus(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@open_router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    body = request.app.state.health()
    code = 200 if body.get("ok") else 503
    return JSONResponse(jsonable_encoder(body), code, headers={"Cache-Control": "no-store"})


@open_router.get("/static/{name}")
def static_file(name: str) -> Response:
    """A file from a table read at start: the request's text is a key, never part of a path."""
    entry = _static_files().get(name)
    if entry is None:
        raise HTTPException(404, "not found")
    data, media_type, _ = entry
    return Response(data, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@functools.cache
def _static_files() -> dict[str, tuple[bytes, str, str]]:
    files: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(STATIC_DIR.glob("*")):
        if path.is_file() and path.suffix in STATIC_TYPES:
            data = path.read_bytes()
            files[path.name] = (
                data,
                STATIC_TYPES[path.suffix],
                hashlib.sha256(data).hexdigest()[:12],
            )
    return files


def static_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``: browsers may cache it a day and still see new versions."""
    entry = _static_files().get(name)
    return f"/static/{name}?v={entry[2] if entry else 0}"


templates.env.globals["static_url"] = static_url


# --- events: read ----------------------------------------------------------------


@router.get("/api/events")
def api_events(
    request: Request,
    store: Store,
    camera: Text = None,
    status: Text = None,
    label: Text = None,
    kind: Text = None,
    since: TimeArg = None,
    until: TimeArg = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE_SIZE,
    before_id: BeforeId = None,
) -> dict[str, Any]:
    """Events newest first; pass ``next_before_id`` back as ``before_id`` for the next page."""
    _check_choice("status", status, REVIEW_STATUSES)
    _check_choice("kind", kind, EVENT_KINDS)
    filters = {"camera": camera, "status": status, "label": label, "kind": kind}
    since_at, until_at = _parse_time("since", since), _parse_time("until", until)
    page, next_id = _page(store, filters, since_at, until_at, limit, before_id)
    root = request.scope.get("root_path", "")
    return {"events": [_event_json(ev, root) for ev in page], "next_before_id": next_id}


def _page(
    store: ReviewStore,
    filters: dict[str, str | None],
    since: float | None,
    until: float | None,
    limit: int,
    before_id: int | None,
) -> tuple[list[dict[str, Any]], int | None]:
    """One keyset page and the id to continue from (None on the last page)."""
    rows = store.list_events(
        **filters, since=since, until=until, limit=limit + 1, before_id=before_id
    )  # one extra row tells whether another page exists
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit else None)


@router.get("/api/events/{event_id:int}")
def api_event(event_id: int, request: Request, store: Store) -> dict[str, Any]:
    return _event_json(_event_or_404(store, event_id), request.scope.get("root_path", ""))


@router.get("/api/events/{event_id:int}/snapshot.jpg")
def api_snapshot(event_id: int, request: Request, store: Store) -> Response:
    """The event's JPEG, looked up by integer id only: no request text ever reaches a file path."""
    return _jpeg(request, store.get_snapshot(event_id), f"event {event_id} has no snapshot")


@router.get("/api/events/{event_id:int}/history")
def api_history(event_id: int, store: Store) -> dict[str, Any]:
    """Every verdict given on the event, oldest first: who, when, what and why."""
    _event_or_404(store, event_id)
    return {"event_id": event_id, "history": _history_json(store.verdict_history(event_id))}


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


def verdict_problem(status: str, reason_code: str | None, relabel: str | None) -> str | None:
    """Why a verdict is invalid, in one line; None when it is fine (shared with the CLI)."""
    if status not in VERDICTS:
        return f"status must be one of {', '.join(VERDICTS)}; got {status!r}"
    if reason_code is not None and reason_code not in REASON_CODES:
        return f"reason_code must be one of {', '.join(REASON_CODES)}; got {reason_code!r}"
    if reason_code is None and status != "confirmed":
        return f"reason_code is required for {status} (one of {', '.join(REASON_CODES)})"
    if status == "relabelled" and not relabel:
        return "relabel (the new label) is required for status relabelled"
    if relabel and status != "relabelled":
        return "relabel is only allowed with status relabelled"
    return None


@router.post("/api/events/{event_id:int}/verdict")
def api_verdict(
    event_id: int, body: VerdictIn, request: Request, store: Store, user: CsrfUser
) -> JSONResponse:
    """Record a verdict; on an already reviewed event the last one wins and history keeps all."""
    reason, note, relabel = _blank(body.reason_code), _blank(body.note), _blank(body.relabel)
    problem = verdict_problem(body.status, reason, relabel)
    if problem:
        raise HTTPException(422, problem)
    _event_or_404(store, event_id)
    ok = store.set_verdict(event_id, body.status, user.name, reason, note, relabel)
    return _after_verdict(request, store, event_id, ok, undo=False)


@router.post("/api/events/{event_id:int}/undo")
def api_undo(event_id: int, request: Request, store: Store, user: CsrfUser) -> JSONResponse:
    """Go back to the state before the latest verdict, as a new history row (nothing is deleted)."""
    _event_or_404(store, event_id)
    last, target = undo_step(store.verdict_history(event_id))
    if last is None:
        raise HTTPException(409, f"event {event_id} has no verdict to undo")
    note = f"undo of {last['status']} by {last['reviewer']}"
    ok = store.set_verdict(
        event_id, target["status"], user.name, UNDO_REASON, note, target["relabel"]
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
    request: Request, store: ReviewStore, event_id: int, ok: bool, *, undo: bool
) -> JSONResponse:
    ev = _event_or_404(store, event_id)
    body = _event_json(ev, request.scope.get("root_path", ""))
    if not ok:
        # The store spilled it: it is applied when the store recovers, in order.
        return JSONResponse({"queued": True, "event": body}, 202)
    payload = {k: ev[k] for k in ("camera", "label", "mode", "kind", "reviewer", "reason_code")}
    payload.update(event_id=event_id, status=ev["review_status"], relabel=ev["relabel"], undo=undo)
    _changed(request, "verdict", payload)
    history = _history_json(store.verdict_history(event_id))
    return JSONResponse({"event": body, "history": history})


# --- cameras and rollout modes ------------------------------------------------------


class ModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    active_hours: str | None = Field(None, max_length=16)


def mode_problem(mode: str, reason: str, active_hours: str | None) -> str | None:
    """Why a mode change is invalid, in one line; None when it is fine (shared with the CLI)."""
    if mode not in MODES:
        return f"mode must be one of {', '.join(MODES)}; got {mode!r}"
    if not reason.strip():
        return "reason is required: say why the mode changes"
    if active_hours is not None and not re.fullmatch(HOURS[1:-1], active_hours):
        return f"active_hours must look like HH:MM-HH:MM (e.g. 20:00-06:00); got {active_hours!r}"
    return None


@router.get("/api/cameras")
def api_cameras(request: Request, store: Store) -> dict[str, Any]:
    """Each camera's mode (runtime change over config), active hours and recent mode changes."""
    return {"cameras": camera_rows(store, request.app.state.modes, time.time())}


@router.post("/api/cameras/{camera}/mode")
def api_set_mode(
    camera: str, body: ModeIn, request: Request, store: Store, user: CsrfUser
) -> dict[str, Any]:
    """Change a camera's rollout mode (admins only); who, when and why are recorded."""
    hours = _blank(body.active_hours)
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
    store.set_camera_mode(camera, body.mode, user.name, reason, hours)
    logger.info("web: camera %s set to %s by %s: %s", camera, body.mode, user.name, reason)
    if modes is not None:
        modes.refresh()
    payload = {"camera": camera, "mode": body.mode, "active_hours": hours}
    _changed(request, "mode", {**payload, "changed_by": user.name, "reason": reason})
    rows = camera_rows(store, modes, time.time())
    return {"camera": next(r for r in rows if r["camera"] == camera)}


def camera_rows(store: ReviewStore, modes: ModeBook | None, now: float) -> list[dict[str, Any]]:
    """Cameras from the config, runtime changes and events, each with its mode and history."""
    overrides = store.camera_modes()
    names = list(modes.cameras()) if modes is not None else []
    names += sorted({*overrides, *store.event_cameras()} - set(names))
    history: dict[str, list[dict[str, Any]]] = {}
    for change in store.mode_history(limit=500):
        history.setdefault(change["camera"], []).append(_with_iso(change, "changed_at"))
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
        row["history"] = history.get(cam, [])[:20]
        rows.append(row)
    return rows


# --- audit samples -----------------------------------------------------------------


class AuditLabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=64)
    note: str | None = Field(None, max_length=2000)


def label_choices(request: Request, store: ReviewStore) -> list[str]:
    """The model's labels (given at start, and as seen in the store), then ``other``."""
    seen = set(request.app.state.labels) | set(store.seen_labels())
    return sorted(seen - {OTHER_LABEL}) + [OTHER_LABEL]


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
        "samples": [_sample_json(s, root) for s in page],
        "next_before_id": page[-1]["id"] if len(rows) > limit else None,
        "labels": label_choices(request, store),
    }


@router.get("/api/audit/{sample_id:int}/snapshot.jpg")
def api_audit_snapshot(sample_id: int, request: Request, store: Store) -> Response:
    """An audit sample's JPEG, by integer id only."""
    return _jpeg(
        request, store.get_audit_snapshot(sample_id), f"audit sample {sample_id} has no snapshot"
    )


@router.post("/api/audit/{sample_id:int}/label")
def api_audit_label(
    sample_id: int, body: AuditLabelIn, request: Request, store: Store, user: CsrfUser
) -> dict[str, Any]:
    """Record what a human sees in an audit sample (to estimate what the model misses)."""
    choices = label_choices(request, store)
    if body.label not in choices:
        raise HTTPException(422, f"label must be one of {', '.join(choices)}; got {body.label!r}")
    note = _blank(body.note)
    if not store.label_audit_sample(sample_id, body.label, user.name, note):
        raise HTTPException(404, f"audit sample {sample_id} not found")
    payload = {"sample_id": sample_id, "label": body.label, "labelled_by": user.name}
    _changed(request, "audit_label", payload)
    return payload


# --- pages -------------------------------------------------------------------------


PageText = Annotated[str | None, Query(max_length=128)]


@router.get("/")
def queue_page(
    request: Request,
    store: Store,
    camera: PageText = None,
    status: PageText = "pending",
    label: PageText = None,
    kind: PageText = None,
    since: PageText = None,
    until: PageText = None,
    before_id: BeforeId = None,
) -> Response:
    """The review queue: one page of events (keyset), filters, and the verdict bar."""
    filters = {"camera": camera or None, "status": status or None, "label": label or None,
               "kind": kind or None}  # fmt: skip
    _check_choice("status", filters["status"], REVIEW_STATUSES)
    _check_choice("kind", filters["kind"], EVENT_KINDS)
    since_at = _parse_time("since", since or None)
    until_at = _parse_time("until", until or None)
    if until_at is not None and until and re.fullmatch(r"\d{4}-\d{2}-\d{2}", until):
        until_at += 86_400  # a date picked as "to" includes that whole day
    page, next_id = _page(store, filters, since_at, until_at, PAGE_SIZE, before_id)
    root = request.scope.get("root_path", "")
    query = {**filters, "status": status or "", "since": since, "until": until}
    context = {
        "page": "queue",
        "events": [_event_json(ev, root) for ev in page],
        "next_before_id": next_id,
        "before_id": before_id,
        "filters": {k: v for k, v in query.items() if v is not None},
        "cameras": store.event_cameras(),
        "labels": label_choices(request, store)[:-1],
        "statuses": REVIEW_STATUSES,
        "kinds": EVENT_KINDS,
        "reasons": REASON_CODES,
        "pending": store.count_events(status="pending"),
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
    context = {
        "page": "audit",
        "samples": [_sample_json(s, root) for s in page],
        "next_before_id": page[-1]["id"] if len(rows) > PAGE_SIZE else None,
        "filters": {"camera": camera or "", "labelled": labelled or ""},
        "choices": label_choices(request, store),
        "cameras": store.event_cameras(),
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
    }
    return render(request, "cameras.html", context)


# --- helpers -------------------------------------------------------------------------


def _event_or_404(store: ReviewStore, event_id: int) -> dict[str, Any]:
    ev = store.get_event(event_id)
    if ev is None:
        raise HTTPException(404, f"event {event_id} not found")
    return ev


def _changed(request: Request, kind: str, payload: dict[str, Any]) -> None:
    """Tell the daemon about a stored change; its failure must not undo or hide the change."""
    callback: ChangeFn | None = request.app.state.on_change
    if callback is None:
        return
    try:
        callback(kind, payload)
    except Exception:
        logger.exception("web: on_change(%s) failed", kind)


def _event_json(ev: dict[str, Any], root: str) -> dict[str, Any]:
    """An event for clients: each time as ISO-8601 UTC plus ``<name>_epoch``, and its snapshot URL."""
    out = {k: v for k, v in ev.items() if k != "has_snapshot"}
    for name in TIME_FIELDS:
        out[name] = _iso(ev[name])
        out[f"{name}_epoch"] = ev[name]
    out["snapshot_url"] = (
        f"{root}/api/events/{ev['id']}/snapshot.jpg" if ev["has_snapshot"] else None
    )
    return out


def _sample_json(sample: dict[str, Any], root: str) -> dict[str, Any]:
    out = _with_iso(_with_iso(sample, "captured_at"), "labelled_at")
    out["snapshot_url"] = (
        f"{root}/api/audit/{sample['id']}/snapshot.jpg" if sample["has_snapshot"] else None
    )
    del out["has_snapshot"]
    return out


def _history_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_with_iso(r, "reviewed_at") for r in rows]


def _with_iso(row: dict[str, Any], name: str) -> dict[str, Any]:
    return {**row, name: _iso(row[name]), f"{name}_epoch": row[name]}


def _blank(value: str | None) -> str | None:
    """Forms send empty strings for untouched fields: treat them as absent."""
    return value.strip() or None if value is not None else None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    stamp = datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _parse_time(name: str, value: str | None) -> float | None:
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


def _check_choice(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise HTTPException(422, f"{name}: must be one of {', '.join(allowed)}")


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"error": "sign in required"}, 401, headers={"WWW-Authenticate": "Bearer"}
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': target})}", 303)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Name the parameter and the rule; leave out the echoed input.
    details = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return JSONResponse({"error": "invalid request", "details": details}, 422)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.error("web: %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": "review store unavailable"}, 503)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # uvicorn logs the traceback (Starlette re-raises after this response is sent).
    return JSONResponse({"error": "internal error"}, 500)


class _ThreadedServer(uvicorn.Server):
    """uvicorn that says when it is listening and never touches signal handlers."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The main thread owns SIGTERM/SIGINT and stops us through should_exit.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class WebServer:
    """Serves an app from a named, non-daemon thread ``web``.

    The socket is bound in ``start`` on the caller's thread, so "address in
    use" is an exception the daemon can report, not a ``sys.exit`` inside uvicorn.
    """

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self._host = host
        self._requested_port = port
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", server_header=False
        )
        self._server = _ThreadedServer(config)
        self._sock: socket.socket | None = None
        self._bound_port: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when port 0 was asked) once started."""
        return self._requested_port if self._bound_port is None else self._bound_port

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Bind, start the thread, and return once the server accepts connections.

        Raises:
            WebError: when the address cannot be bound or the server does not come up in time.
            RuntimeError: on a second call (a stopped server is not restarted; make a new one).
        """
        if self._thread is not None:
            raise RuntimeError("WebServer.start() called twice")
        try:
            family, _, _, _, addr = socket.getaddrinfo(
                self._host, self._requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            self._sock = socket.create_server(addr[:2], family=family)
            self._bound_port = int(self._sock.getsockname()[1])
        except OSError as exc:
            raise WebError(f"cannot listen on {self._host}:{self._requested_port}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="web", daemon=False)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.ready.wait(0.02):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(1.0)
                raise WebError(f"web server on {self._host}:{self.port} did not start")
        logger.info("web: listening on http://%s:%d", self._host, self.port)

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask uvicorn to finish, then force it; True when the thread has ended.

        The first half of ``timeout`` lets in-flight requests finish; after it
        uvicorn stops waiting for open connections.
        """
        thread = self._thread
        if thread is None:
            return True
        self._server.should_exit = True
        thread.join(timeout / 2)
        if thread.is_alive():
            self._server.force_exit = True
            thread.join(timeout / 2)
        if thread.is_alive():
            logger.warning("web: thread %s still alive %.1f s after stop", thread.name, timeout)
            return False
        return True

    def _run(self) -> None:
        assert self._sock is not None
        try:
            self._server.run(sockets=[self._sock])
        except (Exception, SystemExit):  # uvicorn calls sys.exit when its startup fails
            logger.exception("web: server stopped with an error")
        finally:
            self._sock.close()
