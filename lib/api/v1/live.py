"""/api/v1/servers/{server}/rooms... and /api/v1/tokens: the live view and the controls of the
Rooms page (lib/control.py) and the token service (lib/tokens.py) over HTTP."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, TypeAdapter

from ...auth.policy import Invalid
from ...livekit.gateway import LiveView, PermissionUpdate
from ...livekit.records import AgentDispatch, Participant, Room, Track
from ...livekit.tokens import SOURCES, Grants, TokenError, TokenRequest
from .deps import Caller, caller, services
from .idempotency import run_once
from .problems import ApiProblem
from .schema import ERRORS, Strict

router = APIRouter()
READERS = caller("read_live")
CONTROLLERS = caller("control")
ISSUERS = caller("issue_tokens")
Source = Literal[SOURCES]  # type: ignore[valid-type]
Name = Annotated[str, Field(min_length=1, max_length=256)]
RoomModel = TypeAdapter(Room)
DispatchModel = TypeAdapter(AgentDispatch)


def plain(participant: Participant) -> Participant:
    """The participant with its attributes in a dict: pydantic cannot serialize the read-only
    mapping the records keep them in (every answer with a participant was a 500)."""
    return dataclasses.replace(participant, attributes=dict(participant.attributes))


class RoomOut(BaseModel):
    room: Room
    participants: list[Participant]
    dispatches: list[AgentDispatch]
    error: str | None = Field(None, description="the room's participants or dispatches could not be read")


class ServerLive(BaseModel):
    server: str
    taken_at: datetime | None = Field(description="when the snapshot shown was taken")
    stale: bool = Field(description="the newest attempt failed; these rooms are the last ones read")
    error: str | None = Field(description="why the newest attempt failed")
    rooms: list[RoomOut]

    @classmethod
    def of(cls, view: LiveView) -> ServerLive:
        shown = view.current or view.last_good
        error = view.snapshot.error if view.snapshot is not None and not view.snapshot.ok else None
        rooms = [
            RoomOut(room=r.room, participants=[plain(p) for p in r.participants], dispatches=list(r.dispatches), error=str(r.error) if r.error else None)
            for r in (shown.rooms if shown is not None else ())
        ]
        return cls(server=view.server, taken_at=shown.taken_at if shown else None, stale=view.stale, error=str(error) if error else None, rooms=rooms)


class RoomIn(Strict):
    name: Name
    empty_timeout: int = Field(0, ge=0, le=86_400 * 7, description="seconds; 0: the server's default")
    departure_timeout: int = Field(0, ge=0, le=86_400 * 7)
    max_participants: int = Field(0, ge=0, le=100_000)
    metadata: str = Field("", max_length=64_000)


class MetadataIn(Strict):
    metadata: str = Field(max_length=64_000)


class ParticipantUpdate(Strict):
    name: str | None = Field(None, max_length=256)
    metadata: str | None = Field(None, max_length=64_000)
    attributes: dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=4096)]] | None = Field(
        None, description="keys set to these values; give \"\" to delete a key"
    )


class PermissionsIn(Strict):
    can_subscribe: bool = True
    can_publish: bool = True
    can_publish_data: bool = True
    can_publish_sources: list[Source] = Field(default_factory=list, description="empty: every source")
    can_update_metadata: bool = False
    hidden: bool = False


class MuteIn(Strict):
    muted: bool


class DataIn(Strict):
    payload_base64: str = Field(max_length=25_000, description="the bytes to send, base64")
    topic: str = Field("", max_length=256)
    to: list[Name] = Field(default_factory=list, max_length=1000, description="identities; empty: everyone in the room")
    reliable: bool = True


class DispatchIn(Strict):
    agent_name: Name
    metadata: str = Field("", max_length=64_000)


class GrantsIn(Strict):
    room_join: bool = True
    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    can_publish_sources: list[Source] = Field(default_factory=list)
    hidden: bool = False
    room_admin: bool = False
    room_create: bool = False
    room_list: bool = False
    room_record: bool = False
    agent: bool = False
    can_update_own_metadata: bool = False


class TokenIn(Strict):
    server: Name
    room: Name
    identity: Name
    name: str = Field("", max_length=256)
    metadata: str = Field("", max_length=64_000)
    attributes: dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict)
    ttl_seconds: int = Field(3600, ge=60, le=86_400 * 7)
    grants: GrantsIn = Field(default_factory=GrantsIn)
    dispatch_agent: str = Field("", max_length=256)
    dispatch_metadata: str = Field("", max_length=64_000)


class TokenOut(BaseModel):
    token: str = Field(description="the signed LiveKit access token")
    server_url: str
    identity: str
    room: str
    expires_at: datetime
    claims: dict[str, object] = Field(description="what the token says, decoded (its signature is not included)")


# ----- reads ---------------------------------------------------------------------------------


@router.get("/rooms", response_model=list[ServerLive], responses=ERRORS, tags=["rooms"], summary="Every room of every server, live")
def live(request: Request, who: Caller = Depends(READERS), max_age: Annotated[float, Query(ge=0, le=60)] = 1.0) -> list[ServerLive]:
    return [ServerLive.of(v) for v in services(request).control.snapshot(who.actor, max_age=max_age)]


@router.get("/servers/{server}/rooms", response_model=ServerLive, responses=ERRORS, tags=["rooms"], summary="Every room of one server, live")
def live_server(server: str, request: Request, who: Caller = Depends(READERS), max_age: Annotated[float, Query(ge=0, le=60)] = 1.0) -> ServerLive:
    [view] = services(request).control.snapshot(who.actor, server, max_age=max_age)
    return ServerLive.of(view)


# ----- rooms ---------------------------------------------------------------------------------


@router.post("/servers/{server}/rooms", status_code=201, response_model=Room, responses=ERRORS, tags=["rooms"], summary="Create a room")
def create_room(server: str, body: RoomIn, request: Request, who: Caller = Depends(CONTROLLERS)) -> Response:
    svc = services(request)

    if "/" in body.name:
        raise ApiProblem(422, "invalid", "A room made through the API cannot have / in its name: no API path could name it afterwards.")

    def create() -> tuple[int, object]:
        room = svc.control.create_room(
            who.actor, server, body.name, empty_timeout=body.empty_timeout, departure_timeout=body.departure_timeout,
            max_participants=body.max_participants, metadata=body.metadata,
        )  # fmt: skip
        return 201, RoomModel.dump_python(room, mode="json")

    return run_once(svc.sessions, request, who, f"{server}\n{body.model_dump_json()}", create)


@router.delete("/servers/{server}/rooms/{room}", status_code=204, responses=ERRORS, tags=["rooms"], summary="End a room (everyone is disconnected)")
def end_room(server: str, room: str, request: Request, who: Caller = Depends(CONTROLLERS)) -> Response:
    services(request).control.end_room(who.actor, server, room)
    return Response(status_code=204)


@router.put("/servers/{server}/rooms/{room}/metadata", response_model=Room, responses=ERRORS, tags=["rooms"], summary="Replace a room's metadata")
def room_metadata(server: str, room: str, body: MetadataIn, request: Request, who: Caller = Depends(CONTROLLERS)) -> Room:
    return services(request).control.update_room_metadata(who.actor, server, room, body.metadata)


@router.post("/servers/{server}/rooms/{room}/data", status_code=204, responses=ERRORS, tags=["rooms"], summary="Send a data packet")
def send_data(server: str, room: str, body: DataIn, request: Request, who: Caller = Depends(CONTROLLERS)) -> Response:
    try:
        payload = base64.b64decode(body.payload_base64, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("payload_base64 is not base64.") from None
    services(request).control.send_data(who.actor, server, room, payload, topic=body.topic, to=body.to, reliable=body.reliable)
    return Response(status_code=204)


# ----- participants --------------------------------------------------------------------------

PARTICIPANT = "/servers/{server}/rooms/{room}/participants/{identity}"


@router.delete(PARTICIPANT, status_code=204, responses=ERRORS, tags=["participants"], summary="Remove a participant")
def remove_participant(server: str, room: str, identity: str, request: Request, who: Caller = Depends(CONTROLLERS)) -> Response:
    services(request).control.remove_participant(who.actor, server, room, identity)
    return Response(status_code=204)


@router.patch(PARTICIPANT, response_model=Participant, responses=ERRORS, tags=["participants"], summary="Change a participant's name, metadata or attributes")
def update_participant(server: str, room: str, identity: str, body: ParticipantUpdate, request: Request, who: Caller = Depends(CONTROLLERS)) -> Participant:
    return plain(services(request).control.update_participant(who.actor, server, room, identity, name=body.name, metadata=body.metadata, attributes=body.attributes))


@router.put(PARTICIPANT + "/permissions", response_model=Participant, responses=ERRORS, tags=["participants"], summary="Replace a participant's permissions")
def permissions(server: str, room: str, identity: str, body: PermissionsIn, request: Request, who: Caller = Depends(CONTROLLERS)) -> Participant:
    update = PermissionUpdate(**{**body.model_dump(), "can_publish_sources": tuple(body.can_publish_sources)})
    return plain(services(request).control.update_permissions(who.actor, server, room, identity, update))


@router.put(PARTICIPANT + "/tracks/{track_sid}/muted", response_model=Track, responses=ERRORS, tags=["participants"], summary="Mute or unmute a track")
def mute(server: str, room: str, identity: str, track_sid: str, body: MuteIn, request: Request, who: Caller = Depends(CONTROLLERS)) -> Track:
    return services(request).control.mute_track(who.actor, server, room, identity, track_sid, body.muted)


# ----- agent dispatch ------------------------------------------------------------------------


@router.post("/servers/{server}/rooms/{room}/dispatches", status_code=201, response_model=AgentDispatch, responses=ERRORS, tags=["agents"], summary="Dispatch an agent to a room")
def create_dispatch(server: str, room: str, body: DispatchIn, request: Request, who: Caller = Depends(CONTROLLERS)) -> Response:
    svc = services(request)

    def create() -> tuple[int, object]:
        return 201, DispatchModel.dump_python(svc.control.create_dispatch(who.actor, server, room, body.agent_name, body.metadata), mode="json")

    return run_once(svc.sessions, request, who, f"{server}/{room}\n{body.model_dump_json()}", create)


@router.delete("/servers/{server}/rooms/{room}/dispatches/{dispatch_id}", response_model=AgentDispatch, responses=ERRORS, tags=["agents"], summary="Delete an agent dispatch")
def delete_dispatch(server: str, room: str, dispatch_id: str, request: Request, who: Caller = Depends(CONTROLLERS)) -> AgentDispatch:
    return services(request).control.delete_dispatch(who.actor, server, room, dispatch_id)


# ----- tokens --------------------------------------------------------------------------------


@router.post("/tokens", response_model=TokenOut, responses=ERRORS, tags=["tokens"], summary="Issue a LiveKit access token (the Tokens page's rules)")
def issue_token(body: TokenIn, request: Request, who: Caller = Depends(ISSUERS)) -> TokenOut:
    svc = services(request)
    g = body.grants
    try:
        grants = Grants(**{**g.model_dump(), "can_publish_sources": tuple(g.can_publish_sources)})
        token_request = TokenRequest(
            body.room, body.identity, name=body.name, metadata=body.metadata, attributes=body.attributes,
            ttl=timedelta(seconds=body.ttl_seconds), grants=grants, dispatch_agent=body.dispatch_agent, dispatch_metadata=body.dispatch_metadata,
        )  # fmt: skip
    except TokenError as exc:
        raise Invalid(str(exc)) from None
    issued = svc.tokens.issue(who.actor, body.server, token_request)
    return TokenOut(
        token=issued.jwt, server_url=svc.gateway.server_config(body.server).url, identity=issued.identity, room=issued.room,
        expires_at=issued.expires_at, claims=issued.claims,
    )  # fmt: skip

