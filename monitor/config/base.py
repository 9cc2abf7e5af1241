"""Shared pieces of the config models: the strict base, value patterns, and URL helpers."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

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


def redact_url(source: str) -> str:
    """Replace the password (and token-like query values) of a URL with ``***``."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = re.sub(r"(?i)((?:password|passwd|pwd|token|key|secret)=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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
