"""Review sub-commands: the standalone review server, verdicts and rollout modes from a shell, password hashes."""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import SLUG, Config, is_loopback, load_config
from monitor.errors import ConfigError, StoreError
from monitor.store import ReviewStore
from monitor.store.review_store import open_existing

if TYPE_CHECKING:
    from monitor.web.app import WebServer

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class CommandError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def _fail(command: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"{command}: {message}", file=sys.stderr)
    return code


STORE_HELP = "the review store: a SQLite file, sqlite:///FILE or postgresql://USER@HOST/DB"


def _open_store(target: str, site: str = "") -> ReviewStore:
    """The store at ``target``; a missing file is an error (a typo must not create an empty store)."""
    try:
        return open_existing(target, site=site)
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def _site(args: argparse.Namespace, cfg: Config | None) -> str:
    """Whose cameras: ``--site``, else the config's site, else the single-box site ``""``."""
    given = getattr(args, "site", None)
    return given if given is not None else (cfg.site if cfg is not None else "")


def _load(config: Path | None) -> Config | None:
    if config is None:
        return None
    try:
        return load_config(config)
    except ConfigError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise CommandError(f"{config}: {first}") from None


def cmd_review(args: argparse.Namespace) -> int:
    """Serve the review pages against a store until Ctrl-C or SIGTERM."""
    from monitor.errors import WebError
    from monitor.metrics import Metrics
    from monitor.store.modes import ModeBook
    from monitor.web.app import LOOPBACK_HOSTS, WebServer, create_app

    try:
        cfg = _load(args.config)
        host = args.host or (cfg.web.host if cfg else "127.0.0.1")
        port = args.port if args.port is not None else (cfg.web.port if cfg else 8080)
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be within 0..65535; got {port}")
        auth = cfg.web.auth if cfg else None
        if not is_loopback(host) and not (auth and auth.enabled):
            raise CommandError(
                f"{host} is reachable from other machines: give --config with web.auth users, "
                "or listen on 127.0.0.1"
            )
        store = _open_store(args.store, _site(args, cfg))
    except CommandError as exc:
        return _fail("review", str(exc))
    modes = None
    if cfg is not None:
        defaults = {c.id: (c.mode, c.active_hours) for c in cfg.cameras}
        modes = ModeBook(defaults, cfg.timezone, load=store.camera_modes)
    try:
        app = create_app(
            store,
            Metrics(),
            lambda: {"ok": store.healthy},
            auth=auth,
            modes=modes,
            allowed_hosts=None if auth is not None and auth.enabled else LOOPBACK_HOSTS,
            trusted_proxies=cfg.web.trusted_proxies if cfg else (),
        )
        server = WebServer(app, host, port)
        server.start()
    except (ValueError, WebError) as exc:
        store.close()
        return _fail("review", str(exc))
    return _serve(server, store, host)


