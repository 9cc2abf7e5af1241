"""The HTTP face of bearwatch: the app (routers, security headers, errors), /metrics, /healthz, /static, and its server thread.

The review routes live in ``monitor.web.api`` (JSON under ``/api``) and
``monitor.web.pages`` (HTML); this module assembles them. Errors are JSON
``{"error": ...}`` written here, never the exception text, which can carry
file paths and SQL. Who may do what (sign-in, tokens, sessions, CSRF) lives in
``monitor.web.auth``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.config import AuthConfig
from monitor.errors import StoreError, WebError
from monitor.metrics import Metrics
from monitor.store.modes import ModeBook
from monitor.web import api as review_api
from monitor.web import live as live_updates
from monitor.web import pages as review_pages
from monitor.web.api import ChangeFn
from monitor.web.audit_runs import ThumbCache
from monitor.web.auth import Access, SignInRequired, current_user
from monitor.web.auth import router as auth_router
from monitor.web.proxies import ForwardedHeaders
from monitor.web.queue import ReviewQueue
from monitor.web.sessions import SessionBook
from monitor.worker import Worker

logger = logging.getLogger(__name__)

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
HealthFn = Callable[[], Mapping[str, Any]]  # a ``monitor.records.HealthReport`` in the daemon

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
open_router = APIRouter()  # liveness, metrics, static files: no sign-in
# The full health body names cameras, errors and versions: signed in when sign-in is on.
health_router = APIRouter(dependencies=[Depends(current_user)])


# Without sign-in the web is loopback-only; these are the Host headers it then accepts.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(
    store: ReviewQueue,
    metrics: Metrics,
    health: HealthFn,
    *,
    auth: AuthConfig | None = None,
    modes: ModeBook | None = None,
    labels: Sequence[str] = (),
    on_change: ChangeFn | None = None,
    allowed_hosts: Sequence[str] | None = None,
    frames: live_updates.FrameSource | None = None,
    trusted_proxies: Sequence[str] = (),
) -> FastAPI:
    """Build the web app around one store, one metrics registry and a health callback.

    Args:
        store: where events are read from and verdicts written to.
        metrics: rendered at ``/metrics``.
        health: returns the daemon's health; ``/healthz`` (signed in, when
            sign-in is configured) answers 200 when its ``"ok"`` is true, else
            503, with the dict as the JSON body; ``/livez`` answers 200 to anyone
            with only ``alive`` and ``status`` (``ok`` or ``degraded``).
        auth: users and tokens; None or empty: no sign-in (loopback only).
        modes: the cameras' configured modes; None: only what the store knows.
        labels: the model's labels, offered for relabelling and audit labels.
        on_change: called with ``("verdict" | "mode" | "audit_label", payload)``
            after each stored change (wakes the notifier, refreshes modes).
        allowed_hosts: accepted ``Host`` headers (None: any). Without sign-in the
            daemon passes the loopback names, so a web page elsewhere cannot reach
            the review API through DNS rebinding.
        frames: each camera's newest decided frame, for the cameras page;
            None: no live frames (the standalone review server).
        trusted_proxies: reverse proxies (addresses or networks) whose
            ``X-Forwarded-For``/``-Proto`` are believed; empty: none are.

    Raises:
        ValueError: when a configured password hash is malformed.
    """
    # The interactive docs load scripts from a CDN, which an edge box cannot reach.
    # The schema is served by an API route, behind sign-in like the rest of /api.
    app = FastAPI(title="bearwatch", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.metrics = metrics
    app.state.health = health
    app.state.access = Access(auth, sessions=SessionBook(store))
    app.state.modes = modes
    app.state.labels = tuple(labels)
    app.state.on_change = on_change
    app.state.templates = templates
    app.state.live = live_updates.LiveState(store, metrics, health, frames)
    app.state.audit_thumbs = ThumbCache(store.get_audit_snapshot)
    app.include_router(open_router)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(live_updates.router)
    app.include_router(review_api.router)  # before the pages: the routes keep their order
    app.include_router(review_pages.router)
    app.add_middleware(SecurityHeaders)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(ForwardedHeaders, trusted=list(trusted_proxies))  # outermost: runs first

    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreError, _store_unavailable)
    app.add_exception_handler(OverflowError, _out_of_range)
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


# --- open routes ---------------------------------------------------------------


@open_router.get("/metrics")
def prometheus(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@health_router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """The daemon's health: 200 when ``ok``, 503 when degraded (``status`` and ``problems`` say why)."""
    body = dict(request.app.state.health())
    ok = bool(body.get("ok"))
    body.setdefault("status", "ok" if ok else "degraded")
    return JSONResponse(
        jsonable_encoder(body), 200 if ok else 503, headers={"Cache-Control": "no-store"}
    )


