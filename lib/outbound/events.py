"""The outgoing event types and their payloads: `{"id", "type", "created_at", "data"}`. Data
names meetings, rooms, servers and participant identities; never a token, password or secret."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

MEETING_SCHEDULED = "meeting.scheduled"
MEETING_STARTED = "meeting.started"
MEETING_ENDED = "meeting.ended"
MEETING_CANCELLED = "meeting.cancelled"
PARTICIPANT_JOINED = "participant.joined"
PARTICIPANT_LEFT = "participant.left"
ROOM_STARTED = "room.started"
ROOM_FINISHED = "room.finished"
# What a receiver may subscribe to, in the order forms list them.
EVENT_TYPES = (
    MEETING_SCHEDULED, MEETING_STARTED, MEETING_ENDED, MEETING_CANCELLED,
    PARTICIPANT_JOINED, PARTICIPANT_LEFT, ROOM_STARTED, ROOM_FINISHED,
)  # fmt: skip
# Sent only to the receiver an admin tests; nobody subscribes to it.
PING = "ping"

# An occurrence's status change and the event it is.
MEETING_TRANSITIONS = {"active": MEETING_STARTED, "ended": MEETING_ENDED, "cancelled": MEETING_CANCELLED}
# LiveKit's webhook names and the event each becomes. participant_connection_aborted is left
# out: it ends a connection that never joined, so no participant.joined came before it.
LIVEKIT_EVENTS = {
    "room_started": ROOM_STARTED,
    "room_finished": ROOM_FINISHED,
    "participant_joined": PARTICIPANT_JOINED,
    "participant_left": PARTICIPANT_LEFT,
}
PARTICIPANT_EVENTS = (PARTICIPANT_JOINED, PARTICIPANT_LEFT)


def iso(value: datetime) -> str:
    """A time as receivers read it: ISO 8601 in UTC with milliseconds and a Z."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(16)}"


def body(event_id: str, event_type: str, created_at: datetime, data: dict[str, object]) -> str:
    """The JSON text sent, byte for byte the same on every retry (it is stored as is)."""
    return json.dumps({"id": event_id, "type": event_type, "created_at": iso(created_at), "data": data}, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class OccurrenceRef:
    """One occurrence of a meeting, as events name it."""

    occurrence_id: int
    room: str
    starts_at: datetime
    ends_at: datetime


def _occurrence(o: OccurrenceRef) -> dict[str, object]:
    return {"occurrence_id": o.occurrence_id, "room": o.room, "starts_at": iso(o.starts_at), "ends_at": iso(o.ends_at)}


def meeting_data(meeting_id: int, title: str, server: str, occurrence: OccurrenceRef, status: str, actor: str) -> dict[str, object]:
    """meeting.started, .ended and .cancelled: one occurrence and what it became, and who (a
    user's name, or "scheduler") made the change."""
    return {"meeting_id": meeting_id, "title": title, "server": server, **_occurrence(occurrence), "status": status, "actor": actor}


def scheduled_data(meeting_id: int, title: str, server: str, occurrences: Sequence[OccurrenceRef], instant: bool, actor: str) -> dict[str, object]:
    """meeting.scheduled: the meeting with its first occurrence at the top level (a single
    meeting's only one) and every occurrence of a series in `occurrences`."""
    return {
        "meeting_id": meeting_id, "title": title, "server": server, **_occurrence(occurrences[0]), "status": "scheduled",
        "instant": instant, "actor": actor, "occurrences": [_occurrence(o) for o in occurrences],
    }  # fmt: skip


@dataclass(frozen=True)
class MeetingRef:
    """The meeting whose occurrence a room is."""

    meeting_id: int
    occurrence_id: int
    title: str


def room_data(server: str, room: str, room_sid: str, meeting: MeetingRef | None, identity: str = "", participant_sid: str = "") -> dict[str, object]:
    """room.* and participant.*: the room, its meeting (null for a room that is no meeting's)
    and, for participant events, the participant's identity (for guests an opaque one)."""
    data: dict[str, object] = {
        "server": server, "room": room, "room_sid": room_sid,
        "meeting": None if meeting is None else {"meeting_id": meeting.meeting_id, "occurrence_id": meeting.occurrence_id, "title": meeting.title},
    }  # fmt: skip
    if identity or participant_sid:
        data["participant"] = {"identity": identity, "sid": participant_sid}
    return data


def ping_data(receiver_id: int, actor: str) -> dict[str, object]:
    return {"receiver_id": receiver_id, "actor": actor, "message": "A test event from the LiveKit dashboard."}
