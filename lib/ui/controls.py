"""The operator controls of the live pages: forms that call one gateway method each and report
the server's answer. Destructive ones ask for confirmation first."""

from __future__ import annotations

import json

import streamlit as st

from ..livekit.gateway import LiveKitGateway, PermissionUpdate
from ..livekit.records import SOURCE_BY_NAME, Participant, RoomSnapshot
from . import live


def create_room_form(gw: LiveKitGateway) -> None:
    servers = gw.server_names()
    if not servers:
        st.caption("Add a server on the Settings page first.")
        return
    with st.form("create_room"):
        server = st.selectbox("Server", servers)
        name = st.text_input("Room name", max_chars=256)
        c1, c2, c3 = st.columns(3)
        empty_timeout = c1.number_input("Empty timeout (s)", 0, 7 * 86400, 0, help="Seconds an empty room stays open; 0 uses the server's default.")
        departure_timeout = c2.number_input("Departure timeout (s)", 0, 7 * 86400, 0, help="Seconds the room stays after the last participant leaves; 0 uses the server's default.")
        max_participants = c3.number_input("Max participants", 0, 100_000, 0, help="0 means no limit.")
        metadata = st.text_area("Metadata", max_chars=64_000)
        if st.form_submit_button("Create room", type="primary"):
            if not name.strip():
                st.error("A room needs a name.")
                return
            live.act(
                f"Create room '{name}' on {server}",
                event="room.create",
                target=f"{server}/{name}",
                action=lambda: gw.create_room(
                    server,
                    name,
                    empty_timeout=int(empty_timeout),
                    departure_timeout=int(departure_timeout),
                    max_participants=int(max_participants),
                    metadata=metadata,
                ),
            )


def room_controls(gw: LiveKitGateway, room: RoomSnapshot) -> None:
    server, name = room.room.server, room.room.name
    with st.form(f"room_metadata_{server}_{name}"):
        metadata = st.text_area("Room metadata", value=room.room.metadata, max_chars=64_000)
        if st.form_submit_button("Update metadata"):
            live.act("Update room metadata", lambda: gw.update_room_metadata(server, name, metadata), event="room.metadata", target=f"{server}/{name}")
    st.divider()
    st.caption("Ending a room disconnects everyone in it and deletes it on the server.")
    if live.confirm("End room", f"end_{server}_{name}", f"End room '{name}' on {server} and disconnect its {len(room.participants)} participant(s)?"):
        live.act(f"End room '{name}'", lambda: gw.delete_room(server, name), event="room.delete", target=f"{server}/{name}")


def _participant_label(p: Participant) -> str:
    label = p.identity if not p.name or p.name == p.identity else f"{p.identity} ({p.name})"
    return label if len(label) <= 80 else label[:79] + "…"


