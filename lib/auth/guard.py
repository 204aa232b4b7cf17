"""The check every page script makes first: who is signed in, and may their role open this page.
Pages are also left out of the navigation of roles that may not open them, but a URL typed by
hand still runs the page script, so the script checks for itself. What a user may *do* is the
services' business (lib/auth/policy.py): pages hand them the actor made here."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import streamlit as st

from .addresses import CLIENT_ADDRESS_HEADER
from .policy import Actor
from .roles import may_open
from .sessions import COOKIE_NAME, CurrentUser

if TYPE_CHECKING:
    from ..services import Services

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


def current_user(svc: Services, touch: bool = True) -> CurrentUser | None:
    return svc.logins.resolve(_cookie(), touch=touch)


def client_address() -> str:
    """The address this page's browser connects from, as ClientAddressMiddleware resolved it
    for the websocket; "" without one (AppTest). Not st.context.ip_address, which is None for
    127.0.0.1 and ::1."""
    try:
        address = st.context.headers.get(CLIENT_ADDRESS_HEADER)
    except Exception:  # noqa: BLE001 - no browser context
        address = None
    return address if isinstance(address, str) else ""


def actor(user: CurrentUser) -> Actor:
    """The signed-in user as the actor of the services' methods."""
    return Actor(user.username, user.role, client_address())


def here() -> str:
    """The path (and query) of the page this script draws, for coming back after signing in."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser context
        url = None
    if not isinstance(url, str):
        return "/"
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def same_tab_link(label: str, href: str) -> None:
    """A link that opens in this tab (st.link_button always opens a new one, so signing out
    there would leave this tab signed in). `href` is ours; `label` is plain text of ours."""
    st.markdown(f'<a href="{html.escape(href)}" target="_self">{html.escape(label)}</a>', unsafe_allow_html=True)


def sign_in_link() -> None:
    same_tab_link("Sign in", f"/auth/login?next={quote(here(), safe='')}")


def require_page(svc: Services, page: str) -> CurrentUser:
    """Stop the script unless someone is signed in whose role may open `page`."""
    user = current_user(svc)
    if user is None:
        st.warning("Your session has ended or you are not signed in.")
        sign_in_link()
        st.stop()
    if not may_open(user.role, page):
        st.error(f"The {user.role} role may not open this page.")
        st.stop()
    return user


def recheck(svc: Services) -> None:
    """For auto-refreshing fragments: when the session ended meanwhile, rerun the whole page so
    its guard takes over. Auto-refresh is not activity, so this does not extend the session."""
    if current_user(svc, touch=False) is None:
        st.rerun(scope="app")
