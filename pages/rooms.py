"""Rooms: every room on every server, searchable and sortable; one room's participants, tracks
and agent dispatches, with the operator controls."""

import streamlit as st

from lib import services
from lib.auth import guard
from lib.ui import controls, live, tables
from lib.ui.format import clock, md

svc = services.get()
user = guard.require_page(svc, "rooms")
actor = guard.actor(user)
control = svc.control
st.title("Rooms")
live.show_flash()
interval = live.refresh_interval(svc.settings.refresh_seconds)

can_control = control.permits(actor)
if can_control:
    with st.expander("Create a room"):
        controls.create_room_form(control, actor, svc.gateway.server_names())

c1, c2 = st.columns([3, 2])
search = c1.text_input("Search", placeholder="room name or metadata", key="room_search")
servers = c2.multiselect("Servers", svc.gateway.server_names(), key="room_servers", placeholder="all servers")


def matching_rooms(views):
    """Rooms of the servers that answered; a server that did not gets a banner, not rooms."""
    needle = search.strip().lower()
    return [
        r
        for snapshot in live.fresh(views)
        if not servers or snapshot.server in servers
        for r in snapshot.rooms
        if not needle or needle in r.room.name.lower() or needle in r.room.metadata.lower()
    ]


NOTHING_PICKED = "_rooms_nothing_to_pick"


@st.fragment(run_every=interval)
def room_list() -> None:
    guard.recheck(svc)
    views = live.views(svc)
    live.server_banners(views)
    rooms = matching_rooms(views)
    if rooms and not in_full_run and st.session_state.get(NOTHING_PICKED):
        # The page below drew no room picker (no room, or the server was not answering); now there
        # are rooms to pick: the whole page again, which the refresh of this list alone is not.
        st.session_state[NOTHING_PICKED] = False
        st.rerun(scope="app")
    st.caption(f"{len(rooms)} room(s)")
    meetings = svc.meetings.titles_for_rooms((r.room.server, r.room.name) for r in rooms)  # one lookup for all
    st.dataframe(tables.rooms_frame(rooms, meetings), hide_index=True, width="stretch", column_config=tables.COLUMNS)
    live.refreshed_caption(views)


# A run of the whole page draws the picker below anyway; only a refresh of the list alone (which
# sees this module's globals as the last whole run left them) may need the page again.
in_full_run = True
room_list()
in_full_run = False

# The room picker and the controls sit outside the auto-refresh so a half-filled form is never
# redrawn under the operator's hands; they use the snapshot of this run.
views = live.views(svc, max_age=2.0)
choices = {(r.room.server, r.room.name): r for r in matching_rooms(views)}
present = {(r.room.server, r.room.name): r for snapshot in live.fresh(views) for r in snapshot.rooms}
# A picked room that has gone from the server stays the pick (and says so) rather than the
# picker silently moving to another room, where the next control would act. (One only hidden by
# the search gives way to the rooms that match.)
earlier = st.session_state.get("room_pick")


def still_wanted(key: tuple[str, str]) -> bool:
    """A gone room stays picked only while it would match the filters (by name: its metadata
    went with it); a search for something else gives way, as for a room that is there."""
    needle = search.strip().lower()
    return (not servers or key[0] in servers) and (not needle or needle in key[1].lower())


gone = earlier is not None and earlier not in present and earlier not in choices and still_wanted(earlier)
offered = list(choices) + ([earlier] if gone else [])
st.subheader("Room detail")
st.session_state[NOTHING_PICKED] = not offered
if not offered:
    st.caption("No room to show.")
    st.stop()
picked = st.selectbox(
    "Room",
    offered,
    format_func=lambda k: f"{k[1]}  ·  {k[0]}" if len(k[1]) <= 80 else f"{k[1][:79]}…  ·  {k[0]}",
    key="room_pick",
)
server, room_name = picked


@st.fragment(run_every=interval)
def room_detail() -> None:
    guard.recheck(svc)
    view = next((v for v in live.views(svc) if v.server == server), None)
    if view is not None and view.current is None:
        st.warning(f"{md(server)} is not answering, so this room cannot be shown live.")
        return
    room = view.current.room(room_name) if view else None
    if room is None:
        st.warning("This room is gone from the server (ended, or closed when its last participant left).")
        return
    r = room.room
    meeting = svc.meetings.titles_for_rooms([(server, room_name)]).get((server, room_name))
    if meeting is not None:
        st.markdown(f"Meeting: {md(meeting.title)} ({meeting.status})")
    cols = st.columns(4)
    cols[0].metric("Participants", len(room.participants))
    cols[1].metric("Publishers", sum(1 for p in room.participants if p.tracks))
    cols[2].metric("Agents", sum(1 for p in room.participants if p.is_agent))
    cols[3].metric("Tracks", sum(len(p.tracks) for p in room.participants))
    st.caption(
        f"Server {md(server)} · sid {r.sid} · created {clock(r.created_at)} · empty timeout {r.empty_timeout} s · "
        f"departure timeout {r.departure_timeout} s · max participants {r.max_participants or 'no limit'}"
        + (" · recording" if r.active_recording else "")
    )
    if r.metadata:
        with st.expander("Room metadata"):
            st.text(r.metadata)
    if room.error:
        st.warning(f"Part of this room could not be read: {room.error.category.value} ({room.error.detail}).")
    st.markdown("**Participants**")
    st.dataframe(tables.participants_frame(room.participants), hide_index=True, width="stretch", column_config=tables.COLUMNS)
    st.markdown("**Tracks**")
    st.dataframe(tables.tracks_frame(room.participants), hide_index=True, width="stretch")
    st.markdown("**Agent dispatches**")
    if room.dispatches:
        st.dataframe(tables.dispatches_frame(room.dispatches), hide_index=True, width="stretch")
    else:
        st.caption("No dispatch." if room.participants else "Dispatches are listed for rooms with participants.")


room_detail()

if not can_control or picked not in present:
    st.stop()
room = present[picked]
st.subheader("Controls")
# Keyed so the chosen tab survives the rerun that follows every action.
p_tab, d_tab, a_tab, r_tab = st.tabs(["Participants", "Send data", "Agents", "Room"], key="controls_tab")


def room_now():  # type: ignore[no-untyped-def]
    return live.room_now(svc, server, room_name)


with p_tab:
    controls.participant_controls(control, actor, room, room_now, interval)
with d_tab:
    controls.data_controls(control, actor, room)
with a_tab:
    controls.dispatch_controls(control, actor, room)
with r_tab:
    controls.room_controls(control, actor, room, room_now, interval)
