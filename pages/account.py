"""Account: who is signed in, until when, change one's own password, sign out."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.policy import ActionError
from lib.ui import live
from lib.ui.format import clock, md

svc = services.get()
user = guard.require_page(svc, "account")
st.title("Account")
live.show_flash()
st.write(f"Signed in as **{md(user.username)}**, role **{user.role}**.")
st.caption(
    f"This session ends at {clock(user.expires_at)}, or after {svc.settings.idle_minutes:g} minutes without activity."
)
guard.same_tab_link("Sign out", "/auth/logout")

st.subheader("Change password")
with st.form("change_password", clear_on_submit=False):
    current = st.text_input("Current password", type="password", key=live.widget_key("change_password", "current"))
    new = st.text_input("New password", type="password", help="At least 10 characters, at most 72 bytes.", key=live.widget_key("change_password", "new"))
    again = st.text_input("New password again", type="password", key=live.widget_key("change_password", "again"))
    if st.form_submit_button("Change password"):
        if new != again:
            st.error("The new passwords differ.")
        else:
            try:
                svc.users.change_own_password(guard.actor(user), current, new)
            except ActionError as exc:
                st.error(md(str(exc)))
            else:
                # Changing the password signs out every session, this one included: say so here,
                # since the next run of this page finds no session (which also drops the form).
                live.renew_form("change_password")
                st.success("Password changed. Every session of yours was signed out, this one too: sign in with the new password.")
                guard.sign_in_link()
