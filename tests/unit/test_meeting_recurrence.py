from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from icalendar import vRecur

from lib.meetings.recurrence import (
    Recurrence,
    RecurrenceError,
    describe,
    from_json,
    occurrences,
    to_json,
    to_rrule,
)

PROPERTY = settings(deadline=None, max_examples=150, database=None)
HOUR = timedelta(hours=1)

start_days = st.dates(min_value=date(2025, 1, 1), max_value=date(2035, 12, 31))
dst_zones = st.sampled_from(["Europe/Berlin", "America/New_York"])


def local_starts(pairs, zone_name):
    tz = ZoneInfo(zone_name)
    return [start.astimezone(tz) for start, _ in pairs]


@PROPERTY
@given(first=start_days, zone_name=dst_zones, count=st.integers(1, 120),
       interval=st.integers(1, 3))
def test_weekly_ten_oclock_stays_ten_oclock_local_across_dst(first, zone_name, count, interval):
    rule = Recurrence("weekly", interval=interval, count=count)
    pairs = occurrences(rule, datetime.combine(first, time(10)), HOUR, zone_name)
    local = local_starts(pairs, zone_name)
    assert len(pairs) == count
    assert all(moment.time() == time(10) for moment in local)
    assert [moment.date() for moment in local] == [
        first + timedelta(weeks=interval * k) for k in range(count)
    ]
    starts = [start for start, _ in pairs]
    assert starts == sorted(set(starts)) and all(s.tzinfo is UTC for s in starts)
    assert all(end - start == HOUR for start, end in pairs)
    # The UTC time moves exactly when the zone's offset does.
    for k in range(count - 1):
        shift = (starts[k + 1] - starts[k]) - timedelta(weeks=interval)
        assert shift == local[k].utcoffset() - local[k + 1].utcoffset()
    offsets = {moment.utcoffset() for moment in local}
    crosses_a_change = len(offsets) > 1
    assert len({start.time() for start in starts}) == (2 if crosses_a_change else 1)


def test_weekly_berlin_series_moves_one_hour_in_utc_at_the_spring_change():
    pairs = occurrences(Recurrence("weekly", count=3), datetime(2027, 3, 23, 10), HOUR,
                        "Europe/Berlin")
    assert [start for start, _ in pairs] == [
        datetime(2027, 3, 23, 9, tzinfo=UTC),
        datetime(2027, 3, 30, 8, tzinfo=UTC),
        datetime(2027, 4, 6, 8, tzinfo=UTC),
    ]


def test_new_york_series_moves_back_in_utc_at_the_autumn_change():
    pairs = occurrences(Recurrence("weekly", count=2), datetime(2027, 11, 1, 10), HOUR,
                        "America/New_York")
    assert [start for start, _ in pairs] == [
        datetime(2027, 11, 1, 14, tzinfo=UTC),
        datetime(2027, 11, 8, 15, tzinfo=UTC),
    ]


def days_between(first: date, last: date):
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


@PROPERTY
@given(first=start_days, span=st.integers(0, 200), zone_name=dst_zones,
       days=st.sets(st.integers(0, 6), min_size=1), hour=st.integers(7, 20))
def test_weekly_on_chosen_days_meets_on_exactly_those_days_until_inclusive(
    first, span, zone_name, days, hour
):
    until = first + timedelta(days=span)
    expected = [day for day in days_between(first, until) if day.weekday() in days]
    assume(expected)
    rule = Recurrence("weekly", weekdays=tuple(days), until=until)
    pairs = occurrences(rule, datetime.combine(first, time(hour, 30)), HOUR, zone_name)
    local = local_starts(pairs, zone_name)
    assert [moment.date() for moment in local] == expected
    assert all(moment.time() == time(hour, 30) for moment in local)


@PROPERTY
@given(first=start_days, span=st.integers(0, 300), zone_name=dst_zones)
def test_weekday_series_skips_weekends(first, span, zone_name):
    until = first + timedelta(days=span)
    expected = [day for day in days_between(first, until) if day.weekday() < 5]
    assume(expected)
    pairs = occurrences(Recurrence("weekdays", until=until), datetime.combine(first, time(9)),
                        HOUR, zone_name)
    assert [moment.date() for moment in local_starts(pairs, zone_name)] == expected


@PROPERTY
@given(first=start_days, interval=st.integers(1, 10), count=st.integers(1, 60))
def test_daily_series_steps_by_its_interval(first, interval, count):
    pairs = occurrences(Recurrence("daily", interval=interval, count=count),
                        datetime.combine(first, time(12)), HOUR, "Europe/Berlin")
    assert [moment.date() for moment in local_starts(pairs, "Europe/Berlin")] == [
        first + timedelta(days=interval * k) for k in range(count)
    ]


