"""Typed, frozen records of what a LiveKit server reports, and their conversion from protobuf.

Every record carries the name of the server it came from. Conversion keeps only what the
Server API actually returns: a figure the server does not report is None, never a guess.
Fields that are credentials on the wire (a room's TURN password) are dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Mapping

from livekit.protocol import agent as agent_pb
from livekit.protocol import agent_dispatch as dispatch_pb
from livekit.protocol import models as models_pb

from .errors import GatewayError

_EMPTY: Mapping[str, str] = MappingProxyType({})

PARTICIPANT_KINDS = {
    models_pb.ParticipantInfo.STANDARD: "standard",
    models_pb.ParticipantInfo.INGRESS: "ingress",
    models_pb.ParticipantInfo.EGRESS: "egress",
    models_pb.ParticipantInfo.SIP: "sip",
    models_pb.ParticipantInfo.AGENT: "agent",
    models_pb.ParticipantInfo.CONNECTOR: "connector",
    models_pb.ParticipantInfo.BRIDGE: "bridge",
}
PARTICIPANT_STATES = {
    models_pb.ParticipantInfo.JOINING: "joining",
    models_pb.ParticipantInfo.JOINED: "joined",
    models_pb.ParticipantInfo.ACTIVE: "active",
    models_pb.ParticipantInfo.DISCONNECTED: "disconnected",
}
TRACK_SOURCES = {
    models_pb.UNKNOWN: "unknown",
    models_pb.CAMERA: "camera",
    models_pb.MICROPHONE: "microphone",
    models_pb.SCREEN_SHARE: "screen_share",
    models_pb.SCREEN_SHARE_AUDIO: "screen_share_audio",
}
TRACK_TYPES = {models_pb.AUDIO: "audio", models_pb.VIDEO: "video", models_pb.DATA: "data"}
JOB_STATUSES = {
    agent_pb.JS_PENDING: "pending",
    agent_pb.JS_RUNNING: "running",
    agent_pb.JS_SUCCESS: "success",
    agent_pb.JS_FAILED: "failed",
    agent_pb.JS_CANCELLED: "cancelled",
}
JOB_TYPES = {agent_pb.JT_ROOM: "room", agent_pb.JT_PUBLISHER: "publisher", agent_pb.JT_PARTICIPANT: "participant"}
# Names accepted by the permissions control for `can_publish_sources`.
SOURCE_BY_NAME = {name: value for value, name in TRACK_SOURCES.items() if value != models_pb.UNKNOWN}


# LiveKit's timestamps in its three units; 0 (unset) is None, never the epoch.
def utc_from_seconds(ts: int) -> datetime | None:
    return datetime.fromtimestamp(ts, timezone.utc) if ts > 0 else None


def utc_from_millis(ts: int) -> datetime | None:
    return datetime.fromtimestamp(ts / 1000, timezone.utc) if ts > 0 else None


def utc_from_nanos(ts: int) -> datetime | None:
    return datetime.fromtimestamp(ts / 1e9, timezone.utc) if ts > 0 else None


@dataclass(frozen=True)
class Track:
    sid: str
    name: str
    type: str  # audio, video, data
    source: str  # camera, microphone, screen_share, screen_share_audio, unknown
    muted: bool
    simulcast: bool
    width: int | None  # None for audio, and for video the server has no dimensions for
    height: int | None
    mime_type: str  # the codec as the server negotiated it, e.g. video/VP8, audio/opus

    @property
    def codec(self) -> str:
        return self.mime_type.split("/", 1)[-1] if self.mime_type else ""

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}" if self.width and self.height else ""


@dataclass(frozen=True)
class Permission:
    can_subscribe: bool
    can_publish: bool
    can_publish_data: bool
    can_publish_sources: tuple[str, ...]  # empty means every source
    can_update_metadata: bool
    hidden: bool
    agent: bool


@dataclass(frozen=True)
class Participant:
    server: str
    room: str
    sid: str
    identity: str
    name: str
    kind: str  # standard, agent, sip, egress, ingress, connector, bridge
    state: str  # joining, joined, active, disconnected
    joined_at: datetime | None
    region: str
    is_publisher: bool
    permission: Permission
    metadata: str
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    tracks: tuple[Track, ...] = ()

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent"


@dataclass(frozen=True)
class Room:
    server: str
    sid: str
    name: str
    num_participants: int
    num_publishers: int
    created_at: datetime | None
    empty_timeout: int  # seconds
    departure_timeout: int  # seconds
    max_participants: int  # 0 means no limit
    metadata: str
    active_recording: bool


@dataclass(frozen=True)
class AgentJob:
    id: str
    type: str  # room, publisher, participant
    status: str  # pending, running, success, failed, cancelled
    participant_identity: str
    worker_id: str
    started_at: datetime | None
    ended_at: datetime | None
    error: str


@dataclass(frozen=True)
class AgentDispatch:
    server: str
    room: str
    id: str
    agent_name: str  # "" for LiveKit's automatic dispatch
    metadata: str
    created_at: datetime | None
    deleted_at: datetime | None
    jobs: tuple[AgentJob, ...] = ()

    @property
    def automatic(self) -> bool:
        """LiveKit's automatic dispatch: the server gives every room one (unless the room names
        its agents), with no agent name; only a worker registered without an agent name takes
        it, so without such a worker it never has a job."""
        return not self.agent_name


@dataclass(frozen=True)
class RoomSnapshot:
    """One room as seen in one snapshot; `error` says why participants or dispatches are missing
    (for example the room closed between ListRooms and ListParticipants)."""

    room: Room
    participants: tuple[Participant, ...] = ()
    dispatches: tuple[AgentDispatch, ...] = ()
    error: GatewayError | None = None


@dataclass(frozen=True)
class ServerSnapshot:
    """Everything one server reported at `taken_at`, or the error that prevented it."""

    server: str
    taken_at: datetime
    duration_s: float
    rooms: tuple[RoomSnapshot, ...] = ()
    error: GatewayError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def participants(self) -> tuple[Participant, ...]:
        return tuple(p for r in self.rooms for p in r.participants)

    @property
    def dispatches(self) -> tuple[AgentDispatch, ...]:
        return tuple(d for r in self.rooms for d in r.dispatches)

    def room(self, name: str) -> RoomSnapshot | None:
        return next((r for r in self.rooms if r.room.name == name), None)


def track_from_proto(info: models_pb.TrackInfo) -> Track:
    is_video = info.type == models_pb.VIDEO
    return Track(
        sid=info.sid,
        name=info.name,
        type=TRACK_TYPES.get(info.type, "unknown"),
        source=TRACK_SOURCES.get(info.source, "unknown"),
        muted=info.muted,
        simulcast=info.simulcast,
        width=(info.width or None) if is_video else None,
        height=(info.height or None) if is_video else None,
        mime_type=info.mime_type,
    )


def permission_from_proto(perm: models_pb.ParticipantPermission) -> Permission:
    return Permission(
        can_subscribe=perm.can_subscribe,
        can_publish=perm.can_publish,
        can_publish_data=perm.can_publish_data,
        can_publish_sources=tuple(TRACK_SOURCES.get(s, "unknown") for s in perm.can_publish_sources),
        can_update_metadata=perm.can_update_metadata,
        hidden=perm.hidden,
        agent=perm.agent,
    )


def participant_from_proto(server: str, room: str, info: models_pb.ParticipantInfo) -> Participant:
    return Participant(
        server=server,
        room=room,
        sid=info.sid,
        identity=info.identity,
        name=info.name,
        kind=PARTICIPANT_KINDS.get(info.kind, "unknown"),
        state=PARTICIPANT_STATES.get(info.state, "unknown"),
        joined_at=utc_from_millis(info.joined_at_ms) or utc_from_seconds(info.joined_at),
        region=info.region,
        is_publisher=info.is_publisher,
        permission=permission_from_proto(info.permission),
        metadata=info.metadata,
        attributes=MappingProxyType(dict(info.attributes)),
        tracks=tuple(track_from_proto(t) for t in info.tracks),
    )


def room_from_proto(server: str, room: models_pb.Room) -> Room:
    return Room(
        server=server,
        sid=room.sid,
        name=room.name,
        num_participants=room.num_participants,
        num_publishers=room.num_publishers,
        created_at=utc_from_millis(room.creation_time_ms) or utc_from_seconds(room.creation_time),
        empty_timeout=room.empty_timeout,
        departure_timeout=room.departure_timeout,
        max_participants=room.max_participants,
        metadata=room.metadata,
        active_recording=room.active_recording,
    )


def job_from_proto(job: agent_pb.Job) -> AgentJob:
    state = job.state
    return AgentJob(
        id=job.id,
        type=JOB_TYPES.get(job.type, "unknown"),
        status=JOB_STATUSES.get(state.status, "unknown"),
        participant_identity=state.participant_identity,
        worker_id=state.worker_id,
        started_at=utc_from_nanos(state.started_at),
        ended_at=utc_from_nanos(state.ended_at),
        error=state.error,
    )


def dispatch_from_proto(server: str, dispatch: dispatch_pb.AgentDispatch) -> AgentDispatch:
    return AgentDispatch(
        server=server,
        room=dispatch.room,
        id=dispatch.id,
        agent_name=dispatch.agent_name,
        metadata=dispatch.metadata,
        created_at=utc_from_nanos(dispatch.state.created_at),
        deleted_at=utc_from_nanos(dispatch.state.deleted_at),
        jobs=tuple(job_from_proto(j) for j in dispatch.state.jobs),
    )
