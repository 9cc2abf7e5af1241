"""The current rollout mode of each camera: the config's defaults, overlaid by changes recorded in the store.

A change made at runtime — from the review page or ``bearwatch mode`` — is
stored with who and why and wins over the config from then on; the daemon
re-reads the store every few seconds, so a change made by a reviewer on
another machine (or the CLI) takes effect without a restart. Outside a
camera's active hours it behaves as ``shadow``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.decide.rollout import within_hours

logger = logging.getLogger(__name__)


class ModeBook:
    """The current rollout mode of each camera, shared by the alert stage, the notifier and the web.

    Args:
        defaults: camera id → (mode, active hours) from the config.
        timezone: IANA zone the active hours are in.
        load: reads the runtime overrides (``ReviewStore.camera_modes``); None: config only.
        refresh_s: how often ``load`` is called again.
        clock: monotonic clock for the refresh interval.
    """

    def __init__(
        self,
        defaults: Mapping[str, tuple[str, str | None]],
        timezone: str = "UTC",
        load: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
        refresh_s: float = 3.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._defaults = dict(defaults)
        self._tz = ZoneInfo(timezone)
        self._load = load
        self._refresh_s = refresh_s
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._overrides: dict[str, Mapping[str, Any]] = {}
        self._loaded_at: float | None = None

    def refresh(self) -> None:
        """Re-read the runtime overrides now (a failed read keeps the previous ones)."""
        if self._load is None:
            return
        try:
            overrides = dict(self._load())
        except Exception:  # a store hiccup must not stop decisions
            logger.exception("could not read camera modes; keeping the previous ones")
            return
        with self._lock:
            for cam, row in overrides.items():
                old = self._overrides.get(cam)
                if old is None or old.get("changed_at") != row.get("changed_at"):
                    logger.info(
                        "camera %s: mode %s (by %s: %s)",
                        cam,
                        row.get("mode"),
                        row.get("changed_by"),
                        row.get("reason"),
                    )
            self._overrides = overrides
            self._loaded_at = self._clock()

    def _maybe_refresh(self) -> None:
        if self._load is not None and (
            self._loaded_at is None or self._clock() - self._loaded_at >= self._refresh_s
        ):
            self.refresh()

    def configured(self, camera: str) -> tuple[str, str | None]:
        """(mode, active hours) as set — by the config or a runtime change — ignoring the clock."""
        self._maybe_refresh()
        with self._lock:
            row = self._overrides.get(camera)
        if row is not None:
            return str(row["mode"]), row.get("active_hours")
        return self._defaults.get(camera, ("shadow", None))

    def effective(self, camera: str, at_epoch: float) -> str:
        """The mode that applies at ``at_epoch``: ``shadow`` outside active hours."""
        mode, hours = self.configured(camera)
        if mode != "shadow" and not within_hours(hours, datetime.fromtimestamp(at_epoch, self._tz)):
            return "shadow"
        return mode

    def default(self, camera: str) -> tuple[str, str | None] | None:
        """(mode, active hours) as the config file sets them, runtime changes aside; None if not configured."""
        return self._defaults.get(camera)

    def cameras(self) -> list[str]:
        return list(self._defaults)
