"""Server-side session state beside the signed cookie: ids revoked by sign-out, kept until they would expire.

The cookie stays a signed value (no session table to lose), but a signature
alone cannot be taken back: a cookie copied before sign-out would stay valid
for ``session_hours``. So each session carries a random id, sign-out records
that id here — in memory and in the review store (``revoked_sessions``), so a
restart with a fixed ``session_secret`` or a second process serving the same
store (``bearwatch review``) refuses it too — and every request checks it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Protocol

from monitor.errors import StoreError

logger = logging.getLogger("monitor.web.app")

REFRESH_S = 5.0  # how stale another process's sign-outs may be here


class Revocations(Protocol):
    """What the session book asks of the review store."""

    def revoke_session(self, session_id: str, expires_at: float) -> None: ...

    def revoked_sessions(self) -> dict[str, float]: ...


class SessionBook:
    """Revoked session ids, shared by a process's request threads.

    Args:
        store: where revocations persist; None keeps them in memory only.
        clock: wall clock (revocations expire with the cookie's own timestamp).
    """

    def __init__(self, store: Revocations | None, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}
        self._loaded_at = -REFRESH_S
        self._refresh()

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(18)

    def revoke(self, session_id: str, expires_at: float) -> None:
        """Refuse this session from now on (here at once; elsewhere within ``REFRESH_S``)."""
        with self._lock:
            self._revoked[session_id] = expires_at
        if self._store is None:
            return
        try:
            self._store.revoke_session(session_id, expires_at)
        except StoreError as exc:
            logger.error("web: sign-out recorded in this process only: %s", exc)

    def is_revoked(self, session_id: str) -> bool:
        if self._clock() - self._loaded_at >= REFRESH_S:
            self._refresh()
        with self._lock:
            return session_id in self._revoked

    def _refresh(self) -> None:
        now = self._clock()
        self._loaded_at = now
        stored: dict[str, float] = {}
        if self._store is not None:
            try:
                stored = self._store.revoked_sessions()
            except StoreError as exc:
                logger.warning("web: cannot read signed-out sessions: %s", exc)
        with self._lock:
            merged = {**self._revoked, **stored}
            self._revoked = {sid: exp for sid, exp in merged.items() if exp >= now}
