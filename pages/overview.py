"""Overview: what every server is carrying right now, and whether it answers."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.livekit.summary import summarize
from lib.meetings.lifecycle import NO_SCHEDULER, scheduler_state
from lib.models import utcnow
from lib.ui import live, tables
from lib.ui.format import clock, md, since

# LiveKit's own room count (num_participants) leaves agents out; these totals count everyone.
METRIC_HELP = {"Participants": "Everyone in a room, agents included.", "Agents": "Agent participants (also counted in Participants)."}

svc = services.get()
guard.require_page(svc, "overview")
st.title("Overview")
interval = live.refresh_interval(svc.settings.refresh_seconds)


@st.fragment(run_every=interval)
def overview() -> None:
    guard.recheck(svc)
    views = live.views(svc)
    live.server_banners(views)
    summaries = [summarize(s) for s in live.fresh(views)]
    silent = [v.server for v in views if v.current is None]

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
        # With no server answering there is nothing to count: a dash, never a zero.
        col.metric(label, value if summaries else "—", help=METRIC_HELP.get(label))
    if silent and summaries:
        st.caption(f"Totals of the servers that answered; not counted: {', '.join(silent)}.")

    if summaries:
        st.subheader("Per server")
        st.dataframe(tables.summary_frame(summaries), hide_index=True, width="stretch")
    stale = [v for v in views if v.stale]
    if stale:
        st.subheader("Last known, not live")
        st.caption("What the servers that stopped answering carried when they last answered.")
        st.dataframe(
            tables.summary_frame([summarize(v.last_good) for v in stale]).assign(**{"as of": [clock(v.last_good.taken_at) for v in stale]}),
            hide_index=True,
            width="stretch",
        )

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
                "snapshot took (ms)": round(v.current.duration_s * 1000) if v.current else None,
            }
        )
    st.dataframe(status_rows, hide_index=True, width="stretch")
    scheduler = scheduler_state(svc.sessions, utcnow(), svc.settings.scheduler_seconds)
    if scheduler.running:
        problem = f"; problems: {md(scheduler.last_error)}" if scheduler.last_error else ""
        st.caption(f"Scheduler: last tick {since(scheduler.last_tick_at)} ago ({md(scheduler.name)}){problem}")
    else:
        st.warning(NO_SCHEDULER)
    live.refreshed_caption(views)


overview()
