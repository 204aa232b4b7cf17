"""Shared pieces of the live pages: the refresh control, server status banners, action results
and confirmation of destructive actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import streamlit as st

from .. import services
from ..auth import guard
from ..livekit.errors import GatewayError
from ..livekit.gateway import LiveView
from .format import clock, md, since

T = TypeVar("T")

REFRESH_CHOICES = (0, 2, 5, 10, 30, 60)  # seconds; 0 pauses
_FLASH = "_dashboard_flash"


def refresh_interval(default: int) -> timedelta | None:
    """The sidebar's auto-refresh choice, shared by every live page of the session."""
    choices = REFRESH_CHOICES if default in REFRESH_CHOICES else tuple(sorted({*REFRESH_CHOICES, default}))
    if "refresh_seconds" not in st.session_state:
        st.session_state["refresh_seconds"] = default
    seconds = st.sidebar.selectbox(
        "Auto-refresh",
        choices,
        key="refresh_seconds",
        format_func=lambda s: "Paused" if s == 0 else f"every {s} s",
        help="How often the live pages ask the LiveKit servers again.",
    )
    return timedelta(seconds=seconds) if seconds else None


def views(svc: services.Services, max_age: float = 1.0) -> list[LiveView]:
    """Every server's live view for a page: snapshots younger than `max_age` seconds are shared
    between sessions, and a page waits at most 3 s (or the request timeout) for fresh ones."""
    return svc.gateway.live(max_age=max_age, wait=min(svc.settings.request_timeout, 3.0))


def refreshed_caption(views: list[LiveView]) -> None:
    taken = [v.snapshot.taken_at for v in views if v.snapshot is not None]
    if taken:
        st.caption(f"Last refresh: {clock(max(taken))}")


def server_banners(views: list[LiveView]) -> None:
    """One banner per server that cannot be shown live: never a traceback."""
    if not views:
        st.info("No LiveKit server is configured. Set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET, or add one on the Settings page.")
    for view in views:
        snap, health = view.snapshot, view.health
        if snap is None:
            st.info(f"**{md(view.server)}**: waiting for the first answer…")
        elif snap.error is not None:
            error = snap.error
            when = health.failing_since
            since_text = f" since {clock(when)} ({since(when)} ago)" if when else ""
            st.error(f"**{md(view.server)}** is {error.category.value}{since_text}: {md(error.hint)}. Retrying automatically.")
        elif view.refreshing:
            st.caption(f"{md(view.server)}: still answering; showing data from {clock(snap.taken_at)}.")


def flash(message: str, ok: bool = True) -> None:
    """Remember an action's result to show after the rerun that follows it."""
    st.session_state[_FLASH] = (ok, message)


def show_flash() -> None:
    result = st.session_state.pop(_FLASH, None)
    if result:
        ok, message = result
        # Messages name rooms, participants and servers as users typed them: show them as text.
        (st.success if ok else st.error)(md(message))


def _audit(event: str, target: str, result: str, detail: str = "") -> None:
    user = guard.current_user(touch=False)
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no browser context
        address = ""
    address = address if isinstance(address, str) else ""  # AppTest answers with a stand-in
    services.get().audit.record(user.username if user else "(no session)", event, target, result, detail, address)


def act(what: str, action: Callable[[], T], *, event: str, target: str) -> T | None:
    """Run one control, record it in the audit trail, report success or the server's error,
    and rerun to show the new state. `event` names the action (e.g. "room.delete"), `target`
    what it acted on (server/room/identity)."""
    try:
        result = action()
    except GatewayError as exc:
        _audit(event, target, "failed", f"{exc.category.value}: {exc.detail}")
        flash(f"{what} failed: {exc.category.value}: {exc.detail}", ok=False)
        st.rerun()
        return None
    _audit(event, target, "ok")
    flash(f"{what}: done.")
    st.rerun()
    return result


def confirm(label: str, key: str, prompt: str) -> bool:
    """A destructive button that asks once more before it acts. True on the confirming click."""
    state_key = f"_confirm_{key}"
    if st.button(label, key=key):
        st.session_state[state_key] = True
    if not st.session_state.get(state_key):
        return False
    st.warning(md(prompt))  # the prompt names what is about to go, as users typed it
    yes, no = st.columns(2)
    if yes.button(f"Yes, {label.lower()}", key=f"{key}_yes", type="primary"):
        st.session_state.pop(state_key, None)
        return True
    if no.button("Cancel", key=f"{key}_no"):
        st.session_state.pop(state_key, None)
        st.rerun()
    return False
