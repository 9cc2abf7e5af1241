"""A real PostgreSQL server for the store's tests: Debian's ``postgresql``, on 127.0.0.1, as a non-root user.

The server runs from a fresh data folder on a free port with password
authentication over TCP (so a wrong password is a real refusal). When the
binaries are missing, ``start`` raises instead of skipping: a CI box without
PostgreSQL must fail loudly, not report green with the fleet tests gone.
As root (CI containers), the server runs as the ``postgres`` user, which
Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.brokers import free_port, listening

DEBIAN_PACKAGE = "postgresql"
USER = "bearwatch"
PASSWORD = "pg-secret-for-tests"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError(
            f"PostgreSQL server binaries not found: apt-get install {DEBIAN_PACKAGE}"
            " (make test / .ci/run install it)"
        )
    return Path(found[-1]).parent


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder; ``url(db)`` names a database on it."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bearwatch-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:  # the server refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        if not self.data.exists():
            pwfile = self.dir / "pw"
            pwfile.write_text(PASSWORD + "\n")
            if self._as_root:
                shutil.chown(pwfile, "postgres", "postgres")
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
            )  # fmt: skip
        self._pg_ctl_start()
        return self

    def _pg_ctl_start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir}"
            # fsync off is safe against a killed server (the OS keeps the pages);
            # synchronous_commit stays on, or a kill -9 would lose committed rows.
            " -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL did not listen on {self.port}: {self.log.read_text()}"
                )
            time.sleep(0.1)

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def kill9(self) -> None:
        """Kill the postmaster with SIGKILL, as a crash would (children follow)."""
        os.kill(self.pid(), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Its backends notice the postmaster is gone; wait until they have let go of the data.
        time.sleep(1.0)
        (self.data / "postmaster.pid").unlink(missing_ok=True)

    def restart_after_crash(self) -> None:
        self._pg_ctl_start()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
                check=False,
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name
