"""Servers (admins): the LiveKit servers the dashboard watches; add, edit, test and remove them."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.auth.policy import ActionError
from lib.livekit.gateway import ConnectionResult
from lib.servers import ConnectionFailed
from lib.ui import live
from lib.ui.format import md

svc = services.get()
actor = guard.actor(guard.require_page(svc, "settings"))
admin = svc.server_admin
st.title("Servers")
live.show_flash()


def report(name: str, result: ConnectionResult) -> None:
    if result.ok:
        st.success(f"{md(name)}: connected in {result.seconds * 1000:.0f} ms; {result.rooms} room(s) open.")
    else:
        st.error(f"{md(name)}: {result.error.category.value}: {md(result.error.hint)} ({md(result.error.detail)}), after {result.seconds:.1f} s.")


def attempt(name: str, call, saved: str = "", form: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Run one service call with a spinner. A test shows its result; a save that worked says so
    after the rerun (with `form` opened afresh: no secret left in it), and one whose connection
    test failed shows that test."""
    try:
        with st.spinner("Connecting…"):
            outcome = call()
    except ConnectionFailed as exc:
        report(name, exc.result)
        st.warning("Not saved: the connection test failed. Fix the details and try again.")
    except ActionError as exc:
        st.error(md(str(exc)))
    else:
        if saved:
            live.flash(saved)
            if form is not None:
                live.renew_form(form)
            st.rerun()
        report(name, outcome)


servers = svc.servers.list()
if servers:
    st.dataframe(
        [
            {"name": s.name, "url": s.url, "api key": s.api_key, "api secret": s.masked_secret, "defined by": s.source}
            for s in servers
        ],
        hide_index=True,
        width="stretch",
    )
    c1, c2 = st.columns([3, 1])
    to_test = c1.selectbox("Server to test", [s.name for s in servers], key="test_pick")
    c2.write("")
    if c2.button("Test connection", key="test_saved"):
        attempt(to_test, lambda: admin.test_saved(actor, to_test))
else:
    st.info("No server yet. Set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET in the environment, or add one below.")

st.subheader("Add a server")
with st.form("add_server"):
    name = st.text_input("Name", max_chars=64, key=live.widget_key("add_server", "name"))
    url = st.text_input("URL", placeholder="wss://livekit.example.com", max_chars=2048, key=live.widget_key("add_server", "url"))
    api_key = st.text_input("API key", max_chars=256, key=live.widget_key("add_server", "key"))
    api_secret = st.text_input("API secret", type="password", max_chars=1024, key=live.widget_key("add_server", "secret"))
    test_clicked = st.form_submit_button("Test")
    save_clicked = st.form_submit_button("Test and save", type="primary")
    if test_clicked or save_clicked:
        shown = name.strip() or "new server"
        if save_clicked:
            attempt(shown, lambda: admin.add(actor, name, url, api_key, api_secret), f"Server '{name.strip()}' added.", form="add_server")
        else:
            attempt(shown, lambda: admin.test(actor, name.strip(), url, api_key, api_secret))

stored = [s for s in servers if s.source == "settings"]
if stored:
    st.subheader("Edit or remove a server")
    by_name = {s.name: s for s in stored}
    chosen = by_name[st.selectbox("Server", list(by_name), key="edit_pick")]
    with st.form(f"edit_{chosen.name}"):
        new_url = st.text_input("URL", value=chosen.url, max_chars=2048)
        new_key = st.text_input("API key", value=chosen.api_key, max_chars=256)
        new_secret = st.text_input("API secret", type="password", placeholder=f"unchanged ({chosen.masked_secret})", max_chars=1024)
        if st.form_submit_button("Test and save changes"):
            attempt(
                chosen.name,
                lambda: admin.update(actor, chosen.name, url=new_url, api_key=new_key, api_secret=new_secret or None),
                f"Server '{chosen.name}' updated.",
            )
    if live.confirm("Remove server", f"remove_server_{chosen.name}", f"Stop watching '{chosen.name}' and forget its credentials?"):
        try:
            admin.remove(actor, chosen.name)
        except ActionError as exc:
            live.flash(str(exc), ok=False)
        else:
            live.flash(f"Server '{chosen.name}' removed.")
        st.rerun()
environment = [s for s in servers if s.source == "environment"]
if environment:
    st.caption(f"'{md(environment[0].name)}' comes from LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET; change it there and restart.")
