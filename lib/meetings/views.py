"""What the meetings services hand to pages and routes: frozen records read from the SQL rows,
and the reads every meetings service shares (a meeting with its occurrences, who may manage it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..auth.policy import Actor, Forbidden, Invalid
from ..models import CoHost, Invitee, Meeting, Occurrence, User, as_utc
from .lifecycle import ACTIVE, CANCELLED, ENDED, SCHEDULED, STATUSES
from .recurrence import Recurrence, from_json

OPEN = (SCHEDULED, ACTIVE)  # occurrences that still lie ahead or are under way


class NotFound(Invalid):
    """No such meeting or occurrence (or none the actor may see: the same answer)."""


class NotYours(NotFound, Forbidden):
    """A meeting the actor may not manage: told like one that does not exist, audited as refused."""


class Conflict(Invalid):
    """Someone changed it since it was read; reload and try again."""




def _maybe(ts: datetime | None) -> datetime | None:
    return as_utc(ts) if ts else None


@dataclass(frozen=True)
class OccurrenceView:
    id: int
    meeting_id: int
    starts_at: datetime
    ends_at: datetime
    original_start: datetime
    moved: bool
    status: str
    room_name: str
    version: int
    started_at: datetime | None
    ended_at: datetime | None
    waiting_since: datetime | None
    last_error: str


@dataclass(frozen=True)
class MeetingView:
    id: int
    title: str
    description: str
    host: str
    cohosts: tuple[str, ...]
    server: str
    time_zone: str
    instant: bool
    private: bool
    has_password: bool
    max_participants: int
    early_join_minutes: int
    guests_before_host: bool
    keep_chat: bool
    recurrence: Recurrence | None
    first_start: datetime  # where the series' rule starts (a single meeting's start)
    invitees: tuple[str, ...]
    occurrences: tuple[OccurrenceView, ...]
    join_url: str  # the link without any credential: it leads to the join form
    uid: str
    sequence: int
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def status(self) -> str:
        """The meeting's status: a single meeting's own; a series is active while one of its
        occurrences is, scheduled while one lies ahead, cancelled when all were cancelled."""
        statuses = {o.status for o in self.occurrences}
        for status in (ACTIVE, SCHEDULED):
            if status in statuses:
                return status
        return CANCELLED if statuses == {CANCELLED} else ENDED

    def current(self) -> OccurrenceView | None:
        """The occurrence under way, else the next one ahead, else the last one."""
        for status in (ACTIVE, SCHEDULED):
            ahead = [o for o in self.occurrences if o.status == status]
            if ahead:
                return min(ahead, key=lambda o: o.starts_at)
        return max(self.occurrences, key=lambda o: o.starts_at) if self.occurrences else None


@dataclass(frozen=True)
class MeetingRow:
    """One line of the meetings list: an occurrence with what the list shows of its meeting."""

    occurrence: OccurrenceView
    meeting_id: int
    title: str
    host: str
    server: str
    private: bool
    series: bool
    mine: bool  # the actor hosts or co-hosts it


def occurrence_view(o: Occurrence) -> OccurrenceView:
    return OccurrenceView(
        o.id, o.meeting_id, as_utc(o.starts_at), as_utc(o.ends_at), as_utc(o.original_start), o.moved, o.status, o.room_name,
        o.version, _maybe(o.started_at), _maybe(o.ended_at), _maybe(o.waiting_since), o.last_error,
    )  # fmt: skip


def join_url(public_url: str, slug: str) -> str:
    return f"{public_url}/join?m={slug}"


def meeting_view(s: Session, m: Meeting, public_url: str) -> MeetingView:
    host = s.get(User, m.host_id)
    cohosts = s.scalars(
        select(User.username).join(CoHost, CoHost.user_id == User.id).where(CoHost.meeting_id == m.id).order_by(User.username)
    ).all()
    invitees = s.scalars(select(Invitee.email).where(Invitee.meeting_id == m.id).order_by(Invitee.email)).all()
    occurrences = s.scalars(select(Occurrence).where(Occurrence.meeting_id == m.id).order_by(Occurrence.starts_at)).all()
    return MeetingView(
        id=m.id, title=m.title, description=m.description, host=host.username if host else "?",
        cohosts=tuple(cohosts), server=m.server, time_zone=m.time_zone, instant=m.instant, private=m.private,
        has_password=m.password_hash is not None, max_participants=m.max_participants,
        early_join_minutes=m.early_join_minutes, guests_before_host=m.guests_before_host, keep_chat=m.keep_chat,
        recurrence=from_json(m.recurrence) if m.recurrence else None, first_start=as_utc(m.first_start), invitees=tuple(invitees),
        occurrences=tuple(occurrence_view(o) for o in occurrences), join_url=join_url(public_url, m.link_slug),
        uid=m.uid, sequence=m.sequence, version=m.version, created_at=as_utc(m.created_at), updated_at=as_utc(m.updated_at),
    )  # fmt: skip


def user_of(s: Session, actor: Actor) -> User | None:
    """The signed-in user behind an actor (names ignore letter case, as at sign-in)."""
    return s.scalars(select(User).where(func.lower(User.username) == actor.name.lower())).first()


def manages(s: Session, actor: Actor, m: Meeting) -> bool:
    """Admins manage every meeting; anyone else the meetings they host or co-host."""
    if actor.role == "admin":
        return True
    user = user_of(s, actor)
    if user is None:
        return False
    return m.host_id == user.id or s.get(CoHost, (m.id, user.id)) is not None


def managed_meeting(s: Session, actor: Actor, meeting_id: int) -> Meeting:
    """The meeting if the actor manages it; NotFound otherwise (a meeting one may not see is
    not told apart from one that does not exist)."""
    m = s.get(Meeting, meeting_id)
    if m is None:
        raise NotFound(f"There is no meeting {meeting_id} that you host.")
    if not manages(s, actor, m):
        raise NotYours(f"There is no meeting {meeting_id} that you host.")
    return m
