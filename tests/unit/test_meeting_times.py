import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.meetings.times import (
    TimeError,
    check_span,
    describe,
    to_local,
    to_utc,
    to_utc_lenient,
    zone,
    zone_names,
)

PROPERTY = settings(deadline=None, max_examples=200, database=None)

# Spring-forward and fall-back at different hours, a half-hour shift (Lord Howe), a southern
# hemisphere zone, a zone that dropped DST (Sao Paulo), one that never had it recently, and UTC.
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "UTC",
)



@functools.cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The UTC hours at which the zone's offset has just changed during `year`."""
    tz = ZoneInfo(zone_name)

    def offset(moment: datetime) -> timedelta:
        return moment.astimezone(tz).utcoffset()

    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        next_day = day + timedelta(days=1)
        if offset(day) != offset(next_day):
            hour = day
            while offset(hour) == offset(day):
                hour += timedelta(hours=1)
            found.append(hour)
        day = next_day
    return tuple(found)


@st.composite
def wall_times_near_transitions(draw, zone_name: str) -> datetime:
    """Wall times within 75 minutes of a clock change, where gaps and overlaps are."""
    year = draw(st.integers(2000, 2040))
    changes = transitions(zone_name, year)
    if not changes:
        return draw(st.datetimes(datetime(year, 1, 1), datetime(year, 12, 31)))
    change = draw(st.sampled_from(changes))
    wall = change.astimezone(ZoneInfo(zone_name)).replace(tzinfo=None)
    return wall + timedelta(minutes=draw(st.integers(-75, 75)))


@st.composite
def zones_and_wall_times(draw) -> tuple[str, datetime]:
    zone_name = draw(st.sampled_from(ZONES))
    anywhere = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31))
    return zone_name, draw(st.one_of(anywhere, wall_times_near_transitions(zone_name)))


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
)


def readings(local: datetime, zone_name: str) -> list[datetime]:
    """Every UTC instant whose wall time in the zone is `local`, found by brute force over the
    offsets the zone uses within two days of it (independent of the code under test)."""
    tz = ZoneInfo(zone_name)
    offsets = {
        (local + timedelta(hours=h)).replace(tzinfo=tz, fold=f).utcoffset()
        for h in range(-48, 49)
        for f in (0, 1)
    }
    found = {
        (local - offset).replace(tzinfo=UTC)
        for offset in offsets
        if (local - offset).replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None) == local
    }
    return sorted(found)


@PROPERTY
@given(case=zones_and_wall_times())
def test_wall_time_converts_to_its_only_instant_and_back(case):
    zone_name, local = case
    found = readings(local, zone_name)
    if len(found) == 1:
        instant = to_utc(local, zone_name)
        assert instant == found[0] and instant.tzinfo is UTC
        assert to_local(instant, zone_name).replace(tzinfo=None) == local
    elif not found:
        with pytest.raises(TimeError, match="does not exist in " + zone_name):
            to_utc(local, zone_name)
    else:
        with pytest.raises(TimeError, match="happens twice in " + zone_name):
            to_utc(local, zone_name)
        assert [to_utc(local, zone_name, fold=f) for f in (0, 1)] == found


@PROPERTY
@given(instant=instants, zone_name=st.sampled_from(ZONES))
def test_every_instant_is_reached_from_its_wall_time_and_fold(instant, zone_name):
    local = to_local(instant, zone_name)
    assert local.utcoffset() == instant.astimezone(ZoneInfo(zone_name)).utcoffset()
    assert to_utc(local.replace(tzinfo=None), zone_name, fold=local.fold) == instant


@PROPERTY
@given(case=zones_and_wall_times())
def test_lenient_conversion_moves_gap_times_forward_and_takes_the_first_of_two(case):
    zone_name, local = case
    found = readings(local, zone_name)
    instant = to_utc_lenient(local, zone_name)
    if found:
        assert instant == found[0]
    else:
        # Forward by the gap: the wall time read with the offset from before the jump.
        before = (local - timedelta(hours=6)).replace(tzinfo=ZoneInfo(zone_name)).utcoffset()
        assert instant == (local - before).replace(tzinfo=UTC)
        assert to_local(instant, zone_name).replace(tzinfo=None) > local


def test_berlin_spring_gap_is_refused_naming_the_jump():
    with pytest.raises(TimeError) as raised:
        to_utc(datetime(2027, 3, 28, 2, 30), "Europe/Berlin")
    assert str(raised.value) == (
        "2027-03-28 02:30 does not exist in Europe/Berlin: clocks jump from 02:00 to 03:00 "
        "that day. Pick a time before 02:00 or from 03:00."
    )


def test_new_york_spring_gap_is_refused_naming_the_jump():
    with pytest.raises(TimeError, match="clocks jump from 02:00 to 03:00"):
        to_utc(datetime(2027, 3, 14, 2, 15), "America/New_York")


