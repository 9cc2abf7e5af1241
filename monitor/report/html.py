"""Writes the rollout report to a folder: report.json, the plots as PNG files, and one self-contained report.html.

Plots are drawn on bare matplotlib ``Figure`` objects (the Agg canvas, no
pyplot): nothing global is switched, no window is opened, and the report can
run on a headless edge box or beside the daemon's threads. The HTML embeds the
same PNGs and the disagreement thumbnails as data URIs, so the one file can
be mailed or copied off the box; the PNG files are there for slides.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import cv2
import jinja2
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from monitor.report.build import ReportData

TEMPLATES = Path(__file__).with_name("templates")
THUMB_WIDTH = 240
COLORS = {"confirmed": "#2e9e5b", "rejected": "#d1453b", "relabelled": "#7a62c9",
          "unsure": "#9aa5ad", "pending": "#f0c33c"}  # fmt: skip
DAY_NIGHT_COLORS = {"day": "#f2a541", "night": "#3b5b92"}


def write_report(data: ReportData, out_dir: Path) -> Path:
    """Write report.json, the plots and report.html into ``out_dir`` (created); returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = data.summary
    zone = ZoneInfo(summary["window"]["timezone"])
    drawn = {
        "precision_over_time": plot_precision_series(summary),
        "day_night": plot_day_night(summary),
        "verdicts": plot_verdicts(summary),
        "latency": plot_latency(data.latency, zone),
        "levers": plot_levers(summary),
    }
    plots = {name: png for name, png in drawn.items() if png is not None}
    for name, png in plots.items():
        (out_dir / f"{name}.png").write_bytes(png)
    summary["plots"] = {name: f"{name}.png" for name in plots}
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    html = render_html(summary, plots, data.thumbnails)
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def render_html(summary: dict[str, Any], plots: dict[str, bytes], thumbs: dict[int, bytes]) -> str:
    """The report page: summary table, plots, then one section per camera."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    zone = ZoneInfo(summary["window"]["timezone"])
    env.filters.update(pct=_pct, range=_range, dur=_dur, local=_local(zone), num=_num)
    return env.get_template("report.html").render(
        r=summary,
        risk_order=risk_order(summary),
        plots={name: _data_uri("image/png", png) for name, png in plots.items()},
        thumbs={i: _data_uri("image/jpeg", thumbnail(jpeg)) for i, jpeg in thumbs.items()},
    )


def risk_order(summary: dict[str, Any]) -> list[str]:
    """Cameras for "What to do": those to demote or investigate first, then by misses found."""
    urgent = {"demote": 0, "investigate": 0}

    def key(cam: str) -> tuple[int, int, str]:
        c = summary["cameras"][cam]
        misses = int(c["periods"]["all"]["audit"]["misses_found"])
        return urgent.get(c["recommendation"]["action"], 1), -misses, cam

    return sorted(summary["cameras"], key=key)


def thumbnail(jpeg: bytes, width: int = THUMB_WIDTH) -> bytes:
    """A smaller JPEG for the page (the original when it is small already or cannot be decoded)."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[1] <= width:
        return jpeg
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else jpeg


def plot_precision_series(summary: dict[str, Any]) -> bytes | None:
    """Precision per day (or week) per camera with Wilson 95 % error bars and the target line."""
    series = {cam: c["precision_series"] for cam, c in summary["cameras"].items()}
    buckets = sorted({p["bucket"] for s in series.values() for p in s if p["precision"]})
    if not buckets:
        return None
    fig, ax = _figure(9.0, 3.6)
    cams = [cam for cam, s in series.items() if any(p["precision"] for p in s)]
    for k, cam in enumerate(cams):
        pts = [p for p in series[cam] if p["precision"]]
        # Cameras side by side within a bucket, so their error bars do not overlap.
        x = [buckets.index(p["bucket"]) + (k - (len(cams) - 1) / 2) * 0.12 for p in pts]
        y = [p["precision"]["value"] for p in pts]
        err = [[v - p["precision"]["low"] for v, p in zip(y, pts, strict=True)],
               [p["precision"]["high"] - v for v, p in zip(y, pts, strict=True)]]  # fmt: skip
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=cam, linewidth=1.5)
    target = summary["criteria"]["min_precision_lower"]
    ax.axhline(target, color="#888", linestyle="--", linewidth=1, label=f"target {target:.2f}")
    ax.set_xticks(range(len(buckets)), buckets, rotation=45 if len(buckets) > 8 else 0)
    ax.set_xlim(-0.5, len(buckets) - 0.5)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("precision")
    ax.set_title(f"Precision per {summary['window']['series_bucket']} (bars: 95 % interval)")
    fig.legend(loc="outside lower center", fontsize=8, ncols=min(5, len(cams) + 1), frameon=False)
    return _png(fig)


def plot_day_night(summary: dict[str, Any]) -> bytes | None:
    """Day vs night precision per camera, with Wilson 95 % error bars and the review counts (PNG)."""
    fig = day_night_figure(summary)
    return None if fig is None else _png(fig)


