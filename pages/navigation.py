"""The Streamlit script st.App serves: page config, the services check, and navigation built
for the signed-in user's role.

It lives inside pages/ on purpose: Streamlit runs a folder named pages/ beside the entry script
in its legacy multipage mode, which never calls st.navigation.

Every page is registered for everyone signed in, so each has its own URL (/overview works even
for the role it is the start page of) and a page a role may not open says so itself instead of
"Page not found"; the sidebar lists only the pages the role may open. "/" goes to the role's
start page."""

import logging

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.roles import may_open
from lib.config import REPO_ROOT

log = logging.getLogger("dashboard")

# A file of ours: an icon named like ":material/…:" makes the browser fetch it from a font host.
st.set_page_config(page_title="LiveKit Dashboard", page_icon=str(REPO_ROOT / "assets" / "icon.png"), layout="wide")

try:
    svc = services.get()
except Exception as exc:  # the message is ours (config or database); never a traceback on the page
    log.exception("the dashboard's services are not available to a page")
    st.error(f"The dashboard cannot start: {exc}")
    st.stop()

# (section, page id, file, title, icon); a page id is also its URL path, unless URL_PATHS says.
URL_PATHS = {"settings": "servers", "api_keys": "api-keys"}
PAGES = [
    ("Live", "overview", "overview.py", "Overview", ":material/dashboard:"),
    ("Live", "rooms", "rooms.py", "Rooms", ":material/meeting_room:"),
    ("Live", "agents", "agents.py", "Agents", ":material/smart_toy:"),
    ("History", "history", "history.py", "History", ":material/monitoring:"),
    ("History", "sessions", "sessions.py", "Sessions", ":material/timeline:"),
    ("Meetings", "meetings", "meetings.py", "Meetings", ":material/event:"),
    ("Meetings", "tokens", "tokens.py", "Tokens", ":material/key:"),
    ("Admin", "settings", "settings.py", "Servers", ":material/dns:"),
    ("Admin", "users", "users.py", "Users", ":material/group:"),
    ("Admin", "webhooks", "webhooks.py", "Webhooks", ":material/webhook:"),
    ("Admin", "audit", "audit.py", "Audit", ":material/history_edu:"),
    ("Admin", "api_keys", "api_keys.py", "API keys", ":material/vpn_key:"),
    ("Account", "account", "account.py", "Account", ":material/account_circle:"),
]

user = guard.current_user(svc)
if user is None:
    navigation = st.navigation([st.Page("signin.py", title="Sign in", icon=":material/login:", url_path="signin")], position="hidden")
else:
    pages = {page_id: st.Page(path, title=title, icon=icon, url_path=URL_PATHS.get(page_id, page_id)) for _, page_id, path, title, icon in PAGES}
    allowed = [(section, page_id) for section, page_id, *_ in PAGES if may_open(user.role, page_id)]
    start_page = pages[allowed[0][1]]

    def home() -> None:
        st.switch_page(start_page)

    navigation = st.navigation([st.Page(home, title="Home", url_path="home", default=True), *pages.values()], position="hidden")
    shown_section = None
    for section, page_id in allowed:
        if section != shown_section:
            st.sidebar.caption(section)
            shown_section = section
        st.sidebar.page_link(pages[page_id])
    st.sidebar.divider()
    st.sidebar.caption(f"Signed in as {user.username} ({user.role})")
navigation.run()