def test_lord_howe_half_hour_gap_is_named_to_the_minute():
    with pytest.raises(TimeError, match="clocks jump from 02:00 to 02:30 that day"):
        to_utc(datetime(2027, 10, 3, 2, 10), "Australia/Lord_Howe")


def test_berlin_autumn_overlap_is_refused_unless_fold_chooses():
    local = datetime(2027, 10, 31, 2, 30)
    with pytest.raises(TimeError) as raised:
        to_utc(local, "Europe/Berlin")
    message = str(raised.value)
    assert message.startswith(
        "2027-10-31 02:30 happens twice in Europe/Berlin (clocks go back from 03:00 to 02:00): "
        "pick another time, or"
    )
    assert "CEST, UTC+02:00" in message and "CET, UTC+01:00" in message
    first = to_utc(local, "Europe/Berlin", fold=0)
    second = to_utc(local, "Europe/Berlin", fold=1)
    assert first == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert second - first == timedelta(hours=1)


def test_fold_is_ignored_where_the_time_is_unique_and_cannot_rescue_a_gap():
    local = datetime(2027, 7, 1, 10, 0)
    assert to_utc(local, "Europe/Berlin", fold=1) == datetime(2027, 7, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(TimeError, match="does not exist"):
        to_utc(datetime(2027, 3, 28, 2, 30), "Europe/Berlin", fold=1)
    with pytest.raises(ValueError, match="fold"):
        to_utc(local, "Europe/Berlin", fold=2)


def test_aware_and_naive_mixups_are_programming_errors_not_form_errors():
    aware = datetime(2027, 7, 1, 10, tzinfo=UTC)
    for call in (lambda: to_utc(aware, "UTC"), lambda: to_local(aware.replace(tzinfo=None), "UTC")):
        with pytest.raises(ValueError) as raised:
            call()
        assert not isinstance(raised.value, TimeError)


@pytest.mark.parametrize(
    "name",
    ["", "localtime", "posixrules", "Factory", "/etc/localtime", "../../etc/passwd",
     "Europe/../Europe/Berlin", "Mars/Olympus_Mons", "right/Europe/Berlin", "posix/UTC"],
)
def test_names_that_are_not_iana_zones_are_refused(name):
    with pytest.raises(TimeError) as raised:
        zone(name)
    assert (name in str(raised.value)) if name else "Choose a time zone" in str(raised.value)


def test_wrong_case_zone_suggests_the_right_name():
    with pytest.raises(TimeError, match="did you mean Europe/Berlin\\?"):
        zone("europe/berlin")


def test_known_zones_include_common_names_and_aliases():
    names = zone_names()
    assert {"Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"} <= set(names)
    assert list(names) == sorted(names) and "localtime" not in names
    assert zone("Europe/Berlin").key == "Europe/Berlin"


def test_span_must_end_after_start_and_respect_limits():
    start = datetime(2027, 3, 30, 8, tzinfo=UTC)
    with pytest.raises(TimeError, match="^The end must be after the start.$"):
        check_span(start, start)
    with pytest.raises(TimeError, match="^The end must be after the start.$"):
        check_span(start, start - timedelta(minutes=1))
    with pytest.raises(TimeError, match="at least 5 minutes"):
        check_span(start, start + timedelta(minutes=4, seconds=59))
    with pytest.raises(TimeError, match="at most 24 hours"):
        check_span(start, start + timedelta(hours=24, seconds=1))
    with pytest.raises(TimeError, match="at most 1.5 hours"):
        check_span(start, start + timedelta(hours=2), max_hours=1.5)
    with pytest.raises(TimeError, match="at least 1 minute\\."):
        check_span(start, start + timedelta(seconds=30), min_minutes=1)
    check_span(start, start + timedelta(minutes=5))
    check_span(start, start + timedelta(hours=24))


def test_description_names_day_zone_abbreviation_and_zone():
    summer = datetime(2027, 3, 30, 8, tzinfo=UTC)
    winter = datetime(2027, 1, 5, 9, tzinfo=UTC)
    assert describe(summer, "Europe/Berlin") == "Tue 2027-03-30 10:00 CEST (Europe/Berlin)"
    assert describe(winter, "Europe/Berlin") == "Tue 2027-01-05 10:00 CET (Europe/Berlin)"
    assert describe(summer, "America/New_York") == "Tue 2027-03-30 04:00 EDT (America/New_York)"
    assert describe(summer, "UTC") == "Tue 2027-03-30 08:00 (UTC)"


def test_gap_of_a_whole_day_names_both_dates():
    # Samoa skipped 2011-12-30 when it moved across the date line.
    with pytest.raises(TimeError) as raised:
        to_utc(datetime(2011, 12, 30, 10, 0), "Pacific/Apia")
    assert str(raised.value) == (
        "2011-12-30 10:00 does not exist in Pacific/Apia: clocks jump from 2011-12-30 00:00 to "
        "2011-12-31 00:00. Pick a time before 2011-12-30 00:00 or from 2011-12-31 00:00."
    )
