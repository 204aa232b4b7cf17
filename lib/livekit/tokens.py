"""LiveKit access tokens: the one place the dashboard signs them (a participant's join token, and
the Server API's bearer tokens the gateway sends), the rules a request must pass first, and a
token's claims decoded for display. A token is a credential: nothing here logs one, and
`IssuedToken` keeps it out of its repr."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone

import jwt as pyjwt
from livekit import api

from .records import SOURCE_BY_NAME

SOURCES = tuple(SOURCE_BY_NAME)  # camera, microphone, screen_share, screen_share_audio: as tokens name them
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(hours=24)
DEFAULT_TTL = timedelta(minutes=15)
MAX_IDENTITY = 256
MAX_NAME = 256  # room and agent names, as the controls accept them
MAX_METADATA = 64_000  # bytes: livekit-server's default limit.max_metadata_size

Attributes = tuple[tuple[str, str], ...]


class TokenError(ValueError):
    """A token request breaks a rule; the message is a sentence saying which."""


@dataclass(frozen=True)
class Grants:
    """What the token lets its holder do. Flags left False stay out of the token."""

    room_join: bool = True
    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    can_publish_sources: tuple[str, ...] = ()  # names from SOURCES; empty: every source
    hidden: bool = False
    room_admin: bool = False
    room_create: bool = False
    room_list: bool = False
    room_record: bool = False
    agent: bool = False
    can_update_own_metadata: bool = False

    def __post_init__(self) -> None:
        # A list given here would make the record mutable (and unhashable).
        object.__setattr__(self, "can_publish_sources", tuple(self.can_publish_sources))

    @classmethod
    def guest(cls) -> Grants:
        """Join, publish, subscribe and send data: a meeting's ordinary participant."""
        return cls()

    @classmethod
    def host(cls) -> Grants:
        """A guest's grants plus administering the room (mute, remove, update others)."""
        return cls(room_admin=True)

    def granted(self) -> list[str]:
        """The grants that are on, by short name (what an audit row or a caption shows)."""
        short = {
            "room_join": "join", "can_publish": "publish", "can_subscribe": "subscribe", "can_publish_data": "data",
            "hidden": "hidden", "room_admin": "admin", "room_create": "create", "room_list": "list",
            "room_record": "record", "agent": "agent", "can_update_own_metadata": "own metadata",
        }  # fmt: skip
        names = [short[f.name] for f in fields(self) if f.name in short and getattr(self, f.name)]
        if self.can_publish_sources:
            names.append(f"sources {'+'.join(self.can_publish_sources)}")
        return names

    def check(self) -> None:
        unknown = [s for s in self.can_publish_sources if s not in SOURCES]
        if unknown:
            raise TokenError(f"Unknown track source {', '.join(map(repr, unknown))}; the sources are {', '.join(SOURCES)}.")
        if self.can_publish_sources and not self.can_publish:
            # The server lets a source be published only when publishing is granted at all.
            raise TokenError("Publish sources are chosen but publishing is not granted: grant publishing, or choose no source.")

    def video_grants(self, room: str) -> api.VideoGrants:
        def flag(on: bool) -> bool | None:
            return True if on else None  # None keeps the claim out of the token

        return api.VideoGrants(
            room=room,
            room_join=flag(self.room_join),
            can_publish=self.can_publish,
            can_subscribe=self.can_subscribe,
            can_publish_data=self.can_publish_data,
            can_publish_sources=list(self.can_publish_sources) or None,
            hidden=flag(self.hidden),
            room_admin=flag(self.room_admin),
            room_create=flag(self.room_create),
            room_list=flag(self.room_list),
            room_record=flag(self.room_record),
            agent=flag(self.agent),
            can_update_own_metadata=flag(self.can_update_own_metadata),
        )