def test_until_day_is_included_when_a_meeting_falls_on_it():
    rule = Recurrence("weekly", until=date(2027, 4, 6))
    pairs = occurrences(rule, datetime(2027, 3, 23, 23, 30), HOUR, "Europe/Berlin")
    assert [s.astimezone(ZoneInfo("Europe/Berlin")).date() for s, _ in pairs] == [
        date(2027, 3, 23), date(2027, 3, 30), date(2027, 4, 6)
    ]


def test_monthly_on_the_31st_skips_shorter_months():
    pairs = occurrences(Recurrence("monthly", count=6), datetime(2027, 1, 31, 10), HOUR, "UTC")
    assert [s.date() for s, _ in pairs] == [
        date(2027, 1, 31), date(2027, 3, 31), date(2027, 5, 31),
        date(2027, 7, 31), date(2027, 8, 31), date(2027, 10, 31),
    ]


def test_occurrence_in_the_spring_gap_moves_forward_by_the_gap():
    pairs = occurrences(Recurrence("daily", count=3), datetime(2027, 3, 27, 2, 30), HOUR,
                        "Europe/Berlin")
    local = local_starts(pairs, "Europe/Berlin")
    assert [moment.replace(tzinfo=None) for moment in local] == [
        datetime(2027, 3, 27, 2, 30), datetime(2027, 3, 28, 3, 30), datetime(2027, 3, 29, 2, 30)
    ]


def test_ambiguous_occurrence_takes_the_first_of_the_two():
    pairs = occurrences(Recurrence("daily", count=2), datetime(2027, 10, 30, 2, 30), HOUR,
                        "Europe/Berlin")
    assert pairs[1][0] == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


def test_meeting_across_a_clock_change_keeps_its_real_duration():
    pairs = occurrences(Recurrence("daily", count=2), datetime(2027, 3, 27, 1, 0),
                        timedelta(hours=3), "Europe/Berlin")
    start, end = pairs[1]
    assert end - start == timedelta(hours=3)
    assert end.astimezone(ZoneInfo("Europe/Berlin")).time() == time(5, 0)


@PROPERTY
@given(
    freq=st.sampled_from(["daily", "weekdays", "weekly", "monthly"]),
    days=st.sets(st.integers(0, 6), max_size=7),
    interval=st.integers(1, 4),
    ends=st.one_of(st.integers(1, 80).map(lambda n: ("count", n)),
                   st.integers(0, 700).map(lambda n: ("until", n))),
    first=start_days,
    at=st.sampled_from([time(0, 0), time(2, 30), time(10, 0), time(23, 45)]),
    zone_name=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                               "UTC"]),
)
def test_published_rrule_expands_to_the_same_occurrences(
    freq, days, interval, ends, first, at, zone_name
):
    """A calendar expanding our RRULE from the same DTSTART lists the same instants."""
    weekdays = tuple(days) if freq == "weekly" else ()
    interval = 1 if freq == "weekdays" else interval
    kind, amount = ends
    end = {"count": amount} if kind == "count" else {"until": first + timedelta(days=amount)}
    rule = Recurrence(freq, weekdays=weekdays, interval=interval, **end)
    try:
        ours = [s for s, _ in occurrences(rule, datetime.combine(first, at), HOUR, zone_name)]
    except RecurrenceError:
        assume(False)
    text = vRecur(to_rrule(rule, zone_name=zone_name)).to_ical().decode()
    dtstart = datetime.combine(first, at, tzinfo=ZoneInfo(zone_name))
    theirs = [moment.astimezone(UTC) for moment in rrulestr(text, dtstart=dtstart)]
    assert ours == theirs


def test_rrule_dict_for_icalendar():
    assert to_rrule(Recurrence("weekly", weekdays=(2, 0), interval=2, count=10)) == {
        "FREQ": "WEEKLY", "INTERVAL": 2, "BYDAY": ["MO", "WE"], "WKST": "MO", "COUNT": 10
    }
    assert to_rrule(Recurrence("weekdays", until=date(2027, 6, 30)), zone_name="Europe/Berlin") == {
        "FREQ": "WEEKLY", "INTERVAL": 1, "BYDAY": ["MO", "TU", "WE", "TH", "FR"], "WKST": "MO",
        "UNTIL": datetime(2027, 6, 30, 21, 59, 59, tzinfo=UTC),
    }
    assert to_rrule(Recurrence("monthly", until=date(2027, 6, 30)))["UNTIL"] == date(2027, 6, 30)


