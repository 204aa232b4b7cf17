"""Meetings written straight into the SQL store for the scheduler's tests: a host, a meeting and
its occurrence rows, made with the models (the scheduling service is not needed to test what the
scheduler does with them), and a clock the tests move by hand."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from lib.models import Meeting, Occurrence, Transition, User


@dataclass
class Clock:
    """A clock for `Lifecycle(clock=...)` that moves only when told."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def add_host(sessions: sessionmaker[Session], username: str = "host") -> int:
    with sessions.begin() as session:
        user = User(username=f"{username}-{secrets.token_hex(3)}", password_hash="not-a-hash", role="host")
        session.add(user)
        session.flush()
        return user.id


def add_meeting(
    sessions: sessionmaker[Session],
    host_id: int,
    starts_at: datetime,
    ends_at: datetime,
    *,
    title: str = "Weekly sync",
    server: str = "default",
    room_name: str | None = None,
    max_participants: int = 0,
    early_join_minutes: int = 0,
    status: str = "scheduled",
) -> int:
    """A single meeting with one occurrence; returns the occurrence's id."""
    with sessions.begin() as session:
        return _add(session, host_id, starts_at, ends_at, title, server, room_name, max_participants, early_join_minutes, status)


def add_meetings(sessions: sessionmaker[Session], host_id: int, spans: list[tuple[datetime, datetime, str]], *, title: str = "Meeting") -> list[int]:
    """Many single meetings (start, end, room name) in one transaction; their occurrences' ids."""
    with sessions.begin() as session:
        return [_add(session, host_id, start, end, f"{title} {i}", "default", room, 0, 0, "scheduled") for i, (start, end, room) in enumerate(spans)]


def _add(
    session: Session, host_id: int, starts_at: datetime, ends_at: datetime, title: str, server: str,
    room_name: str | None, max_participants: int, early_join_minutes: int, status: str,
) -> int:  # fmt: skip
    slug = secrets.token_urlsafe(9)
    meeting = Meeting(
        title=title, host_id=host_id, server=server, time_zone="Europe/Berlin", link_slug=slug, first_start=starts_at,
        uid=f"{slug}@test", max_participants=max_participants, early_join_minutes=early_join_minutes,
    )  # fmt: skip
    session.add(meeting)
    session.flush()
    occurrence = Occurrence(
        meeting_id=meeting.id, starts_at=starts_at, ends_at=ends_at, original_start=starts_at,
        status=status, room_name=room_name or f"meet-{secrets.token_hex(5)}",
    )  # fmt: skip
    session.add(occurrence)
    session.flush()
    return occurrence.id


def occurrence(sessions: sessionmaker[Session], occurrence_id: int) -> Occurrence:
    with sessions() as session:
        return session.get(Occurrence, occurrence_id)


def transitions(sessions: sessionmaker[Session]) -> dict[tuple[str, str], int]:
    """How many transitions of each kind (from, to) were written."""
    with sessions() as session:
        rows = session.execute(select(Transition.from_status, Transition.to_status, func.count()).group_by(Transition.from_status, Transition.to_status))
        return {(a, b): n for a, b, n in rows}


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
