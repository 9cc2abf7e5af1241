"""Readable text for ``replay`` and ``bench`` (their ``--json`` output is the summary dict itself)."""

from __future__ import annotations

from typing import Any

from monitor.cli.tables import MISSING, cell, pairs, table


def format_replay(summary: dict[str, Any]) -> str:
    """Totals, then a table of events, then any camera whose drift state is not in the domain."""
    lat = summary["latency_ms"]
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(summary["dropped"].items())) or "none"
    out = [
        pairs(
            [
                ("frames classified", f"{summary['frames']} of {summary['offered']} offered"),
                ("time", f"{summary['elapsed_s']} s ({cell(summary['fps'])} frames/s)"),
                (
                    "latency p50 / p95 / p99",
                    f"{cell(lat['p50'])} / {cell(lat['p95'])} / {cell(lat['p99'])} ms",
                ),
                ("dropped", dropped),
                ("model", summary["model_version"]),
            ]
        ),  # fmt: skip
        "",
    ]
    events = summary["events"]
    if events:
        rows = [
            (e["camera"], e["label"], f"{e['start']:.1f}", MISSING if e["end"] is None else
             f"{e['end']:.1f}", f"{e['peak_score']:.2f}", e["frames"], _where(e),
             "unfamiliar" if e.get("unfamiliar") else "")
            for e in events
        ]  # fmt: skip
        out.append(table(("camera", "label", "start s", "end s", "peak", "frames", "region",
                          "domain"), rows, right=(2, 3, 4, 5)))  # fmt: skip
    else:
        out.append("no events")
    drifted = [(cam, d["state"], ", ".join(d["flags"])) for cam, d in summary["drift"].items()
               if d and d["state"] != "in_domain"]  # fmt: skip
    if drifted:
        out += ["", table(("camera", "drift", "signals"), drifted)]
    return "\n".join(out)


def _where(e: dict[str, Any]) -> str:
    """The peak region (normalised x0,y0–x1,y1) and zone of an event, or blank for the whole frame."""
    box = e.get("box")
    where = "" if box is None or list(box) == [0.0, 0.0, 1.0, 1.0] else (
        f"{box[0]:.2f},{box[1]:.2f}–{box[2]:.2f},{box[3]:.2f}"
    )  # fmt: skip
    return where + (f" zone {e['zone']}" if e.get("zone") else "")


def format_bench(r: dict[str, Any]) -> str:
    """The throughput figures with why any is missing, the overload run, the motion gate."""
    why = r.get("missing", {})

    def fig(key: str, unit: str = "") -> str:
        value = r[key]
        if value is None:
            return f"{MISSING} ({why.get(key, 'not measured')})"
        return f"{value}{unit}"

    over, gate = r["overload"], r["motion_gate"]
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(over["dropped"].items())) or "none"
    head = f"bench: {r['model_version']} ({r['input_hw'][0]}×{r['input_hw'][1]}), batch {r['batch']}, {r['threads']} thread(s)"
    rows = [
        ("raw ONNX Runtime", fig("raw_ort_img_s", " img/s")),
        ("full pipeline", f"{fig('pipeline_img_s', ' img/s')} ({r['pipeline_frames']} frames)"),
        ("pipeline ÷ raw", fig("ratio")),
        ("fastai learn.predict", fig("fastai_img_s", " img/s")),
        ("pipeline ÷ fastai", fig("pipeline_vs_fastai", "×")),
        ("overload 2×: offered", f"{over['offered']} at {over['offered_rate']} frames/s"),
        ("overload 2×: decided", f"{over['processed']}; dropped {dropped}; all accounted: "
         f"{cell(over['accounted'])}"),
        ("overload 2×: p50 / p99", f"{cell(over['p50_ms'])} / {cell(over['p99_ms'])} ms"
         f" (budget {over['budget_ms']:.0f} ms)"),
        ("motion gate CPU ratio", f"{gate['cpu_ratio']} (classified {gate['with_gate']['classified']}"
         f" of {gate['with_gate']['offered']} static frames)"),
    ]  # fmt: skip
    return head + "\n" + pairs(rows)
