"""Sessions: past and live room sessions from the history store, and one session's timeline of
participants with their publish and mute changes."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from functools import partial

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from lib import services
from lib.auth import guard
from lib.history import sessions
from lib.meetings.labels import MeetingLabel
from lib.ui import history as history_ui
from lib.ui.format import chart_label, clip, clock, duration, md, visible
from lib.ui.tables import meeting_cell

log = logging.getLogger(__name__)

svc = services.get()
guard.require_page(svc, "sessions")
st.title("Sessions")

store = history_ui.store_or_stop(svc)

MARK_SYMBOLS = {"track_published": "triangle-up", "track_unpublished": "triangle-down", "track_muted": "x", "track_unmuted": "circle-open"}


def session_table(found: pd.DataFrame, meetings: dict[tuple[str, str], MeetingLabel]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "state": found["state"],
            "server": found["server"],
            "room": [clip(visible(r)) for r in found["room"]],
            "meeting": [meeting_cell(meetings.get(key)) for key in zip(found["server"], found["room"])],
            "started": [clock(t) if pd.notna(t) else "" for t in found["started_at"]],
            "duration": [duration(m * 60) if pd.notna(m) else "live" for m in found["duration_min"]],
            "peak": found["peak_participants"],
            "participants": found["participants"],
            "agents": found["agents"],
            "end estimated": found["estimated"],
        }
    )


def gantt(spans: pd.DataFrame, marks: pd.DataFrame) -> go.Figure:
    # Plotly reads a few HTML tags and entities in labels; escaped, a name is shown as the text it is.
    bars = spans.assign(
        participant=[chart_label(i) for i in spans["identity"]],
        end=["still in the room" if o else "estimated (noticed by a snapshot)" if e else "exact"
             for o, e in zip(spans["open"], spans["left_estimated"])],  # fmt: skip
    )
    figure = px.timeline(
        bars,
        x_start="joined_at",
        x_end="left_at",
        y="participant",
        color="kind",
        pattern_shape="end",
        pattern_shape_map={"exact": "", "estimated (noticed by a snapshot)": "/", "still in the room": "."},
        hover_data={"end": True, "kind": True},
    )
    for kind, group in marks.groupby("kind", sort=True):
        figure.add_trace(
            go.Scatter(
                x=group["ts"],
                y=[chart_label(i) for i in group["identity"]],
                mode="markers",
                name=kind.replace("track_", ""),
                marker={"symbol": MARK_SYMBOLS.get(kind, "circle"), "size": 10, "color": "black"},
                text=[chart_label(s or "") for s in group["track_source"]],
                hovertemplate="%{y}<br>%{x}<br>" + kind.replace("_", " ") + " %{text}<extra></extra>",
            )
        )
    figure.update_yaxes(autorange="reversed", title=None)
    figure.update_layout(legend_title_text=None, height=max(250, 60 * bars["participant"].nunique() + 150))
    return figure


left, middle, right = st.columns(3)
with left:
    window = history_ui.range_picker("session")
server_choice = middle.multiselect("Servers", sessions.servers(store), key="session_servers")
search = right.text_input("Room name contains", key="session_search", max_chars=200).strip()
if window is None:
    st.stop()

try:
    found = sessions.room_sessions(store, *window, servers=server_choice or None, search=search or None)
    total, live_count = sessions.count_room_sessions(store, *window, servers=server_choice or None, search=search or None)
except Exception:  # noqa: BLE001 - ours, not the user's: log it, show a short message
    log.exception("reading room sessions failed for %s", window)
    st.error("The session history could not be read; see the dashboard's log.")
    st.stop()

if found.empty:
    st.info("No room sessions in this range.")
    st.stop()

shown = f"the newest {len(found):,} of " if total > len(found) else ""
narrow = " Narrow the range, server or room to see older ones." if total > len(found) else ""
st.caption(f"Showing {shown}{total:,} sessions, {live_count:,} live. Select a row to see its timeline.{narrow}")
# A table selection is a row number. New sessions start at the top, so the number would point at
# another session on the next run: the pick is kept as the session's id, and the table is keyed
# by the rows it shows, so a changed list drops its highlight instead of moving it.
ids = list(zip(found["server"], found["room_sid"]))
table_key = "session_table_" + hashlib.sha256(repr(ids).encode()).hexdigest()[:12]


def remember_pick(key: str, shown: list[tuple[str, str]]) -> None:
    rows = st.session_state[key].selection.rows
    if rows and rows[0] < len(shown):
        st.session_state["session_pick"] = shown[rows[0]]


meetings = svc.meetings.titles_for_rooms(zip(found["server"], found["room"]))  # one lookup for the rows listed
st.dataframe(
    session_table(found, meetings),
    hide_index=True,
    width="stretch",
    on_select=partial(remember_pick, table_key, ids),
    selection_mode="single-row",
    key=table_key,
)
picked = st.session_state.get("session_pick")
chosen = found.iloc[ids.index(picked) if picked in ids else 0]

st.subheader(f"{md(chosen['room'])} · {md(chosen['server'])}")
meeting = meetings.get((chosen["server"], chosen["room"]))
if meeting is not None:
    st.markdown(f"Meeting: {md(meeting.title)} ({meeting.status})")
if chosen["state"] == "live":
    st.success(f"Live: started {clock(chosen['started_at'])}, still running.")
else:
    note = " (the end was noticed by a snapshot, so it is an estimate)" if chosen["estimated"] else ""
    took = f" after {duration(chosen['duration_min'] * 60)}" if pd.notna(chosen["duration_min"]) else ""
    st.caption(f"Ended {clock(chosen['ended_at'])}{took}{note}.")

spans, marks = sessions.timeline(store, chosen["server"], chosen["room_sid"], now=datetime.now(timezone.utc))
if spans.empty:
    st.info("No participants were recorded in this session.")
else:
    st.plotly_chart(gantt(spans, marks), key="session_gantt")
