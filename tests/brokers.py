"""Real outside services for notifier tests: a mosquitto broker, an MQTT listener, a webhook receiver.

The broker is Debian's ``mosquitto`` started on a free 127.0.0.1 port with a
config written for the test. When the binary is missing, ``start`` raises
instead of skipping: a CI box without the broker must fail loudly, not report
green with the MQTT tests silently gone.
"""

from __future__ import annotations

import getpass
import http.server
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
DEBIAN_PACKAGE = "mosquitto"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class MosquittoBroker:
    """A mosquitto process on 127.0.0.1, anonymous or with one user from a password file.

    Args:
        workdir: where the config, password file and log go.
        user: when set, the broker demands this user and ``password``.
        password: the password for ``user``.
        port: the port to listen on (default: a free one).
    """

    def __init__(
        self, workdir: Path, user: str = "", password: str = "", port: int | None = None
    ) -> None:
        self.port = port or 0
        self._dir, self._user, self._password = workdir, user, password
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections.

        Raises:
            RuntimeError: when mosquitto is missing or does not come up (with its log).
        """
        if not Path(MOSQUITTO).exists():
            raise RuntimeError(
                f"{MOSQUITTO} is missing: install the Debian package {DEBIAN_PACKAGE!r}"
                " (make system-deps)"
            )
        self.port = self.port or free_port()
        conf = self._dir / "mosquitto.conf"
        conf.write_text(self._config())
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if listening(self.port):
                return
            try:
                self._proc.wait(timeout=0.05)  # the pause between tries, and exit detection
                break
            except subprocess.TimeoutExpired:
                continue
        self.stop()
        raise RuntimeError(f"mosquitto did not start:\n{self.log_path.read_text()[-2000:]}")

    def _config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            # As root mosquitto would switch to the 'mosquitto' user, who cannot read our tmp dir.
            f"user {getpass.getuser()}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if self._user:
            if not Path(MOSQUITTO_PASSWD).exists():
                raise RuntimeError(
                    f"{MOSQUITTO_PASSWD} is missing: install the Debian package {DEBIAN_PACKAGE!r}"
                )
            pwfile = self._dir / "passwd"
            subprocess.run(
                [MOSQUITTO_PASSWD, "-b", "-c", str(pwfile), self._user, self._password],
                check=True,
                capture_output=True,
                timeout=10,
            )
            pwfile.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        """Terminate the broker (kill if it lingers)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class MqttListener:
    """A paho subscriber on ``<prefix>/#`` that keeps every message it receives.

    Args:
        port: the broker's port on 127.0.0.1.
        topic: the subscription.
        username: credentials for a broker that wants them.
        password: the password for ``username``.
    """

    def __init__(
        self, port: int, topic: str = "#", username: str | None = None, password: str | None = None
    ) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._topic = topic
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-listener-{uuid.uuid4().hex[:8]}"
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(self._topic, qos=1)
        self._client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self._client.on_message = self._on_message
        self._port = port

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def start(self, timeout_s: float = 5.0) -> MqttListener:
        self._client.connect("127.0.0.1", self._port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"test listener could not subscribe on port {self._port}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, payload: bytes | None = None, timeout_s: float = 5.0) -> Message:
        """The first message on ``topic`` (with ``payload``, when given), waiting up to ``timeout_s``.

        Raises:
            AssertionError: when none arrives in time (with what did arrive).
        """

        def found() -> Message | None:
            for m in self.messages:
                if m.topic == topic and (payload is None or m.payload == payload):
                    return m
            return None

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout_s)
            hit = found()
            if hit is None:
                seen = [(m.topic, m.payload[:60]) for m in self.messages]
                raise AssertionError(f"no {topic!r} {payload!r} within {timeout_s} s; got {seen}")
            return hit

    def __enter__(self) -> MqttListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float  # time.monotonic() on arrival


@dataclass(slots=True)
class _Behaviour:
    fail_next: int = 0
    fail_status: int = 500
    hang_s: float = 0.0
    requests: list[Received] = field(default_factory=list)


class WebhookReceiver:
    """A stdlib HTTP server on 127.0.0.1:0 that records POSTs; it can fail N times or hang.

    ``fail_next`` answers that many requests with ``fail_status``; ``hang_s``
    makes each request wait that long (or until ``close``) before answering 200.
    """

    def __init__(self) -> None:
        self._b = _Behaviour()
        self._cond = threading.Condition()
        self._release = threading.Event()  # ends hangs at close
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._answer_for()
                with receiver._cond:
                    receiver._b.requests.append(
                        Received(
                            self.path, dict(self.headers.items()), body, status, time.monotonic()
                        )
                    )
                    receiver._cond.notify_all()
                if receiver._b.hang_s:
                    receiver._release.wait(receiver._b.hang_s)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    return  # the client gave up waiting, as the test intends

            def log_message(self, format: str, *args: object) -> None:
                return  # keep pytest output quiet

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-webhook"
        )

    def _answer_for(self) -> int:
        with self._cond:
            if self._b.fail_next > 0:
                self._b.fail_next -= 1
                return self._b.fail_status
        return 200

    def behave(self, *, fail_next: int = 0, fail_status: int = 500, hang_s: float = 0.0) -> None:
        with self._cond:
            self._b.fail_next, self._b.fail_status, self._b.hang_s = fail_next, fail_status, hang_s

    @property
    def requests(self) -> list[Received]:
        with self._cond:
            return list(self._b.requests)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        """At least ``count`` requests, waiting up to ``timeout_s`` (AssertionError if not)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self._b.requests) >= count, timeout_s)
            got = list(self._b.requests)
        assert ok, f"expected {count} webhook requests within {timeout_s} s, got {len(got)}"
        return got

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