def _serve(server: WebServer, store: ReviewStore, host: str) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()  # only record: the loop below stops the server

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    shown = f"[{host}]" if ":" in host else host
    print(f"review: http://{shown}:{server.port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        if not server.alive:
            store.close()
            return _fail("review", "the web server stopped unexpectedly", EXIT_FAILED)
    server.stop()
    store.close()
    return 0


def cmd_verdict(args: argparse.Namespace) -> int:
    """Record one verdict, exactly as the review page would."""
    from monitor.records import verdict_problem

    reason, note, relabel = args.reason or None, args.note or None, args.relabel or None
    problem = verdict_problem(args.status, reason, relabel)
    if problem:
        return _fail("verdict", problem)
    if not args.reviewer.strip():
        return _fail("verdict", "--reviewer must not be empty")
    try:
        store = _open_store(args.store)
    except CommandError as exc:
        return _fail("verdict", str(exc))
    try:
        if store.get_event(args.event_id) is None:
            return _fail("verdict", f"event {args.event_id} not found")
        if not store.set_verdict(
            args.event_id, args.status, args.reviewer.strip(), reason, note, relabel
        ):
            return _fail("verdict", "the store is busy; the verdict was queued", EXIT_FAILED)
    finally:
        store.close()
    shown = f" → {relabel}" if relabel else ""
    print(f"event {args.event_id}: {args.status}{shown} by {args.reviewer.strip()}"
          f"{f' ({reason})' if reason else ''}")  # fmt: skip
    return 0


def cmd_mode_show(args: argparse.Namespace) -> int:
    """Print each camera's rollout mode, active hours and last change."""
    from monitor.store.modes import ModeBook
    from monitor.web.api import camera_rows

    try:
        cfg = _load(args.config)
        store = _open_store(args.store, _site(args, cfg))
    except CommandError as exc:
        return _fail("mode", str(exc))
    try:
        modes = None
        if cfg is not None:
            defaults = {c.id: (c.mode, c.active_hours) for c in cfg.cameras}
            modes = ModeBook(defaults, cfg.timezone, load=store.camera_modes)
        rows = camera_rows(store, modes, time.time())
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no cameras known to this store (give --config to list the configured ones)")
    for r in rows:
        last = r["history"][0] if r["history"] else None
        changed = (
            f"{last['changed_by']} {last['changed_at'][:16]}Z: {last['reason']}" if last else ""
        )
        print(f"{r['camera']:<20} {r['mode'] or '?':<7} {r['active_hours'] or 'all day':<12} "
              f"{r['source'] or 'events':<8} {changed}")  # fmt: skip
    return 0


def cmd_mode_set(args: argparse.Namespace) -> int:
    """Change a camera's mode; the running daemon picks it up from the store within seconds."""
    from monitor.records import mode_problem

    hours = args.active_hours or None
    problem = mode_problem(args.mode, args.reason, hours)
    if not problem and not re.fullmatch(SLUG, args.camera):
        problem = (
            f"camera must be a camera id (lowercase letters, digits, - and _); got {args.camera!r}"
        )
    if not problem and not args.by.strip():
        problem = "--by must not be empty"
    if problem:
        return _fail("mode", problem)
    try:
        cfg = _load(args.config)
        if cfg is not None and args.camera not in {c.id for c in cfg.cameras}:
            raise CommandError(f"camera {args.camera} is not in {args.config}")
        store = _open_store(args.store, _site(args, cfg))
    except CommandError as exc:
        return _fail("mode", str(exc))
    try:
        # A running daemon applies whatever the store says, so a misspelled camera
        # would silently get a mode: only a camera someone has seen, or --new.
        known = set(store.camera_modes()) | set(store.event_cameras()) | set(store.audit_cameras())
        if cfg is not None:
            known |= {c.id for c in cfg.cameras}
        if args.camera not in known and not args.new:
            near = difflib.get_close_matches(args.camera, sorted(known), n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            return _fail(
                "mode",
                f"camera {args.camera} is unknown to this store{' and config' if cfg else ''};"
                f" {hint}pass --new to add it",
            )
        store.set_camera_mode(args.camera, args.mode, args.by.strip(), args.reason.strip(), hours)
    except StoreError as exc:
        return _fail("mode", str(exc), EXIT_FAILED)
    finally:
        store.close()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    print(
        f"{args.camera}: {args.mode}{f' ({hours})' if hours else ''} by {args.by.strip()} at {when} UTC"
    )
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Print a password hash for ``web.auth.users[].password_hash``."""
    from monitor.web.auth import hash_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
        except EOFError:
            return _fail("hash-password", "no password given (use --stdin to pipe one)")
        if password != again:
            return _fail("hash-password", "the passwords do not match")
    if not password:
        return _fail("hash-password", "the password must not be empty")
    print(hash_password(password))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``review``, ``verdict``, ``mode`` and ``hash-password`` to the ``bearwatch`` parser."""
    p = sub.add_parser("review", help="serve the review pages against a store (no cameras needed)")
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--config", type=Path, help="read web.auth, cameras and modes from this config")
    p.add_argument("--host", help="address to listen on (default: the config's, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: the config's, else 8080; 0 = any free)")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("verdict", help="record a reviewer's verdict on an event")
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("event_id", type=int, metavar="EVENT_ID", help="the event's id")
    p.add_argument("status", metavar="STATUS", help="confirmed, rejected, unsure or relabelled")
    p.add_argument("--reviewer", required=True, help="who gives the verdict (recorded)")
    p.add_argument("--reason", help="reason code (required unless confirmed)")
    p.add_argument("--note", help="free text kept with the verdict")
    p.add_argument("--relabel", metavar="LABEL", help="the right label (with relabelled)")
    p.set_defaults(func=cmd_verdict)

    p = sub.add_parser("mode", help="show or change cameras' rollout modes (shadow/review/active)")
    actions = p.add_subparsers(dest="mode_action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="each camera's mode, active hours and last change")
    show.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    show.add_argument("--config", type=Path, help="also list configured cameras and their defaults")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--site", help="whose cameras (default: the config's site, else '')")
    show.set_defaults(func=cmd_mode_show)
    setp = actions.add_parser("set", help="change a camera's mode (the daemon picks it up)")
    setp.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    setp.add_argument("camera", metavar="CAMERA", help="the camera id")
    setp.add_argument("mode", metavar="MODE", help="shadow, review or active")
    setp.add_argument("--by", required=True, help="who changes it (recorded)")
    setp.add_argument("--reason", required=True, help="why (recorded)")
    setp.add_argument("--active-hours", metavar="HH:MM-HH:MM", help="local time; outside: shadow")
    setp.add_argument("--config", type=Path, help="refuse cameras that are not in this config")
    setp.add_argument(
        "--new",
        action="store_true",
        help="allow a camera the store and config have never seen (otherwise refused as a typo)",
    )
    setp.add_argument("--site", help="the box that owns the camera (default: the config's site)")
    setp.set_defaults(func=cmd_mode_set)

    p = sub.add_parser("hash-password", help="hash a reviewer's password for web.auth.users")
    p.add_argument(
        "--stdin", action="store_true", help="read one line from stdin instead of asking"
    )
    p.set_defaults(func=cmd_hash_password)
