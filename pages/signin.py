"""Shown when nobody is signed in (the sign-in form itself is served at /auth/login)."""

import streamlit as st

from lib.auth import guard

st.title("LiveKit Dashboard")
st.info("Sign in to continue.")
guard.sign_in_link()
