"""Agents: agent participants and agent dispatches across every room, with job states counted."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.livekit.summary import agent_participants, count_jobs
from lib.ui import live, tables

svc = services.get()
guard.require_page(svc, "agents")
st.title("Agents")
interval = live.refresh_interval(svc.settings.refresh_seconds)


@st.fragment(run_every=interval)
def agents() -> None:
    guard.recheck(svc)
    views = live.views(svc)
    live.server_banners(views)
    snapshots = live.fresh(views)
    dispatches = [d for s in snapshots for d in s.dispatches]
    counts = count_jobs(dispatches)

    cols = st.columns(len(counts) + 1)
    cols[0].metric("Dispatches", len(dispatches))
    for col, (status, n) in zip(cols[1:], counts.items()):
        col.metric(f"Jobs {status}", n)

    st.subheader("Agent participants")
    agents_in_rooms = [p for s in snapshots for p in agent_participants(s)]
    if agents_in_rooms:
        st.dataframe(tables.participants_frame(agents_in_rooms), hide_index=True, width="stretch", column_config=tables.COLUMNS)
    else:
        st.caption("No agent is in any room.")

    st.subheader("Dispatches and jobs")
    if dispatches:
        st.dataframe(tables.dispatches_frame(dispatches), hide_index=True, width="stretch")
    else:
        st.caption("No agent dispatch in any room. Dispatches are listed for rooms with participants.")
    live.refreshed_caption(views)


agents()
