"""Where the review store lives: a ``sqlite:///…`` file (the embedded default) or a ``postgresql://`` server.

The password comes from the environment (``${PG_PASSWORD}`` in the config)
and is redacted in every message: ``str(StoreUrl)`` never shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from monitor.config import redact_url
from monitor.errors import StoreError

SCHEMES = ("sqlite", "postgresql")


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A parsed store location; ``url`` keeps the password, ``str()`` hides it."""

    url: URL

    @classmethod
    def parse(cls, text: str | Path) -> StoreUrl:
        """A URL (``sqlite:///path``, ``postgresql://user:pw@host/db``) or a plain file path.

        Raises:
            StoreError: for a malformed URL or an engine bearwatch does not speak.
        """
        if isinstance(text, Path) or "://" not in str(text):
            return cls.for_file(Path(text))
        try:
            url = make_url(str(text))
        except (ArgumentError, ValueError):
            raise StoreError(f"malformed store URL {redact_url(str(text))!r}") from None
        backend = url.get_backend_name()
        if backend not in SCHEMES:
            raise StoreError(
                f"store URL {redact_url(str(text))!r}: engine {backend!r} is not supported"
                " (use sqlite:///FILE or postgresql://USER@HOST/DB)"
            )
        if backend == "postgresql":
            if not url.database:
                raise StoreError(f"store URL {cls(url)}: no database name")
            url = url.set(drivername="postgresql+psycopg")
        elif not url.database or url.database == ":memory:":
            raise StoreError(f"store URL {cls(url)}: name a file (sqlite:///path/to/bearwatch.db)")
        return cls(url)

    @classmethod
    def for_file(cls, path: Path) -> StoreUrl:
        return cls(URL.create("sqlite", database=str(path)))

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def path(self) -> Path | None:
        """The SQLite file; None for a server."""
        return Path(str(self.url.database)) if self.is_sqlite else None

    def __str__(self) -> str:
        if self.is_sqlite:
            return str(self.path)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)
