"""Server entry point: `streamlit run app.py`. Builds the services once in the lifespan and
serves the custom routes beside the Streamlit pages (pages/navigation.py). No business logic here."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Route

from lib import logs, services
from lib.api.health import healthz
from lib.api.mount import api_mount
from lib.api.v1 import build_api
from lib.api.state import ProvideServices
from lib.api.webhooks import livekit_webhook
from lib.api.server_socket import take_over_connections
from lib.auth.addresses import ClientAddressMiddleware, take_over_proxy_headers
from lib.api.signin import ROUTES as AUTH_ROUTES
from lib.api.signin import SignInRedirect

logs.configure()
log = logging.getLogger("dashboard")


def on_script_error(exc: Exception) -> bool:
    """A bug of ours in a page: log it with its traceback, show the user one short line."""
    log.error("page script failed", exc_info=exc)
    st.error(f"This page hit an internal error ({type(exc).__name__}); it has been logged. Reload to try again.")
    return True


class _DropTraceback(logging.Filter):
    """Starlette hands uvicorn the traceback of a failed lifespan and uvicorn logs it; the
    reason is already logged in one line, so the traceback is noise to an operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Traceback (most recent call last)")


def trusted_proxies() -> tuple:  # type: ignore[type-arg]
    """DASHBOARD_TRUSTED_PROXIES of the running services; none before they start."""
    started = services.current()
    return started.settings.trusted_proxies if started is not None else ()


@asynccontextmanager
async def lifespan(_app):  # type: ignore[no-untyped-def]
    """Build this process's services once (routes get them through ProvideServices, pages
    through services.get()) and start the history collector; stop them at shutdown."""
    try:
        started = await asyncio.to_thread(services.start)
        await asyncio.to_thread(started.start_history)
    except Exception as exc:
        log.error("cannot start the dashboard: %s", exc)
        logging.getLogger("uvicorn.error").addFilter(_DropTraceback())
        raise SystemExit(1) from None
    try:
        yield {}
    finally:
        await asyncio.to_thread(services.stop)


app = st.App(
    "pages/navigation.py",
    lifespan=lifespan,
    on_script_error=on_script_error,
    routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/webhooks/livekit", livekit_webhook, methods=["POST"]),
        *AUTH_ROUTES,
        api_mount("/api", build_api()),
    ],
    # ClientAddressMiddleware first, so the sign-in redirect, the routes and Streamlit's websocket
    # (page scripts) all see the client address resolved from DASHBOARD_TRUSTED_PROXIES. Routes
    # read the process's services from request.state.services, put there per request from the one
    # holder the lifespan fills (the one page scripts read with services.get()).
    middleware=[
        Middleware(ClientAddressMiddleware, trusted=trusted_proxies),
        Middleware(ProvideServices, services=services.current),
        Middleware(SignInRedirect),
    ],
)
# uvicorn would otherwise replace the peer with X-Forwarded-For from 127.0.0.1 before the
# middleware above runs; the why is in take_over_proxy_headers.
take_over_proxy_headers(app)
# Nagle off on every connection (the why is in lib/api/server_socket.py).
take_over_connections()
