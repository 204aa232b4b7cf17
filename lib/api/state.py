"""How routes reach the process's services: a middleware puts them into every request's state
(`request.state.services`), and `services_of(request)` reads them there."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from ..services import Services


class ProvideServices:
    """ASGI middleware: `request.state.services` is the process's services, or None while the
    lifespan is still building them (or failed to)."""

    def __init__(self, app: ASGIApp, services: Callable[[], Services | None]) -> None:
        self.app = app
        self._services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope.setdefault("state", {})["services"] = self._services()
        await self.app(scope, receive, send)


def services_of(connection: HTTPConnection) -> Services | None:
    return getattr(connection.state, "services", None)
