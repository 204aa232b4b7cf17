"""LiveKit webhooks: which configured server signed a delivery, and the history events it carries.

No HTTP here: lib/api/webhooks.py reads the request and answers; this module decides whether a
body is genuine (`verify`), whether what it says can be history (`validate`) and what it means
(`to_events`).

A delivery is signed by a JWT whose issuer is the server's API key and whose `sha256` claim is
the hash of the body. The issuer is read from the unverified token only to pick the secret to
check it with; nothing else in the token is trusted until `WebhookReceiver` has verified it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
from google.protobuf.json_format import ParseError
from livekit import api
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.webhook import WebhookEvent

from ..config import ServerConfig
from ..livekit.records import JOB_STATUSES, PARTICIPANT_KINDS, TRACK_SOURCES, utc_from_millis, utc_from_seconds
from .events import (
    JOB_STATE,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    ROOM_FINISHED,
    ROOM_STARTED,
    TRACK_PUBLISHED,
    TRACK_UNPUBLISHED,
    WEBHOOK,
    HistoryEvent,
)

# LiveKit's event names and the history kind each becomes. A connection that was aborted before
# the participant was fully connected is still the end of that participant's session. Egress and
# ingress events, and any name a newer server adds, are not history and map to nothing.
KINDS = {
    "room_started": ROOM_STARTED,
    "room_finished": ROOM_FINISHED,
    "participant_joined": PARTICIPANT_JOINED,
    "participant_left": PARTICIPANT_LEFT,
    "participant_connection_aborted": PARTICIPANT_LEFT,
    "track_published": TRACK_PUBLISHED,
    "track_unpublished": TRACK_UNPUBLISHED,
    "agent_job_started": JOB_STATE,
    "agent_job_ended": JOB_STATE,
}


class WebhookRejected(Exception):
    """The delivery is not proven to come from a configured server (HTTP 401)."""


class WebhookMalformed(Exception):
    """The signature is good but the body is not a LiveKit WebhookEvent (HTTP 400)."""


class WebhookInvalid(WebhookMalformed):
    """Genuine and a WebhookEvent, but what it says cannot be history (HTTP 400): a time no
    LiveKit server could have sent, or a subject missing."""


# Times outside this window are a broken clock or a broken body, never an event: LiveKit did not
# exist before 2020, and a delivery arrives seconds after the event, so an hour ahead of this
# clock is room enough for skew between hosts.
EARLIEST = datetime(2020, 1, 1, tzinfo=timezone.utc)
AHEAD = timedelta(hours=1)

ROOM_KINDS = (ROOM_STARTED, ROOM_FINISHED, PARTICIPANT_JOINED, PARTICIPANT_LEFT, TRACK_PUBLISHED, TRACK_UNPUBLISHED)
PARTICIPANT_KINDS_NEEDED = (PARTICIPANT_JOINED, PARTICIPANT_LEFT)
TRACK_KINDS = (TRACK_PUBLISHED, TRACK_UNPUBLISHED)


def _check_time(name: str, value: int, per_second: int, now: datetime) -> None:
    """`value` in units of 1/per_second s since the epoch; 0 means not set. Compared as integers,
    so a value beyond what a datetime holds is refused rather than overflowing."""
    if value == 0:
        return
    low = int(EARLIEST.timestamp()) * per_second
    high = int((now + AHEAD).timestamp()) * per_second
    if not low <= value <= high:
        raise WebhookInvalid(f"{name} is not a time between {EARLIEST:%Y-%m-%d} and an hour from now")


def validate(event: WebhookEvent, now: datetime | None = None) -> None:
    """Raise WebhookInvalid naming the first thing wrong with an event that becomes history.

    Every time it carries lies between EARLIEST and an hour from `now`; an event about a room has
    a room with a sid and a name; participant events a participant with a sid and an identity;
    track events a track sid; job events a job id and a room (the event's or the job's). Events
    that are not history (egress, ingress, names this version does not know) are not checked.
    """
    kind = KINDS.get(event.event)
    if kind is None:
        return
    now = now or datetime.now(timezone.utc)
    _check_time("createdAt", event.created_at, 1, now)
    _check_time("room.creationTime", event.room.creation_time, 1, now)
    _check_time("room.creationTimeMs", event.room.creation_time_ms, 1000, now)
    _check_time("participant.joinedAt", event.participant.joined_at, 1, now)
    _check_time("participant.joinedAtMs", event.participant.joined_at_ms, 1000, now)
    if kind in ROOM_KINDS and not (event.room.sid and event.room.name):
        raise WebhookInvalid(f"{event.event} needs a room with a sid and a name")
    if kind in PARTICIPANT_KINDS_NEEDED and not (event.participant.sid and event.participant.identity):
        raise WebhookInvalid(f"{event.event} needs a participant with a sid and an identity")
    if kind in TRACK_KINDS and not event.track.sid:
        raise WebhookInvalid(f"{event.event} needs a track with a sid")
    if kind == JOB_STATE:
        if not event.job.id:
            raise WebhookInvalid(f"{event.event} needs a job with an id")
        if not ((event.room.sid and event.room.name) or (event.job.room.sid and event.job.room.name)):
            raise WebhookInvalid(f"{event.event} needs a room with a sid and a name, its own or its job's")


def _joined_at(p: ParticipantInfo) -> datetime | None:
    return utc_from_millis(p.joined_at_ms) or utc_from_seconds(p.joined_at)


def _event_time(event: WebhookEvent, kind: str) -> datetime:
    """When it happened, as precisely as the event says.

    A start or a join carries the server's own millisecond time. Anything else only has the
    event's `created_at`, in whole seconds, which can fall just before a join in the same second;
    it is raised to that join (or room start) so a session never ends before it began.
    """
    room_started = utc_from_millis(event.room.creation_time_ms) or utc_from_seconds(event.room.creation_time)
    joined = _joined_at(event.participant) if event.HasField("participant") else None
    if kind == ROOM_STARTED and room_started:
        return room_started
    if kind == PARTICIPANT_JOINED and joined:
        return joined
    created = utc_from_seconds(event.created_at) or datetime.now(timezone.utc)  # LiveKit always sets it
    floor = joined or (room_started if kind == ROOM_FINISHED else None)
    return max(created, floor) if floor else created


def _event_id(event: WebhookEvent) -> str:
    if event.id:
        return f"wh:{event.id}"
    # Only hand-made events lack LiveKit's id; what they are about keeps a redelivery harmless.
    subject = event.track.sid or event.job.id or event.participant.sid or event.room.sid
    return f"wh:{event.event}:{subject}"


def to_events(server: str, event: WebhookEvent, now: datetime | None = None) -> list[HistoryEvent]:
    """The history events one verified webhook from `server` carries: one, or none for an event
    that is not history (egress, ingress, a name this version does not know). Raises
    WebhookInvalid for an event `validate` refuses."""
    kind = KINDS.get(event.event)
    if kind is None:
        return []
    validate(event, now)
    room_sid = event.room.sid or event.job.room.sid
    room = event.room.name or event.job.room.name
    p = event.participant if event.HasField("participant") else event.job.participant
    fields: dict[str, str] = {}
    if kind in (PARTICIPANT_JOINED, PARTICIPANT_LEFT, TRACK_PUBLISHED, TRACK_UNPUBLISHED) or p.sid:
        fields.update(participant_sid=p.sid, identity=p.identity, participant_kind=PARTICIPANT_KINDS.get(p.kind, "unknown"))
    if kind in (TRACK_PUBLISHED, TRACK_UNPUBLISHED):
        fields.update(track_sid=event.track.sid, track_source=TRACK_SOURCES.get(event.track.source, "unknown"))
    if kind == JOB_STATE:
        fields.update(job_id=event.job.id, job_status=JOB_STATUSES.get(event.job.state.status, "unknown"))
        fields["identity"] = fields.get("identity") or event.job.state.participant_identity
    return [
        HistoryEvent(
            event_id=_event_id(event),
            server=server,
            ts=_event_time(event, kind),
            source=WEBHOOK,
            kind=kind,
            room_sid=room_sid,
            room=room,
            **fields,
        )
    ]


def _issuer(token: str) -> str:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise WebhookRejected("the Authorization header is not a JWT") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise WebhookRejected("the token names no issuer")
    return issuer


def verify(body: str, auth_header: str, servers: list[ServerConfig]) -> tuple[ServerConfig, WebhookEvent]:
    """The configured server that signed `body`, and the event it sent.

    Raises WebhookRejected when the token is missing, malformed, expired, signed with a key no
    configured server has or with the wrong secret, or does not match the body; WebhookMalformed
    when it is genuine but the body is not a WebhookEvent.
    """
    token = auth_header.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise WebhookRejected("no Authorization header")
    issuer = _issuer(token)
    candidates = [s for s in servers if s.api_key == issuer]
    if not candidates:
        raise WebhookRejected(f"no configured server has the API key {issuer[:64]!r}")
    reasons = []
    # Two configured servers may share a key with different secrets; whichever verifies signed it.
    for server in candidates:
        receiver = api.WebhookReceiver(api.TokenVerifier(server.api_key, server.api_secret))
        try:
            event = receiver.receive(body, token)
        except ParseError:
            raise WebhookMalformed("the body is not a LiveKit webhook event") from None
        except Exception as exc:  # noqa: BLE001 - jwt errors, and a plain Exception on a hash mismatch
            reasons.append(f"{server.name}: {type(exc).__name__}: {exc}")
            continue
        if not event.event:
            raise WebhookMalformed("the body names no event")
        return server, event
    raise WebhookRejected("; ".join(reasons))
