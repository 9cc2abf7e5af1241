"""Retention: what the store keeps, and the hourly worker that removes the rest.

Rules, in the order they run (each box removes only its own site's rows):

* reviewed events older than ``reviewed_days`` go, with their snapshots,
  verdicts and deliveries;
* pending (unreviewed) events outlive reviewed ones: they go only past the
  hard cap ``pending_days``, and each such removal is logged as a warning;
* audit samples past ``audit_days``, statistics past ``stats_days``;
* event snapshots over ``snapshot_budget_mb``: the oldest reviewed events'
  snapshots go first (the rows stay), pending ones only when no reviewed
  snapshot is left to drop.

Every removal is logged with its count and counted in
``bearwatch_retention_removed_total{kind}``. A run that fails is logged and
retried at the next interval: retention never stops the daemon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, select

from monitor.config import RetentionConfig
from monitor.errors import StoreError
from monitor.metrics import Metrics
from monitor.store.review_store import ReviewStore
from monitor.store.schema import (
    audit_samples,
    camera_stats,
    candidate_disagreements,
    candidate_frames,
    events,
    snapshots,
)
from monitor.worker import Worker

logger = logging.getLogger(__name__)
DAY_S = 86_400.0
BEAT_S = 5.0
BATCH = 1000  # rows per transaction: short locks, so the alert stage never waits long


@dataclass(slots=True)
class RetentionReport:
    """What one run removed, by kind, and the snapshot bytes left for the site."""

    removed: dict[str, int] = field(default_factory=dict)
    snapshot_bytes: int = 0

    def add(self, kind: str, n: int) -> None:
        if n:
            self.removed[kind] = self.removed.get(kind, 0) + n


class Retention:
    """Applies ``RetentionConfig`` to one site's rows in a store.

    Args:
        store: the review store (its ``site`` says whose rows are this box's).
        cfg: the retention rules.
        metrics: where removals are counted.
    """

    def __init__(self, store: ReviewStore, cfg: RetentionConfig, metrics: Metrics) -> None:
        self.store, self.cfg, self.metrics = store, cfg, metrics

    def run(self, now: float | None = None) -> RetentionReport:
        """One pass of every rule at ``now`` (UTC epoch; default: the clock).

        Raises:
            StoreError: when the store cannot be written (the worker logs it and tries later).
        """
        now = time.time() if now is None else now
        cfg, site, report = self.cfg, self.store.site, RetentionReport()
        mine = events.c.site == site
        if cfg.reviewed_days:
            cut = now - cfg.reviewed_days * DAY_S
            reviewed = and_(
                mine,
                events.c.review_status != "pending",
                func.coalesce(events.c.reviewed_at, events.c.created_at) < cut,
            )
            report.add("reviewed_events", self._delete_events(reviewed))
        if cfg.pending_days:
            cut = now - cfg.pending_days * DAY_S
            pending = and_(mine, events.c.review_status == "pending", events.c.start_at < cut)
            n = self._delete_events(pending)
            if n:
                logger.warning(
                    "retention: removed %d unreviewed events older than the hard cap of %g days",
                    n, cfg.pending_days,
                )  # fmt: skip
            report.add("pending_events", n)
        for kind, table, column, days in (
            ("audit_samples", audit_samples, audit_samples.c.captured_at, cfg.audit_days),
            ("camera_stats", camera_stats, camera_stats.c.at, cfg.stats_days),
            ("candidate_frames", candidate_frames, candidate_frames.c.at, cfg.stats_days),
            (
                "candidate_disagreements",
                candidate_disagreements,
                candidate_disagreements.c.at,
                cfg.stats_days,
            ),
        ):
            if days:
                report.add(kind, self._delete_rows(table, column < now - days * DAY_S))
        report.snapshot_bytes = self._snapshot_budget(report)
        for kind, n in report.removed.items():
            self.metrics.retention_removed.labels(kind=kind).inc(n)
            logger.info("retention: site %r: removed %d %s", site, n, kind.replace("_", " "))
        return report

    def _batches(self, op: str, fn: Callable[[Connection], int]) -> int:
        total = 0
        while True:
            n = self.store._write_or_raise(op, fn)
            total += n
            if n < BATCH:
                return total

    def _delete_events(self, where: ColumnElement[bool]) -> int:
        def step(conn: Connection) -> int:
            ids = list(
                conn.execute(
                    select(events.c.id).where(where).order_by(events.c.id).limit(BATCH)
                ).scalars()
            )
            if ids:
                # Snapshots, verdicts and deliveries follow by ON DELETE CASCADE.
                conn.execute(delete(events).where(events.c.id.in_(ids)))
            return len(ids)

        return self._batches("retention", step)

    def _delete_rows(self, table: Table, where: ColumnElement[bool]) -> int:
        site_col = table.c.site

        def step(conn: Connection) -> int:
            ids = list(
                conn.execute(
                    select(table.c.id).where(site_col == self.store.site, where).limit(BATCH)
                ).scalars()
            )
            if ids:
                conn.execute(delete(table).where(table.c.id.in_(ids)))
            return len(ids)

        return self._batches("retention", step)

    def _snapshot_budget(self, report: RetentionReport) -> int:
        """Drop the oldest snapshots (reviewed first) until the site's are within budget."""
        joined = snapshots.join(events, events.c.id == snapshots.c.event_id)
        mine = events.c.site == self.store.site
        size = func.length(snapshots.c.jpeg)

        def total(conn: Connection) -> int:
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(size), 0)).select_from(joined).where(mine)
                ).scalar_one()
            )

        budget = int(self.cfg.snapshot_budget_mb * 1024 * 1024)
        if not budget:
            return self.store._write_or_raise("retention", total)
        order = ((events.c.review_status == "pending"), events.c.start_at, events.c.id)

        def step(conn: Connection) -> int:
            excess = total(conn) - budget
            if excess <= 0:
                return 0
            rows = conn.execute(
                select(snapshots.c.event_id, size, events.c.review_status)
                .select_from(joined)
                .where(mine)
                .order_by(*order)
                .limit(BATCH)
            ).all()
            if not rows:
                return 0
            drop, freed, pending = [], 0, 0
            for event_id, n, status in rows:
                if freed >= excess:
                    break
                drop.append(event_id)
                freed += int(n)
                pending += status == "pending"
            conn.execute(delete(snapshots).where(snapshots.c.event_id.in_(drop)))
            report.add("reviewed_snapshots", len(drop) - pending)
            report.add("pending_snapshots", pending)
            return BATCH if freed < excess else 0

        self._batches("retention", step)
        return self.store._write_or_raise("retention", total)


class RetentionWorker(Worker):
    """The ``retention`` thread: a pass at start, then every ``cfg.interval_s``; never fatal."""

    def __init__(self, store: ReviewStore, cfg: RetentionConfig, metrics: Metrics) -> None:
        super().__init__("retention")
        self.retention = Retention(store, cfg, metrics)
        self.store, self.cfg, self.metrics = store, cfg, metrics

    def _run(self) -> None:
        due = time.monotonic()
        while not self.stop_event.is_set():
            self.beat()  # also while waiting: an hour's pause is not a stuck thread
            if time.monotonic() >= due:
                self._pass()
                due = time.monotonic() + self.cfg.interval_s
            self.stop_event.wait(min(BEAT_S, max(0.0, due - time.monotonic())))

    def _pass(self) -> None:
        try:
            self.retention.run()
        except StoreError as exc:
            logger.error(
                "retention: pass failed, trying again in %gs: %s", self.cfg.interval_s, exc
            )
        except Exception:  # a loop boundary: retention never takes the daemon down
            logger.exception("retention: pass failed")
        self.store.refresh_size()
