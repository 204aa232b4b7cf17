"""Users (admins): create users, change roles, disable and enable, reset passwords."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.roles import ROLES
from lib.auth.users import UserError
from lib.ui import live
from lib.ui.format import clock

user = guard.require_page("users")
svc = services.get()
st.title("Users")
live.show_flash()

people = svc.users.list()
st.dataframe(
    [
        {"user": u.username, "role": u.role, "status": "disabled" if u.disabled else "active", "created": clock(u.created_at), "last sign-in": clock(u.last_login_at) or "never"}
        for u in people
    ],
    hide_index=True,
    width="stretch",
)

st.subheader("Create a user")
with st.form("create_user"):
    username = st.text_input("User name", max_chars=64)
    role = st.selectbox("Role", ROLES, index=ROLES.index("analyst"))
    password = st.text_input("Initial password", type="password", help="At least 10 characters, at most 72 bytes.")
    if st.form_submit_button("Create user", type="primary"):
        try:
            svc.users.create(username, password, role, actor=user.username)
        except UserError as exc:
            st.error(str(exc))
        else:
            live.flash(f"User '{username.strip()}' created as {role}.")
            st.rerun()

if people:
    st.subheader("Change a user")
    names = [u.username for u in people]
    chosen = next(u for u in people if u.username == st.selectbox("User", names, key="user_pick"))
    role_tab, status_tab, password_tab = st.tabs(["Role", "Disable or enable", "Reset password"], key="user_tab")
    with role_tab:
        with st.form(f"role_{chosen.username}"):
            new_role = st.selectbox("Role", ROLES, index=ROLES.index(chosen.role))
            if st.form_submit_button("Change role"):
                try:
                    svc.users.set_role(chosen.username, new_role, actor=user.username)
                except UserError as exc:
                    st.error(str(exc))
                else:
                    live.flash(f"'{chosen.username}' is now {new_role}.")
                    st.rerun()
    with status_tab:
        if chosen.disabled:
            if st.button("Enable user", key=f"enable_{chosen.username}"):
                svc.users.set_disabled(chosen.username, False, actor=user.username)
                live.flash(f"'{chosen.username}' enabled.")
                st.rerun()
        elif live.confirm("Disable user", f"disable_{chosen.username}", f"Disable '{chosen.username}'? They are signed out at once and cannot sign in."):
            try:
                svc.users.set_disabled(chosen.username, True, actor=user.username)
            except UserError as exc:
                live.flash(str(exc), ok=False)
            else:
                live.flash(f"'{chosen.username}' disabled.")
            st.rerun()
    with password_tab:
        with st.form(f"password_{chosen.username}"):
            new_password = st.text_input("New password", type="password")
            if st.form_submit_button("Reset password"):
                try:
                    svc.users.reset_password(chosen.username, new_password, actor=user.username)
                except UserError as exc:
                    st.error(str(exc))
                else:
                    live.flash(f"Password of '{chosen.username}' reset; their sessions were signed out.")
                    st.rerun()
