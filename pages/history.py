"""History: what the servers carried over time, from the history store, as charts with their data."""

import io
import logging
from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from lib import services
from lib.auth import guard
from lib.history import queries
from lib.ui import history as history_ui

log = logging.getLogger(__name__)

svc = services.get()
guard.require_page(svc, "history")
st.title("History")
store = history_ui.store_or_stop(svc)
NO_DATA = "No data in this range"


def downloads(frame: pd.DataFrame, name: str) -> None:
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    left, right = st.columns(2)
    left.download_button("CSV", frame.to_csv(index=False), f"{name}.csv", "text/csv", key=f"{name}_csv", icon=":material/download:")
    right.download_button("Parquet", parquet.getvalue(), f"{name}.parquet", "application/vnd.apache.parquet",
                          key=f"{name}_parquet", icon=":material/download:")  # fmt: skip


def chart(title: str, source: str, name: str, frame: pd.DataFrame, draw: Callable[[pd.DataFrame], object],
          empty: bool | None = None, counts: bool = True) -> None:  # fmt: skip
    st.subheader(title)
    st.caption(source)
    if frame.empty if empty is None else empty:
        st.caption(NO_DATA)
        return
    figure = draw(frame)
    st.plotly_chart(history_ui.whole_counts(figure) if counts else figure, key=f"{name}_chart")
    downloads(frame, name)


controls = st.columns([2, 1, 1, 1])
with controls[0]:
    span = history_ui.range_picker("history")
try:
    known_servers = queries.servers(store)
    chosen_servers = controls[1].multiselect("Servers", known_servers, key="history_servers", placeholder="All servers") or None
    with controls[2]:
        meeting_rooms = history_ui.meeting_picker(svc, span, "history_meetings")
    room_options = queries.rooms(store, chosen_servers, meeting_rooms)  # narrowed by each pick before it
    chosen_rooms = controls[3].multiselect("Rooms", room_options, key="history_rooms", placeholder="All rooms") or None
except Exception:  # noqa: BLE001 - ours, not the user's: log it, show a short message
    log.exception("reading the history filters failed")
    st.error("The history store could not be read; see the server log.")
    st.stop()
if span is None:
    st.stop()
rooms_charted = queries.room_filter(chosen_rooms, meeting_rooms)
if meeting_rooms is not None:
    st.caption(
        f"The charts cover only the rooms of the picked meetings ({len(room_options)} of them in the history), and Rooms "
        "offers only those: rooms picked there narrow the charts to them. Each filter narrows the others."
    )
picked_start, end = span
try:
    charted = queries.chart_span(picked_start, end, queries.history_start(store), svc.settings.collect_seconds)
    start, step = charted.start, charted.step
    args = (store, start, end, chosen_servers, rooms_charted)
    data = {
        "concurrency": queries.concurrency(*args, step=step),
        "participant_minutes": queries.participant_minutes_per_day(*args),
        "sessions_per_day": queries.sessions_per_day(*args),
        "session_durations": queries.session_durations(*args),
        "peak_per_room": queries.peak_per_room(*args),
        "top_rooms": queries.top_rooms(*args),
        "jobs_by_state": queries.jobs_by_state(*args, step=step),
        "tracks_by_source": queries.tracks_by_source(*args, step=step),
    }
except Exception:  # noqa: BLE001 - ours, not the user's: log it, show a short message
    log.exception("history queries failed for %s to %s", picked_start, end)
    st.error("The history store could not be read; see the server log.")
    st.stop()
st.caption(f"{start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC, in buckets of {timedelta(seconds=step)}")
if charted.raised and charted.began is not None:
    st.caption(f"History starts {charted.began:%Y-%m-%d %H:%M:%S} UTC, so the charts begin at {start:%H:%M:%S} rather than at "
               f"the range's {picked_start:%Y-%m-%d %H:%M} UTC.")  # fmt: skip

concurrency = data["concurrency"]
chart(
    "Rooms and participants",
    "The most seen at once per bucket, from the collector's server and room samples (per-minute and "
    "per-hour rollups for buckets of a minute or more). Breaks are outages or times nothing was collected, not zeros. "
    + ("With several rooms chosen, buckets of a minute or more add up each room's busiest moment: an upper bound. "
     if rooms_charted is not None and len(rooms_charted) > 1 and queries.rollup_grain(step) else ""),
    "concurrency",
    concurrency,
    lambda f: history_ui.time_axis(history_ui.marked_when_few(
        px.line(history_ui.labelled(f, "server").melt(id_vars=["ts", "server"], value_vars=["rooms", "participants"], var_name="measure", value_name="count"),
                x="ts", y="count", color="server", line_dash="measure", labels={"ts": "time (UTC)"}),
        start, end, step), start, end),  # fmt: skip
    empty=concurrency["participants"].isna().all(),
)
chart(
    "Participant-minutes per day",
    "Time participants spent in rooms, per UTC day, from sessions built from join and leave events; open sessions count up to now.",
    "participant_minutes",
    data["participant_minutes"],
    lambda f: history_ui.day_axis(px.bar(f, x="day", y="participant_minutes"), start, end),
    counts=False,
)
chart(
    "Room sessions per day",
    "Rooms started per UTC day, from room_started events (or a room's first participant when its start was missed).",
    "sessions_per_day",
    data["sessions_per_day"],
    lambda f: history_ui.day_axis(px.bar(f, x="day", y="sessions"), start, end),
)
chart(
    "Participant session durations",
    "Sessions that ended in the range, by how long they lasted (join to leave); an estimated end is when a snapshot "
    "noticed the leave rather than a webhook reporting it.",
    "session_durations",
    data["session_durations"],
    lambda f: px.bar(f.assign(end=f["estimated"].map({True: "estimated", False: "exact"})), x="minutes", y="sessions", color="end",
                     category_orders={"minutes": list(dict.fromkeys(f["minutes"]))}),  # fmt: skip
)
chart(
    "Peak participants per room",
    "The most participants in one room sample, from the collector's room samples (their rollups for ranges over 6 hours).",
    "peak_per_room",
    data["peak_per_room"],
    lambda f: px.bar(history_ui.labelled(f, "room", "server"), x="room", y="peak_participants", color="server"),
)
chart(
    "Top rooms by participant-minutes",
    "The ten rooms where participants spent the most time in the range, from participant sessions.",
    "top_rooms",
    data["top_rooms"],
    lambda f: px.bar(history_ui.labelled(f, "room", "server"), x="participant_minutes", y="room", color="server", orientation="h"),
    counts=False,
)
chart(
    "Agent jobs by state",
    "Agent job state changes per bucket, from agent_job_state events.",
    "jobs_by_state",
    data["jobs_by_state"],
    lambda f: history_ui.time_axis(history_ui.bucket_bars(px.bar(f, x="ts", y="events", color="job_status", labels={"ts": "time (UTC)"}), step), start, end),
)
chart(
    "Tracks published by source",
    "Tracks published per bucket, each counted once at its first report (a webhook, or a snapshot that found it).",
    "tracks_by_source",
    data["tracks_by_source"],
    lambda f: history_ui.time_axis(history_ui.bucket_bars(px.bar(f, x="ts", y="events", color="track_source", labels={"ts": "time (UTC)"}), step), start, end),
)
