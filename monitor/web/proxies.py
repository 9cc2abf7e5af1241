"""Forwarded headers, trusted only from the reverse proxies named in ``web.trusted_proxies``.

Without a configured proxy, ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are
ignored whoever sends them — loopback included, since a local process or a
proxy that passes the header through unchanged can write anything there.
From a trusted peer, the client is the right-most address in
``X-Forwarded-For`` that is not itself a trusted proxy, and the scheme is the
proxy's ``X-Forwarded-Proto``. The sign-in throttle and the ``Secure`` cookie
flag read the result (``scope["client"]``, ``scope["scheme"]``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """``10.0.0.1``, ``10.0.0.0/8`` or ``::1`` entries as networks.

    Raises:
        ValueError: for an entry that is not an address or network.
    """
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)


def _trusted(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return any(addr in net for net in networks)


class ForwardedHeaders:
    """ASGI middleware: take client and scheme from forwarded headers, only when the peer is trusted."""

    def __init__(self, app: ASGIApp, trusted: Sequence[str] = ()) -> None:
        self.app = app
        self.networks = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            peer = scope.get("client")
            if peer and _trusted(str(peer[0]), self.networks):
                scope = dict(scope)
                headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
                }
                hops = [
                    h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()
                ]
                client = next((h for h in reversed(hops) if not _trusted(h, self.networks)), None)
                if client is None and hops:
                    client = hops[0]
                if client is not None:
                    scope["client"] = (client, 0)
                proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = (
                        proto if scope["type"] == "http" else ("wss" if proto == "https" else "ws")
                    )
        await self.app(scope, receive, send)
