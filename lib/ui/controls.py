"""The operator controls of the live pages: forms that collect input, call one LiveControl method
each and report its answer. Destructive ones ask for confirmation first."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import streamlit as st

from ..auth.policy import Actor, Invalid
from ..control import LiveControl, parse_attributes
from ..livekit.gateway import PermissionUpdate
from ..livekit.records import SOURCE_BY_NAME, Participant, RoomSnapshot
from . import live

EVERYONE, CHOSEN = "Everyone in the room", "Chosen participants"


def create_room_form(control: LiveControl, actor: Actor, servers: list[str]) -> None:
    if not servers:
        st.caption("Add a server on the Servers page first.")
        return
    with st.form("create_room"):
        field = partial(live.widget_key, "create_room")
        server = st.selectbox("Server", servers, key=field("server"))
        name = st.text_input("Room name", max_chars=256, key=field("name"))
        c1, c2, c3 = st.columns(3)
        empty_timeout = c1.number_input("Empty timeout (s)", 0, 7 * 86400, 0, help="Seconds an empty room stays open; 0 uses the server's default.", key=field("empty"))
        departure_timeout = c2.number_input("Departure timeout (s)", 0, 7 * 86400, 0, help="Seconds the room stays after the last participant leaves; 0 uses the server's default.", key=field("departure"))
        max_participants = c3.number_input("Max participants", 0, 100_000, 0, help="0 means no limit.", key=field("max"))
        metadata = st.text_area("Metadata", max_chars=64_000, key=field("metadata"))
        if st.form_submit_button("Create room", type="primary"):
            live.act(
                f"Create room '{name}' on {server}",
                on_success=lambda: live.renew_form("create_room"),
                action=lambda: control.create_room(
                    actor,
                    server,
                    name,
                    empty_timeout=int(empty_timeout),
                    departure_timeout=int(departure_timeout),
                    max_participants=int(max_participants),
                    metadata=metadata,
                ),
            )


def room_controls(control: LiveControl, actor: Actor, room: RoomSnapshot, now: Callable[[], RoomSnapshot | None], interval: timedelta | None) -> None:
    """`now()` reads the room as the server has it at each refresh (for the change notice)."""
    server, name = room.room.server, room.room.name
    form = f"room_metadata_{server}_{name}"
    seen = live.form_baseline(form, room.room.metadata)
    live.watch_form(form, lambda: (r.room.metadata if (r := now()) else None), interval)
    with st.form(form):
        metadata = st.text_area("Room metadata", value=seen, max_chars=64_000, key=live.widget_key(form, "text"))
        if st.form_submit_button("Update metadata"):
            live.act(
                "Update room metadata",
                lambda: control.update_room_metadata(actor, server, name, metadata),
                on_success=lambda: live.renew_form(form),
            )
    st.divider()
    st.caption("Ending a room disconnects everyone in it and deletes it on the server.")
    if live.confirm("End room", f"end_{server}_{name}", f"End room '{name}' on {server} and disconnect its {len(room.participants)} participant(s)?"):
        live.act(f"End room '{name}'", lambda: control.end_room(actor, server, name))


def _participant_label(p: Participant) -> str:
    label = p.identity if not p.name or p.name == p.identity else f"{p.identity} ({p.name})"
    return label if len(label) <= 80 else label[:79] + "…"


def _member(room: RoomSnapshot | None, identity: str) -> Participant | None:
    return next((p for p in room.participants if p.identity == identity), None) if room is not None else None


def _track_buttons(
    control: LiveControl, actor: Actor, member: Callable[[], Participant | None], key: str, server: str, room_name: str, interval: timedelta | None
) -> None:
    """Each track's state and its Mute or Unmute button, redrawn on the page's refresh so a
    track muted elsewhere shows as muted (buttons are no form: nothing typed is lost)."""
    @st.fragment(run_every=interval)
    def buttons() -> None:
        p = member()
        if p is None:
            st.caption("This participant has left the room.")
            return
        if not p.tracks:
            st.caption("This participant publishes no track.")
        for t in sorted(p.tracks, key=lambda t: (t.source, t.sid)):
            c1, c2 = st.columns([3, 1])
            c1.text(f"{t.source} · {t.type} · {t.sid} · {'muted' if t.muted else 'live'}")
            verb = "Unmute" if t.muted else "Mute"
            # Bound now: the click does what this label says, whatever the next snapshot shows.
            c2.button(
                verb,
                key=f"{verb.lower()}_{key}_{t.sid}",
                on_click=live.act_on_click,
                args=(f"{verb} {t.source} track of {p.identity}", partial(control.mute_track, actor, server, room_name, p.identity, t.sid, not t.muted)),
            )
        st.caption("Unmuting from the server works only where the server sets room.enable_remote_unmute.")

    buttons()


def participant_controls(
    control: LiveControl, actor: Actor, room: RoomSnapshot, now: Callable[[], RoomSnapshot | None], interval: timedelta | None
) -> None:
    server, room_name = room.room.server, room.room.name
    if not room.participants:
        st.caption("Nobody is in this room.")
        return
    by_identity = {p.identity: p for p in room.participants}
    identity = st.selectbox("Participant", list(by_identity), format_func=lambda i: _participant_label(by_identity[i]), key=f"pick_{server}_{room_name}")
    p = by_identity[identity]
    key = f"{server}_{room_name}_{identity}"

    tracks_tab, perms_tab, info_tab, remove_tab = st.tabs(
        ["Tracks", "Permissions", "Name, metadata, attributes", "Remove"], key="participant_tab"
    )
    with tracks_tab:
        _track_buttons(control, actor, lambda: _member(now(), identity), key, server, room_name, interval)
    with perms_tab:
        form = f"perm_{key}"
        perm = live.form_baseline(form, p.permission)
        live.watch_form(form, lambda: (m.permission if (m := _member(now(), identity)) else None), interval)
        with st.form(form):
            field = partial(live.widget_key, form)
            can_subscribe = st.checkbox("Can subscribe", perm.can_subscribe, key=field("subscribe"))
            can_publish = st.checkbox("Can publish", perm.can_publish, key=field("publish"))
            sources = st.multiselect(
                "Allowed sources (none selected: all)", list(SOURCE_BY_NAME), default=[s for s in perm.can_publish_sources if s in SOURCE_BY_NAME], key=field("sources")
            )
            can_publish_data = st.checkbox("Can publish data", perm.can_publish_data, key=field("data"))
            can_update_metadata = st.checkbox("Can update own metadata", perm.can_update_metadata, key=field("metadata"))
            hidden = st.checkbox("Hidden from other participants", perm.hidden, key=field("hidden"))
            if st.form_submit_button("Update permissions"):
                update = PermissionUpdate(can_subscribe, can_publish, can_publish_data, tuple(sources), can_update_metadata, hidden)
                live.act(
                    f"Update permissions of {identity}",
                    lambda: control.update_permissions(actor, server, room_name, identity, update),
                    on_success=lambda: live.renew_form(form),
                )
    with info_tab:
        form = f"info_{key}"
        seen_name, seen_metadata, seen_attributes = live.form_baseline(form, (p.name, p.metadata, dict(p.attributes)))
        live.watch_form(form, lambda: ((m.name, m.metadata, dict(m.attributes)) if (m := _member(now(), identity)) else None), interval)
        with st.form(form):
            name = st.text_input("Name", value=seen_name, max_chars=1024, key=live.widget_key(form, "name"))
            metadata = st.text_area("Metadata", value=seen_metadata, max_chars=64_000, key=live.widget_key(form, "metadata"))
            attributes_text = st.text_area(
                "Attributes (JSON object of strings; a key you delete here is deleted on the server)",
                value=json.dumps(seen_attributes, ensure_ascii=False, indent=1),
                key=live.widget_key(form, "attributes"),
            )
            if st.form_submit_button("Update participant"):
                try:
                    attributes = parse_attributes(attributes_text)
                except Invalid as exc:
                    st.error(str(exc))
                    return
                # Deleted from what the form showed: removed on the server. Keys that appeared on
                # the server since the form opened were never shown, so they stay.
                removed = {k: "" for k in seen_attributes if k not in attributes}
                live.act(
                    f"Update {identity}",
                    lambda: control.update_participant(actor, server, room_name, identity, name=name, metadata=metadata, attributes={**attributes, **removed}),
                    on_success=lambda: live.renew_form(form),
                )
    with remove_tab:
        st.caption("Removing disconnects the participant; they can rejoin if their token is still valid.")
        if live.confirm("Remove participant", f"remove_{key}", f"Remove {identity} from '{room_name}'?"):
            live.act(f"Remove {identity}", lambda: control.remove_participant(actor, server, room_name, identity))


def data_controls(control: LiveControl, actor: Actor, room: RoomSnapshot) -> None:
    server, room_name = room.room.server, room.room.name
    picked_key = f"data_to_{server}_{room_name}"
    # The picker is keyed and offers everyone present plus whoever was already picked: people
    # join and leave between reruns, and a picker whose choices change must never drop a pick
    # (an empty pick once meant "everyone").
    present = sorted(p.identity for p in room.participants)
    offered = sorted({*present, *st.session_state.get(picked_key, [])})
    with st.form(f"data_{server}_{room_name}"):
        topic = st.text_input("Topic", max_chars=256)
        payload = st.text_area("Message (sent as UTF-8)", max_chars=15_000)
        audience = st.radio("Send to", (EVERYONE, CHOSEN), horizontal=True, key=f"data_audience_{server}_{room_name}")
        to = st.multiselect("Participants (for 'Chosen participants')", offered, key=picked_key)
        reliable = st.checkbox("Reliable delivery", True)
        if st.form_submit_button("Send data"):
            if audience == CHOSEN and not to:
                st.error("Pick at least one participant, or send to everyone in the room.")
                return
            recipients = to if audience == CHOSEN else []
            who = ", ".join(recipients) if recipients else "everyone"
            live.act(
                f"Send data to {who}",
                lambda: control.send_data(actor, server, room_name, payload.encode(), topic=topic, to=recipients, reliable=reliable),
            )


def dispatch_controls(control: LiveControl, actor: Actor, room: RoomSnapshot) -> None:
    server, room_name = room.room.server, room.room.name
    with st.form(f"dispatch_{server}_{room_name}"):
        agent_name = st.text_input("Agent name", help="The agent_name a worker registered with.", max_chars=256)
        metadata = st.text_area("Job metadata", max_chars=64_000)
        if st.form_submit_button("Dispatch agent"):
            live.act(f"Dispatch agent '{agent_name}'", lambda: control.create_dispatch(actor, server, room_name, agent_name, metadata))
    if room.dispatches:
        ordered = sorted(room.dispatches, key=lambda d: d.automatic)  # named dispatches first
        ids = [d.id for d in ordered]
        by_id = {d.id: d for d in ordered}
        chosen = st.selectbox("Dispatch", ids, format_func=lambda i: f"{i} · {by_id[i].agent_name or '(automatic)'}", key=f"dsel_{server}_{room_name}")
        if live.confirm("Delete dispatch", f"deldisp_{server}_{room_name}_{chosen}", f"Delete dispatch {chosen}? Its running agent job is ended."):
            live.act(f"Delete dispatch {chosen}", lambda: control.delete_dispatch(actor, server, room_name, chosen))
