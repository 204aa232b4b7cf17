"""Recurring meeting series: the rule, its expansion into occurrences, and its RRULE and JSON forms.

A series is expanded in the wall-clock time of its zone, then each start is converted to UTC, so
a weekly 10:00 stays at 10:00 local across daylight-saving changes while its UTC time moves by
the change. That is also how calendar programs expand the RRULE we publish (RFC 5545), so the
dashboard and the invitees' calendars list the same occurrences.
"""
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dateutil import rrule as du
from dateutil.relativedelta import relativedelta

from lib.meetings import times

FREQUENCIES = ("daily", "weekdays", "weekly", "monthly")
MAX_OCCURRENCES = 500
MAX_INTERVAL = 99
# How far after its first meeting a series given by an end date may end.
MAX_SPAN = relativedelta(years=2)

_DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WORKING_DAYS = (0, 1, 2, 3, 4)
_FREQ = {"daily": du.DAILY, "weekdays": du.WEEKLY, "weekly": du.WEEKLY, "monthly": du.MONTHLY}
_FREQ_NAMES = {"daily": "DAILY", "weekdays": "WEEKLY", "weekly": "WEEKLY", "monthly": "MONTHLY"}
_UNIT = {"daily": "day", "weekly": "week", "monthly": "month"}


class RecurrenceError(ValueError):
    """A series the person at the form must change; the message says how."""


@dataclass(frozen=True)
class Recurrence:
    """How a series repeats. Exactly one of `until` (a local date, inclusive) and `count`.

    `weekdays` (0 Monday .. 6 Sunday) is for "weekly" only; left empty, a weekly series meets
    on its first meeting's weekday. A "monthly" series meets on its first meeting's day of the
    month and, like every calendar, skips months that have no such day (the 31st, say).
    """

    freq: str
    weekdays: tuple[int, ...] = ()
    interval: int = 1
    until: date | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.freq not in FREQUENCIES:
            raise RecurrenceError(f"Unknown repetition {self.freq!r}.")
        days = tuple(self.weekdays)
        if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise RecurrenceError("Weekdays are numbers from 0 (Monday) to 6 (Sunday).")
        if days and self.freq != "weekly":
            raise RecurrenceError("Only a weekly series meets on chosen weekdays.")
        # Stored sorted and unique, so equal rules compare equal whatever order they were picked.
        object.__setattr__(self, "weekdays", tuple(sorted(set(days))))
        if isinstance(self.interval, bool) or not isinstance(self.interval, int):
            raise RecurrenceError("The interval is a whole number.")
        if not 1 <= self.interval <= MAX_INTERVAL:
            raise RecurrenceError(f"The interval is from 1 to {MAX_INTERVAL}.")
        if self.freq == "weekdays" and self.interval != 1:
            raise RecurrenceError(
                "A weekday series repeats every week; for another interval choose weekly and "
                "pick the days."
            )
        if self.until is not None and self.count is not None:
            raise RecurrenceError("Say when the series ends with an end date or a number of meetings, not both.")
        if self.until is None and self.count is None:
            raise RecurrenceError("Say when the series ends: an end date or a number of meetings.")
        if self.until is not None and (
            isinstance(self.until, datetime) or not isinstance(self.until, date)
        ):
            raise RecurrenceError("The end of a series is a date.")
        if self.count is not None:
            if isinstance(self.count, bool) or not isinstance(self.count, int):
                raise RecurrenceError("The number of meetings is a whole number.")
            if not 1 <= self.count <= MAX_OCCURRENCES:
                raise RecurrenceError(f"A series has from 1 to {MAX_OCCURRENCES} meetings.")


def occurrences(
    rule: Recurrence, first_start_local: datetime, duration: timedelta, zone_name: str
) -> list[tuple[datetime, datetime]]:
    """Every (start, end) of the series in UTC, sorted; the first start is on or after
    `first_start_local` (naive wall-clock time in the zone), on the first day the rule includes.

    The end is the start plus `duration` in real time, so a meeting across a clock change
    still lasts `duration`. A start that falls into a daylight-saving gap on some date (only
    possible for times between about 02:00 and 03:00) moves forward by the gap; one that
    happens twice takes the first (see `times.to_utc_lenient`).
    """
    if first_start_local.tzinfo is not None:
        raise ValueError("occurrences takes a naive wall-clock first start")
    if duration <= timedelta(0):
        raise ValueError("a meeting's duration is positive")
    times.zone(zone_name)
    first_day = first_start_local.date()
    if rule.until is not None:
        if rule.until < first_day:
            raise RecurrenceError("The series ends before its first meeting.")
        latest = first_day + MAX_SPAN
        if rule.until > latest:
            raise RecurrenceError(
                f"A series can end at most 2 years after its first meeting (by {latest})."
            )
    starts = []
    for local in _expand(rule, first_start_local):
        if len(starts) == MAX_OCCURRENCES:
            raise RecurrenceError(
                f"This series would have more than {MAX_OCCURRENCES} meetings: end it sooner "
                "or repeat it less often."
            )
        starts.append(times.to_utc_lenient(local, zone_name))
    if not starts:
        raise RecurrenceError("This series has no meetings between its first day and its end.")
    starts.sort()
    return [(start, start + duration) for start in starts]


