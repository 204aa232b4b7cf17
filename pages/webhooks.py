"""Webhooks (admins): receivers of outgoing webhooks, their state, and the deliveries log."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.outbound.outbox import DELIVERY_STATUSES
from lib.ui import live
from lib.ui import webhooks as ui
from lib.ui.format import md

svc = services.get()
actor = guard.actor(guard.require_page(svc, "webhooks"))
hooks = svc.webhooks
st.title("Webhooks")
live.show_flash()

secret = st.session_state.pop(ui.SECRET_KEY, None)
if secret:
    st.success("Copy the signing secret now: it is not shown again. Receivers verify each delivery with it (see the README).")
    st.code(secret, language=None)

receivers = hooks.receivers(actor)
if receivers:
    st.dataframe(ui.receivers_frame(receivers), hide_index=True, width="stretch")
else:
    st.info("No receiver yet: add one below to have events POSTed to it.")


def remember_secret(added) -> str:  # type: ignore[no-untyped-def]
    st.session_state[ui.SECRET_KEY] = added.secret
    return f"Receiver #{added.receiver.id} added."


st.subheader("Add a receiver")
with st.form("add_webhook"):
    url = st.text_input("URL", placeholder="https://example.com/hooks/livekit", max_chars=2048, key=live.widget_key("add_webhook", "url"))
    description = st.text_input("Description", max_chars=500, key=live.widget_key("add_webhook", "description"))
    st.caption("Events")
    chosen = ui.event_checkboxes(live.widget_key("add_webhook", "events"))
    if st.form_submit_button("Add receiver", type="primary"):
        live.submit(lambda: hooks.add(actor, url, chosen, description), remember_secret, form="add_webhook")

if receivers:
    st.subheader("Change a receiver")
    by_label = {ui.receiver_label(r): r for r in receivers}
    picked = by_label[st.selectbox("Receiver", list(by_label), key="webhook_pick")]
    st.caption(md(f"State: {ui.state_text(picked)}"))
    with st.form(f"edit_webhook_{picked.id}_{picked.version}"):
        new_description = st.text_input("Description", value=picked.description, max_chars=500)
        st.caption("Events")
        new_events = ui.event_checkboxes(f"edit_{picked.id}_{picked.version}", picked.events)
        if st.form_submit_button("Save changes"):
            live.submit(lambda: hooks.update(actor, picked.id, new_events, new_description, version=picked.version), f"Receiver #{picked.id} updated.")
    test_col, pause_col, remove_col = st.columns(3)
    with test_col:
        if picked.paused_at is None and st.button("Send a test ping", key=f"test_webhook_{picked.id}"):
            live.submit(lambda: hooks.test(actor, picked.id), lambda d: f"Test ping queued (delivery {d}); see the log below.")
    with pause_col:
        if picked.paused_at is None:
            if live.confirm("Pause", f"pause_webhook_{picked.id}", f"Pause receiver #{picked.id}? Its events wait until it is resumed."):
                live.submit(lambda: hooks.pause(actor, picked.id), f"Receiver #{picked.id} paused.", refusal_after_rerun=True)
        elif live.confirm("Resume", f"resume_webhook_{picked.id}", f"Resume receiver #{picked.id}? " + (f"Its {picked.waiting} waiting deliveries are sent at once." if picked.waiting else "No delivery is waiting.")):
            live.submit(lambda: hooks.resume(actor, picked.id), f"Receiver #{picked.id} resumed.", refusal_after_rerun=True)
    with remove_col:
        if live.confirm("Remove", f"remove_webhook_{picked.id}", f"Remove receiver #{picked.id} ({picked.url}), its secret and its deliveries?"):
            live.submit(lambda: hooks.remove(actor, picked.id), f"Receiver #{picked.id} removed.", refusal_after_rerun=True)

st.subheader("Deliveries")
receiver_filter, status_filter = st.columns(2)
names = {"All receivers": None, **{ui.receiver_label(r): r.id for r in receivers}}
which = names[receiver_filter.selectbox("Receiver", list(names), key="delivery_receiver")]
status = status_filter.selectbox("Status", ["any", *DELIVERY_STATUSES], key="delivery_status")
deliveries = hooks.deliveries(actor, receiver_id=which, status=None if status == "any" else status, limit=200)
if deliveries:
    st.dataframe(ui.deliveries_frame(deliveries), hide_index=True, width="stretch", column_config=ui.DELIVERY_COLUMNS)
    st.caption("The newest 200, newest first. Times are UTC.")
else:
    st.caption("No delivery yet.")
