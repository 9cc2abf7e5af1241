"""The ``bearwatch`` command: argument parsing and dispatch; the only place that exits.

Training commands (``train``, ``quantize``, …) live in the ``training`` package
and plug in through the ``bearwatch.commands`` entry-point group, so the edge
runtime never imports torch or fastai: on a box without the ``train`` extra
those commands are simply absent, with a hint.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version

from monitor.cli import benches as bench_commands
from monitor.cli import db as db_commands
from monitor.cli import export as export_commands
from monitor.cli import report as report_commands
from monitor.cli import review as review_commands
from monitor.cli import runtime as commands

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


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option with its default, as argparse's defaults formatter does.

    Unlike ``ArgumentDefaultsHelpFormatter`` it leaves out empty defaults
    (None, False: "not given") and help that already names its default, so a
    line never reads "(default: None)".
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else "%(default)s"
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-commands (plugins included) all get ``DefaultsFormatter``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def package_version() -> str:
    """The installed distribution's version (a source tree that was never installed says so)."""
    try:
        return version("bearwatch")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> tuple[argparse.ArgumentParser, list[str]]:
    parser = Parser(
        prog="bearwatch",
        description="Camera monitoring with a fastai-trained classifier, ONNX Runtime and a human review queue.",
    )
    parser.add_argument("--version", action="version", version=f"bearwatch {package_version()}")
    parser.add_argument(
        "--log-level",
        help="DEBUG, INFO, WARNING or ERROR (default: INFO for run, WARNING otherwise)",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="log line format"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub)
    bench_commands.register(sub)
    review_commands.register(sub)
    report_commands.register(sub)
    export_commands.register(sub)
    db_commands.register(sub)
    failed = _load_plugins(sub)
    return parser, failed


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _setup_logging(args: argparse.Namespace) -> None:
    """The daemon logs to stdout (journald); other commands keep stdout for their output."""
    daemon = args.command == "run"
    level = args.log_level or (
        "INFO" if args.command in ("run", "train", "quantize") else "WARNING"
    )
    handler = logging.StreamHandler(sys.stdout if daemon else sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        # journald stamps every line itself.
        stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
        handler.setFormatter(
            logging.Formatter(stamp + "%(levelname)s [%(threadName)s] %(name)s: %(message)s")
        )
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.INFO), handlers=[handler], force=True
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bearwatch`` console script."""
    parser, failed_plugins = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
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
