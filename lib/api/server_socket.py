"""Nagle's algorithm off on the dashboard's HTTP connections.

`streamlit run` binds its listening socket itself, as `socket.socket(family)`: protocol 0, not
IPPROTO_TCP, and asyncio sets TCP_NODELAY only on sockets whose protocol says TCP. Every
connection then kept Nagle on, so an answer written in two parts on a kept-alive connection
waited for the client's delayed acknowledgement (about 40 ms): an API client reusing its
connection got at most about 20 answers a second from it. Streamlit binds the socket before
uvicorn imports app.py, so the option is set on each connection as uvicorn's HTTP protocol
takes it (WebSocket upgrades keep the same socket).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from typing import Any

log = logging.getLogger(__name__)
_PROTOCOLS = (("uvicorn.protocols.http.h11_impl", "H11Protocol"), ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"))


def no_delay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the peer already went away
            pass


def take_over_connections() -> None:
    """Wrap `connection_made` of uvicorn's HTTP protocols (those importable here) to set
    TCP_NODELAY first. Safe to call twice."""
    patched = 0
    for module_name, class_name in _PROTOCOLS:
        try:
            protocol = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):  # httptools not installed, or not uvicorn at all
            continue
        original = protocol.connection_made
        if getattr(original, "dashboard_no_delay", False):
            patched += 1
            continue

        def connection_made(self: Any, transport: asyncio.BaseTransport, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            no_delay(transport)
            return _original(self, transport, *args, **kwargs)

        connection_made.dashboard_no_delay = True  # type: ignore[attr-defined]
        protocol.connection_made = connection_made
        patched += 1
    if not patched:
        log.warning("no uvicorn HTTP protocol found to set TCP_NODELAY on; kept-alive answers may wait ~40 ms")
