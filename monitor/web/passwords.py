"""Passwords for the review web: scrypt hashes, and the throttle that slows online guessing.

Passwords are stored only as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64):
memory-hard, in the standard library, and the parameters travel with the hash
so they can be raised later without breaking old entries.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable

SCRYPT_N = 2**15  # ~32 MiB and ~0.1 s per check: slow for a guesser, fine for a sign-in
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SCRYPT_N = 2**20  # a hash asking for more memory than this is refused, not computed
SALT_BYTES = 16


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Hash a password for ``web.auth.users[].password_hash``.

    Raises:
        ValueError: for an empty password or parameters scrypt refuses.
    """
    if not password:
        raise ValueError("the password must not be empty")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, r, p, 32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def parse_password_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """Split a stored hash into (n, r, p, salt, digest).

    Raises:
        ValueError: naming what is wrong (never echoing the hash).
    """
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError(
            "expected scrypt$<n>$<r>$<p>$<salt>$<hash> (from `bearwatch hash-password`)"
        )
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("n, r, p must be integers and salt, hash base64") from None
    if not (1 < n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 64 and 1 <= p <= 16):
        raise ValueError(f"n must be a power of two up to {MAX_SCRYPT_N}, r 1..64, p 1..16")
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("salt or hash too short")
    return n, r, p, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the stored hash; a malformed hash matches nothing."""
    try:
        n, r, p, salt, digest = parse_password_hash(encoded)
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(digest)), digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # OpenSSL's default memory cap (32 MiB) is just below what n=2^15, r=8 needs.
    maxmem = 128 * r * (n + p + 2) + 2**20
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.cache
def dummy_hash() -> str:
    """Checked against when the name is unknown, so timing does not tell names apart."""
    return hash_password(secrets.token_urlsafe(16))


class LoginThrottle:
    """Backs off sign-in attempts per (name, address) after a few failures.

    In memory on purpose: it slows an online guesser down by orders of
    magnitude; a restart clears it, which costs a guesser a restart each time.

    Args:
        free_attempts: failures allowed before any wait.
        base_delay_s: the first wait; doubles with each further failure.
        max_delay_s: the longest wait.
        clock: monotonic seconds.
        max_keys: entries kept; the oldest are forgotten beyond it.
    """

    def __init__(
        self,
        free_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._free, self._base, self._max = free_attempts, base_delay_s, max_delay_s
        self._clock, self._max_keys = clock, max_keys
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}

    def retry_after(self, key: tuple[str, str]) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
        if count < self._free:
            return 0.0
        wait = min(self._base * 2 ** (count - self._free), self._max)
        return max(0.0, last + wait - self._clock())

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            count, _ = self._failures.pop(key, (0, 0.0))
            self._failures[key] = (count + 1, self._clock())
            while len(self._failures) > self._max_keys:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)
