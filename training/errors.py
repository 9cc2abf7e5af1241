"""The one exception type training commands turn into a single clear line and an exit code."""

from __future__ import annotations


class TrainingError(Exception):
    """A problem the user can fix; the message names the path and what to do.

    Attributes:
        exit_code: what the command returns (2: bad input or setup, 1: a check failed).
    """

    exit_code = 2
