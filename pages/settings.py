"""Settings: the LiveKit servers the dashboard watches; add, edit, test and remove them."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.config import ServerConfig
from lib.livekit.gateway import ConnectionResult
from lib.servers import ServerRegistryError
from lib.ui import live
from lib.ui.format import md

user = guard.require_page("settings")
svc = services.get()
registry, gw = svc.servers, svc.gateway
st.title("Servers")
live.show_flash()


def report(name: str, result: ConnectionResult) -> None:
    if result.ok:
        st.success(f"{md(name)}: connected in {result.seconds * 1000:.0f} ms; {result.rooms} room(s) open.")
    else:
        st.error(f"{md(name)}: {result.error.category.value}: {md(result.error.hint)} ({md(result.error.detail)}), after {result.seconds:.1f} s.")


servers = registry.list()
st.subheader("Servers")
if servers:
    st.dataframe(
        [
            {"name": s.name, "url": s.url, "api key": s.api_key, "api secret": s.masked_secret, "defined by": s.source}
            for s in servers
        ],
        hide_index=True,
        width="stretch",
    )
    names = [s.name for s in servers]
    c1, c2 = st.columns([3, 1])
    to_test = c1.selectbox("Server to test", names, key="test_pick")
    c2.write("")
    if c2.button("Test connection", key="test_saved"):
        with st.spinner("Connecting…"):
            report(to_test, gw.test_connection(registry.get(to_test)))
else:
    st.info("No server yet. Set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET in the environment, or add one below.")

st.subheader("Add a server")
with st.form("add_server"):
    name = st.text_input("Name", max_chars=64)
    url = st.text_input("URL", placeholder="wss://livekit.example.com", max_chars=2048)
    api_key = st.text_input("API key", max_chars=256)
    api_secret = st.text_input("API secret", type="password", max_chars=1024)
    test_clicked = st.form_submit_button("Test")
    save_clicked = st.form_submit_button("Test and save", type="primary")
    if test_clicked or save_clicked:
        candidate = ServerConfig(name.strip() or "new server", url.strip(), api_key.strip(), api_secret)
        if not (url.strip() and api_key.strip() and api_secret):
            st.error("URL, API key and API secret are all required.")
        else:
            with st.spinner("Connecting…"):
                result = gw.test_connection(candidate)
            report(candidate.name, result)
            if save_clicked and result.ok:
                try:
                    registry.add(name, url, api_key, api_secret, actor=user.username)
                except ServerRegistryError as exc:
                    st.error(str(exc))
                else:
                    live.flash(f"Server '{name.strip()}' added.")
                    st.rerun()
            elif save_clicked:
                st.warning("Not saved: the connection test failed. Fix the details and try again.")

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
            candidate = ServerConfig(chosen.name, new_url.strip(), new_key.strip(), new_secret or chosen.api_secret)
            with st.spinner("Connecting…"):
                result = gw.test_connection(candidate)
            report(chosen.name, result)
            if result.ok:
                try:
                    registry.update(chosen.name, url=new_url, api_key=new_key, api_secret=new_secret or None, actor=user.username)
                except ServerRegistryError as exc:
                    st.error(str(exc))
                else:
                    live.flash(f"Server '{chosen.name}' updated.")
                    st.rerun()
            else:
                st.warning("Not saved: the connection test failed.")
    if live.confirm("Remove server", f"remove_server_{chosen.name}", f"Stop watching '{chosen.name}' and forget its credentials?"):
        try:
            registry.remove(chosen.name, actor=user.username)
        except ServerRegistryError as exc:
            live.flash(str(exc), ok=False)
        else:
            live.flash(f"Server '{chosen.name}' removed.")
        st.rerun()
environment = [s for s in servers if s.source == "environment"]
if environment:
    st.caption(f"'{md(environment[0].name)}' comes from LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET; change it there and restart.")
