"""Agents: agent participants and agent dispatches across every room, with job states counted.
LiveKit's automatic dispatch (one per room, no agent name) is counted apart and listed only when
a worker took it."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.livekit.summary import agent_dispatches, agent_participants, count_dispatches, count_jobs
from lib.ui import live, tables

svc = services.get()
guard.require_page(svc, "agents")
st.title("Agents")
interval = live.refresh_interval(svc.settings.refresh_seconds)
AUTOMATIC_HELP = (
    "LiveKit gives every room an automatic dispatch with no agent name. Only a worker registered "
    "without an agent name takes it; without one it has no job and sends no agent."
)


@st.fragment(run_every=interval)
def agents() -> None:
    guard.recheck(svc)
    views = live.views(svc)
    live.server_banners(views)
    snapshots = live.fresh(views)
    dispatches = [d for s in snapshots for d in s.dispatches]
    kinds = count_dispatches(dispatches)
    counts = count_jobs(dispatches)

    cols = st.columns(len(counts) + 2)
    cols[0].metric("Dispatches", kinds.named, help="Dispatches of a named agent, in rooms with participants.")
    cols[1].metric(
        "Automatic only",
        kinds.automatic_only_rooms,
        help=f"Rooms whose only dispatch is LiveKit's automatic one, without a job. {AUTOMATIC_HELP}",
    )
    for col, (status, n) in zip(cols[2:], counts.items()):
        col.metric(f"Jobs {status}", n)
    st.caption(
        "Jobs as the servers list them now: a job that ended leaves the list with its dispatch, so ended jobs "
        "are rarely counted here. The History page's agent jobs chart keeps every state change."
    )

    st.subheader("Agent participants")
    agents_in_rooms = [p for s in snapshots for p in agent_participants(s)]
    if agents_in_rooms:
        st.dataframe(tables.participants_frame(agents_in_rooms), hide_index=True, width="stretch", column_config=tables.COLUMNS)
    else:
        st.caption("No agent is in any room.")

    st.subheader("Dispatches and jobs")
    listed = agent_dispatches(dispatches)
    if listed:
        st.dataframe(tables.dispatches_frame(listed), hide_index=True, width="stretch")
    else:
        st.caption("No agent dispatch in any room. Dispatches are listed for rooms with participants.")
    if kinds.automatic_only_rooms:
        st.caption(f"{kinds.automatic_only_rooms} room(s) carry only LiveKit's automatic dispatch, not listed: {AUTOMATIC_HELP}")
    live.refreshed_caption(views)


agents()
