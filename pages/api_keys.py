"""API keys (admins): keys for the REST API, each acting as a user with a role; created here
(shown once), listed with their last use, revoked."""

from datetime import datetime, timedelta, timezone

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.roles import ROLES
from lib.ui import live
from lib.ui.format import clock

NEW_KEY = "_api_key_created"  # the key just created: shown on the next run only, then dropped

svc = services.get()
actor = guard.actor(guard.require_page(svc, "api_keys"))
keys = svc.api_keys
st.title("API keys")
st.caption("Keys for the REST API (`Authorization: Bearer <key>`; the operations and what each role may call are at /api/docs). "
           "A key acts as its user, with its own role; only its hash is kept, so a lost key is revoked and replaced, not shown again.")  # fmt: skip
live.show_flash()
created = st.session_state.pop(NEW_KEY, None)
if created:
    st.success("Copy the key now: it is not shown again.")
    st.code(created, language=None)

now = datetime.now(timezone.utc)
listed = keys.list(actor)
if listed:
    st.dataframe(
        [
            {
                "name": k.name, "prefix": k.prefix, "role": k.role, "acts as": k.owner, "state": k.state(now),
                "expires": clock(k.expires_at) or "never", "last used": clock(k.last_used_at) or "never", "from": k.last_used_address,
                "created": clock(k.created_at), "by": k.created_by,
            }
            for k in listed
        ],
        hide_index=True,
        width="stretch",
    )  # fmt: skip
else:
    st.caption("No API keys yet.")

st.subheader("Create a key")
people = [u.username for u in svc.users.list() if not u.disabled]
with st.form("create_key"):
    name = st.text_input("Name", max_chars=64, help="What the key is for, e.g. booking-system.", key=live.widget_key("create_key", "name"))
    role = st.selectbox("Role", ROLES, index=ROLES.index("operator"), key=live.widget_key("create_key", "role"))
    owner = st.selectbox("Acts as", people, index=people.index(actor.name) if actor.name in people else 0,
                         help="Meetings a host key schedules are this user's.", key=live.widget_key("create_key", "owner"))  # fmt: skip
    days = st.number_input("Expires after (days; 0: never)", min_value=0, max_value=3650, value=90, step=1, key=live.widget_key("create_key", "days"))
    if st.form_submit_button("Create key", type="primary"):

        def create() -> str:
            made = keys.create(actor, name, role, owner=owner, expires_at=now + timedelta(days=int(days)) if days else None)
            st.session_state[NEW_KEY] = made.secret
            return f"Key '{made.key.name}' ({made.key.prefix}) created: role {made.key.role}, acts as {made.key.owner}."

        live.submit(create, lambda message: message, form="create_key")

active = [k for k in listed if k.state(now) == "active"]
if active:
    st.subheader("Revoke a key")
    by_label = {f"{k.name} ({k.prefix}, {k.role}, acts as {k.owner})": k for k in active}
    chosen = by_label[st.selectbox("Key", list(by_label), key="key_pick")]
    if live.confirm("Revoke key", f"revoke_{chosen.id}", f"Revoke '{chosen.name}' ({chosen.prefix})? Requests with it are refused at once."):
        live.submit(lambda: keys.revoke(actor, chosen.id), f"Key '{chosen.name}' ({chosen.prefix}) revoked.", refusal_after_rerun=True)
