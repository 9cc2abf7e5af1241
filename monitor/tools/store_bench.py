"""``bearwatch store-bench``: events written per second (with snapshots) and review-page query p95 at scale.

Targets (ARCHITECTURE.md, issue 12): ≥ 500 events/s written through the alert
path (each a committed transaction with its JPEG), and the review page's list
query ≤ 50 ms p95 at 1 million events, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monitor.records import NewEvent
from monitor.store import ReviewStore, StoreUrl
from monitor.store.bulk import fill_events
from monitor.store.writer import BUDGET_S


def _snapshot() -> bytes:
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (9, 9), 0)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(buf)


def _p95_ms(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    fn()  # warm the cache: a reviewer's page is rarely the first query after boot
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


def run_store_bench(
    target: str, *, events: int, writes: int, repeats: int, local: Path
) -> dict[str, Any]:
    """Fill ``target`` to ``events`` events, then time writes and the review page's queries.

    Args:
        target: a store URL or SQLite path (an empty database: the bench writes to it).
        events: the history size the queries run against.
        writes: events written one by one through ``add_event`` (with a snapshot each),
            each inside the store writer's budget as on the alert path; a write
            that spilled instead counts as written but is reported.
        repeats: runs of each query.
        local: where a server store's spill goes.
    """
    url = StoreUrl.parse(target)
    store = ReviewStore(url, site="bench", local_path=local, upgrade=True)
    try:
        have = store.count_events()
        fill_s = fill_events(store, max(0, events - have - writes)) if events > have else 0.0
        snap = _snapshot()
        now = time.time()
        spilled = 0
        t0 = time.perf_counter()
        for i in range(writes):
            # As the store writer runs each alert write: inside its budget.
            with store.write_budget(BUDGET_S):
                stored = store.add_event(
                    NewEvent(camera=f"cam{i % 8}", label="bear", kind="alert",
                             start_at=now + i * 1e-3, end_at=None, peak_score=0.9,
                             model_version="bench", mode="review", snapshot_jpeg=snap)
                )  # fmt: skip
            spilled += stored is None
        write_s = time.perf_counter() - t0
        total = store.count_events()
        first = store.list_events(status="pending", limit=50)
        before = int(first[-1]["id"]) if first else None
        queries: dict[str, Callable[[], object]] = {
            "queue (pending, 50)": lambda: store.list_events(status="pending", limit=50),
            "queue page 2": lambda: store.list_events(status="pending", limit=50, before_id=before),
            "all statuses": lambda: store.list_events(limit=50),
            "one camera": lambda: store.list_events(camera="cam3", limit=50),
            "one site": lambda: store.list_events(site="site1", limit=50),
            "one label": lambda: store.list_events(label="deer", limit=50),
            "cameras + sites + labels": lambda: (
                store.event_cameras(),
                store.event_sites(),
                store.seen_labels(),
            ),
            "pending count": lambda: store.count_events(status="pending"),
        }
        timings = {name: _p95_ms(fn, repeats) for name, fn in queries.items()}
        return {
            "store": str(url),
            "engine": store.dialect,
            "events": total,
            "fill_s": round(fill_s, 1),
            "writes": writes,
            "snapshot_kb": round(len(snap) / 1024, 1),
            "events_per_s": round(writes / write_s, 1),
            "spilled": spilled,
            "queries": timings,
            "list_p95_ms": max(
                v["p95_ms"]
                for k, v in timings.items()
                if k not in ("pending count", "cameras + sites + labels")
            ),
            "size_mb": round(store.size_bytes() / 2**20, 1),
        }
    finally:
        store.close()


def format_result(r: dict[str, Any]) -> str:
    lines = [
        f"{r['engine']} {r['store']}: {r['events']:,} events (fill {r['fill_s']} s), {r['size_mb']} MB",
        f"  written one by one with a {r['snapshot_kb']} KB snapshot: {r['events_per_s']} events/s"
        f" ({r['spilled']} spilled)",
    ]
    for name, t in r["queries"].items():
        lines.append(f"  {name:<26} p50 {t['p50_ms']:>8} ms   p95 {t['p95_ms']:>8} ms")
    lines.append(f"  review list p95 (worst shape): {r['list_p95_ms']} ms")
    return "\n".join(lines)
