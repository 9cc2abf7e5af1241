"""What the report and the dataset export read from the review store (a protocol, so either engine or a test store fits)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from monitor.records import EventRow
from monitor.store.score_log import ScoreLog


class ReportSource(Protocol):
    """The review store as the report sees it: read-only queries over a window."""

    score_log: ScoreLog

    def iter_events(self, **filters: Any) -> Iterator[EventRow]: ...

    def camera_stats(
        self, since: float | None = None, until: float | None = None, *, site: str | None = None
    ) -> list[dict[str, Any]]: ...

    def candidate_summary(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]: ...

    def camera_modes(self, site: str | None = None) -> dict[str, dict[str, Any]]: ...

    def disagreements_between(
        self,
        camera: str,
        since: float | None = None,
        until: float | None = None,
        limit: int = 12,
    ) -> list[dict[str, Any]]: ...

    def get_disagreement_snapshot(self, row_id: int) -> bytes | None: ...

    def list_audit_samples(
        self,
        *,
        camera: str | None = None,
        labelled: bool | None = None,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]: ...


class DatasetSource(Protocol):
    """The review store as the dataset export sees it: reviewed events, audit labels, their JPEGs."""

    def iter_events(self, **filters: Any) -> Iterator[EventRow]: ...

    def get_snapshot(self, event_id: int) -> bytes | None: ...

    def get_audit_snapshot(self, sample_id: int) -> bytes | None: ...

    def list_audit_samples(
        self,
        *,
        camera: str | None = None,
        labelled: bool | None = None,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]: ...
