"""Which rooms are meetings' rooms, read from SQL for the pages that list rooms (Rooms, Sessions,
History): a meeting's title and status by (server, room), a meeting's rooms, and the meetings
whose occurrences fall in a range for the History page's picker.

SQL is the one source of truth here. The scheduler writes the meeting into the metadata of the
rooms it creates, but a guest's token can create the room first, without it, and anyone with a
room-admin token can write such metadata into any room; so the metadata is never read.
An occurrence's room lives on its meeting's server, under a name unique among occurrences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..models import Meeting, Occurrence, as_utc
from .lifecycle import ACTIVE

# Names per IN clause: far below SQLite's and PostgreSQL's limits on bound parameters, and a
# refresh of a few thousand rooms stays a handful of index lookups.
CHUNK = 500
# The History picker offers at most this many meetings (the latest first).
PICKER_LIMIT = 1000


@dataclass(frozen=True)
class MeetingLabel:
    """What a room listing shows of the meeting a room belongs to. `status` is the occurrence's
    (scheduled, active, ended, cancelled)."""

    meeting_id: int
    occurrence_id: int
    title: str
    status: str


@dataclass(frozen=True)
class MeetingChoice:
    """A meeting the History page offers as a filter: its title, the first start of its
    occurrences (which tells apart meetings of the same title), its server and whether it is a
    series."""

    meeting_id: int
    title: str
    first_start: datetime
    server: str
    series: bool




def chunks(names: list[str], size: int = CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(names), size):
        yield names[i : i + size]


def titles_for_rooms(s: Session, pairs: Iterable[tuple[str, str]], chunk: int = CHUNK) -> dict[tuple[str, str], MeetingLabel]:
    """The meeting of each (server, room) that is an occurrence's room; rooms that are not are
    left out. One query per `chunk` distinct names, whatever the number of servers."""
    wanted = set(pairs)
    names = sorted({room for _, room in wanted})
    found: dict[tuple[str, str], MeetingLabel] = {}
    for part in chunks(names, chunk):
        rows = s.execute(
            select(Meeting.server, Occurrence.room_name, Meeting.id, Occurrence.id, Meeting.title, Occurrence.status)
            .join(Meeting, Meeting.id == Occurrence.meeting_id)
            .where(Occurrence.room_name.in_(part))
        ).all()
        for server, room, meeting_id, occurrence_id, title, status in rows:
            if (server, room) in wanted:  # the same name on another server is another room
                found[(server, room)] = MeetingLabel(meeting_id, occurrence_id, title, status)
    return found


def meeting_rooms(s: Session, meeting_id: int) -> list[tuple[str, str]]:
    """(server, room) of every occurrence of a meeting, earliest first."""
    rows = s.execute(
        select(Meeting.server, Occurrence.room_name)
        .join(Meeting, Meeting.id == Occurrence.meeting_id)
        .where(Meeting.id == meeting_id)
        .order_by(Occurrence.starts_at, Occurrence.id)
    ).all()
    return [(server, room) for server, room in rows]


def meetings_in_range(s: Session, since: datetime, until: datetime, limit: int = PICKER_LIMIT) -> list[MeetingChoice]:
    """Meetings with an occurrence that overlaps [since, until), by its planned times or by when
    it really started and ended (early, or late when the scheduler was down), latest first; at
    most `limit`. Every status counts: a cancelled occurrence's room may still have been opened
    by a guest's token."""
    since, until = as_utc(since), as_utc(until)
    overlapping = (
        select(Occurrence.meeting_id)
        .where(or_(Occurrence.starts_at < until, Occurrence.started_at < until))
        .where(or_(Occurrence.ends_at > since, Occurrence.ended_at > since, Occurrence.status == ACTIVE))
    )
    first = (
        select(Occurrence.meeting_id, func.min(Occurrence.starts_at).label("first_start"))
        .group_by(Occurrence.meeting_id)
        .subquery()
    )
    rows = s.execute(
        select(Meeting.id, Meeting.title, first.c.first_start, Meeting.server, Meeting.recurrence)
        .join(first, first.c.meeting_id == Meeting.id)
        .where(Meeting.id.in_(overlapping))
        .order_by(first.c.first_start.desc(), Meeting.id.desc())
        .limit(limit)
    ).all()
    return [MeetingChoice(mid, title, as_utc(start), server, recurrence is not None) for mid, title, start, server, recurrence in rows]
