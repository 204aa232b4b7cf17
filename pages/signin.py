"""Shown when nobody is signed in (the sign-in form itself is served at /auth/login)."""

import streamlit as st

st.title("LiveKit Dashboard")
st.info("Sign in to continue.")
st.link_button("Sign in", "/auth/login", type="primary")