rules = st.builds(
    lambda freq, days, interval, count, until, by_count: Recurrence(
        freq,
        weekdays=tuple(days) if freq == "weekly" else (),
        interval=1 if freq == "weekdays" else interval,
        count=count if by_count else None,
        until=None if by_count else until,
    ),
    st.sampled_from(["daily", "weekdays", "weekly", "monthly"]),
    st.lists(st.integers(0, 6), max_size=7),
    st.integers(1, 99),
    st.integers(1, 500),
    st.dates(),
    st.booleans(),
)


@PROPERTY
@given(rule=rules)
def test_json_round_trip_keeps_the_rule(rule):
    assert from_json(to_json(rule)) == rule


@pytest.mark.parametrize(
    "text",
    ["", "[]", "null", '{"freq": "hourly", "count": 3}', '{"freq": "daily"}',
     '{"freq": "daily", "count": 3, "until": "2027-01-01"}', '{"freq": "daily", "until": "soon"}',
     '{"freq": "daily", "count": 3, "extra": 1}', '{"freq": "weekly", "weekdays": 3, "count": 2}'],
)
def test_stored_rule_that_is_not_one_is_refused(text):
    with pytest.raises(RecurrenceError):
        from_json(text)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"freq": "hourly", "count": 2}, "Unknown repetition"),
        ({"freq": "daily"}, "Say when the series ends"),
        ({"freq": "daily", "count": 2, "until": date(2027, 1, 1)}, "Say when the series ends"),
        ({"freq": "daily", "count": 0}, "from 1 to 500"),
        ({"freq": "daily", "count": 501}, "from 1 to 500"),
        ({"freq": "daily", "count": True}, "whole number"),
        ({"freq": "daily", "interval": 0, "count": 2}, "interval"),
        ({"freq": "daily", "weekdays": (1,), "count": 2}, "Only a weekly series"),
        ({"freq": "weekly", "weekdays": (7,), "count": 2}, "0 \\(Monday\\) to 6"),
        ({"freq": "weekdays", "interval": 2, "count": 2}, "every week"),
        ({"freq": "daily", "until": datetime(2027, 1, 1)}, "is a date"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(RecurrenceError, match=message):
        Recurrence(**kwargs)


def test_weekdays_are_kept_sorted_and_unique():
    assert Recurrence("weekly", weekdays=(4, 0, 4), count=2).weekdays == (0, 4)


def test_series_limits_depend_on_the_first_meeting():
    first = datetime(2027, 3, 1, 10)
    with pytest.raises(RecurrenceError, match="ends before its first meeting"):
        occurrences(Recurrence("daily", until=date(2027, 2, 28)), first, HOUR, "UTC")
    with pytest.raises(RecurrenceError, match=r"at most 2 years .*by 2029-03-01"):
        occurrences(Recurrence("weekly", until=date(2029, 3, 2)), first, HOUR, "UTC")
    assert len(occurrences(Recurrence("monthly", until=date(2029, 3, 1)), first, HOUR, "UTC")) \
        == 25
    with pytest.raises(RecurrenceError, match="more than 500 meetings"):
        occurrences(Recurrence("daily", until=first.date() + relativedelta(years=2)), first,
                    HOUR, "UTC")
    assert len(occurrences(Recurrence("daily", count=500), first, HOUR, "UTC")) == 500
    with pytest.raises(RecurrenceError, match="no meetings"):
        occurrences(Recurrence("weekdays", until=date(2027, 3, 7)), datetime(2027, 3, 6, 10),
                    HOUR, "UTC")


def test_description_in_words():
    assert describe(Recurrence("weekdays", until=date(2027, 6, 30))) == (
        "Every weekday until 2027-06-30"
    )
    assert describe(Recurrence("weekly", weekdays=(0, 2), count=10)) == (
        "Weekly on Mon, Wed, 10 times"
    )
    assert describe(Recurrence("weekly", interval=2, count=1), first_start=date(2027, 3, 30)) == (
        "Every 2 weeks on Tue, once"
    )
    assert describe(Recurrence("daily", count=5)) == "Daily, 5 times"
    assert describe(Recurrence("monthly", until=date(2027, 12, 31)),
                    first_start=date(2027, 1, 15)) == "Monthly on day 15 until 2027-12-31"


def test_an_end_date_and_a_count_together_are_refused_as_both() -> None:
    with pytest.raises(RecurrenceError, match="not both"):
        Recurrence(freq="weekly", until=date(2027, 4, 30), count=3)
    with pytest.raises(RecurrenceError, match="an end date or a number"):
        Recurrence(freq="weekly")
