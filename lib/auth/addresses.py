"""Client addresses: which address a request or a websocket comes from, believing
X-Forwarded-For only from the reverse proxies DASHBOARD_TRUSTED_PROXIES names. The audit trail
and the sign-in lockout both use this address, so a client must not be able to choose it.

One ASGI middleware of the st.App resolves the address for HTTP and websocket scopes alike
(Streamlit's page scripts see the websocket's), writes it into the scope's `client` and into a
header of its own that pages read, and drops any copy of that header a client sent.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Set by ClientAddressMiddleware on every request and websocket; a client's own copy is dropped.
CLIENT_ADDRESS_HEADER = "x-dashboard-client-address"
_HEADER = CLIENT_ADDRESS_HEADER.encode()
_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED_PROTO = b"x-forwarded-proto"
_MAX_ENTRY = 64  # longer than any address with a port; anything longer is not one


def _ip(text: str | None) -> IPAddress | None:
    """An address as a proxy writes it: bare, IPv4 with a port, or bracketed IPv6 with or
    without a port; an IPv4-mapped IPv6 address counts as its IPv4 address. None otherwise,
    so what comes back is plain ASCII."""
    if not text:
        return None
    text = text.strip()
    if len(text) > _MAX_ENTRY:
        return None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or ":" not in host or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not port.isdigit():
            return None
    else:
        host = text
    try:
        # A zone (fe80::1%eth0) names an interface of the host that wrote it, not the client.
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalise_address(text: str) -> str | None:
    """`text` as one canonical address string (so one client is one lockout bucket), or None."""
    address = _ip(text)
    return str(address) if address is not None else None


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)


def resolve_client(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address. `peer` is the TCP peer, `forwarded_for` the values of every
    X-Forwarded-For header in order. Only a trusted peer's X-Forwarded-For is read, right to
    left, skipping trusted proxies: the first hop that is not one is the client. Every proxy
    appends the address it saw, so entries left of that hop are the client's own claims. A
    malformed entry ends the walk at the trusted hop that passed it on."""
    peer_ip = _ip(peer)
    if peer_ip is None:
        return peer or ""  # not an IP peer (a test client, a socket path): nothing to resolve
    if not _trusted(peer_ip, trusted):
        return str(peer_ip)
    client = peer_ip
    for entry in reversed([e for value in forwarded_for for e in value.split(",")]):
        hop = _ip(entry)
        if hop is None:
            break
        client = hop
        if not _trusted(hop, trusted):
            break
    return str(client)


def _values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in headers if key == name]


def resolved_scope(scope: Scope, trusted: Sequence[IPNetwork]) -> Scope:
    """A copy of an http or websocket `scope` whose `client` is the resolved client, whose
    scheme follows X-Forwarded-Proto from a trusted peer, and which carries
    CLIENT_ADDRESS_HEADER (any copy the client sent is dropped)."""
    headers = [(k, v) for k, v in scope.get("headers", []) if k != _HEADER]
    peer, port = scope.get("client") or (None, 0)
    peer_ip = _ip(peer)
    address = resolve_client(peer, _values(headers, _FORWARDED_FOR), trusted)
    resolved: dict[str, Any] = {**scope, "headers": [*headers, (_HEADER, address.encode("latin-1", "replace"))]}
    if address != peer:
        # A forwarded client's port is unknown; a peer only written canonically keeps its own.
        resolved["client"] = (address, port if peer_ip is not None and address == str(peer_ip) else 0)
    proto = [p.strip() for p in _values(headers, _FORWARDED_PROTO)]
    if peer_ip is not None and _trusted(peer_ip, trusted) and proto and proto[-1] in ("http", "https"):
        resolved["scheme"] = proto[-1].replace("http", "ws") if scope["type"] == "websocket" else proto[-1]
    return resolved


class ClientAddressMiddleware:
    """Resolves the client address of every HTTP request and websocket (see module doc).
    `trusted()` gives the trusted proxies at each request (app.py: the running services'
    settings, none before they start)."""

    def __init__(self, app: ASGIApp, trusted: Callable[[], Sequence[IPNetwork]]) -> None:
        self.app = app
        self._trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = resolved_scope(scope, self._trusted())
        await self.app(scope, receive, send)


_OWN_APPS: list[object] = []


def _wraps(outer: object, inner: object) -> bool:
    for _ in range(8):  # uvicorn's own wrappers (ASGI2, message logger) keep the app as .app
        if outer is inner:
            return True
        outer = getattr(outer, "app", None)
        if outer is None:
            return False
    return False


def take_over_proxy_headers(app: object) -> None:
    """Keep uvicorn from resolving X-Forwarded-For itself for `app`.

    `streamlit run` serves an st.App with uvicorn, whose Config has proxy_headers on and trusts
    FORWARDED_ALLOW_IPS (default 127.0.0.1 and ::1). It reads that variable before it imports
    app.py and, after the import, wraps the app in its ProxyHeadersMiddleware, which replaces
    the peer with an X-Forwarded-For entry: any local client could then pick the address the
    lockout and the audit trail see, and setting the variable from app.py is too late. Config
    looks the middleware up as a global of uvicorn.config when it wraps, so swapping that
    global while app.py is imported takes effect for this load. The replacement leaves `app`
    (ClientAddressMiddleware does the resolution, from DASHBOARD_TRUSTED_PROXIES) and wraps
    any other app as uvicorn would.
    """
    _OWN_APPS.append(app)
    try:
        import uvicorn.config as uvicorn_config
    except ImportError:  # served by another ASGI server: nothing to take over
        return
    original = getattr(uvicorn_config, "ProxyHeadersMiddleware", None)
    if original is None:
        log.warning("uvicorn.config has no ProxyHeadersMiddleware; check which client address uvicorn passes on")
        return
    if getattr(original, "dashboard_bypass", False):
        return

    def proxy_headers(inner: Any, trusted_hosts: list[str] | str = "127.0.0.1") -> Any:
        if any(_wraps(inner, own) for own in _OWN_APPS):
            return inner
        return original(inner, trusted_hosts=trusted_hosts)

    proxy_headers.dashboard_bypass = True  # type: ignore[attr-defined]
    uvicorn_config.ProxyHeadersMiddleware = proxy_headers  # type: ignore[misc]
