"""The ``bearwatch report`` and ``bearwatch export-dataset`` sub-commands."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.cli.tables import Counting, table
from monitor.config import Config, load_config
from monitor.errors import ConfigError, StoreError
from monitor.store import ReviewStore
from monitor.store.review_store import open_existing

AGE = re.compile(r"^(\d+)\s*([hdw])$")
AGE_UNITS_S = {"h": 3600, "d": 86400, "w": 7 * 86400}
DATE_HELP = "ISO-8601 (2024-06-01, 2024-06-01T20:00, with or without offset) or an age: 12h, 7d, 2w"


class InputError(Exception):
    """Bad command-line input; the message is the one line the user sees."""


def parse_when(text: str, zone: ZoneInfo, now: float) -> float:
    """A command-line time → UTC epoch seconds.

    Ages (``7d``) count back from ``now``; a date is local midnight and a time
    without an offset is local time, both on ``zone``'s clock — the clock the
    report's day and night are read on.

    Raises:
        InputError: for anything else.
    """
    age = AGE.match(text.strip().lower())
    if age:
        return now - int(age.group(1)) * AGE_UNITS_S[age.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"bad date {text!r}: expected {DATE_HELP}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.timestamp()


def time_window(args: argparse.Namespace, zone: ZoneInfo) -> tuple[float | None, float]:
    """(since, until) from ``--since``/``--until`` (shared by report, export-dataset and export)."""
    now = time.time()
    since = parse_when(args.since, zone, now) if args.since else None
    until = parse_when(args.until, zone, now) if args.until else now
    if since is not None and since >= until:
        raise InputError(f"--since ({args.since}) must be before --until ({args.until or 'now'})")
    return since, until


STORE_HELP = "the review store: a SQLite file, sqlite:///FILE or postgresql://USER@HOST/DB"


def open_store(target: str | Path) -> ReviewStore:
    """The review store at ``target`` (a path or a URL), which must exist."""
    # ReviewStore creates a missing file; a typo must not produce an empty report.
    try:
        return open_existing(target)
    except StoreError as exc:
        raise InputError(str(exc)) from None


def cmd_report(args: argparse.Namespace) -> int:
    """``bearwatch report``: 0, or 2 for bad input."""
    from monitor.report.build import build_report, settings_from_config
    from monitor.report.html import write_report

    try:
        cfg = _load_config(args.config)
        zone = ZoneInfo(cfg.timezone if cfg else "UTC")
        since, until = time_window(args, zone)
        store = open_store(args.store)
    except InputError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    try:
        settings = replace(settings_from_config(cfg, since, until), site=args.site)
        data = build_report(store, settings)
    finally:
        store.close()
    try:
        html = write_report(data, args.out)
    except OSError as exc:
        print(f"report: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(data.summary, indent=2))
    else:
        print(format_summary(data.summary))
        print(f"report: {html}")
    return 0


def _load_config(path: Path | None) -> Config | None:
    if path is None:
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        raise InputError(
            f"invalid configuration {path}: " + "; ".join(str(exc).splitlines())
        ) from None


def format_summary(summary: dict[str, Any]) -> str:
    """One screen: the window, then one line per camera with its recommendation."""
    w = summary["window"]
    zone = ZoneInfo(w["timezone"])

    def local(value: str | None) -> str:
        if value is None:
            return "the first record"
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    rows = []
    for cam, c in summary["cameras"].items():
        a = c["periods"]["all"]
        night = c["periods"]["night"]["audit"]
        misses = f"{a['audit']['misses_found']} of {a['audit']['labelled']}"
        if night["misses_found"]:
            misses += f" (night {night['misses_found']})"
        rows.append((cam, c["mode"], misses, _est(a["recall"]), a["alerts"], a["judged"],
                     _est(a["precision"]), c["recommendation"]["text"]))  # fmt: skip
    # Misses lead: the cameras to demote or investigate first, then by misses found.
    rows.sort(key=lambda r: (_urgency(summary["cameras"][r[0]]), r[0]))
    head = (
        f"bearwatch report: {local(w['since'])} → {local(w['until'])} {w['timezone']}"
        f" (night {w['night_hours']})"
    )
    if not rows:
        return head + "\n(no cameras and no records in this window)"
    headers = ("camera", "mode", "misses", "recall (95 %)", "alerts", "judged",
               "precision (95 %)", "recommendation")  # fmt: skip
    return head + "\n" + table(headers, rows, right=(4, 5))


def _urgency(c: dict[str, Any]) -> tuple[int, int]:
    action = c["recommendation"]["action"]
    return (0 if action in ("demote", "investigate") else 1), -c["periods"]["all"]["audit"][
        "misses_found"
    ]


def _est(est: dict[str, float] | None) -> str:
    if not est:
        return "—"
    return f"{est['value']:.2f} ({est['low']:.2f}–{est['high']:.2f})"


def cmd_export_dataset(args: argparse.Namespace) -> int:
    """``bearwatch export-dataset``: 0, or 2 for bad input."""
    from monitor.report.dataset_export import MANIFEST, export_dataset

    try:
        since, until = time_window(args, ZoneInfo("UTC"))
        store = open_store(args.store)
    except InputError as exc:
        print(f"export-dataset: {exc}", file=sys.stderr)
        return 2
    counter = Counting("export-dataset", unit="frame")
    try:
        summary = export_dataset(
            store, args.out, since=since, until=until, rejected_as=args.rejected_as,
            tick=counter.tick,
        )  # fmt: skip
    except ValueError as exc:
        print(f"export-dataset: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"export-dataset: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        counter.close()
        store.close()
    total = sum(summary.per_class.values())
    print(f"exported to {args.out}: {total} images in {len(summary.per_class)} classes")
    for label, n in summary.per_class.items():
        print(f"  {label:<20} {n:>6}")
    skipped = ", ".join(f"{k} {n}" for k, n in sorted(summary.skipped.items())) or "none"
    print(
        f"written {summary.written}, unchanged {summary.unchanged}, removed {summary.removed};"
        f" skipped: {skipped}"
    )
    print(f"manifest: {args.out / MANIFEST}")
    return 0


def cmd_levers(args: argparse.Namespace) -> int:
    """``bearwatch levers``: 0, or 2 for bad input; changes nothing unless ``--apply``."""
    from monitor.config import DecisionConfig
    from monitor.errors import MonitorError
    from monitor.tools.levers import (
        config_fragment,
        format_table,
        load_inputs,
        run_levers,
        save_recommendation,
    )

    try:
        cfg = _load_config(args.config)
        zone = ZoneInfo(cfg.timezone if cfg else "UTC")
        since, until_now = time_window(args, zone)
        # Without --until, no upper bound: a fast replay stamps frames on the
        # file's own timeline, which runs ahead of now.
        until: float | None = until_now if args.until else None
        current = DecisionConfig()
        random_rate = 0.01
        if cfg is not None:
            random_rate = cfg.audit.random_rate
            cam = next((c for c in cfg.cameras if c.id == args.camera), None)
            if cam is None:
                raise InputError(f"camera {args.camera} is not in {args.config}")
            current = cam.decision
        label = args.label or current.alert_labels[0]
        if args.apply is not None and args.apply.exists() and not args.force:
            raise InputError(f"{args.apply} exists; pass --force to replace it")
        store = open_store(args.store)
    except InputError as exc:
        print(f"levers: {exc}", file=sys.stderr)
        return 2
    try:
        inputs = load_inputs(store, args.camera, label, since, until, random_rate)
        report = run_levers(
            inputs, current, max_false_per_day=args.max_false_per_day, review_s=args.review_s
        )
        if args.apply is not None:
            args.apply.write_text(config_fragment(report))
            save_recommendation(store, report)
    except MonitorError as exc:
        print(f"levers: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"levers: cannot write {args.apply}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print(format_table(report))
        if args.apply is not None:
            print(f"wrote the recommended settings to {args.apply} (merge them into your config)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``report``, ``export-dataset`` and ``levers`` to the ``bearwatch`` parser."""
    p = sub.add_parser(
        "report",
        help="per-camera rollout report: HTML with plots and report.json",
        description="Precision, estimated recall, day vs night, latency, drift, the shadow candidate "
        "and a promotion recommendation per camera.",
    )
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument(
        "--config", type=Path, help="config file: modes, alert labels, time zone, criteria"
    )
    p.add_argument("--since", help=f"start of the window; {DATE_HELP}")
    p.add_argument("--site", help="only this site's cameras (default: every site in the store)")
    p.add_argument("--until", help="end of the window (default: now); same forms as --since")
    p.add_argument("--out", type=Path, required=True, help="folder for report.html/json and plots")
    p.add_argument("--json", action="store_true", help="print report.json instead of the summary")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "export-dataset",
        help="reviewed frames as class folders that `bearwatch train --data` reads",
        description="Confirmed alerts under their label, relabelled ones under the new label, "
        "labelled audit samples under theirs; DIR/<label>/<source>-<id>.jpg plus manifest.csv.",
    )
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--out", type=Path, required=True, help="the dataset folder (re-runs update it)")
    p.add_argument("--since", help=f"only frames from then on; {DATE_HELP} (times in UTC)")
    p.add_argument("--until", help="only frames before then (default: now)")
    p.add_argument(
        "--rejected-as",
        metavar="LABEL",
        help="put rejected alerts under this class (e.g. empty); default: skip them",
    )
    p.set_defaults(func=cmd_export_dataset)

    p = sub.add_parser(
        "levers",
        help="what other decision settings would have done on a camera, and which to use",
        description="Replays the camera's logged scores through the real decision policy for a "
        "grid of thresholds, k-of-n windows and end-after times, scores each against the verdicts "
        "and audit labels in the store, and recommends the setting with the highest recall among "
        "those with at most --max-false-per-day false alerts. Changes nothing unless --apply.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--camera", required=True, help="the camera id")
    p.add_argument("--config", type=Path, help="config file: the camera's current settings")
    p.add_argument("--label", help="the alert label (default: the camera's first alert label)")
    p.add_argument("--since", help=f"start of the window; {DATE_HELP}")
    p.add_argument("--until", help="end of the window (default: now)")
    p.add_argument(
        "--max-false-per-day",
        type=float,
        default=2.0,
        help="the objective: at most this many false alerts a day, then the highest recall",
    )
    p.add_argument(
        "--review-s", type=float, default=15.0, help="seconds a person spends on one alert"
    )
    p.add_argument(
        "--apply",
        type=Path,
        metavar="FILE",
        help="write the recommended settings as a config fragment to FILE (never the live config)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --apply FILE")
    p.add_argument("--json", action="store_true", help="print JSON (current, recommended, pareto)")
    p.set_defaults(func=cmd_levers)
