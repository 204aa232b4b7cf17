import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from lib.meetings.ics import IcsEvent, IcsOverride, calendar, text_value
from lib.meetings.recurrence import Recurrence, occurrences

PROPERTY = settings(deadline=None, max_examples=100, database=None)
STAMP = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def meeting(**changes) -> IcsEvent:
    base = IcsEvent(
        uid="meeting-42@dashboard.example",
        sequence=3,
        title="Weekly sync",
        description="Agenda: status",
        start_utc=datetime(2027, 3, 23, 9, 0, tzinfo=UTC),
        end_utc=datetime(2027, 3, 23, 10, 0, tzinfo=UTC),
        zone_name="Europe/Berlin",
        url="https://dashboard.example/join/meeting-42",
        organizer_name="Alice Host",
        status="scheduled",
        created_utc=datetime(2027, 3, 1, 8, 0, tzinfo=UTC),
        updated_utc=datetime(2027, 3, 2, 8, 0, tzinfo=UTC),
    )
    return dataclasses.replace(base, **changes)


def parse(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def test_single_meeting_carries_every_required_property():
    data = calendar(meeting(), stamp_utc=STAMP)
    cal = parse(data)
    assert cal["VERSION"] == "2.0" and cal["METHOD"] == "PUBLISH" and cal["PRODID"]
    (vtimezone,) = cal.walk("VTIMEZONE")
    assert vtimezone["TZID"] == "Europe/Berlin"
    assert vtimezone.walk("STANDARD") and vtimezone.walk("DAYLIGHT")
    (event,) = cal.walk("VEVENT")
    assert str(event["UID"]) == "meeting-42@dashboard.example"
    assert event["SEQUENCE"] == 3
    assert event["STATUS"] == "CONFIRMED"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event["DTSTART"].dt == datetime(2027, 3, 23, 10, 0, tzinfo=BERLIN)
    assert event["DTEND"].dt.astimezone(UTC) == datetime(2027, 3, 23, 10, 0, tzinfo=UTC)
    assert event["DTSTAMP"].dt == STAMP
    assert event["CREATED"].dt == datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
    assert event["LAST-MODIFIED"].dt == datetime(2027, 3, 2, 8, 0, tzinfo=UTC)
    assert str(event["URL"]) == "https://dashboard.example/join/meeting-42"
    assert "RRULE" not in event and "ORGANIZER" not in event
    # The zone's definition comes before the event that names it.
    assert data.index(b"BEGIN:VTIMEZONE") < data.index(b"BEGIN:VEVENT")


def test_same_input_gives_the_same_bytes():
    assert calendar(meeting(), stamp_utc=STAMP) == calendar(meeting(), stamp_utc=STAMP)


def test_organizer_is_written_when_its_address_is_known():
    cal = parse(calendar(meeting(organizer_email="alice@example.org",
                                 organizer_name='Host, "Alice"\nX'), stamp_utc=STAMP))
    organizer = cal.walk("VEVENT")[0]["ORGANIZER"]
    assert str(organizer) == "mailto:alice@example.org"
    assert organizer.params["CN"] == 'Host, "Alice" X'


def test_cancellation_keeps_uid_and_says_cancelled():
    cancelled = meeting(status="cancelled", sequence=4)
    published = parse(calendar(cancelled, stamp_utc=STAMP))
    assert published["METHOD"] == "PUBLISH"
    assert published.walk("VEVENT")[0]["STATUS"] == "CANCELLED"
    mailed = parse(calendar(meeting(sequence=4), method="CANCEL", stamp_utc=STAMP))
    assert mailed["METHOD"] == "CANCEL"
    (event,) = mailed.walk("VEVENT")
    assert event["STATUS"] == "CANCELLED"
    assert str(event["UID"]) == "meeting-42@dashboard.example" and event["SEQUENCE"] == 4


@pytest.mark.parametrize("status", ["scheduled", "active", "ended"])
def test_meeting_not_cancelled_is_confirmed(status):
    cal = parse(calendar(meeting(status=status), stamp_utc=STAMP))
    assert cal.walk("VEVENT")[0]["STATUS"] == "CONFIRMED"


HOSTILE = [
    "Budget, Q3; review \\ plan",
    "line one\nline two\n\nline four",
    '<script>alert("x")</script><b>bold</b> &amp; "quotes" \'single\'',
    "BEGIN:VEVENT\nSUMMARY:injected\nEND:VEVENT",
    "emoji 🎉 and combining e\u0301 and CJK 会议 " * 40,
    ("0123456789,;\\\n" * 800)[:10_000],
    "trailing backslash \\",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_round_trips_exactly_and_lines_are_folded(text):
    data = calendar(meeting(title=text, description=text[::-1]), stamp_utc=STAMP)
    for line in lines(data):
        assert len(line) <= 75
        line.decode("utf-8")  # a fold never splits a character
    (event,) = parse(data).walk("VEVENT")
    assert str(event["SUMMARY"]) == text
    assert str(event["DESCRIPTION"]) == text[::-1]
    # Nothing in the text became a property or component of its own.
    assert len(parse(data).walk("VEVENT")) == 1
    assert [line for line in lines(data) if line.startswith(b"SUMMARY:injected")] == []


@PROPERTY
@given(title=st.text(max_size=300), description=st.text(max_size=2000))
def test_any_text_comes_back_as_a_calendar_shows_it(title, description):
    data = calendar(meeting(title=title, description=description), stamp_utc=STAMP)
    assert all(len(line) <= 75 for line in lines(data))
    # RFC 5545 allows no control character in a line but tab (line breaks are escaped).
    assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", b"".join(lines(data)))
    (event,) = parse(data).walk("VEVENT")
    assert str(event["SUMMARY"]) == text_value(title)
    assert str(event.get("DESCRIPTION", "")) == text_value(description)


def test_text_value_normalises_line_breaks_and_drops_control_characters():
    assert text_value("a\r\nb\rc\nd\te\x00f\x07g\x1b\x7fh") == "a\nb\nc\nd\tefgh"


def test_url_with_a_line_break_is_refused_rather_than_written():
    with pytest.raises(ValueError, match="url"):
        calendar(meeting(url="https://x.example/\r\nATTENDEE:mailto:evil@example.org"))


def series(**changes) -> IcsEvent:
    # Tuesdays and Thursdays at 10:00 Berlin, across the spring change on 2027-03-28.
    return meeting(rrule=Recurrence("weekly", weekdays=(1, 3), count=8), **changes)


def expand(cal: Calendar) -> list[datetime]:
    """The master event's instants as a calendar program computes them from the file."""
    master = next(e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e)
    rule = master["RRULE"].to_ical().decode()
    instants = [m.astimezone(UTC) for m in rrulestr(rule, dtstart=master["DTSTART"].dt)]
    exdates = master.get("EXDATE", [])
    excluded = {
        d.dt.astimezone(UTC)
        for exdate in (exdates if isinstance(exdates, list) else [exdates])
        for d in exdate.dts
    }
    return [instant for instant in instants if instant not in excluded]


def test_series_file_expands_to_the_series_across_dst():
    event = series()
    ours = [s for s, _ in occurrences(event.rrule, datetime(2027, 3, 23, 10), timedelta(hours=1),
                                      "Europe/Berlin")]
    cal = parse(calendar(event, stamp_utc=STAMP))
    assert expand(cal) == ours
    assert ours[0].hour == 9 and ours[-1].hour == 8
    (vtimezone,) = cal.walk("VTIMEZONE")
    assert vtimezone["TZID"] == "Europe/Berlin"


def test_cancelled_and_moved_occurrences():
    starts = [s for s, _ in occurrences(Recurrence("weekly", weekdays=(1, 3), count=8),
                                        datetime(2027, 3, 23, 10), timedelta(hours=1),
                                        "Europe/Berlin")]
    moved_to = starts[3] + timedelta(hours=5)
    event = series(
        exdates_utc=(starts[1],),
        overrides=(
            IcsOverride(starts[2], starts[2], starts[2] + timedelta(hours=1), cancelled=True),
            IcsOverride(starts[3], moved_to, moved_to + timedelta(minutes=30), cancelled=False),
        ),
    )
    cal = parse(calendar(event, stamp_utc=STAMP))
    events = cal.walk("VEVENT")
    assert len(events) == 2
    master, moved = events
    assert {str(e["UID"]) for e in events} == {"meeting-42@dashboard.example"}
    assert expand(cal) == [s for k, s in enumerate(starts) if k not in (1, 2)]
    assert moved["RECURRENCE-ID"].dt.astimezone(UTC) == starts[3]
    assert moved["RECURRENCE-ID"].params["TZID"] == "Europe/Berlin"
    assert moved["DTSTART"].dt.astimezone(UTC) == moved_to
    assert moved["DTEND"].dt.astimezone(UTC) == moved_to + timedelta(minutes=30)
    assert moved["SEQUENCE"] == 3 and moved["STATUS"] == "CONFIRMED"
    # A mailed cancellation cancels the whole series: no occurrence is listed apart.
    mailed = parse(calendar(event, method="CANCEL", stamp_utc=STAMP))
    assert [e["STATUS"] for e in mailed.walk("VEVENT")] == ["CANCELLED"]


def test_series_until_is_written_in_utc_and_keeps_its_last_day():
    event = meeting(rrule=Recurrence("weekdays", until=date(2027, 3, 30)))
    data = calendar(event, stamp_utc=STAMP)
    assert b"UNTIL=20270330T215959Z" in data
    assert expand(parse(data))[-1] == datetime(2027, 3, 30, 8, 0, tzinfo=UTC)


def test_utc_meeting_needs_no_vtimezone():
    cal = parse(calendar(meeting(zone_name="UTC"), stamp_utc=STAMP))
    assert cal.walk("VTIMEZONE") == []
    assert cal.walk("VEVENT")[0]["DTSTART"].dt == datetime(2027, 3, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"status": "postponed"}, "status"),
        ({"sequence": -1}, "sequence"),
        ({"end_utc": datetime(2027, 3, 23, 9, 0, tzinfo=UTC)}, "ends after it starts"),
        ({"start_utc": datetime(2027, 3, 23, 9, 0)}, "aware"),
        ({"exdates_utc": (datetime(2027, 3, 30, 8, tzinfo=UTC),)}, "only a series"),
        ({"zone_name": "Mars/Base"}, "Unknown time zone"),
        ({"uid": ""}, "uid"),
    ],
)
def test_inconsistent_events_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        calendar(meeting(**changes), stamp_utc=STAMP)


def test_series_must_start_on_its_first_occurrence_and_overrides_name_real_ones():
    with pytest.raises(ValueError, match="first occurrence"):
        # Monday 2027-03-22 is not a Tuesday or Thursday.
        calendar(series(start_utc=datetime(2027, 3, 22, 9, tzinfo=UTC),
                        end_utc=datetime(2027, 3, 22, 10, tzinfo=UTC)), stamp_utc=STAMP)
    stray = datetime(2027, 3, 24, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="not one of the series"):
        calendar(series(exdates_utc=(stray,)), stamp_utc=STAMP)
    with pytest.raises(ValueError, match="method"):
        calendar(meeting(), method="REPLY")
    with pytest.raises(ValueError, match="stamp_utc"):
        calendar(meeting(), stamp_utc=datetime(2027, 3, 1, 12, 0))
