"""``bearwatch export``: the store's frames and labels in formats camera-trap tools read (Camtrap DP, MegaDetector)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.cli.report import DATE_HELP, STORE_HELP, InputError, open_store, time_window

FORMATS = ("camtrap-dp", "megadetector")
LOCATION = re.compile(r"^([a-z0-9][a-z0-9_-]{0,62})=(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)$")


def parse_locations(values: list[str]) -> dict[str, tuple[float, float]]:
    """``CAMERA=LAT,LON`` options → camera → (latitude, longitude).

    Raises:
        InputError: a malformed value or coordinates out of range.
    """
    out = {}
    for text in values:
        m = LOCATION.match(text.strip())
        if not m:
            raise InputError(
                f"--location {text!r}: expected CAMERA=LAT,LON such as gate=46.52,7.96"
            )
        lat, lon = float(m.group(2)), float(m.group(3))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InputError(f"--location {text!r}: latitude within ±90, longitude within ±180")
        out[m.group(1)] = (lat, lon)
    return out


def cmd_export(args: argparse.Namespace) -> int:
    """``bearwatch export``: 0, or 2 for bad input (nothing overwritten without --force)."""
    from monitor.report.camtrap import Location, export_camtrap
    from monitor.report.media import ExportRefused
    from monitor.report.megadetector import export_megadetector

    try:
        locations = parse_locations(args.location or [])
        since, until = time_window(args, ZoneInfo("UTC"))
        store = open_store(args.store)
    except InputError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    try:
        if args.format == "camtrap-dp":
            where = {cam: Location(lat, lon) for cam, (lat, lon) in locations.items()}
            s = export_camtrap(store, args.out, where, since=since, until=until, force=args.force)
            print(f"Camtrap DP package in {args.out}: {s.deployments} deployments, {s.media} media"
                  f" ({s.images} images), {s.observations} observations")  # fmt: skip
        else:
            m = export_megadetector(store, args.out, since=since, until=until, force=args.force)
            print(f"MegaDetector batch output {args.out}: {m.images} images ({m.folder}),"
                  f" {m.detections} detections")  # fmt: skip
    except (ExportRefused, ValueError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"export: cannot write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``export`` to the ``bearwatch`` parser."""
    p = sub.add_parser(
        "export",
        help="alerts and audit frames as a Camtrap DP package or MegaDetector batch-output JSON",
        description="Camtrap DP: OUT is a folder (datapackage.json, deployments/media/observations"
        ".csv, media/). MegaDetector: OUT is a .json file, the images go to OUT_images/ beside it.",
    )
    p.add_argument("--store", required=True, metavar="URL", help=STORE_HELP)
    p.add_argument("--format", choices=FORMATS, required=True, help="camtrap-dp or megadetector")
    p.add_argument(
        "out", type=Path, metavar="OUT", help="folder (camtrap-dp) or .json file (megadetector)"
    )
    p.add_argument(
        "--location",
        action="append",
        metavar="CAMERA=LAT,LON",
        help="a camera's coordinates (WGS84 degrees; repeat per camera; camtrap-dp needs them)",
    )
    p.add_argument("--since", help=f"only frames from then on; {DATE_HELP} (times in UTC)")
    p.add_argument("--until", help="only frames before then (default: now)")
    p.add_argument(
        "--force", action="store_true", help="replace an output that exists and is not empty"
    )
    p.set_defaults(func=cmd_export)
