"""The notification outbox: deliveries per event and channel, what is due, claims with a lease."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from sqlalchemy import Connection, and_, func, or_, select

from monitor.records import (
    DueNotification,
)
from monitor.store.core import StoreCore
from monitor.store.schema import (
    deliveries,
    events,
)
from monitor.store.sql import (
    event_dict,
    insert_for,
    select_events,
    upsert_delivery,
)

logger = logging.getLogger(__name__)


class OutboxQueries(StoreCore):
    """The notifier's side of the store: each due alert is claimed by one box and recorded per channel."""

    def record_delivery(
        self,
        event_id: int,
        channel: str,
        trigger: str,
        ok: bool,
        error: str | None = None,
    ) -> None:
        """Note one delivery attempt (attempts add up; the last error is kept) and release the claim."""

        def write(conn: Connection) -> None:
            upsert_delivery(conn, event_id, channel, trigger, ok, error)

        self._write_or_raise("record_delivery", write)

    def deliveries(self, event_id: int | None = None) -> list[dict[str, Any]]:
        d = deliveries.c
        query = select(
            d.event_id, d.channel, d.trigger, d.status, d.attempts, d.last_error, d.updated_at,
            d.claimed_by, d.claim_until,
        )  # fmt: skip
        if event_id is not None:
            query = query.where(d.event_id == event_id)
        with self._reading() as conn:
            return [dict(r) for r in conn.execute(query.order_by(d.event_id, d.channel)).mappings()]

    def due_notifications(
        self,
        channel: str,
        *,
        since: float,
        max_attempts: int,
        retry_before: float,
        limit: int = 100,
        now: float | None = None,
    ) -> list[DueNotification]:
        """Alert events ``channel`` should send now, oldest first, each with its ``attempts`` so far.

        Gated by the mode recorded on the event (``active``, or ``review``
        once confirmed; never ``shadow``); an active alert *held* because it was
        unfamiliar goes out like a review one, once a person confirms it. A failed delivery comes back only once its last attempt is
        older than ``retry_before`` (so events waiting out a retry cannot fill
        ``limit`` and starve new ones), and a review-mode event counts from its
        verdict, so one raised before a restart and confirmed after it (perhaps
        on the standalone review page) is still sent. An event another box has
        claimed (``claim_notifications``) is left out until its lease expires.

        Args:
            channel: ``mqtt`` or ``webhook``.
            since: UTC epoch; active events created, or review events confirmed, before it are skipped.
            max_attempts: a delivery that failed this many times is not tried again.
            retry_before: UTC epoch; a failed delivery last tried after it waits.
            limit: at most this many events.
            now: the clock leases are compared with (default: now).
        """
        query = self._due_query(channel, since, max_attempts, retry_before, now or time.time())
        with self._reading() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [cast(DueNotification, event_dict(r)) for r in rows]

    def claim_notifications(
        self,
        channel: str,
        owner: str,
        *,
        lease_s: float,
        since: float,
        max_attempts: int,
        retry_before: float,
        limit: int = 100,
    ) -> list[DueNotification]:
        """Take a lease on what ``due_notifications`` would return, so no other box sends it.

        Atomic on both engines: the candidates are read (on PostgreSQL with
        ``FOR UPDATE SKIP LOCKED``, so two boxes claiming at once split the
        work instead of waiting), then each claim is an upsert whose
        ``ON CONFLICT … DO UPDATE … WHERE`` only takes a row nobody holds; the
        rows it returns are this box's. ``record_delivery`` releases the claim;
        a box killed mid-delivery leaves a claim that expires after ``lease_s``
        and another box delivers it.

        Returns:
            The claimed events, oldest first, each with its ``attempts`` so far.
        """

        def write(conn: Connection) -> list[DueNotification]:
            now = time.time()
            query = self._due_query(channel, since, max_attempts, retry_before, now).limit(limit)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=events)
            rows = [cast(DueNotification, event_dict(r)) for r in conn.execute(query).mappings()]
            if not rows:
                return []
            d = deliveries.c
            stmt = insert_for(conn, deliveries).values(
                [
                    {
                        "event_id": r["id"], "channel": channel,
                        "trigger": "active" if r["mode"] == "active" and not r["held"] else "confirmed",
                        "status": "pending", "attempts": 0, "updated_at": now,
                        "claimed_by": owner, "claim_until": now + lease_s,
                    }
                    for r in rows
                ]
            )  # fmt: skip
            free = or_(d.claim_until.is_(None), d.claim_until < now)
            retryable = or_(
                d.status == "pending",
                and_(d.status == "failed", d.attempts < max_attempts, d.updated_at <= retry_before),
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[d.event_id, d.channel],
                set_={"claimed_by": owner, "claim_until": now + lease_s},
                where=and_(free, retryable),
            ).returning(d.event_id)
            mine = set(conn.execute(stmt).scalars())
            return [r for r in rows if r["id"] in mine]

        return self._write_or_raise("claim_notifications", write)

    def release_claims(self, owner: str) -> int:
        """Give back what ``owner`` claimed but did not deliver (a box stopping cleanly).

        Returns:
            How many claims were released.
        """

        def write(conn: Connection) -> int:
            d = deliveries.c
            result = conn.execute(
                deliveries.update()
                .where(d.claimed_by == owner, d.status != "sent")
                .values(claimed_by=None, claim_until=None)
            )
            return int(result.rowcount)

        return self._write_or_raise("release_claims", write)

    def _due_query(
        self, channel: str, since: float, max_attempts: int, retry_before: float, now: float
    ) -> Any:
        d = deliveries.c
        e = events.c
        joined = events.outerjoin(deliveries, and_(d.event_id == e.id, d.channel == channel))
        free = or_(d.claim_until.is_(None), d.claim_until < now)
        return (
            select_events(func.coalesce(d.attempts, 0).label("attempts"), base=joined)
            .where(
                e.kind == "alert",
                or_(
                    and_(
                        e.mode == "active",
                        e.held == 0,
                        e.suppressed_by.is_(
                            None
                        ),  # a repeat false alarm goes out only if confirmed
                        e.created_at >= since,
                    ),
                    and_(
                        or_(e.mode == "review", e.held == 1),
                        e.review_status == "confirmed",
                        func.coalesce(e.reviewed_at, e.created_at) >= since,
                    ),
                ),
                or_(
                    d.id.is_(None),
                    and_(d.status == "pending", free),
                    and_(
                        d.status == "failed",
                        d.attempts < max_attempts,
                        d.updated_at <= retry_before,
                        free,
                    ),
                ),
            )
            .order_by(e.id)
        )
