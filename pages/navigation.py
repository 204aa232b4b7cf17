"""The Streamlit script st.App serves: page config, the services check, and navigation built
for the signed-in user's role.

It lives inside pages/ on purpose: Streamlit runs a folder named pages/ beside the entry script
in its legacy multipage mode, which never calls st.navigation."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.roles import may_open

st.set_page_config(page_title="LiveKit Dashboard", page_icon=":material/monitoring:", layout="wide")

try:
    services.get()
except Exception as exc:  # the message is ours (config or database); never a traceback
    st.error(f"The dashboard cannot start: {exc}")
    st.stop()

# (section, page id, file, title, icon); a page id is also its URL path.
PAGES = [
    ("Live", "overview", "overview.py", "Overview", ":material/dashboard:"),
    ("Live", "rooms", "rooms.py", "Rooms", ":material/meeting_room:"),
    ("Live", "agents", "agents.py", "Agents", ":material/smart_toy:"),
    ("History", "history", "history.py", "History", ":material/monitoring:"),
    ("History", "sessions", "sessions.py", "Sessions", ":material/timeline:"),
    ("Admin", "settings", "settings.py", "Servers", ":material/dns:"),
    ("Admin", "users", "users.py", "Users", ":material/group:"),
    ("Admin", "audit", "audit.py", "Audit", ":material/history_edu:"),
    ("Account", "account", "account.py", "Account", ":material/account_circle:"),
]

user = guard.current_user()
if user is None:
    navigation = st.navigation([st.Page("signin.py", title="Sign in", icon=":material/login:", url_path="signin")], position="hidden")
else:
    sections: dict[str, list[st.Page]] = {}
    allowed = [p for p in PAGES if may_open(user.role, p[1])]
    for index, (section, page_id, path, title, icon) in enumerate(allowed):
        sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon, url_path=page_id, default=index == 0))
    navigation = st.navigation(sections)
    st.sidebar.caption(f"Signed in as {user.username} ({user.role})")
navigation.run()
