"""Server entry point: `streamlit run app.py`. Builds the services once in the lifespan and
serves the custom routes beside the Streamlit pages (pages/navigation.py). No business logic here."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import streamlit as st
from starlette.routing import Route

from lib import services
from lib.api.health import healthz

log = logging.getLogger("dashboard")


def on_script_error(exc: Exception) -> bool:
    """A bug of ours in a page: log it with its traceback, show the user one short line."""
    log.error("page script failed", exc_info=exc)
    st.error(f"This page hit an internal error ({type(exc).__name__}); it has been logged. Reload to try again.")
    return True


@asynccontextmanager
async def lifespan(_app):  # type: ignore[no-untyped-def]
    try:
        await asyncio.to_thread(services.start)
    except Exception as exc:
        log.error("cannot start the dashboard: %s", exc)
        raise SystemExit(1) from None
    try:
        yield {}
    finally:
        await asyncio.to_thread(services.stop)


app = st.App(
    "pages/navigation.py",
    lifespan=lifespan,
    on_script_error=on_script_error,
    routes=[Route("/healthz", healthz, methods=["GET"])],
)
