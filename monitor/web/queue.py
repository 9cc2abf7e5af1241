"""What the web layer asks of the review store (a protocol: the pages and the API depend on these calls only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from monitor.records import EventRow
from monitor.store.score_log import ScoreLog


class ReviewQueue(Protocol):
    """The review store as the pages and the API see it."""

    score_log: ScoreLog

    @property
    def healthy(self) -> bool: ...

    def get_event(self, event_id: int) -> EventRow | None: ...

    def get_snapshot(self, event_id: int) -> bytes | None: ...

    def list_events(
        self,
        *,
        camera: str | None = None,
        status: str | None = None,
        label: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        suppressed: bool | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[EventRow]: ...

    def count_events(
        self,
        *,
        camera: str | None = None,
        status: str | None = None,
        label: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        site: str | None = None,
        suppressed: bool | None = None,
    ) -> int: ...

    def event_cameras(self) -> list[str]: ...

    def event_sites(self) -> list[str]: ...

    def audit_cameras(self) -> list[str]: ...

    def seen_labels(self) -> list[str]: ...

    def set_verdict(
        self,
        event_id: int,
        status: str,
        reviewer: str,
        reason_code: str | None = None,
        note: str | None = None,
        relabel: str | None = None,
        *,
        reviewed_at: float | None = None,
        restores: Mapping[str, Any] | None = None,
    ) -> bool: ...

    def verdict_history(self, event_id: int) -> list[dict[str, Any]]: ...

    def camera_modes(self, site: str | None = None) -> dict[str, dict[str, Any]]: ...

    def set_camera_mode(
        self,
        camera: str,
        mode: str,
        changed_by: str,
        reason: str,
        active_hours: str | None = None,
        *,
        changed_at: float | None = None,
        site: str | None = None,
    ) -> None: ...

    def mode_history(self, camera: str | None = None, limit: int = 200) -> list[dict[str, Any]]: ...

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

    def get_audit_snapshot(self, sample_id: int) -> bytes | None: ...

    def label_audit_sample(
        self, sample_id: int, label: str, labelled_by: str, note: str | None = None
    ) -> bool: ...

    def clear_audit_label(self, sample_id: int) -> bool: ...

    def revoke_session(self, session_id: str, expires_at: float) -> None: ...

    def revoked_sessions(self) -> dict[str, float]: ...
