"""Fixtures for monitor tests that need real outside services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rtsp import RtspServer


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[RtspServer]:
    """A live GStreamer RTSP server on 127.0.0.1 (fails, never skips, when it cannot start)."""
    with RtspServer(tmp_path) as server:
        yield server
