"""The check every page script makes first: who is signed in, and may their role open this page
or use this control. Pages are also left out of the navigation of roles that may not open them,
but a URL typed by hand still runs the page script, so the script checks for itself."""

from __future__ import annotations

import streamlit as st

from .. import services
from .roles import may, may_open
from .sessions import COOKIE_NAME, CurrentUser

# AppTest cannot send cookies; tests put the same signed cookie value here instead. It is not a
# way around the check: the value is verified exactly like the cookie, and no widget uses this key.
TOKEN_STATE_KEY = "_lkdash_session_cookie"


def _cookie() -> str | None:
    try:
        cookie = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # noqa: BLE001 - no browser context
        cookie = None
    if not isinstance(cookie, str):  # AppTest answers with a stand-in object, not a string
        cookie = None
    fallback = st.session_state.get(TOKEN_STATE_KEY)
    return cookie or (fallback if isinstance(fallback, str) else None)


def current_user(touch: bool = True) -> CurrentUser | None:
    return services.get().logins.resolve(_cookie(), touch=touch)


def require_page(page: str) -> CurrentUser:
    """Stop the script unless someone is signed in whose role may open `page`."""
    user = current_user()
    if user is None:
        st.warning("Your session has ended or you are not signed in.")
        st.link_button("Sign in", "/auth/login")
        st.stop()
    if not may_open(user.role, page):
        st.error(f"The {user.role} role may not open this page.")
        st.stop()
    return user


def allowed(user: CurrentUser, capability: str) -> bool:
    return may(user.role, capability)


def recheck() -> None:
    """For auto-refreshing fragments: when the session ended meanwhile, rerun the whole page so
    its guard takes over. Auto-refresh is not activity, so this does not extend the session."""
    if current_user(touch=False) is None:
        st.rerun(scope="app")
