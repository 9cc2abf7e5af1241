"""The ``bearwatch`` command: argument parsing and dispatch; the only place that exits.

Training commands (``train``, ``quantize``, …) live in the ``training`` package
and plug in through the ``bearwatch.commands`` entry-point group, so the edge
runtime never imports torch or fastai: on a box without the ``train`` extra
those commands are simply absent, with a hint.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from monitor import commands

logger = logging.getLogger("bearwatch")

Handler = Callable[[argparse.Namespace], int]


def _load_plugins(sub: argparse._SubParsersAction) -> list[str]:  # type: ignore[type-arg]
    """Let installed packages add sub-commands; returns the names of plugins that failed."""
    failed = []
    for ep in entry_points(group="bearwatch.commands"):
        try:
            register = ep.load()
            register(sub)
        except ImportError as exc:
            failed.append(f"{ep.name} ({exc})")
    return failed


def build_parser() -> tuple[argparse.ArgumentParser, list[str]]:
    parser = argparse.ArgumentParser(prog="bearwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub)
    failed = _load_plugins(sub)
    return parser, failed


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bearwatch`` console script."""
    parser, failed_plugins = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        if failed_plugins:
            print("\nsome commands are unavailable: " + "; ".join(failed_plugins), file=sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
