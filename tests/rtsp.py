"""A real RTSP server on loopback for tests: starts, kills, freezes and restarts ``tests/rtsp_server.py``.

The server runs under the *system* Python (``/usr/bin/python3``) because it
needs PyGObject and GstRtspServer from Debian packages, which the project's
virtualenv cannot import. When those packages are missing, ``start`` raises
instead of skipping: a CI box that cannot serve RTSP must fail loudly, not
report green with the RTSP tests silently gone.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
from pathlib import Path
from types import TracebackType

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
)


class RtspServer:
    """One GStreamer RTSP server subprocess serving a live H.264 test pattern on 127.0.0.1.

    Args:
        log_dir: where the server's stderr goes (read back when it fails to start).
        user: when set, the server demands Basic auth with ``user``/``password``.
        password: the password for ``user``.
        fps: the stream's frame rate.
    """

    def __init__(self, log_dir: Path, user: str = "", password: str = "", fps: int = 10) -> None:
        self.port = 0  # 0 until the first start picks a free port; restarts reuse it
        self.mount = "/test"
        self._log_dir = log_dir
        self._user, self._password, self._fps = user, password, fps
        self._proc: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The stream's URL, with credentials when given."""
        auth = f"{user}:{password}@" if user is not None and password is not None else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start the server (on the same port as before, after a kill) and wait for READY.

        Raises:
            RuntimeError: when the server does not become ready, with its stderr.
        """
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError("RTSP server is already running")
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--fps", str(self._fps)]
        if self._user:
            cmd += ["--user", self._user, "--password", self._password]
        self._starts += 1
        log_path = self._log_dir / f"rtsp_server.{self._starts}.log"
        with log_path.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
        line = self._read_line(timeout_s)
        if not line.startswith("READY "):
            self.stop()
            err = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"RTSP server did not start (got {line!r}); needs {SYSTEM_PYTHON} with the "
                f"Debian packages {DEBIAN_PACKAGES}\n{err}"
            )
        self.port = int(line.split()[1])

    def _read_line(self, timeout_s: float) -> str:
        """Read one stdout line from the server, giving up after ``timeout_s``."""
        assert self._proc is not None and self._proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                return f"(nothing within {timeout_s:.0f} s)"
        return self._proc.stdout.readline().decode(errors="replace").strip()

    def kill(self) -> None:
        """SIGKILL the server, as a crashed camera would vanish."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open but nothing is sent (a hung camera)."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen server."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Terminate the server (thawing it first, so SIGTERM can be handled); kill if it lingers."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self.thaw()
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
