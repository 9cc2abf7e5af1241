"""The webhook channel: one signed JSON POST per notification, bounded by a deadline and abortable.

Signature scheme (when ``notifications.webhook.secret`` is set)::

    X-Bearwatch-Timestamp: 1718000000                       # UTC epoch seconds, as text
    X-Bearwatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

A receiver verifies it by recomputing the HMAC over the exact bytes it
received (before any JSON parsing) with the shared secret, comparing in
constant time, and rejecting timestamps more than a few minutes away from its
own clock — signing the timestamp with the body is what makes a captured
request useless for a replay later. ``verify_signature`` does all three. Each
retry is signed afresh with a new timestamp; ``X-Bearwatch-Event`` carries the
event id, so a receiver can drop the duplicates that at-least-once delivery
allows.

Why ``http.client`` and not httpx: it is in the standard library (the edge
box installs no HTTP client otherwise), and owning the socket lets ``abort``
cut a hanging request short when the daemon stops, instead of waiting out the
timeout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from monitor.config import WebhookConfig

logger = logging.getLogger(__name__)

USER_AGENT = "bearwatch-notifier/1"
DEFAULT_MAX_AGE_S = 300.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Bearwatch-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    max_age_s: float | None = DEFAULT_MAX_AGE_S,
    now: float | None = None,
) -> bool:
    """Check a webhook request the way a receiver should.

    Args:
        secret: the shared secret (``notifications.webhook.secret``).
        timestamp: the ``X-Bearwatch-Timestamp`` header.
        body: the raw request body, exactly as received.
        header: the ``X-Bearwatch-Signature`` header.
        max_age_s: reject timestamps further than this from ``now`` (None: no check).
        now: the receiver's clock, UTC epoch seconds (default: ``time.time()``).

    Returns:
        True when the signature matches and the timestamp is fresh.
    """
    if max_age_s is not None:
        try:
            sent = float(timestamp)
        except ValueError:
            return False
        if abs((time.time() if now is None else now) - sent) > max_age_s:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookChannel:
    """POSTs each notification to ``cfg.url``; 2xx is delivered, anything else is an error.

    Args:
        cfg: the webhook settings (URL, optional secret, per-request timeout).
        clock: monotonic clock for the request deadline.

    Raises:
        ValueError: when the URL has no host.
    """

    name = "webhook"

    def __init__(self, cfg: WebhookConfig, clock: Callable[[], float] = time.monotonic) -> None:
        url = urlsplit(cfg.url)
        if not url.hostname:
            raise ValueError("notifications.webhook.url has no host")
        self._cfg, self._clock = cfg, clock
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname, url.port
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._auth: str | None = None
        if url.username is not None:
            # Credentials in the URL become Basic auth; the URL itself is never logged.
            pair = f"{unquote(url.username)}:{unquote(url.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._aborted = False

    @property
    def ready(self) -> bool:
        """Always: only a request can tell whether the receiver is there."""
        return True

    def open(self) -> None:
        """Nothing to connect ahead of time: each notification is its own request."""

    def close(self) -> None:
        """Nothing is kept open between requests."""

    def abort(self) -> None:
        """Cut an in-flight request short and refuse new ones (safe from any thread)."""
        with self._lock:
            self._aborted = True
            conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                # Shutting the socket down wakes a recv() blocked in another thread.
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:  # already closed: the request is over anyway
                logger.debug("webhook: abort found the socket closed (%s)", exc)

    def send(self, event_id: int, camera: str, body: bytes) -> str | None:
        """POST one notification.

        Returns:
            None when the receiver answered 2xx; otherwise what went wrong.
        """
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Bearwatch-Event": str(event_id),
            "X-Bearwatch-Timestamp": timestamp,
        }
        if self._cfg.secret:
            headers["X-Bearwatch-Signature"] = sign(self._cfg.secret, timestamp, body)
        if self._auth:
            headers["Authorization"] = self._auth
        try:
            status = self._post(body, headers)
        except (OSError, http.client.HTTPException) as exc:
            if self._aborted:
                return "interrupted: the notifier is stopping"
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    def _post(self, body: bytes, headers: dict[str, str]) -> int:
        """Send the request within ``cfg.timeout_s`` overall; returns the status code."""
        deadline = self._clock() + self._cfg.timeout_s
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=self._cfg.timeout_s,
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._cfg.timeout_s)
        with self._lock:
            if self._aborted:
                raise ConnectionAbortedError("the notifier is stopping")
            self._conn = conn
        try:
            conn.connect()
            self._shrink_timeout(conn, deadline)
            conn.request("POST", self._path, body=body, headers=headers)
            self._shrink_timeout(conn, deadline)
            response = conn.getresponse()
            return response.status
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def _shrink_timeout(self, conn: http.client.HTTPConnection, deadline: float) -> None:
        # The socket timeout is per call; resetting it to what is left makes
        # connect + send + response one deadline rather than three timeouts.
        left = deadline - self._clock()
        if left <= 0 or conn.sock is None:
            raise TimeoutError(f"no answer within {self._cfg.timeout_s:g} s")
        conn.sock.settimeout(left)
