"""The runtime's sub-commands: run, check-config, replay (the benchmarks are in ``benches``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from monitor.cli.printouts import format_replay
from monitor.config import DecisionConfig, MotionGateConfig, config_warnings, load_config
from monitor.config.camera import VIEW_PLANS, ViewConfig
from monitor.errors import ConfigError

EXIT_FORCED = 130  # 128 + SIGINT, as a shell reports an interrupted command
FORCE_AFTER_S = 1.0  # a second signal sooner than this is the same request, delivered twice

logger = logging.getLogger("bearwatch")


UNSET_ENV = re.compile(r"^(.+): environment variable (\w+) is not set")


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        unset = [m for m in map(UNSET_ENV.match, lines) if m]
        others = [line for line in lines if not UNSET_ENV.match(line)]
        if unset:
            # One line a person can act on: which variables, where, and where they go.
            names = ", ".join(dict.fromkeys(m.group(2) for m in unset))
            where = ", ".join(dict.fromkeys(m.group(1) for m in unset))
            print(f"{args.config}: environment variables not set: {names} (used in {where});"
                  " export them or put NAME=value lines in /etc/bearwatch/env", file=sys.stderr)  # fmt: skip
        if others:
            print(f"{args.config}: invalid configuration:", file=sys.stderr)
            for line in others:
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
    first_signal: list[float] = []

    def on_signal(signum: int, _frame: object) -> None:
        # Only record: the main loop does the stopping, within supervisor.drain_timeout_s.
        # A second signal means the person (or systemd) will not wait: leave now,
        # without the drain. Stored events are committed; open ones close at the next start.
        # One stop request often arrives twice at once (coreutils `timeout` signals the
        # process and its group): only a signal a moment after the first forces.
        if stop.is_set():
            if time.monotonic() - first_signal[0] < FORCE_AFTER_S:
                return
            logger.warning(
                "received %s again; exiting without draining", signal.Signals(signum).name
            )
            os._exit(EXIT_FORCED)
        first_signal.append(time.monotonic())
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
        view = ViewConfig(plan=args.view)
        opts = ReplayOptions(fps=args.fps, pacing="realtime" if args.realtime else "fast",
                             providers=args.providers, threads=args.threads, max_batch=args.max_batch,
                             decision=decision, motion_gate=gate, candidate=args.candidate,
                             mode=args.mode, view=view, decode=args.decode)  # fmt: skip
        summary = run_replay(args.videos, clf, opts, store_path=args.store)
    except ValidationError as exc:  # a flag out of bounds: name the flag, one line each
        for line in flag_errors(exc):
            print(f"replay: {line}", file=sys.stderr)
        return 2
    except (MonitorError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if summary["unreadable"]:
        for path in summary["unreadable"]:
            print(
                f"replay: {path}: no decodable video frames (empty, truncated or not a video)",
                file=sys.stderr,
            )
        return 2
    if args.json:
        print(json.dumps(summary))
        return 0
    print(format_replay(summary))
    return 0


# Replay flags by the config field they set, so an error names what the user typed.
REPLAY_FLAGS = {
    "alert_labels": "--alert-labels",
    "threshold": "--threshold",
    "window": "--window",
    "min_hits": "--min-hits",
    "end_after_s": "--end-after-s",
    "recheck_s": "--recheck-s",
    "fps": "--fps",
    "max_batch": "--max-batch",
    "threads": "--threads",
}


def flag_errors(exc: ValidationError) -> list[str]:
    """One line per problem, naming the replay flag (``--threshold: …``), never a pydantic dump."""
    lines = []
    for err in exc.errors(include_url=False):
        names = [str(p) for p in err["loc"] if isinstance(p, str)]
        flag = REPLAY_FLAGS.get(names[-1]) if names else None
        msg = str(err["msg"]).removeprefix("Value error, ")
        if flag is None:  # a rule across flags: name them as flags in the message
            for field, name in REPLAY_FLAGS.items():
                msg = re.sub(rf"\b{field}\b", name, msg)
            lines.append(msg)
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            lines.append(f"{flag}: {msg}{shown}")
    return lines


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the runtime's sub-commands to the ``bearwatch`` parser."""
    p = sub.add_parser("run", help="run the daemon on a config file (systemd runs this)")
    p.add_argument("-c", "--config", type=Path, required=True, help="YAML config file")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file without running (exit 0 or 2)")
    p.add_argument("config", type=Path, help="the YAML config file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("replay", help="run the pipeline over recorded videos and print events")
    p.add_argument("videos", type=Path, nargs="+", help="video files, one camera each")
    p.add_argument("--model", type=Path, required=True, help="model.onnx")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--fps", type=float, default=5.0, help="frames per second of video to classify")
    p.add_argument(
        "--realtime", action="store_true", help="follow the video's timeline instead of fast"
    )
    p.add_argument("--alert-labels", nargs="+", help="labels that raise events (default: bear)")
    p.add_argument("--threshold", type=float, default=0.7, help="alert score that starts an event")
    p.add_argument("--window", type=int, default=5, help="k-of-n: frames looked at")
    p.add_argument("--min-hits", type=int, default=3, help="k-of-n: frames over the threshold")
    p.add_argument(
        "--end-after-s", type=float, default=5.0, help="seconds below release before an event ends"
    )
    p.add_argument(
        "--cooldown-s",
        type=float,
        default=60.0,
        help="a re-appearance this soon after an end continues that event",
    )
    p.add_argument(
        "--release-threshold",
        type=float,
        help="score that keeps an event open (default: threshold - 0.2)",
    )
    p.add_argument("--max-batch", type=int, default=8, help="inference batch size cap")
    # One ONNX Runtime thread by default, as on a camera box: frames come one
    # or two at a time, and waking a second thread costs more CPU per image
    # (measured: 3.1 vs 2.0 ms per batch-1 run of the bundled model) than it saves.
    p.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime intra-op threads (0: its choice)"
    )
    p.add_argument(
        "--providers",
        choices=["cpu", "cuda", "openvino", "auto"],
        default="auto",
        help="ONNX Runtime provider",
    )
    p.add_argument(
        "--store", metavar="URL", help="keep the events in this store (a SQLite file or a URL)"
    )
    p.add_argument(
        "--candidate", type=Path, help="a shadow candidate model to compare with --model"
    )
    p.add_argument("--motion-gate", action="store_true", help="skip inference on static frames")
    p.add_argument(
        "--mode",
        choices=["shadow", "review", "active"],
        default="shadow",
        help="rollout mode recorded on the events (active: unfamiliar alerts are held)",
    )
    p.add_argument(
        "--view",
        choices=VIEW_PLANS,
        default="auto",
        help="view plan for every video: auto (default; full + tiles on large frames), "
        "full (letterboxed), tiles, motion",
    )
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