def _expand(rule: Recurrence, first_start_local: datetime):
    until = datetime.combine(rule.until, time.max) if rule.until is not None else None
    return du.rrule(
        _FREQ[rule.freq],
        dtstart=first_start_local,
        interval=rule.interval,
        wkst=du.MO,
        byweekday=_byweekday(rule),
        count=rule.count,
        until=until,
        cache=False,
    )


def _byweekday(rule: Recurrence) -> tuple[int, ...] | None:
    if rule.freq == "weekdays":
        return _WORKING_DAYS
    return rule.weekdays or None


def to_rrule(rule: Recurrence, *, zone_name: str | None = None) -> dict:
    """The rule as an icalendar `vRecur` dict: FREQ, INTERVAL, BYDAY, WKST, and UNTIL or COUNT.

    With `zone_name`, UNTIL is the UTC instant at the end of the `until` day in that zone, as
    RFC 5545 requires next to a DTSTART with a TZID; without it, UNTIL is the date itself.
    """
    result: dict = {"FREQ": _FREQ_NAMES[rule.freq], "INTERVAL": rule.interval}
    days = _byweekday(rule)
    if days:
        result["BYDAY"] = [_DAY_CODES[d] for d in days]
    result["WKST"] = "MO"
    if rule.count is not None:
        result["COUNT"] = rule.count
    elif zone_name is None:
        result["UNTIL"] = rule.until
    else:
        result["UNTIL"] = _end_of_day_utc(rule.until, zone_name)
    return result


def _end_of_day_utc(day: date, zone_name: str) -> datetime:
    # The last second before the next local midnight. A midnight inside a gap reads with the
    # offset from before the jump (fold=0), which is the jump itself: still the day's end.
    next_midnight = datetime.combine(day + timedelta(days=1), time())
    return times.to_utc_lenient(next_midnight, zone_name) - timedelta(seconds=1)


def to_json(rule: Recurrence) -> str:
    """The rule as plain JSON for a SQL column (dates as ISO strings)."""
    return json.dumps(
        {
            "freq": rule.freq,
            "weekdays": list(rule.weekdays),
            "interval": rule.interval,
            "until": rule.until.isoformat() if rule.until is not None else None,
            "count": rule.count,
        },
        sort_keys=True,
    )


def from_json(text: str) -> Recurrence:
    """The rule `to_json` wrote; RecurrenceError when the text is not one."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as error:
        raise RecurrenceError(f"Not a stored series rule: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("freq"), str):
        raise RecurrenceError("Not a stored series rule.")
    unknown = set(data) - {"freq", "weekdays", "interval", "until", "count"}
    if unknown:
        raise RecurrenceError(f"Not a stored series rule: unknown fields {sorted(unknown)}.")
    weekdays = data.get("weekdays", [])
    if not isinstance(weekdays, list):
        raise RecurrenceError("Not a stored series rule: weekdays is not a list.")
    until = data.get("until")
    if until is not None:
        try:
            until = date.fromisoformat(until)
        except (TypeError, ValueError):
            raise RecurrenceError(f"Not a stored series rule: bad end date {until!r}.") from None
    return Recurrence(
        freq=data["freq"],
        weekdays=tuple(weekdays),
        interval=data.get("interval", 1),
        until=until,
        count=data.get("count"),
    )


def describe(rule: Recurrence, *, first_start: date | None = None) -> str:
    """The rule in words: "Every weekday until 2027-06-30", "Weekly on Mon, Wed, 10 times".

    With `first_start`, a weekly rule without chosen days names its weekday and a monthly one
    its day of the month.
    """
    if rule.freq == "weekdays":
        text = "Every weekday"
    else:
        unit = _UNIT[rule.freq]
        if rule.interval == 1:
            text = {"day": "Daily", "week": "Weekly", "month": "Monthly"}[unit]
        else:
            text = f"Every {rule.interval} {unit}s"
        days = rule.weekdays
        if rule.freq == "weekly" and not days and first_start is not None:
            days = (first_start.weekday(),)
        if days:
            text += " on " + ", ".join(_DAY_NAMES[d] for d in days)
        elif rule.freq == "monthly" and first_start is not None:
            text += f" on day {first_start.day}"
    if rule.count is not None:
        return f"{text}, once" if rule.count == 1 else f"{text}, {rule.count} times"
    return f"{text} until {rule.until.isoformat()}"
