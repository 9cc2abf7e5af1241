"""Shared pieces of the config models: the strict base, value patterns, and URL helpers."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
HOURS = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
URL_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def source_kind(source: str) -> str:
    """Classify a camera source as ``rtsp``, ``http``, ``webcam`` or ``file``.

    Raises:
        ValueError: for an unknown URL scheme or an empty source.
    """
    text = source.strip()
    if not text:
        raise ValueError("source is empty")
    if text.isdigit() or re.fullmatch(r"/dev/video\d+", text):
        return "webcam"
    scheme = urlsplit(text).scheme.lower()
    if "://" in text:
        if scheme not in URL_SCHEMES:
            raise ValueError(
                f"unknown URL scheme {scheme!r}; use rtsp://, rtsps://, http://, https://, a webcam index or a file path"
            )
        return URL_SCHEMES[scheme]
    return "file"


SECRET_QUERY = re.compile(
    r"(?i)((?:password|passwd|pwd|pass|pw|token|key|secret|auth|signature|sig)=)[^&#]*"
)
RESERVED_IN_USERINFO = "/?#@"


def split_authority(source: str) -> tuple[str, str | None, str] | None:
    """Split ``scheme://[userinfo@]rest`` the way people write it, not the way RFC 3986 parses it.

    A password typed with an unencoded ``/``, ``#``, ``?`` or ``@`` ends the
    authority early for ``urlsplit``, which then shows the rest of the
    password as the host or path. A host can never hold ``@``, so the last
    ``@`` is taken as the end of the userinfo: when the path holds one too,
    more is hidden than needed, never less.

    Returns:
        ``(scheme, userinfo or None, rest)``, or None for text without ``://``.
    """
    scheme, sep, rest = source.partition("://")
    if not sep:
        return None
    if "@" not in rest:
        return scheme, None, rest
    userinfo, _, after = rest.rpartition("@")
    return scheme, userinfo, after


def url_host(source: str) -> str:
    """The host (and port) of a URL as :func:`split_authority` reads it; ``""`` when there is none."""
    parts = split_authority(source)
    if parts is None:
        return ""
    return re.split(r"[/?#]", parts[2], maxsplit=1)[0]


def redact_url(source: str) -> str:
    """Replace the password (and token-like query values) of a URL with ``***``.

    The one form of a source or URL that may be logged, shown or echoed in an
    error. It reads passwords with unencoded reserved characters too (see
    :func:`split_authority`).
    """
    parts = split_authority(source)
    if parts is None:
        return source
    scheme, userinfo, rest = parts
    prefix = ""
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        # A user name holding a reserved character is really part of a garbled password.
        if any(c in user for c in RESERVED_IN_USERINFO):
            user = "***"
        prefix = f"{user}:***@" if colon else f"{user}@"
    return f"{scheme}://{prefix}{SECRET_QUERY.sub(_hide_value, rest)}"


def _hide_value(m: re.Match[str]) -> str:
    return m.group(1) + "***"


def url_problem(source: str) -> str | None:
    """Why a camera or webhook URL cannot be used, in words that show only its redacted form; None when fine."""
    parts = split_authority(source)
    if parts is None:
        return None
    _, userinfo, _ = parts
    if userinfo is not None and any(c in userinfo for c in RESERVED_IN_USERINFO):
        return (
            f"the user name or password in {redact_url(source)} holds an unencoded '/', '?', '#' "
            "or '@': percent-encode it (/ → %2F, ? → %3F, # → %23, @ → %40)"
        )
    host = url_host(source)
    host = host.partition("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    if not host.strip("["):
        return f"{redact_url(source)} has no host; write it as scheme://host[:port]/path"
    return None


def polygon_area(polygon: Sequence[Sequence[float]]) -> float:
    """The shoelace area of a polygon (normalised units: 1.0 is the whole frame)."""
    pts = [(float(p[0]), float(p[1])) for p in polygon]
    s = 0.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
        s += x0 * y1 - x1 * y0
    return abs(s) / 2


def polygon_problem(polygon: Sequence[Sequence[float]]) -> str | None:
    """Why a zone polygon is unusable, in one line; None when it is fine."""
    if len(polygon) < 3:
        return f"a polygon needs at least 3 points, got {len(polygon)}"
    for i, pt in enumerate(polygon):
        if len(pt) != 2:
            return f"point {i} must be [x, y], got {list(pt)}"
        x, y = pt
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            return (
                f"point {i} ({x}, {y}) is outside the frame: coordinates are fractions "
                "of the width and height, 0..1"
            )
    if polygon_area(polygon) < 1e-6:
        return "the polygon has no area (its points are on one line)"
    return None