def day_night_figure(summary: dict[str, Any]) -> Figure | None:
    """The day vs night figure (None when neither period has reviews).

    The legend is drawn from fixed handles, not from the bars: a period with
    no reviews on the first camera used to leave it out of the legend. Counts
    sit above the bars (a short bar cannot hold white text), long camera names
    are slanted, and the constrained layout keeps every label inside the figure.
    """
    cams = list(summary["cameras"])
    if not any(
        summary["cameras"][c]["periods"][p]["precision"] for c in cams for p in ("day", "night")
    ):
        return None
    fig, ax = _figure(max(5.0, 1.3 * len(cams) + 2), 3.8)
    for k, period in enumerate(("day", "night")):
        for i, cam in enumerate(cams):
            block = summary["cameras"][cam]["periods"][period]
            est = block["precision"]
            x = i + (k - 0.5) * 0.38
            if est is None:
                ax.text(x, 0.03, "no\nreviews", ha="center", va="bottom", fontsize=7, color="#666")
                continue
            ax.bar(x, est["value"], width=0.36, color=DAY_NIGHT_COLORS[period],
                   yerr=[[est["value"] - est["low"]], [est["high"] - est["value"]]], capsize=3)  # fmt: skip
            ax.text(x, min(est["high"] + 0.02, 1.08), f"n={block['judged']}", ha="center",
                    va="bottom", fontsize=7, color="#333")  # fmt: skip
    target = summary["criteria"]["min_precision_lower"]
    ax.axhline(target, color="#888", linestyle="--", lw=1)
    slant = len(cams) > 4 or max((len(c) for c in cams), default=0) > 10
    ax.set_xticks(range(len(cams)), cams, rotation=30 if slant else 0,
                  ha="right" if slant else "center")  # fmt: skip
    ax.set_xlim(-0.6, len(cams) - 0.4)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("precision")
    ax.set_title(f"Day vs night (night = {summary['window']['night_hours']})")
    handles: list[Artist] = [Patch(color=DAY_NIGHT_COLORS[p], label=p) for p in ("day", "night")]
    handles.append(Line2D([], [], color="#888", linestyle="--", lw=1, label=f"target {target:.2f}"))
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=3, frameon=False)
    return fig


def plot_verdicts(summary: dict[str, Any]) -> bytes | None:
    """What reviewers said about each camera's alerts, as stacked horizontal bars."""
    cams = [c for c, v in summary["cameras"].items() if v["periods"]["all"]["alerts"]]
    if not cams:
        return None
    fig, ax = _figure(9.0, 0.5 * len(cams) + 1.4, grid="x")
    left = np.zeros(len(cams))
    for status, color in COLORS.items():
        n = np.array([summary["cameras"][c]["periods"]["all"][status] for c in cams], float)
        ax.barh(cams, n, left=left, color=color, label=status)
        left += n
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("alerts")
    ax.set_title("Verdicts on alerts")
    fig.legend(loc="outside lower center", fontsize=8, ncols=5, frameon=False)
    return _png(fig)


def plot_levers(summary: dict[str, Any]) -> bytes | None:
    """Per camera with a ``bearwatch levers`` run: its Pareto front of recall against false alerts a day."""
    runs = {
        cam: c["levers"]
        for cam, c in summary["cameras"].items()
        if isinstance(c.get("levers"), dict) and c["levers"].get("pareto")
    }
    if not runs:
        return None
    fig, ax = _figure(9.0, 3.6)
    for cam, run in runs.items():
        front = run["pareto"]
        xs = [_nan(o.get("false_alerts_per_day")) for o in front]
        ys = [_nan(o.get("recall")) for o in front]
        (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=f"{cam}: settings on the front")
        for key, marker in (("current", "s"), ("recommended", "*")):
            o = run.get(key) or {}
            ax.plot(
                [_nan(o.get("false_alerts_per_day"))],
                [_nan(o.get("recall"))],
                marker=marker,
                markersize=10,
                linestyle="none",
                color=line.get_color(),
                label=f"{cam}: {key}",
            )
    ax.set_xlabel("predicted false alerts a day")
    ax.set_ylabel("predicted recall")
    ax.set_ylim(0, 1.05)
    ax.set_title("Levers: what other decision settings would have done", fontsize=10)
    fig.legend(loc="outside lower center", fontsize=8, ncols=3, frameon=False)
    return _png(fig)


def plot_latency(
    latency: dict[str, list[tuple[float, float | None, float | None]]], zone: ZoneInfo
) -> bytes | None:
    """Capture→decision latency p50 (solid) and p99 (dashed) over time, per camera."""
    if not any(p50 is not None for rows in latency.values() for _, p50, _ in rows):
        return None
    fig, ax = _figure(9.0, 3.2)
    for k, (cam, rows) in enumerate(latency.items()):
        pts = [(datetime.fromtimestamp(at, zone), p50, p99) for at, p50, p99 in rows]
        if not any(p50 is not None for _, p50, _ in pts):
            continue
        color = f"C{k % 10}"
        t = [p[0] for p in pts]
        ax.plot(t, [_nan(p[1]) for p in pts], color=color, label=f"{cam} p50")
        ax.plot(t, [_nan(p[2]) for p in pts], color=color, linestyle="--", label=f"{cam} p99")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.set_title("Capture → decision latency (solid p50, dashed p99)")
    fig.legend(loc="outside lower center", fontsize=8, ncols=4, frameon=False)
    fig.autofmt_xdate()
    return _png(fig)


def _figure(width: float, height: float, grid: Literal["x", "y"] = "y") -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_axisbelow(True)
    ax.grid(axis=grid, color="#e3e7ea")
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f} %"


def _range(est: dict[str, float] | None) -> str:
    """An estimate as "86 % (72–94 %)"."""
    if not est:
        return "—"
    return f"{est['value'] * 100:.0f} % ({est['low'] * 100:.0f}–{est['high'] * 100:.0f} %)"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _num(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _local(zone: ZoneInfo) -> Callable[[str | None], str]:
    def fmt(value: str | None) -> str:
        if not value:
            return "—"
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return fmt
