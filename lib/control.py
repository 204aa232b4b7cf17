"""Operator actions on live LiveKit rooms, one method each: create, end and describe rooms; mute,
remove and update participants; send data; dispatch agents. Each method takes the actor, is
allowed only with the `control` capability, acts through the gateway and leaves one audit row.

Errors: Refused (the role may not), Invalid (the input breaks a rule, nothing was sent) and the
gateway's GatewayError (the server refused or did not answer), all with a message for a person.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .auth.policy import Actor, Invalid, Policy
from .livekit.gateway import LiveKitGateway, LiveView, PermissionUpdate
from .livekit.records import AgentDispatch, Participant, Room, Track

CAPABILITY = "control"
READ = "read_live"
MAX_NAME = 256
MAX_METADATA = 64_000
MAX_DATA_BYTES = 15_000  # LiveKit's own limit for a reliable data packet is about 15 kB


def parse_attributes(text: str) -> dict[str, str]:
    """Participant attributes typed as a JSON object of strings; Invalid otherwise."""
    try:
        attributes = json.loads(text or "{}")
    except ValueError:
        attributes = None
    if not isinstance(attributes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
        raise Invalid('Attributes must be a JSON object of strings, like {"role": "speaker"}.')
    return attributes


def _check_length(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise Invalid(f"The {what} is {len(value):,} characters; at most {limit:,} are accepted.")


class LiveControl:
    def __init__(self, gateway: LiveKitGateway, policy: Policy) -> None:
        self._gateway = gateway
        self._policy = policy

    def permits(self, actor: Actor) -> bool:
        """Whether `actor` may use these controls at all (pages draw them only then)."""
        return self._policy.permits(actor, CAPABILITY)

    def snapshot(self, actor: Actor, server: str | None = None, *, max_age: float = 1.0, wait: float = 3.0) -> list[LiveView]:
        """The live view of every server (or of `server`) as the Rooms page has it: read, not an
        action, so only refusals are audited."""
        self._policy.require(actor, READ, "live.read", server or "every server")
        if server is not None:
            self._gateway.server_config(server)  # GatewayError (not found) for a server not configured
        return [v for v in self._gateway.live(max_age=max_age, wait=wait) if server is None or v.server == server]

    # ----- rooms ---------------------------------------------------------------------------

    def create_room(
        self,
        actor: Actor,
        server: str,
        name: str,
        *,
        empty_timeout: int = 0,
        departure_timeout: int = 0,
        max_participants: int = 0,
        metadata: str = "",
    ) -> Room:
        """Create a room; zero for a timeout or the limit means the server's default."""
        with self._policy.act(actor, CAPABILITY, "room.create", f"{server}/{name}"):
            if not name.strip():
                raise Invalid("A room needs a name.")
            _check_length("room name", name, MAX_NAME)
            _check_length("metadata", metadata, MAX_METADATA)
            if min(empty_timeout, departure_timeout, max_participants) < 0:
                raise Invalid("Timeouts and the participant limit cannot be negative.")
            # LiveKit answers a create of an existing room with that room, unchanged: say so
            # rather than report settings that were never applied.
            if self._gateway.find_room(server, name) is not None:
                raise Invalid(f"A room named '{name}' already exists on {server}; its settings were not changed.")
            return self._gateway.create_room(
                server,
                name,
                empty_timeout=empty_timeout,
                departure_timeout=departure_timeout,
                max_participants=max_participants,
                metadata=metadata,
            )

    def end_room(self, actor: Actor, server: str, room: str) -> None:
        """Delete the room on the server, which disconnects everyone in it."""
        with self._policy.act(actor, CAPABILITY, "room.delete", f"{server}/{room}"):
            self._gateway.delete_room(server, room)

    def update_room_metadata(self, actor: Actor, server: str, room: str, metadata: str) -> Room:
        with self._policy.act(actor, CAPABILITY, "room.metadata", f"{server}/{room}", f"{len(metadata)} characters"):
            _check_length("metadata", metadata, MAX_METADATA)
            return self._gateway.update_room_metadata(server, room, metadata)

    # ----- participants --------------------------------------------------------------------

    def mute_track(self, actor: Actor, server: str, room: str, identity: str, track_sid: str, muted: bool) -> Track:
        """Mute (or unmute, where the server allows remote unmute) one published track."""
        action = "track.mute" if muted else "track.unmute"
        with self._policy.act(actor, CAPABILITY, action, f"{server}/{room}/{identity}/{track_sid}"):
            return self._gateway.mute_track(server, room, identity, track_sid, muted)

    def remove_participant(self, actor: Actor, server: str, room: str, identity: str) -> None:
        with self._policy.act(actor, CAPABILITY, "participant.remove", f"{server}/{room}/{identity}"):
            self._gateway.remove_participant(server, room, identity)

    def update_participant(
        self,
        actor: Actor,
        server: str,
        room: str,
        identity: str,
        *,
        name: str | None = None,
        metadata: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Participant:
        """Change what is given and leave the rest; an attribute set to "" is deleted."""
        changed = [w for w, v in (("name", name), ("metadata", metadata), ("attributes", attributes)) if v is not None]
        with self._policy.act(actor, CAPABILITY, "participant.update", f"{server}/{room}/{identity}", ", ".join(changed)):
            if name is not None:
                _check_length("name", name, 1024)
            if metadata is not None:
                _check_length("metadata", metadata, MAX_METADATA)
            return self._gateway.update_participant(server, room, identity, name=name, metadata=metadata, attributes=attributes)

    def update_permissions(self, actor: Actor, server: str, room: str, identity: str, permission: PermissionUpdate) -> Participant:
        """Replace the participant's permissions (the server sets all of them at once)."""
        granted = [n for n, ok in (("subscribe", permission.can_subscribe), ("publish", permission.can_publish),
                                   ("data", permission.can_publish_data), ("metadata", permission.can_update_metadata),
                                   ("hidden", permission.hidden)) if ok]  # fmt: skip
        sources = f"; sources {', '.join(permission.can_publish_sources)}" if permission.can_publish_sources else ""
        with self._policy.act(actor, CAPABILITY, "participant.permissions", f"{server}/{room}/{identity}", f"{', '.join(granted) or 'none'}{sources}"):
            return self._gateway.update_participant(server, room, identity, permission=permission)

    # ----- data and agents -----------------------------------------------------------------

    def send_data(
        self,
        actor: Actor,
        server: str,
        room: str,
        payload: bytes,
        *,
        topic: str = "",
        to: Sequence[str] = (),
        reliable: bool = True,
    ) -> None:
        """Send a data packet to the identities in `to`, or to everyone in the room when it is
        empty. The audit row names the recipients, the topic and the size, never the content."""
        recipients = list(dict.fromkeys(i for i in to if i))
        who = ", ".join(recipients) if recipients else "everyone"
        detail = f"to {who} (topic {topic or '-'}, {len(payload)} bytes)"
        with self._policy.act(actor, CAPABILITY, "data.send", f"{server}/{room}", detail):
            if not payload:
                raise Invalid("The message is empty.")
            if len(payload) > MAX_DATA_BYTES:
                raise Invalid(f"The message is {len(payload):,} bytes; at most {MAX_DATA_BYTES:,} are sent.")
            _check_length("topic", topic, MAX_NAME)
            self._gateway.send_data(server, room, payload, topic=topic, destination_identities=recipients, reliable=reliable)

    def create_dispatch(self, actor: Actor, server: str, room: str, agent_name: str, metadata: str = "") -> AgentDispatch:
        """Ask the server to send an agent (by the name its worker registered) into the room."""
        with self._policy.act(actor, CAPABILITY, "dispatch.create", f"{server}/{room}/{agent_name}"):
            if not agent_name.strip():
                raise Invalid("Name the agent to dispatch.")
            _check_length("agent name", agent_name, MAX_NAME)
            _check_length("job metadata", metadata, MAX_METADATA)
            return self._gateway.create_dispatch(server, room, agent_name, metadata)

    def delete_dispatch(self, actor: Actor, server: str, room: str, dispatch_id: str) -> AgentDispatch:
        """Delete a dispatch; its running agent job is ended."""
        with self._policy.act(actor, CAPABILITY, "dispatch.delete", f"{server}/{room}/{dispatch_id}"):
            return self._gateway.delete_dispatch(server, room, dispatch_id)
