"""The measuring sub-commands: bench, ood-eval, view-eval, store-bench."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.cli.printouts import format_bench
from monitor.cli.tables import Steps
from monitor.config.camera import TilesConfig


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
