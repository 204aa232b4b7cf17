"""What emitters call: an event and one pending delivery per subscribed receiver, inserted into
the caller's own transaction (so an event is written if and only if the change it reports is),
never any network I/O. The deliverer (lib/outbound/deliverer.py) sends them later.

An event nobody subscribes to is not written at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..models import Meeting, Occurrence, OutboxEvent, WebhookDelivery, WebhookReceiver, utcnow
from . import events

log = logging.getLogger(__name__)

PENDING, DELIVERING, DELIVERED, FAILED, GIVEN_UP = "pending", "delivering", "delivered", "failed", "given_up"
DELIVERY_STATUSES = (PENDING, DELIVERING, DELIVERED, FAILED, GIVEN_UP)


def subscribed(stored: str) -> tuple[str, ...]:
    return tuple(t for t in stored.split(",") if t)


def enqueue(
    session: Session,
    event_type: str,
    data: dict[str, object],
    now: datetime,
    *,
    source_key: str | None = None,
    receiver_id: int | None = None,
) -> int | None:
    """Add the event and its deliveries to `session`'s transaction: for every receiver subscribed
    to `event_type` (paused ones too: they get it when resumed), or only `receiver_id`. Returns
    the event's row id, None when no receiver is to get it."""
    query = select(WebhookReceiver.id, WebhookReceiver.events)
    if receiver_id is not None:
        query = query.where(WebhookReceiver.id == receiver_id)
    targets = [rid for rid, types in session.execute(query) if receiver_id is not None or event_type in subscribed(types)]
    if not targets:
        return None
    uid = events.new_event_id()
    row = OutboxEvent(uid=uid, type=event_type, body=events.body(uid, event_type, now, data), source_key=source_key, created_at=now)
    session.add(row)
    session.flush()
    session.add_all(WebhookDelivery(receiver_id=rid, event_id=row.id, status=PENDING, next_attempt_at=now, created_at=now) for rid in targets)
    return row.id


def meeting_of_room(session: Session, server: str, room: str) -> events.MeetingRef | None:
    row = session.execute(
        select(Meeting.id, Occurrence.id, Meeting.title)
        .join(Meeting, Meeting.id == Occurrence.meeting_id)
        .where(Occurrence.room_name == room, Meeting.server == server)
    ).first()
    return None if row is None else events.MeetingRef(row[0], row[1], row[2])


class Outbox:
    """Events that are not part of a SQL change of ours: LiveKit's own webhooks."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def livekit_event(self, server: str, name: str, event_id: str, room: str, room_sid: str, identity: str = "", participant_sid: str = "") -> int | None:
        """room.started / room.finished for any room, participant.joined / .left only for a
        meeting's room, from a verified LiveKit webhook. A redelivery of the same LiveKit event
        (its id) is not queued twice. Returns the event's row id, or None."""
        event_type = events.LIVEKIT_EVENTS.get(name)
        if event_type is None or not room:
            return None
        source_key = f"livekit:{server}:{event_id}"[:200] if event_id else None
        try:
            with self._sessions.begin() as session:
                if source_key is not None and session.scalar(select(OutboxEvent.id).where(OutboxEvent.source_key == source_key)) is not None:
                    return None
                meeting = meeting_of_room(session, server, room)
                if event_type in events.PARTICIPANT_EVENTS and meeting is None:
                    return None
                data = events.room_data(server, room, room_sid, meeting, identity, participant_sid)
                return enqueue(session, event_type, data, self._clock(), source_key=source_key)
        except IntegrityError:
            return None  # the same LiveKit event, queued meanwhile by a concurrent redelivery
