"""Shared pieces of the live pages: the refresh control, server status banners, the result of an
action, and confirmation of destructive actions. Actions themselves are service calls; this
module only reports how they went."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import streamlit as st

from ..auth.policy import ActionError
from ..livekit.errors import GatewayError
from ..livekit.gateway import LiveView
from ..livekit.records import RoomSnapshot, ServerSnapshot
from ..services import Services
from .format import clock, md, since

T = TypeVar("T")

REFRESH_CHOICES = (0, 2, 5, 10, 30, 60)  # seconds; 0 pauses
_FLASH = "_dashboard_flash"
# Streamlit drops a widget's state on every page that does not draw that widget, so the chosen
# refresh lives under a key no widget owns and seeds the sidebar's picker on every live page.
_REFRESH_CHOICE = "_refresh_seconds"
_REFRESH_WIDGET = "refresh_picker"


def _keep_refresh_choice() -> None:
    st.session_state[_REFRESH_CHOICE] = st.session_state[_REFRESH_WIDGET]


def refresh_interval(default: int) -> timedelta | None:
    """The sidebar's auto-refresh choice, shared by every live page of the session."""
    choices = REFRESH_CHOICES if default in REFRESH_CHOICES else tuple(sorted({*REFRESH_CHOICES, default}))
    chosen = st.session_state.get(_REFRESH_CHOICE, default)
    st.session_state[_REFRESH_WIDGET] = chosen if chosen in choices else default
    seconds = st.sidebar.selectbox(
        "Auto-refresh",
        choices,
        key=_REFRESH_WIDGET,
        on_change=_keep_refresh_choice,
        format_func=lambda s: "Paused" if s == 0 else f"every {s} s",
        help="How often the live pages ask the LiveKit servers again.",
    )
    return timedelta(seconds=seconds) if seconds else None


def views(svc: Services, max_age: float = 1.0) -> list[LiveView]:
    """Every server's live view for a page: snapshots younger than `max_age` seconds are shared
    between sessions, and a page waits at most 3 s (or the request timeout) for fresh ones."""
    return svc.gateway.live(max_age=max_age, wait=min(svc.settings.request_timeout, 3.0))


def fresh(views: list[LiveView]) -> list[ServerSnapshot]:
    """The snapshots of the servers that answered this time: what live counts are made of."""
    return [v.current for v in views if v.current is not None]


def room_now(svc: Services, server: str, room: str) -> RoomSnapshot | None:
    """The room as the newest successful snapshot of its server has it (None if gone or the
    server is not answering)."""
    view = next((v for v in views(svc) if v.server == server), None)
    return view.current.room(room) if view is not None and view.current is not None else None


def refreshed_caption(views: list[LiveView]) -> None:
    """When the data shown was fetched: the newest successful snapshot, never a failed attempt."""
    taken = [s.taken_at for s in fresh(views)]
    if taken:
        st.caption(f"Last refresh: {clock(max(taken))}")
    elif views:
        st.caption("No server answered this refresh; nothing shown is live.")


def server_banners(views: list[LiveView]) -> None:
    """One banner per server that cannot be shown live: never a traceback."""
    if not views:
        st.info("No LiveKit server is configured. Set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET, or add one on the Servers page.")
    for view in views:
        snap, health = view.snapshot, view.health
        if snap is None:
            st.info(f"**{md(view.server)}**: waiting for the first answer…")
        elif snap.error is not None:
            error = snap.error
            when = health.failing_since
            since_text = f" since {clock(when)} ({since(when)} ago)" if when else ""
            known = (
                f" Its rooms are not shown; the last good data is from {clock(view.last_good.taken_at)}."
                if view.last_good is not None
                else " It has not answered since the dashboard started."
            )
            st.error(f"**{md(view.server)}**: {error.category.value}{since_text}: {md(error.hint)}. Retrying automatically.{known}")
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
        # The message above sits at the top; a control may be far below it on the page.
        st.toast(md(message), icon=":material/check_circle:" if ok else ":material/error:")


