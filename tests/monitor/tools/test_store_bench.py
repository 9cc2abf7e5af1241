"""``bearwatch store-bench`` at a small size on both engines: it fills, writes through the alert path and times the queries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.tools.store_bench import format_result, run_store_bench


def test_store_bench_on_sqlite(tmp_path: Path) -> None:
    result = run_store_bench(
        str(tmp_path / "bench.db"), events=500, writes=40, repeats=3, local=tmp_path / "x.db"
    )
    assert (result["engine"], result["events"], result["writes"]) == ("sqlite", 500, 40)
    assert result["spilled"] == 0 and result["events_per_s"] > 0
    assert set(result["queries"]) >= {"queue (pending, 50)", "one site", "pending count"}
    assert result["list_p95_ms"] > 0 and result["size_mb"] > 0
    assert "events/s" in format_result(result)


@pytest.mark.usefixtures("postgres")
def test_store_bench_on_postgresql_from_the_command_line(pg_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "store-bench", "--store", pg_url, "--events", "300",
         "--writes", "20", "--repeats", "2", "--local", str(tmp_path / "pg.db"), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["engine"], result["events"], result["spilled"]) == ("postgresql", 300, 0)
    assert "***" in result["store"] and pg_url.split(":")[2].split("@")[0] not in result["store"]
