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
        )
        gate = MotionGateConfig(enabled=args.motion_gate, recheck_s=args.recheck_s)
        opts = ReplayOptions(fps=args.fps, pacing="realtime" if args.realtime else "fast",
                             providers=args.providers, threads=args.threads, max_batch=args.max_batch,
                             decision=decision, motion_gate=gate, candidate=args.candidate,
                             decode=args.decode)  # fmt: skip
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
    from monitor.tools.bench import provider_rates, run_bench

    if args.capacity is not None:
        return _bench_capacity(args)
    if args.providers:
        result = provider_rates(args.model, args.batch, args.threads, args.seconds)
        print(
            json.dumps(result)
            if args.json
            else "\n".join(f"{k:>20}: {v}" for k, v in result.items())
        )
        return 0
    try:
        result = run_bench(args.model, args.batch, args.threads, args.seconds, args.cameras, args.frames,
                           args.budget_ms or 500.0, args.fastai_images, args.gate_minutes)  # fmt: skip
    except ModelError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 0


def _bench_capacity(args: argparse.Namespace) -> int:
    from monitor.errors import MonitorError
    from monitor.tools.capacity import format_capacity, run_capacity

    if not args.capacity.is_file():
        print(f"no such video file: {args.capacity}", file=sys.stderr)
        return 2
    try:
        result = run_capacity(args.capacity, args.model, args.fps, args.decode, args.budget_ms or 1000.0,
                              args.step_seconds, args.threads)  # fmt: skip
    except MonitorError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_capacity(result))
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
    p.add_argument("--max-batch", type=int, default=8)
    # One ONNX Runtime thread by default, as on a camera box: frames come one
    # or two at a time, and waking a second thread costs more CPU per image
    # (measured: 3.1 vs 2.0 ms per batch-1 run of the bundled model) than it saves.
    p.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime intra-op threads (0: its choice)"
    )
    p.add_argument("--providers", choices=["cpu", "cuda", "openvino", "auto"], default="auto")
    p.add_argument("--store", type=Path, help="keep the events in this SQLite file")
    p.add_argument(
        "--candidate", type=Path, help="a shadow candidate model to compare with --model"
    )
    p.add_argument("--motion-gate", action="store_true", help="skip inference on static frames")
    p.add_argument(
        "--decode",
        choices=["all", "keyframes", "auto"],
        default="all",
        help="decode every frame, keyframes only, or keyframes when they are frequent enough",
    )

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
        "--budget-ms",
        type=float,
        default=None,
        help="latency budget of the overload run (500) or of the capacity steps (1000)",
    )
    p.add_argument("--fastai-images", type=int, default=30, help="images for the learn.predict run")
    p.add_argument(
        "--gate-minutes", type=float, default=2.0, help="static video for the motion-gate CPU run"
    )
    p.add_argument(
        "--providers",
        action="store_true",
        help="only: raw images/s of every installed ONNX Runtime provider, outputs against the CPU's",
    )
    p.add_argument(
        "--capacity",
        type=Path,
        metavar="VIDEO",
        help="only: CPU per minute of VIDEO (pipeline vs bare decode) and how many such live cameras "
        "this box sustains",
    )
    p.add_argument("--fps", type=float, default=2.0, help="--capacity: frames per second sampled")
    p.add_argument(
        "--decode",
        choices=["all", "keyframes", "auto"],
        default="all",
        help="--capacity: decode mode",
    )
    p.add_argument(
        "--step-seconds",
        type=float,
        default=20.0,
        help="--capacity: length of each camera-count step",
    )
    p.set_defaults(func=cmd_bench)
