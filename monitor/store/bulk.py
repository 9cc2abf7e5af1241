"""Synthetic history for the store benchmark: many events inserted fast, in batches (not the alert path)."""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import Connection

from monitor.store.core import StoreCore
from monitor.store.schema import events

LABELS = ("bear", "person", "deer", "dog")
STATUSES = ("confirmed", "rejected", "unsure", "pending")


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(events.insert(), rows)


def fill_events(
    store: StoreCore,
    count: int,
    *,
    sites: int = 3,
    cameras: int = 8,
    span_s: float = 365 * 86_400.0,
    pending_share: float = 0.2,
    batch: int = 10_000,
    seed: int = 0,
) -> float:
    """Insert ``count`` events spread over ``span_s`` before now, without snapshots.

    Returns:
        Seconds it took.
    """
    rng = np.random.default_rng(seed)
    t0, now = time.monotonic(), time.time()
    done = 0
    while done < count:
        n = min(batch, count - done)
        starts = now - rng.random(n) * span_s
        pending = rng.random(n) < pending_share
        rows = [
            {
                "site": f"site{int(rng.integers(sites))}",
                "camera": f"cam{int(rng.integers(cameras))}",
                "kind": "alert",
                "label": LABELS[int(rng.integers(len(LABELS)))],
                "peak_score": 0.9,
                # Offsets keep (site, camera, kind, label, start_at) unique.
                "start_at": float(starts[i]) + (done + i) * 1e-6,
                "end_at": float(starts[i]) + 30,
                "model_version": "bench",
                "mode": "review",
                "drift_flags": "[]",
                "details": json.dumps({"bench": True}),
                "frames": 10,
                "review_status": "pending" if pending[i] else STATUSES[int(rng.integers(3))],
                "reviewer": None if pending[i] else "bench",
                "reviewed_at": None if pending[i] else float(starts[i]) + 3600,
                "created_at": float(starts[i]),
                "updated_at": float(starts[i]),
            }
            for i in range(n)
        ]
        store._write_or_raise("bench fill", partial(_insert, rows=rows))
        done += n
    return time.monotonic() - t0
