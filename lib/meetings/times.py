"""Meeting times: IANA zones, local wall-clock time to UTC and back, and what a meeting may span.

A meeting is stored as a UTC instant plus the IANA zone it was planned in, never as an offset:
the zone is what keeps a weekly 10:00 at 10:00 across daylight-saving changes. Wall-clock times
that do not exist (the hour skipped in spring) or happen twice (the hour repeated in autumn)
are refused with a message for the person at the form, who is the only one who knows what
they meant.
"""
import functools
import zoneinfo
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo

# zoneinfo also finds these in the system's zone directory; none of them is a place's time.
_NOT_ZONES = frozenset({"", "localtime", "posixrules", "Factory"})

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class TimeError(ValueError):
    """A time or zone the person at the form must change; the message says how."""


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name `zone` accepts, sorted (for a zone picker)."""
    try:
        names = set(files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())
    except (ModuleNotFoundError, FileNotFoundError):
        names = set(zoneinfo.available_timezones())
    return tuple(sorted(names - _NOT_ZONES))


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zone_names())


@functools.cache
def _names_by_casefold() -> dict[str, str]:
    return {name.casefold(): name for name in zone_names()}


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The zone called `name`; TimeError naming it when it is not an IANA zone name.

    Only names from the IANA list are accepted, so a path, "localtime" or a file that happens
    to sit in the system's zone directory is never read.
    """
    if not isinstance(name, str) or not name:
        raise TimeError("Choose a time zone.")
    if name not in _known():
        shown = name if len(name) <= 60 else name[:60] + "…"
        suggestion = _names_by_casefold().get(name.casefold())
        if suggestion:
            raise TimeError(f"Unknown time zone {shown!r}: did you mean {suggestion}?")
        raise TimeError(f"Unknown time zone {shown!r}: use an IANA name like Europe/Berlin.")
    return ZoneInfo(name)


def to_utc(local: datetime, zone_name: str, *, fold: int | None = None) -> datetime:
    """The UTC instant of the naive wall-clock time `local` in the zone.

    TimeError when that wall time does not exist there (a daylight-saving gap), and when it
    happens twice (an overlap) unless `fold` says which: 0 the first, 1 the second.
    """
    if local.tzinfo is not None:
        raise ValueError("to_utc takes a naive wall-clock time")
    if fold not in (None, 0, 1):
        raise ValueError("fold is 0 (the first) or 1 (the second)")
    tz = zone(zone_name)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    as_utc = first.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != local:
        raise TimeError(_gap_message(local, zone_name, first, second))
    if first.utcoffset() != second.utcoffset():
        if fold is None:
            raise TimeError(_overlap_message(local, zone_name, first, second))
        return (second if fold else first).astimezone(UTC)
    return as_utc


def to_utc_lenient(local: datetime, zone_name: str) -> datetime:
    """Like `to_utc`, for times nobody typed (a series' later dates): never refuses.

    A time in a gap moves forward by the gap's length (02:30 on the spring-forward day becomes
    03:30), an ambiguous time is the first of the two. This is what RFC 5545 prescribes for
    recurrence instances, so calendars that expand the same RRULE agree with us.
    """
    if local.tzinfo is not None:
        raise ValueError("to_utc_lenient takes a naive wall-clock time")
    # PEP 495: fold=0 uses the offset in force before a transition, for gaps and overlaps alike.
    return local.replace(tzinfo=zone(zone_name), fold=0).astimezone(UTC)


def to_local(instant: datetime, zone_name: str) -> datetime:
    """The aware wall-clock time of `instant` in the zone."""
    if instant.tzinfo is None:
        raise ValueError("to_local takes an aware datetime")
    return instant.astimezone(zone(zone_name))


def check_span(
    start_utc: datetime, end_utc: datetime, *, max_hours: float = 24, min_minutes: int = 5
) -> None:
    """TimeError unless a meeting from `start_utc` to `end_utc` lasts a permitted time."""
    if start_utc.tzinfo is None or end_utc.tzinfo is None:
        raise ValueError("check_span takes aware datetimes")
    length = end_utc - start_utc
    if length <= timedelta(0):
        raise TimeError("The end must be after the start.")
    if length < timedelta(minutes=min_minutes):
        raise TimeError(f"A meeting must last at least {_plural(min_minutes, 'minute')}.")
    if length > timedelta(hours=max_hours):
        raise TimeError(f"A meeting can last at most {_plural(max_hours, 'hour')}.")


def describe(instant_utc: datetime, zone_name: str) -> str:
    """The instant as people in the zone read it: "Tue 2027-03-30 10:00 CEST (Europe/Berlin)"."""
    local = to_local(instant_utc, zone_name)
    # English day names whatever the process locale, like the rest of the dashboard.
    text = f"{_DAY_NAMES[local.weekday()]} {local:%Y-%m-%d %H:%M}"
    abbreviation = local.tzname() or ""
    if abbreviation and abbreviation != zone_name:
        text += f" {abbreviation}"
    return f"{text} ({zone_name})"


def _gap_message(local: datetime, zone_name: str, first: datetime, second: datetime) -> str:
    # In a gap, fold=0 reads the time with the offset from before the jump and fold=1 with the
    # one after; the jump itself lies between the two UTC readings.
    jump = _transition(second.astimezone(UTC), first.astimezone(UTC), first.tzinfo)
    before = (jump + first.utcoffset()).replace(tzinfo=None)
    after = (jump + second.utcoffset()).replace(tzinfo=None)
    if before.date() == after.date() == local.date():
        before_text, after_text, when = _hhmm(before), _hhmm(after), " that day"
    else:
        before_text, after_text, when = _wall(before), _wall(after), ""
    return (
        f"{_wall(local)} does not exist in {zone_name}: clocks jump from "
        f"{before_text} to {after_text}{when}. "
        f"Pick a time before {before_text} or from {after_text}."
    )


def _overlap_message(local: datetime, zone_name: str, first: datetime, second: datetime) -> str:
    back = _transition(first.astimezone(UTC), second.astimezone(UTC), first.tzinfo)
    before = (back + first.utcoffset()).replace(tzinfo=None)
    after = (back + second.utcoffset()).replace(tzinfo=None)
    return (
        f"{_wall(local)} happens twice in {zone_name} (clocks go back from "
        f"{_clock(before, local)} to {_clock(after, local)}): pick another time, or say which "
        f"one you mean: the first ({_reading(first)}) or the second ({_reading(second)})."
    )


def _transition(earlier_utc: datetime, later_utc: datetime, tz) -> datetime:
    """The first UTC instant after `earlier_utc` whose offset is `later_utc`'s (to the second)."""
    target = later_utc.astimezone(tz).utcoffset()
    low, high = earlier_utc, later_utc
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _wall(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d} {_hhmm(moment)}"


def _clock(moment: datetime, day_of: datetime) -> str:
    """Hours and minutes, with the date too when it is not the day the person picked."""
    return _hhmm(moment) if moment.date() == day_of.date() else _wall(moment)


def _hhmm(moment: datetime) -> str:
    return f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"


def _reading(moment: datetime) -> str:
    offset = moment.utcoffset()
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    utc_offset = f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    name = moment.tzname()
    return f"{name}, {utc_offset}" if name and not name.startswith(("+", "-")) else utc_offset


def _plural(amount: float, unit: str) -> str:
    shown = f"{amount:g}"
    return f"{shown} {unit}" if shown == "1" else f"{shown} {unit}s"