def participant_controls(gw: LiveKitGateway, room: RoomSnapshot) -> None:
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
        if not p.tracks:
            st.caption("This participant publishes no track.")
        for t in p.tracks:
            c1, c2 = st.columns([3, 1])
            c1.text(f"{t.source} · {t.type} · {t.sid} · {'muted' if t.muted else 'live'}")
            if c2.button("Unmute" if t.muted else "Mute", key=f"mute_{key}_{t.sid}"):
                live.act(
                    f"{'Unmute' if t.muted else 'Mute'} {t.source} track of {identity}",
                    lambda t=t: gw.mute_track(server, room_name, identity, t.sid, not t.muted),
                    event="track.unmute" if t.muted else "track.mute",
                    target=f"{server}/{room_name}/{identity}/{t.sid}",
                )
        st.caption("Unmuting from the server works only where the server sets room.enable_remote_unmute.")
    with perms_tab:
        perm = p.permission
        with st.form(f"perm_{key}"):
            can_subscribe = st.checkbox("Can subscribe", perm.can_subscribe)
            can_publish = st.checkbox("Can publish", perm.can_publish)
            sources = st.multiselect("Allowed sources (none selected: all)", list(SOURCE_BY_NAME), default=[s for s in perm.can_publish_sources if s in SOURCE_BY_NAME])
            can_publish_data = st.checkbox("Can publish data", perm.can_publish_data)
            can_update_metadata = st.checkbox("Can update own metadata", perm.can_update_metadata)
            hidden = st.checkbox("Hidden from other participants", perm.hidden)
            if st.form_submit_button("Update permissions"):
                update = PermissionUpdate(can_subscribe, can_publish, can_publish_data, tuple(sources), can_update_metadata, hidden)
                live.act(
                    f"Update permissions of {identity}",
                    lambda: gw.update_participant(server, room_name, identity, permission=update),
                    event="participant.permissions",
                    target=f"{server}/{room_name}/{identity}",
                )
    with info_tab:
        with st.form(f"info_{key}"):
            name = st.text_input("Name", value=p.name, max_chars=1024)
            metadata = st.text_area("Metadata", value=p.metadata, max_chars=64_000)
            attributes_text = st.text_area(
                "Attributes (JSON object; a key set to \"\" is deleted)",
                value=json.dumps(dict(p.attributes), ensure_ascii=False, indent=1),
            )
            if st.form_submit_button("Update participant"):
                try:
                    attributes = json.loads(attributes_text or "{}")
                    if not isinstance(attributes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
                        raise ValueError
                except ValueError:
                    st.error('Attributes must be a JSON object of strings, like {"role": "speaker"}.')
                    return
                # Attributes the operator deleted from the text are removed on the server.
                removed = {k: "" for k in p.attributes if k not in attributes}
                live.act(
                    f"Update {identity}",
                    lambda: gw.update_participant(server, room_name, identity, name=name, metadata=metadata, attributes={**attributes, **removed}),
                    event="participant.update",
                    target=f"{server}/{room_name}/{identity}",
                )
    with remove_tab:
        st.caption("Removing disconnects the participant; they can rejoin if their token is still valid.")
        if live.confirm("Remove participant", f"remove_{key}", f"Remove {identity} from '{room_name}'?"):
            live.act(f"Remove {identity}", lambda: gw.remove_participant(server, room_name, identity), event="participant.remove", target=f"{server}/{room_name}/{identity}")


def data_controls(gw: LiveKitGateway, room: RoomSnapshot) -> None:
    server, room_name = room.room.server, room.room.name
    with st.form(f"data_{server}_{room_name}"):
        topic = st.text_input("Topic", max_chars=256)
        payload = st.text_area("Message (sent as UTF-8)", max_chars=15_000)
        identities = [p.identity for p in room.participants]
        to = st.multiselect("To (none selected: everyone in the room)", identities)
        reliable = st.checkbox("Reliable delivery", True)
        if st.form_submit_button("Send data"):
            if not payload:
                st.error("The message is empty.")
                return
            who = ", ".join(to) if to else "everyone"
            live.act(
                f"Send data to {who}",
                lambda: gw.send_data(server, room_name, payload.encode(), topic=topic, destination_identities=to, reliable=reliable),
                event="data.send",
                # Who it went to, never the message itself.
                target=f"{server}/{room_name} to {who} (topic {topic or '-'}, {len(payload.encode())} bytes)",
            )


def dispatch_controls(gw: LiveKitGateway, room: RoomSnapshot) -> None:
    server, room_name = room.room.server, room.room.name
    with st.form(f"dispatch_{server}_{room_name}"):
        agent_name = st.text_input("Agent name", help="The agent_name a worker registered with.", max_chars=256)
        metadata = st.text_area("Job metadata", max_chars=64_000)
        if st.form_submit_button("Dispatch agent"):
            if not agent_name.strip():
                st.error("Name the agent to dispatch.")
                return
            live.act(f"Dispatch agent '{agent_name}'", lambda: gw.create_dispatch(server, room_name, agent_name, metadata), event="dispatch.create", target=f"{server}/{room_name}/{agent_name}")
    if room.dispatches:
        ids = [d.id for d in room.dispatches]
        by_id = {d.id: d for d in room.dispatches}
        chosen = st.selectbox("Dispatch", ids, format_func=lambda i: f"{i} · {by_id[i].agent_name or '(automatic)'}", key=f"dsel_{server}_{room_name}")
        if live.confirm("Delete dispatch", f"deldisp_{server}_{room_name}_{chosen}", f"Delete dispatch {chosen}? Its running agent job is ended."):
            live.act(f"Delete dispatch {chosen}", lambda: gw.delete_dispatch(server, room_name, chosen), event="dispatch.delete", target=f"{server}/{room_name}/{chosen}")
