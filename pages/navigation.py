"""The Streamlit script st.App serves: page config, the services check, and navigation.

It lives inside pages/ on purpose: Streamlit runs a folder named pages/ beside the entry script
in its legacy multipage mode, which never calls st.navigation."""

import streamlit as st

from lib import services

st.set_page_config(page_title="LiveKit Dashboard", page_icon=":material/monitoring:", layout="wide")

try:
    services.get()
except Exception as exc:  # the message is ours (config or database); never a traceback
    st.error(f"The dashboard cannot start: {exc}")
    st.stop()

pages = {
    "Live": [
        st.Page("overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("rooms.py", title="Rooms", icon=":material/meeting_room:"),
        st.Page("agents.py", title="Agents", icon=":material/smart_toy:"),
    ],
    "Admin": [
        st.Page("settings.py", title="Settings", icon=":material/settings:"),
    ],
}
st.navigation(pages).run()
