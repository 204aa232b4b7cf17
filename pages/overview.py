"""Overview: what every server is carrying right now, and whether it answers."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.livekit.summary import summarize
from lib.ui import live, tables
from lib.ui.format import clock, since

guard.require_page("overview")
svc = services.get()
st.title("Overview")
interval = live.refresh_interval(svc.settings.refresh_seconds)


@st.fragment(run_every=interval)
def overview() -> None:
    guard.recheck()
    views = live.views(svc)
    live.server_banners(views)
    summaries = [summarize(v.snapshot) for v in views if v.snapshot is not None and v.snapshot.ok]

    cols = st.columns(5)
    for col, (label, value) in zip(
        cols,
        (
            ("Rooms", sum(s.rooms for s in summaries)),
            ("Participants", sum(s.participants for s in summaries)),
            ("Publishers", sum(s.publishers for s in summaries)),
            ("Tracks", sum(s.tracks for s in summaries)),
            ("Agents", sum(s.agents for s in summaries)),
        ),
    ):
        col.metric(label, value)

    if summaries:
        st.subheader("Per server")
        st.dataframe(tables.summary_frame(summaries), hide_index=True, width="stretch")

    st.subheader("Server status")
    status_rows = []
    for v in views:
        h = v.health
        if v.snapshot is None:
            state = "waiting for first answer"
        elif v.snapshot.ok:
            state = "reachable"
        else:
            state = f"{v.snapshot.error.category.value} for {since(h.failing_since)}" if h.failing_since else v.snapshot.error.category.value
        status_rows.append(
            {
                "server": v.server,
                "status": state,
                "last snapshot": clock(h.last_snapshot_at) or None,
                "snapshot took (ms)": round(v.snapshot.duration_s * 1000) if v.snapshot and v.snapshot.ok else None,
            }
        )
    st.dataframe(status_rows, hide_index=True, width="stretch")
    live.refreshed_caption(views)


overview()