@open_router.get("/livez")
def livez(request: Request) -> JSONResponse:
    """For probes without credentials: the process serves; no camera, source or error details."""
    try:
        status = "ok" if request.app.state.health().get("ok") else "degraded"
    except Exception:
        logger.exception("web: the health callback failed")
        status = "degraded"
    return JSONResponse(
        {"alive": True, "status": status}, 200, headers={"Cache-Control": "no-store"}
    )


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


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/") or request.url.path == "/healthz":
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


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # Defence in depth: ids are validated at the route; a number SQLite cannot bind is still the client's.
    return JSONResponse({"error": "invalid request", "details": ["a number is out of range"]}, 422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # uvicorn logs the traceback (Starlette re-raises after this response is sent).
    return JSONResponse({"error": "internal error"}, 500)


class _ThreadedServer(uvicorn.Server):
    """uvicorn that says when it is listening, beats on every tick, and never touches signal handlers."""

    def __init__(self, config: uvicorn.Config, beat: Callable[[], None]) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._beat = beat

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The main thread owns SIGTERM/SIGINT and stops us through should_exit.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    async def on_tick(self, counter: int) -> bool:
        # uvicorn ticks every 0.1 s from its event loop: a handler that blocks
        # the loop stops the ticks, which is what the supervisor calls stuck.
        self._beat()
        return await super().on_tick(counter)


class WebServer(Worker):
    """Serves an app from a named, non-daemon thread ``web``.

    The socket is bound in ``start`` on the caller's thread, so "address in
    use" is an exception the daemon can report, not a ``sys.exit`` inside uvicorn.
    A stopped server is not started again: the supervisor makes a new one.
    """

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        super().__init__("web")
        self.app = app
        self._host = host
        self._requested_port = port
        # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from
        # 127.0.0.1; ``ForwardedHeaders`` trusts only web.trusted_proxies.
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=False,
        )
        self._server = _ThreadedServer(config, self.beat)
        self._sock: socket.socket | None = None
        self._bound_port: int | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when port 0 was asked) once started."""
        return self._requested_port if self._bound_port is None else self._bound_port

    @property
    def alive(self) -> bool:
        return self.is_alive()

    def start(self, timeout: float = 10.0) -> None:
        """Bind, start the thread, and return once the server accepts connections.

        Raises:
            WebError: when the address cannot be bound or the server does not come up in time.
            RuntimeError: on a second call (a stopped server is not restarted; make a new one).
        """
        if self.started:
            raise RuntimeError("WebServer.start() called twice")
        try:
            family, _, _, _, addr = socket.getaddrinfo(
                self._host, self._requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            self._sock = socket.create_server(addr[:2], family=family)
            self._bound_port = int(self._sock.getsockname()[1])
        except OSError as exc:
            raise WebError(f"cannot listen on {self._host}:{self._requested_port}: {exc}") from exc
        super().start()
        deadline = time.monotonic() + timeout
        while not self._server.ready.wait(0.02):
            if not self.is_alive() or time.monotonic() > deadline:
                self.stop(1.0)
                raise WebError(f"web server on {self._host}:{self.port} did not start")
        logger.info("web: listening on http://%s:%d", self._host, self.port)

    def stop(self, timeout: float = 5.0) -> bool:  # type: ignore[override]
        """Ask uvicorn to finish, then force it; True when the thread has ended.

        The first half of ``timeout`` lets in-flight requests finish; after it
        uvicorn stops waiting for open connections.
        """
        self.stop_event.set()
        if not self.started:
            return True
        self._server.should_exit = True
        self._thread.join(timeout / 2)
        if self._thread.is_alive():
            self._server.force_exit = True
        return self.join(timeout / 2)

    def _run(self) -> None:
        assert self._sock is not None
        try:
            self._server.run(sockets=[self._sock])
        except SystemExit as exc:  # uvicorn calls sys.exit when its startup fails
            raise WebError(f"web server on {self._host}:{self.port} exited ({exc})") from exc
        finally:
            self._sock.close()
