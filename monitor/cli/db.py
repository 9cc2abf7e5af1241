"""``bearwatch db upgrade`` and ``bearwatch db status``: the store's schema, migrated explicitly (a fleet's PostgreSQL)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitor.config import load_config
from monitor.errors import EXIT_USAGE, ConfigError, StoreError
from monitor.store import StoreUrl
from monitor.store.migrate import status_of, upgrade_url

EXIT_BEHIND = 1


def _url(args: argparse.Namespace) -> StoreUrl:
    if args.store:
        return StoreUrl.parse(args.store)
    if args.config:
        cfg = load_config(args.config)
        return StoreUrl.parse(cfg.store.url or cfg.store.path)
    raise ConfigError("give --store URL or --config FILE")


def cmd_db_status(args: argparse.Namespace) -> int:
    """Print where the schema stands: 0 up to date, 1 behind (or empty), 2 for errors or a newer schema."""
    try:
        url = _url(args)
        state = status_of(url)
    except (StoreError, ConfigError) as exc:
        print(f"db status: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{url}: {state.describe()}")
    if not state.known:
        return EXIT_USAGE
    if not state.up_to_date:
        print(f"run: bearwatch db upgrade --store {url}", file=sys.stderr)
        return EXIT_BEHIND
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Bring the store's schema to this bearwatch's head revision (old SQLite files included)."""
    try:
        url = _url(args)
        before, after = upgrade_url(url)
    except (StoreError, ConfigError) as exc:
        print(f"db upgrade: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if before.up_to_date:
        print(f"{url}: already at revision {after.current}")
    else:
        was = f"legacy version {before.legacy}" if before.legacy is not None else before.current
        print(f"{url}: upgraded from {was or 'an empty database'} to revision {after.current}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``db status`` and ``db upgrade`` to the ``bearwatch`` parser."""
    p = sub.add_parser("db", help="the review store's schema: status, upgrade")
    actions = p.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    for name, func, text in (
        ("status", cmd_db_status, "the store's schema revision (exit 1 when an upgrade is due)"),
        ("upgrade", cmd_db_upgrade, "migrate the store to this bearwatch's schema"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("--store", metavar="URL", help="sqlite:///FILE, a file, or postgresql://…")
        a.add_argument("-c", "--config", type=Path, help="take store.url from this config")
        a.set_defaults(func=func)
