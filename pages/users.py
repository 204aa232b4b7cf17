"""Users (admins): create users, change roles, disable and enable, reset passwords."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.roles import ROLES
from lib.ui import live
from lib.ui.format import clock, md

svc = services.get()
actor = guard.actor(guard.require_page(svc, "users"))
users = svc.users
st.title("Users")
live.show_flash()

people = users.list()
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
    username = st.text_input("User name", max_chars=64, key=live.widget_key("create_user", "name"))
    role = st.selectbox("Role", ROLES, index=ROLES.index("analyst"), key=live.widget_key("create_user", "role"))
    password = st.text_input(
        "Initial password", type="password", help="At least 10 characters, at most 72 bytes.", key=live.widget_key("create_user", "password")
    )
    if st.form_submit_button("Create user", type="primary"):
        live.submit(lambda: users.create(actor, username, password, role), lambda u: f"User '{u.username}' created as {u.role}.", form="create_user")

if people:
    st.subheader("Change a user")
    by_name = {u.username: u for u in people}
    chosen = by_name[st.selectbox("User", list(by_name), key="user_pick")]
    role_tab, status_tab, password_tab = st.tabs(["Role", "Disable or enable", "Reset password"], key="user_tab")
    with role_tab:
        with st.form(f"role_{chosen.username}"):
            new_role = st.selectbox("Role", ROLES, index=ROLES.index(chosen.role), key=f"role_of_{chosen.username}")
            if st.form_submit_button("Change role"):
                live.submit(lambda: users.set_role(actor, chosen.username, new_role), f"'{chosen.username}' is now {new_role}.")
    with status_tab:
        if chosen.disabled:
            if st.button("Enable user", key=f"enable_{chosen.username}"):
                live.submit(lambda: users.set_disabled(actor, chosen.username, False), f"'{chosen.username}' enabled.")
        elif live.confirm("Disable user", f"disable_{chosen.username}", f"Disable '{chosen.username}'? They are signed out at once and cannot sign in."):
            live.submit(lambda: users.set_disabled(actor, chosen.username, True), f"'{chosen.username}' disabled.", refusal_after_rerun=True)
    with password_tab:
        form = f"password_{chosen.username}"
        with st.form(form):
            new_password = st.text_input("New password", type="password", key=live.widget_key(form, "password"))
            if st.form_submit_button("Reset password"):
                live.submit(
                    lambda: users.reset_password(actor, chosen.username, new_password),
                    f"Password of '{chosen.username}' reset; their sessions were signed out.",
                    form=form,
                )