def failure(exc: Exception) -> str:
    """What to tell the person about an action that was not done."""
    if isinstance(exc, GatewayError):
        return f"{exc.category.value}: {exc.detail}"
    return str(exc)


def act(what: str, action: Callable[[], T], on_success: Callable[[], None] | None = None) -> T | None:
    """Run one service call for a control, report its success or why it was not done, and rerun
    to show the new state. The service checks the role and writes the audit row."""
    try:
        result = action()
    except (ActionError, GatewayError) as exc:
        flash(f"{what} failed: {failure(exc)}", ok=False)
        st.rerun()
        return None
    if on_success is not None:
        on_success()
    flash(f"{what}: done.")
    st.rerun()
    return result


def act_on_click(what: str, action: Callable[[], object]) -> None:
    """A button's on_click: run the service call bound when the button was drawn, so it does
    what its label said even when the next run's data differs (a track muted meanwhile must not
    turn "Mute" into an unmute). Streamlit reruns the page after the callback."""
    try:
        action()
    except (ActionError, GatewayError) as exc:
        flash(f"{what} failed: {failure(exc)}", ok=False)
    else:
        flash(f"{what}: done.")


def submit(call: Callable[[], T], message: str | Callable[[T], str], form: str | None = None, refusal_after_rerun: bool = False) -> None:
    """A form's submit: run one service call. Success is said after a rerun, with `form` opened
    afresh (a password typed into it must not stay there); a refusal or broken rule is shown
    here with what was typed kept, or after a rerun for a confirmation's Yes."""
    try:
        result = call()
    except (ActionError, GatewayError) as exc:
        if not refusal_after_rerun:
            st.error(md(failure(exc)))
            return
        flash(failure(exc), ok=False)
    else:
        flash(message(result) if callable(message) else message)
        if form is not None:
            renew_form(form)
    st.rerun()


def widget_key(form: str, field: str) -> str:
    """The key of one field of `form`, renewed by `renew_form`. Streamlit keeps what a keyed
    widget holds (in the browser too), and deleting its state does not empty what is shown; a
    widget under a new key starts from its default, so a renewed form opens afresh."""
    generation = st.session_state.get(f"_form_generation_{form}", 0)
    return f"{form}_{field}" if not generation else f"{form}_{field}_{generation}"


def renew_form(form: str) -> None:
    """After a save (or on request): the form's fields start again from their defaults, and a
    form of live values takes the server's values as they are then."""
    st.session_state[f"_form_generation_{form}"] = st.session_state.get(f"_form_generation_{form}", 0) + 1
    st.session_state.pop(f"_form_seen_{form}", None)


def form_baseline(form: str, current: T) -> T:
    """What a form of live values was opened with: its fields keep what the person types while
    the values change underneath; `watch_form` says when they did."""
    return st.session_state.setdefault(f"_form_seen_{form}", current)


def watch_form(form: str, read: Callable[[], object], interval: timedelta | None) -> None:
    """A small auto-refreshing notice beside a form of live values (the form itself is not
    redrawn under the person's hands): when the server's values differ from what the form was
    opened with, it says so and offers to load them."""

    @st.fragment(run_every=interval)
    def notice() -> None:
        seen = st.session_state.get(f"_form_seen_{form}")
        current = read()
        if seen is None or current is None or current == seen:
            return
        note, reload = st.columns([4, 1])
        note.warning("Changed on the server since this form was opened. Saving sends what the form shows.")
        if reload.button("Load current values", key=f"reload_{form}"):
            renew_form(form)
            st.rerun(scope="app")

    notice()


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
    if no.button("No, go back", key=f"{key}_no"):  # not "Cancel": it sits beside "Yes, cancel meeting"
        st.session_state.pop(state_key, None)
        st.rerun()
    return False
