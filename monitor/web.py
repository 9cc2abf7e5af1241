"""The HTTP face of the daemon: event API, snapshots, /metrics, /healthz and the event list page.

Routes read the store through its public API only, so a PostgreSQL store can
replace SQLite without touching them. Route handlers are plain ``def``: the
store blocks (SQLite), so FastAPI runs them in its worker threads instead of
the event loop. Errors are JSON ``{"error": ...}`` written here, never the
exception text, which can carry file paths and SQL.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.metrics import Metrics
from monitor.review_store import EVENT_KINDS, REVIEW_STATUSES, ReviewStore, StoreUnavailable

logger = logging.getLogger(__name__)

MAX_PAGE = 500
PAGE_SIZE = 50
TIME_FIELDS = ("start_at", "end_at", "reviewed_at", "created_at", "updated_at")
# Snapshots can show people: browsers may cache them, shared proxies may not.
# Short max-age because an open event's best frame can still be replaced.
SNAPSHOT_CACHE = "private, max-age=300"
PAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
HealthFn = Callable[[], dict[str, Any]]

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
router = APIRouter()


class WebError(Exception):
    """The web server could not start (the message names the address and why)."""


def create_app(store: ReviewStore, metrics: Metrics, health: HealthFn) -> FastAPI:
    """Build the web app around one store, one metrics registry and a health callback.

    Args:
        store: where events are read from.
        metrics: rendered at ``/metrics``.
        health: returns the daemon's health; ``/healthz`` answers 200 when its
            ``"ok"`` is true, else 503, with the dict as the JSON body.
    """
    # The interactive docs load scripts from a CDN, which an edge box cannot reach.
    app = FastAPI(title="bearwatch", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.store = store
    app.state.metrics = metrics
    app.state.health = health
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(Exception, _internal_error)
    return app


def _store(request: Request) -> ReviewStore:
    store: ReviewStore = request.app.state.store
    return store


Store = Annotated[ReviewStore, Depends(_store)]
Text = Annotated[str | None, Query(min_length=1, max_length=128)]
TimeArg = Annotated[str | None, Query(description="epoch seconds or ISO-8601 (naive = UTC)")]


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
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """Events newest first; pass ``next_before_id`` back as ``before_id`` for the next page."""
    _check_choice("status", status, REVIEW_STATUSES)
    _check_choice("kind", kind, EVENT_KINDS)
    rows = store.list_events(
        camera=camera,
        status=status,
        label=label,
        kind=kind,
        since=_parse_time("since", since),
        until=_parse_time("until", until),
        limit=limit + 1,  # one extra tells whether another page exists
        before_id=before_id,
    )
    page = rows[:limit]
    root = request.scope.get("root_path", "")
    return {
        "events": [_event_json(ev, root) for ev in page],
        "next_before_id": page[-1]["id"] if len(rows) > limit else None,
    }


@router.get("/api/events/{event_id:int}")
def api_event(event_id: int, request: Request, store: Store) -> dict[str, Any]:
    ev = store.get_event(event_id)
    if ev is None:
        raise HTTPException(404, f"event {event_id} not found")
    return _event_json(ev, request.scope.get("root_path", ""))


@router.get("/api/events/{event_id:int}/snapshot.jpg")
def api_snapshot(event_id: int, request: Request, store: Store) -> Response:
    """The event's JPEG, looked up by integer id only: no request text ever reaches a file path."""
    jpeg = store.get_snapshot(event_id)
    if jpeg is None:
        raise HTTPException(404, f"event {event_id} has no snapshot")
    etag = '"' + hashlib.sha256(jpeg).hexdigest()[:32] + '"'
    headers = {"Cache-Control": SNAPSHOT_CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(jpeg, media_type="image/jpeg", headers=headers)


@router.get("/metrics")
def prometheus(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    body = request.app.state.health()
    code = 200 if body.get("ok") else 503
    return JSONResponse(jsonable_encoder(body), code, headers={"Cache-Control": "no-store"})


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    store: Store,
    camera: Text = None,
    status: Text = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """The latest events with thumbnails; the review page with verdicts comes later."""
    _check_choice("status", status, REVIEW_STATUSES)
    rows = store.list_events(camera=camera, status=status, limit=PAGE_SIZE + 1, before_id=before_id)
    page = rows[:PAGE_SIZE]
    context = {
        "events": [_event_json(ev, request.scope.get("root_path", "")) for ev in page],
        "next_before_id": page[-1]["id"] if len(rows) > PAGE_SIZE else None,
        "camera": camera,
        "status": status,
        "statuses": REVIEW_STATUSES,
        "pending": store.count_events(status="pending"),
    }
    response = templates.TemplateResponse(request, "index.html", context)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


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
