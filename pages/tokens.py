"""Tokens: issue a LiveKit access token for a room (identity, grants, lifetime, an agent to
dispatch) and see what it says; the token itself stays hidden until revealed."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.ui import tokens as token_form

svc = services.get()
user = guard.require_page(svc, "tokens")
actor = guard.actor(user)
st.title("Tokens")

servers = svc.gateway.server_names()
if not servers:
    st.info("No LiveKit server is configured. Set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET, or add one on the Servers page.")
    st.stop()
token_form.issue_form(svc.tokens, actor, servers, svc.meetings.titles_for_rooms)
token_form.issued_token()
