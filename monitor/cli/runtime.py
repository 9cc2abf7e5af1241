"""The runtime's sub-commands: run, check-config, replay, bench."""

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

from monitor.cli.printouts import format_bench, format_replay
from monitor.cli.tables import Steps
from monitor.config import DecisionConfig, MotionGateConfig, config_warnings, load_config
from monitor.config.camera import VIEW_PLANS, TilesConfig, ViewConfig
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


def cmd_bench(args: argparse.Namespace) -> int:
    from monitor.errors import ModelError
    from monitor.tools.bench import STEPS, provider_rates, run_bench
    from monitor.tools.bench_view import format_view_plans, view_plan_bench

    if args.soak is not None:
        return _bench_soak(args)
    if args.model is None:
        print("bench: --model is required (except with --soak)", file=sys.stderr)
        return 2
    if args.store_locked is not None:
        return _bench_store_locked(args)
    if args.capacity is not None:
        return _bench_capacity(args)
    if args.providers:
        rates = provider_rates(args.model, args.batch, args.threads, args.seconds)
        print(
            json.dumps(rates) if args.json else "\n".join(f"{k:>20}: {v}" for k, v in rates.items())
        )
        return 0
    steps = Steps(STEPS, "bench")
    try:
        if args.view_only:
            from monitor.model.onnx import OnnxClassifier

            clf = OnnxClassifier(args.model, "cpu", args.threads, warmup_batch=args.batch)
            result = {"view_plans": view_plan_bench(clf, args.batch, args.view_frames)}
        else:
            result = run_bench(args.model, args.batch, args.threads, args.seconds, args.cameras,
                               args.frames, args.budget_ms or 500.0, args.fastai_images,
                               args.gate_minutes, args.view_frames, step=steps)  # fmt: skip
    except ModelError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        steps.close()
    if args.json:
        print(json.dumps(result))
        return 0
    if not args.view_only:
        print(format_bench(result))
    if result.get("view_plans"):
        print("\nview plans (one 1080p clip, one walker, every frame):")
        print(format_view_plans(result["view_plans"]))
    return 0


def cmd_ood_eval(args: argparse.Namespace) -> int:
    from monitor.errors import ModelError
    from monitor.tools.ood_eval import evaluate, format_table

    try:
        result = evaluate(args.model, args.in_dir, args.out_dir, args.report, batch=args.batch)
    except (ModelError, ValueError) as exc:
        print(f"ood-eval: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def _print_result(args: argparse.Namespace, result: dict[str, object]) -> None:
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


def _bench_store_locked(args: argparse.Namespace) -> int:
    from monitor.errors import ModelError
    from monitor.model.onnx import OnnxClassifier
    from monitor.tools.stress import store_locked_run

    try:
        clf = OnnxClassifier(args.model, "cpu", args.threads, warmup_batch=8)
    except ModelError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    result = store_locked_run(
        clf, lock_s=args.store_locked, cameras=args.cameras, budget_ms=args.budget_ms,
        threads=args.threads,
    )  # fmt: skip
    _print_result(args, result)
    return 0


def _bench_soak(args: argparse.Namespace) -> int:
    from monitor.tools.stress import soak_run

    config = args.config or Path(__file__).resolve().parents[2] / "deploy" / "demo.yaml"
    if not config.is_file():
        print(f"bench: --config {config} is not a file", file=sys.stderr)
        return 2
    _print_result(args, soak_run(config, args.soak, every_s=args.sample_s))
    return 0


def cmd_view_eval(args: argparse.Namespace) -> int:
    from monitor.errors import ModelError
    from monitor.model.onnx import OnnxClassifier
    from monitor.tools.view_eval import evaluate, format_table

    try:
        clf = OnnxClassifier(args.model, args.providers, args.threads, warmup_batch=16)
        tiles = TilesConfig(max_downscale=args.max_downscale, overlap=args.overlap)
        result = evaluate(args.folder, clf, args.threshold, args.label, tiles)
    except (ModelError, ValueError) as exc:
        print(f"view-eval: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_table(result))
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

    p = sub.add_parser(
        "bench", help="raw ONNX Runtime vs pipeline vs fastai, plus a 2x overload run"
    )
    p.add_argument("--model", type=Path, help="model.onnx (all runs but --soak)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--store-locked", type=float, metavar="SECONDS",
        help="only: capture→decision latency while another process locks the store this long",
    )  # fmt: skip
    p.add_argument(
        "--soak", type=float, metavar="MINUTES",
        help="only: run the daemon on --config (default: the demo) and sample RSS, threads, fds",
    )  # fmt: skip
    p.add_argument("--config", type=Path, help="--soak: the config to run")
    p.add_argument("--sample-s", type=float, default=10.0, help="--soak: seconds between samples")
    p.add_argument("--batch", type=int, default=8, help="batch size of the raw and pipeline runs")
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
        "--view-frames", type=int, default=60, help="frames of the 1080p view-plan clip (0: skip)"
    )
    p.add_argument("--view-only", action="store_true", help="run only the view-plan section")

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

    p = sub.add_parser(
        "ood-eval",
        help="AUROC and FPR@95%%TPR of MSP, energy and the feature score on two image folders",
    )
    p.add_argument("--model", type=Path, required=True, help="model.onnx")
    p.add_argument("--in", dest="in_dir", type=Path, required=True, help="in-domain images")
    p.add_argument(
        "--out", dest="out_dir", type=Path, required=True, help="out-of-domain (foreign) images"
    )
    p.add_argument(
        "--report",
        type=Path,
        default=Path("ood-eval"),
        help="folder for ood_eval.json and roc.png (default ./ood-eval)",
    )
    p.add_argument("--batch", type=int, default=16, help="images per inference batch")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_ood_eval)

    p = sub.add_parser(
        "view-eval",
        help="bear recall and empty-scene false positives per view plan on a wide evaluation set",
    )
    p.add_argument("folder", type=Path, help="written by `python -m training.synthetic.wide eval`")
    p.add_argument("--model", type=Path, required=True, help="model.onnx")
    p.add_argument("--threshold", type=float, default=0.7, help="frame score that counts as a bear")
    p.add_argument("--label", default="bear", help="the alert label to score")
    p.add_argument(
        "--max-downscale",
        type=float,
        default=4.0,
        help="tiles: at most this many model inputs wide",
    )
    p.add_argument("--overlap", type=float, default=0.15, help="tiles: least overlap")
    p.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its choice)"
    )
    p.add_argument(
        "--providers", choices=["cpu", "cuda", "auto"], default="cpu", help="ONNX Runtime provider"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_view_eval)

    p = sub.add_parser(
        "store-bench", help="review store: events/s written with snapshots, list p95 at scale"
    )
    p.add_argument("--store", required=True, metavar="URL", help="an empty store to fill")
    p.add_argument("--events", type=int, default=1_000_000, help="history size")
    p.add_argument("--writes", type=int, default=2000, help="events written one by one")
    p.add_argument("--repeats", type=int, default=200, help="runs of each query")
    p.add_argument("--local", default="store-bench.db", help="spill file base (server stores)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_store_bench)
