"""The runtime's sub-commands: run, check-config, replay, bench."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from monitor.config import DecisionConfig, MotionGateConfig, config_warnings, load_config
from monitor.errors import ConfigError

EXIT_FORCED = 130  # 128 + SIGINT, as a shell reports an interrupted command

logger = logging.getLogger("bearwatch")


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"{args.config}: invalid configuration:", file=sys.stderr)
        for line in str(exc).splitlines():
            print(f"  {line}", file=sys.stderr)
        return 2
    for note in config_warnings(cfg):
        print(f"warning: {note}", file=sys.stderr)
    cams = ", ".join(f"{c.id} ({c.kind} {c.safe_source}, {c.mode})" for c in cfg.cameras)
    print(f"{args.config}: OK — {len(cfg.cameras)} camera(s): {cams}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.service.daemon import run_daemon

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        logger.error("invalid configuration %s:\n  %s", args.config, str(exc).replace("\n", "\n  "))
        return 2
    for note in config_warnings(cfg):
        logger.warning("%s", note)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        # Only record: the main loop does the stopping, within supervisor.drain_timeout_s.
        # A second signal means the person (or systemd) will not wait: leave now,
        # without the drain. Stored events are committed; open ones close at the next start.
        if stop.is_set():
            logger.warning(
                "received %s again; exiting without draining", signal.Signals(signum).name
            )
            os._exit(EXIT_FORCED)
        logger.info("received %s; stopping (again to force)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run_daemon(cfg, stop)


def cmd_replay(args: argparse.Namespace) -> int:
    from monitor.errors import MonitorError
    from monitor.model.onnx import OnnxClassifier
    from monitor.tools.replay import ReplayOptions, run_replay

    missing = [v for v in args.videos if not v.is_file()]
    if missing:
        print(f"no such video file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    try:
        clf = OnnxClassifier(args.model, args.providers, args.threads, warmup_batch=args.max_batch)
        decision = DecisionConfig(
            alert_labels=args.alert_labels or ["bear"],
            threshold=args.threshold,
            window=args.window,
            min_hits=args.min_hits,
            end_after_s=args.end_after_s,
            cooldown_s=args.cooldown_s,
            release_threshold=args.release_threshold,
        )
        gate = MotionGateConfig(enabled=args.motion_gate, recheck_s=args.recheck_s)
        opts = ReplayOptions(fps=args.fps, pacing="realtime" if args.realtime else "fast",
                             providers=args.providers, threads=args.threads, max_batch=args.max_batch,
                             decision=decision, motion_gate=gate, candidate=args.candidate)  # fmt: skip
        summary = run_replay(args.videos, clf, opts, store_path=args.store)
    except (MonitorError, ValueError) as exc:  # ValueError: a decision setting out of bounds
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{summary['frames']} frames in {summary['elapsed_s']} s ({summary['fps']} frames/s); "
          f"latency ms {summary['latency_ms']}; dropped {summary['dropped'] or 'none'}")  # fmt: skip
    for cam, drift in summary["drift"].items():
        if drift and drift["state"] != "in_domain":
            print(f"  {cam}: {drift['state']} ({', '.join(drift['flags'])})")
    for ev in summary["events"]:
        end = "open" if ev["end"] is None else f"{ev['end']:.1f}s"
        print(
            f"  {ev['camera']:<20} {ev['label']:<10} {ev['start']:7.1f}s → {end:<8} peak {ev['peak_score']:.2f}"
        )
    if not summary["events"]:
        print("  no events")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from monitor.errors import ModelError
    from monitor.tools.bench import run_bench

    try:
        result = run_bench(args.model, args.batch, args.threads, args.seconds, args.cameras, args.frames,
                           args.budget_ms, args.fastai_images, args.gate_minutes)  # fmt: skip
    except ModelError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 0


def cmd_store_bench(args: argparse.Namespace) -> int:
    """Events/s written and review-query p95 on one store (prints a table, or JSON)."""
    from monitor.errors import StoreError
    from monitor.tools.store_bench import format_result, run_store_bench

    try:
        result = run_store_bench(
            args.store, events=args.events, writes=args.writes, repeats=args.repeats,
            local=Path(args.local),
        )  # fmt: skip
    except StoreError as exc:
        print(f"store-bench: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_result(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the runtime's sub-commands to the ``bearwatch`` parser."""
    p = sub.add_parser("run", help="run the daemon on a config file (systemd runs this)")
    p.add_argument("-c", "--config", type=Path, required=True, help="YAML config file")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file without running (exit 0 or 2)")
    p.add_argument("config", type=Path)
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("replay", help="run the pipeline over recorded videos and print events")
    p.add_argument("videos", type=Path, nargs="+")
    p.add_argument("--model", type=Path, required=True, help="model.onnx")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--fps", type=float, default=5.0, help="frames per second of video to classify")
    p.add_argument(
        "--realtime", action="store_true", help="follow the video's timeline instead of fast"
    )
    p.add_argument("--alert-labels", nargs="+", help="labels that raise events (default: bear)")
    p.add_argument("--threshold", type=float, default=0.7)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--min-hits", type=int, default=3)
    p.add_argument("--end-after-s", type=float, default=5.0)
    p.add_argument(
        "--cooldown-s",
        type=float,
        default=60.0,
        help="a re-appearance this soon after an end continues that event (default 60)",
    )
    p.add_argument(
        "--release-threshold",
        type=float,
        help="score that keeps an event open (default: threshold - 0.2)",
    )
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--providers", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument(
        "--store", metavar="URL", help="keep the events in this store (a SQLite file or a URL)"
    )
    p.add_argument(
        "--candidate", type=Path, help="a shadow candidate model to compare with --model"
    )
    p.add_argument("--motion-gate", action="store_true", help="skip inference on static frames")

    p.add_argument(
        "--recheck-s", type=float, default=10.0, help="motion gate: classify at least this often"
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "bench", help="raw ONNX Runtime vs pipeline vs fastai, plus a 2x overload run"
    )
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime intra-op threads (both runs)"
    )
    p.add_argument("--seconds", type=float, default=5.0, help="length of the raw and overload runs")
    p.add_argument(
        "--cameras", type=int, default=2, help="copies of the bench clip replayed at once"
    )
    p.add_argument("--frames", type=int, default=300, help="frames in the bench clip")
    p.add_argument(
        "--budget-ms", type=float, default=500.0, help="latency budget of the overload run"
    )
    p.add_argument("--fastai-images", type=int, default=30, help="images for the learn.predict run")
    p.add_argument(
        "--gate-minutes", type=float, default=2.0, help="static video for the motion-gate CPU run"
    )

    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "store-bench", help="review store: events/s written with snapshots, list p95 at scale"
    )
    p.add_argument("--store", required=True, metavar="URL", help="an empty store to fill")
    p.add_argument("--events", type=int, default=1_000_000, help="history size (default 1M)")
    p.add_argument("--writes", type=int, default=2000, help="events written one by one")
    p.add_argument("--repeats", type=int, default=200, help="runs of each query")
    p.add_argument("--local", default="store-bench.db", help="a server store's spill beside this")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_store_bench)
