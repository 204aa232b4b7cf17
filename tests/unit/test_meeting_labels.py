"""Meetings beside their rooms, read from a migrated SQLite database filled with plain rows: the
lookup by (server, room) in chunks of names, a meeting's rooms, and which meetings a range
offers the History page; and, on plain data, the picker's labels and the rooms it charts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from lib.db import make_engine, migrate, session_factory
from lib.history.queries import room_filter
from lib.meetings.labels import MeetingChoice, MeetingLabel, meeting_rooms, meetings_in_range, titles_for_rooms
from lib.models import Meeting, Occurrence, User
from lib.ui.history import meeting_labels

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'labels.sqlite'}")
    migrate(engine)
    made = session_factory(engine)
    with made.begin() as s:
        s.add(User(id=1, username="hana", password_hash="x", role="host"))
    try:
        yield made
    finally:
        engine.dispose()


def add_meeting(sessions: sessionmaker[Session], title: str, server: str, spans: list[dict], series: bool = False) -> int:
    """A meeting with one occurrence per span (a dict of Occurrence fields: room_name, starts_at,
    ends_at, and any of status, started_at, ended_at)."""
    with sessions.begin() as s:
        m = Meeting(
            title=title, host_id=1, server=server, time_zone="UTC", first_start=spans[0]["starts_at"],
            link_slug=f"slug-{title}-{server}", uid=f"{title}-{server}@test", recurrence='{"freq": "daily"}' if series else None,
        )  # fmt: skip
        s.add(m)
        s.flush()
        for span in spans:
            s.add(Occurrence(meeting_id=m.id, original_start=span["starts_at"], status=span.pop("status", "ended"), **span))
        return m.id


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_rooms_are_labelled_in_chunks_of_names_and_only_on_their_meetings_server(sessions: sessionmaker[Session]) -> None:
    rooms = [f"meet-{i:04d}" for i in range(1201)]
    big = add_meeting(sessions, "Daily", "lk-a", [{"room_name": r, "starts_at": at(i), "ends_at": at(i + 1)} for i, r in enumerate(rooms)])
    asked = [("lk-a", r) for r in rooms] + [("lk-b", "meet-0007"), ("lk-a", "lobby")]
    statements: list[str] = []
    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    with sessions() as s:
        found = titles_for_rooms(s, iter(asked), chunk=500)

    assert len([q for q in statements if "occurrences" in q]) == 3, "1,201 names in chunks of 500"
    assert set(found) == {("lk-a", r) for r in rooms}, "a namesake on another server, and a room of no meeting, are not labelled"
    first = found[("lk-a", "meet-0000")]
    assert first == MeetingLabel(big, first.occurrence_id, "Daily", "ended")
    assert len({label.occurrence_id for label in found.values()}) == 1201


def test_no_rooms_asks_nothing(sessions: sessionmaker[Session]) -> None:
    statements: list[str] = []
    event.listen(sessions.kw["bind"], "before_cursor_execute", lambda *args: statements.append(args[2]))
    with sessions() as s:
        assert titles_for_rooms(s, []) == {}
    assert not [q for q in statements if "occurrences" in q]


def test_a_meetings_rooms_are_its_occurrences_rooms_on_its_server(sessions: sessionmaker[Session]) -> None:
    series = add_meeting(
        sessions, "Weekly", "lk-b",
        [{"room_name": "meet-w2", "starts_at": at(60), "ends_at": at(90)}, {"room_name": "meet-w1", "starts_at": at(0), "ends_at": at(30)}],
        series=True,
    )  # fmt: skip
    add_meeting(sessions, "Other", "lk-b", [{"room_name": "meet-o", "starts_at": at(0), "ends_at": at(30)}])
    with sessions() as s:
        assert meeting_rooms(s, series) == [("lk-b", "meet-w1"), ("lk-b", "meet-w2")]
        assert meeting_rooms(s, 9999) == []


def test_the_range_offers_meetings_planned_or_held_in_it_latest_first(sessions: sessionmaker[Session]) -> None:
    # The range is [T0, T0 + 60 min).
    def one(title: str, **span: object) -> int:
        return add_meeting(sessions, title, "lk-a", [span])

    planned = one("Planned inside", room_name="r1", starts_at=at(10), ends_at=at(20))
    overran = one("Ran late", room_name="r2", starts_at=at(-60), ends_at=at(-30), started_at=at(-60), ended_at=at(5))
    stuck = one("Still active", room_name="r3", starts_at=at(-90), ends_at=at(-80), status="active", started_at=at(-90))
    early = one("Opened early", room_name="r4", starts_at=at(65), ends_at=at(90), status="active", started_at=at(55))
    one("Before", room_name="r5", starts_at=at(-60), ends_at=at(0))
    one("After", room_name="r6", starts_at=at(60), ends_at=at(70), status="scheduled")
    series = add_meeting(
        sessions, "Series", "lk-b",
        [{"room_name": "r7", "starts_at": at(-1440), "ends_at": at(-1400)}, {"room_name": "r8", "starts_at": at(30), "ends_at": at(40)}],
        series=True,
    )  # fmt: skip

    with sessions() as s:
        offered = meetings_in_range(s, T0, at(60))
        assert [c.meeting_id for c in offered] == [early, planned, overran, stuck, series]
        [by_series] = [c for c in offered if c.meeting_id == series]
        assert by_series.first_start == at(-1440) and by_series.series and by_series.server == "lk-b"
        assert [c.meeting_id for c in meetings_in_range(s, T0, at(60), limit=2)] == [early, planned]


# ----- the History page's meeting filter ----------------------------------------------------------


def choice(meeting_id: int, title: str, minutes: float = 0, series: bool = False) -> MeetingChoice:
    return MeetingChoice(meeting_id, title, at(minutes), "lk-a", series)


def test_meeting_labels_tell_apart_same_titles_and_keep_what_was_given() -> None:
    labels = meeting_labels([choice(1, "Sync"), choice(2, "Sync", 60, series=True), choice(3, "Sync")], {})
    assert labels == {
        1: "Sync · 2026-03-02 12:00 UTC",
        2: "Sync · 2026-03-02 13:00 UTC · series",
        3: "Sync · 2026-03-02 12:00 UTC · #3",
    }
    renamed = meeting_labels([choice(1, "Renamed"), choice(4, "Sync")], labels)
    assert renamed[1] == labels[1], "a label once given stays"
    assert renamed[4] == "Sync · 2026-03-02 12:00 UTC · #4"
    assert meeting_labels([choice(5, "\u202eevil" + "x" * 200)], {})[5].startswith("⟨U+202E⟩evil")


def test_room_filter_narrows_a_meetings_rooms_by_the_rooms_picked() -> None:
    pairs = [("lk-a", "meet-1"), ("lk-a", "meet-2"), ("lk-a", "meet-1")]
    assert room_filter(None, None) is None
    assert room_filter(["lobby"], None) == ["lobby"]
    assert room_filter(None, pairs) == [("lk-a", "meet-1"), ("lk-a", "meet-2")]
    assert room_filter(["meet-2", "lobby"], pairs) == [("lk-a", "meet-2")]
    assert room_filter(None, []) == [], "a meeting without rooms charts nothing, not everything"