@dataclass(frozen=True)
class TokenRequest:
    """Who the token is for, in which room, for how long, with what. `attributes` may be given
    as a mapping; it is kept as (key, value) pairs in key order so the request stays frozen.
    `dispatch_agent` names an agent the server dispatches when this token's holder creates the
    room by joining it (LiveKit's room configuration in the token)."""

    room: str
    identity: str
    name: str = ""
    metadata: str = ""
    attributes: Attributes | Mapping[str, str] = ()
    ttl: timedelta = DEFAULT_TTL
    grants: Grants = Grants()
    dispatch_agent: str = ""
    dispatch_metadata: str = ""

    def __post_init__(self) -> None:
        given = self.attributes
        pairs = sorted(given.items()) if isinstance(given, Mapping) else [tuple(p) for p in given]
        object.__setattr__(self, "attributes", tuple((str(k), str(v)) for k, v in pairs))

    @property
    def attribute_map(self) -> dict[str, str]:
        return dict(self.attributes)

    def check(self) -> None:
        """Raise TokenError naming the first rule the request breaks."""
        if not self.identity.strip():
            raise TokenError("A token needs an identity.")
        if len(self.identity) > MAX_IDENTITY:
            raise TokenError(f"The identity is {len(self.identity):,} characters; at most {MAX_IDENTITY} are accepted.")
        if not self.room.strip():
            raise TokenError("A token needs a room.")
        if len(self.room) > MAX_NAME:
            raise TokenError(f"The room name is {len(self.room):,} characters; at most {MAX_NAME} are accepted.")
        if not MIN_TTL <= self.ttl <= MAX_TTL:
            raise TokenError(f"A token lives from 1 minute to 24 hours; {_minutes(self.ttl)} was asked.")
        size = len(self.metadata.encode())
        if size > MAX_METADATA:
            raise TokenError(f"The metadata is {size:,} bytes; at most {MAX_METADATA:,} are accepted.")
        keys = [k for k, _ in self.attributes]
        if any(not k.strip() for k in keys):
            raise TokenError("Every attribute needs a key.")
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise TokenError(f"The attribute {', '.join(map(repr, repeated))} is given more than once.")
        if len(self.dispatch_agent) > MAX_NAME:
            raise TokenError(f"The agent name is {len(self.dispatch_agent):,} characters; at most {MAX_NAME} are accepted.")
        if self.dispatch_metadata and not self.dispatch_agent.strip():
            raise TokenError("Dispatch metadata is given but no agent to dispatch: name the agent, or clear the metadata.")
        if len(self.dispatch_metadata.encode()) > MAX_METADATA:
            raise TokenError(f"The dispatch metadata is over {MAX_METADATA:,} bytes.")
        self.grants.check()


def _minutes(ttl: timedelta) -> str:
    minutes = ttl.total_seconds() / 60
    return f"{minutes:g} minute" + ("" if minutes == 1 else "s")


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and what it says. `jwt` is the credential: left out of repr so a log line
    or a traceback that shows the record never shows it."""

    jwt: str = field(repr=False)
    identity: str
    room: str
    expires_at: datetime  # UTC, from the token's own exp claim
    claims: dict[str, object]


def build_token(api_key: str, api_secret: str, request: TokenRequest) -> IssuedToken:
    """Sign a join token for `request` with a server's key and secret; TokenError if the request
    breaks a rule (nothing is signed then)."""
    if not api_key or not api_secret:
        # The SDK would quietly sign with LIVEKIT_API_KEY / LIVEKIT_API_SECRET from the
        # environment instead, a token for another server than the one asked for.
        raise TokenError("The server's API key and secret are needed to sign a token.")
    request.check()
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(request.identity)
        .with_ttl(request.ttl)
        .with_grants(request.grants.video_grants(request.room))
    )
    if request.name:
        token = token.with_name(request.name)
    if request.metadata:
        token = token.with_metadata(request.metadata)
    if request.attributes:
        token = token.with_attributes(request.attribute_map)
    if request.dispatch_agent.strip():
        dispatch = api.RoomAgentDispatch(agent_name=request.dispatch_agent, metadata=request.dispatch_metadata)
        token = token.with_room_config(api.RoomConfiguration(agents=[dispatch]))
    signed = token.to_jwt()
    claims = decode_claims(signed)
    expires_at = datetime.fromtimestamp(int(claims["exp"]), timezone.utc)  # type: ignore[call-overload]
    return IssuedToken(signed, request.identity, request.room, expires_at, claims)


def decode_claims(token: str) -> dict[str, object]:
    """A token's claims without checking its signature: for showing what a token says, never
    for trusting it."""
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError:
        raise TokenError("That is not a LiveKit token (not a well-formed JWT).") from None
    return dict(claims)


def server_api_token(api_key: str, api_secret: str, *, room: str = "", ttl: timedelta = timedelta(minutes=10)) -> str:
    """A bearer token for the Server API: listing rooms without `room`, administering that room
    with it. It names no participant, so it cannot join anything."""
    grants = api.VideoGrants(room_admin=True, room=room) if room else api.VideoGrants(room_list=True)
    return api.AccessToken(api_key, api_secret).with_grants(grants).with_ttl(ttl).to_jwt()
