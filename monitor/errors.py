"""One error hierarchy for problems a user must act on, each with the process exit code it maps to.

Only the entry point turns these into an exit; library code raises them with
a one-line message naming the thing (a key, a file, a camera) and the fix.
"""

from __future__ import annotations

EXIT_USAGE = 2
"""A wrong config, model, store or argument: fix the input and start again."""

EXIT_GAVE_UP = 70
"""The daemon gave up at run time (a restart budget spent, a stuck worker): systemd restarts it."""


class MonitorError(Exception):
    """A problem bearwatch reports in one line and exits on, with ``exit_code``."""

    exit_code = EXIT_USAGE


class ConfigError(MonitorError):
    """The configuration is invalid; the message names the key path and the fix."""


class SourceError(MonitorError):
    """A camera source cannot be opened; the message is redacted and fit to show.

    Never fatal for the daemon (the camera reconnects); ``retry`` is False when
    retrying cannot help (a file that exists but is not a video).
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class ModelError(MonitorError):
    """The model file is missing, corrupt or does not match the artifact contract."""


class StoreError(MonitorError):
    """The review store cannot be opened or used (the message says which file and why)."""


class StoreUnavailable(StoreError):
    """A read failed; the web layer answers 503 without showing the cause."""


class WebError(MonitorError):
    """The web server cannot start (the address is taken, or not allowed without sign-in)."""


class UsageError(MonitorError):
    """A command's arguments do not make sense together."""
