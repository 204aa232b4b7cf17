"""Error categories for everything the gateway does, so pages can name the cause."""

from __future__ import annotations

import asyncio
import enum

import aiohttp
from livekit.api.twirp_client import ServerError

from .twirp import NotTwirpAnswer


class Category(str, enum.Enum):
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    TIMEOUT = "timeout"
    NOT_FOUND = "not found"
    INVALID = "invalid request"
    SERVER = "server error"
    NOT_LIVEKIT = "not a LiveKit server"


_HINTS = {
    Category.UNREACHABLE: "nothing answered at that URL; check the address and that the server is running",
    Category.UNAUTHORIZED: "the server refused the API key or secret",
    Category.TIMEOUT: "the server did not answer in time",
    Category.NOT_FOUND: "it no longer exists on the server",
    Category.INVALID: "the server rejected the request",
    Category.SERVER: "the server reported an error",
    Category.NOT_LIVEKIT: (
        "something answers HTTP at that URL, but not with LiveKit's Server API; check the address,"
        " or the proxy in front of LiveKit"
    ),
}


class GatewayError(Exception):
    """A LiveKit call failed; `category` says why in terms an operator can act on."""

    def __init__(self, category: Category, detail: str, server: str = "", *, hint: str | None = None) -> None:
        super().__init__(detail)
        self.category = category
        self.detail = detail
        self.server = server
        self._hint = hint

    @property
    def hint(self) -> str:
        """What to do about it; the category's own unless the error was raised with a better one."""
        return self._hint or _HINTS[self.category]

    def __str__(self) -> str:
        where = f"{self.server}: " if self.server else ""
        return f"{where}{self.category.value} ({self.detail})"


def classify(exc: BaseException, server: str = "") -> GatewayError:
    """Turn whatever the SDK or the transport raised into a GatewayError."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, NotTwirpAnswer) or isinstance(exc, ServerError) and _no_twirp_body(exc):
        if exc.status in (401, 403):
            # LiveKit's own auth check answers in plain text, not Twirp (and its text quotes
            # the token, so it is never shown).
            return GatewayError(Category.UNAUTHORIZED, f"HTTP {exc.status}", server)
        return GatewayError(Category.NOT_LIVEKIT, _not_livekit_detail(exc.status), server)
    if isinstance(exc, ServerError):
        code = (exc.code or "").lower()
        if exc.status in (401, 403) or code in ("unauthenticated", "permission_denied"):
            category = Category.UNAUTHORIZED
        elif exc.status == 404 or code == "not_found":
            category = Category.NOT_FOUND
        elif code in ("deadline_exceeded",):
            category = Category.TIMEOUT
        elif 400 <= exc.status < 500 or code in ("invalid_argument", "malformed", "already_exists"):
            category = Category.INVALID
        else:
            category = Category.SERVER
        if exc.message:
            detail = exc.message
        elif code and code != "unknown":
            detail = f"{code} (HTTP {exc.status})"
        else:
            detail = f"HTTP {exc.status}"
        return GatewayError(category, detail, server)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, aiohttp.ServerTimeoutError)):
        return GatewayError(Category.TIMEOUT, "no answer in time", server)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return GatewayError(Category.UNREACHABLE, f"cannot connect to {exc.host}:{exc.port}", server)
    if isinstance(exc, ConnectionError) and not isinstance(exc, aiohttp.ClientError) and str(exc):
        return GatewayError(Category.UNREACHABLE, str(exc), server)  # the Twirp pool's, or the OS's
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.InvalidURL, ConnectionError)):
        return GatewayError(Category.UNREACHABLE, type(exc).__name__, server)
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status in (401, 403):
            return GatewayError(Category.UNAUTHORIZED, f"HTTP {exc.status}", server)
        return GatewayError(Category.SERVER, f"HTTP {exc.status}", server)
    return GatewayError(Category.SERVER, f"{type(exc).__name__}: {exc}", server)


def _no_twirp_body(exc: ServerError) -> bool:
    # The SDK fills in code "unknown" and no message when the answer carried no Twirp JSON.
    return exc.code == "unknown" and not exc.message and not exc.metadata


def _not_livekit_detail(status: int) -> str:
    return f"answered HTTP {status}, but this does not look like a LiveKit server (no Twirp answer)"
