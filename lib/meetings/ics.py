"""Calendar files (RFC 5545 .ics) for a meeting or a series: what invitees import or receive.

The file carries the meeting's own zone (a VTIMEZONE and TZID times), so calendars show it in
local time and expand a series' RRULE the same way `recurrence.occurrences` does. A calendar
recognises an update by the same UID with a higher SEQUENCE; a cancellation keeps both and says
STATUS:CANCELLED (with METHOD:CANCEL when it is sent by mail). Text is escaped and lines folded
by the icalendar package, never by hand.
"""
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime

from icalendar import Calendar, Event, Timezone, vRecur

from lib.meetings import recurrence, times
from lib.meetings.recurrence import Recurrence

PRODID = "-//LiveKit Dashboard//Meetings//EN"
METHODS = ("PUBLISH", "REQUEST", "CANCEL")
STATUSES = ("scheduled", "active", "ended", "cancelled")


@dataclass(frozen=True)
class IcsOverride:
    """One occurrence of a series moved (`cancelled` False) or called off (`cancelled` True).

    `recurrence_id_utc` is the occurrence's original start, as the series expands it.
    """

    recurrence_id_utc: datetime
    start_utc: datetime
    end_utc: datetime
    cancelled: bool


@dataclass(frozen=True)
class IcsEvent:
    """A meeting, or with `rrule` a series whose first occurrence is `start_utc`..`end_utc`.

    `uid` never changes for a meeting; `sequence` rises with every change invitees should see.
    `status` is the meeting's: "scheduled", "active", "ended" or "cancelled". `exdates_utc` are
    original starts of cancelled occurrences (as are the overrides marked `cancelled`).
    `organizer_email`, when known, makes an ORGANIZER (with `organizer_name` as its CN), which
    mail programs require of an invitation (METHOD REQUEST or CANCEL, RFC 5546).
    """

    uid: str
    sequence: int
    title: str
    description: str
    start_utc: datetime
    end_utc: datetime
    zone_name: str
    url: str
    organizer_name: str
    status: str
    created_utc: datetime
    updated_utc: datetime
    rrule: Recurrence | None = None
    exdates_utc: tuple[datetime, ...] = ()
    overrides: tuple[IcsOverride, ...] = ()
    organizer_email: str = ""


def calendar(
    event: IcsEvent, *, method: str = "PUBLISH", stamp_utc: datetime | None = None
) -> bytes:
    """The .ics bytes (CRLF lines, folded at 75 octets) for `event`.

    `stamp_utc` is the DTSTAMP, when this file was made (now unless given). With method
    "CANCEL" the whole meeting or series is cancelled: STATUS:CANCELLED, and no moved
    occurrences are listed.
    """
    if method not in METHODS:
        raise ValueError(f"method is one of {METHODS}, not {method!r}")
    if stamp_utc is not None and stamp_utc.tzinfo is None:
        raise ValueError("stamp_utc is aware")
    starts = _check(event)
    tz = times.zone(event.zone_name)
    stamp = (stamp_utc or datetime.now(UTC)).astimezone(UTC)
    cancelled = method == "CANCEL" or event.status == "cancelled"

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    cal.add("calscale", "GREGORIAN")

    master = _vevent(event, event.start_utc, event.end_utc, stamp, cancelled)
    if event.rrule is not None:
        master.add("rrule", vRecur(recurrence.to_rrule(event.rrule, zone_name=event.zone_name)))
        gone = sorted(
            set(event.exdates_utc)
            | {o.recurrence_id_utc for o in event.overrides if o.cancelled}
        )
        if gone:
            master.add("exdate", [moment.astimezone(tz) for moment in gone])
    cal.add_component(master)
    if method != "CANCEL":
        for override in sorted(event.overrides, key=lambda o: o.recurrence_id_utc):
            if override.cancelled:
                continue
            moved = _vevent(event, override.start_utc, override.end_utc, stamp, cancelled)
            moved.add("recurrence-id", override.recurrence_id_utc.astimezone(tz))
            cal.add_component(moved)

    # A zone icalendar writes as UTC ("Z" times) needs no VTIMEZONE.
    if event.zone_name in cal.get_missing_tzids():
        cal.subcomponents.insert(0, _vtimezone(event, starts))
    return cal.to_ical()


def _vevent(
    event: IcsEvent, start: datetime, end: datetime, stamp: datetime, cancelled: bool
) -> Event:
    tz = times.zone(event.zone_name)
    vevent = Event()
    vevent.add("uid", event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", stamp)
    vevent.add("created", event.created_utc.astimezone(UTC))
    vevent.add("last-modified", event.updated_utc.astimezone(UTC))
    vevent.add("dtstart", start.astimezone(tz))
    vevent.add("dtend", end.astimezone(tz))
    vevent.add("summary", text_value(event.title))
    if event.description:
        vevent.add("description", text_value(event.description))
    if event.url:
        vevent.add("url", event.url)
        # Several calendar programs show LOCATION and ignore URL; both carry the join link.
        vevent.add("location", event.url)
    if event.organizer_email:
        name = " ".join(text_value(event.organizer_name).split())
        parameters = {"CN": name} if name else {}
        vevent.add("organizer", f"mailto:{event.organizer_email}", parameters=parameters)
    vevent.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return vevent


def text_value(text: str) -> str:
    """`text` as a calendar will show it: line breaks as LF, without the control characters
    RFC 5545 forbids in TEXT (all but tab and line feed). Escaping is icalendar's job."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        char for char in text if char in "\t\n" or unicodedata.category(char) != "Cc"
    )


def _vtimezone(event: IcsEvent, starts: list[datetime]) -> Timezone:
    """The zone's rules from the year before the first moment the file names to the year after
    its last, which is all a calendar needs to place every occurrence."""
    moments = [*starts, event.end_utc, *(o.end_utc for o in event.overrides)]
    moments += [o.start_utc for o in event.overrides]
    local = [times.to_local(moment, event.zone_name) for moment in moments]
    first = date(min(local).year - 1, 1, 1)
    last = date(max(local).year + 2, 1, 1)
    return Timezone.from_tzid(event.zone_name, first_date=first, last_date=last)


def _check(event: IcsEvent) -> list[datetime]:
    """Refuse what would make a wrong file; return every occurrence start of the event."""
    if event.status not in STATUSES:
        raise ValueError(f"status is one of {STATUSES}, not {event.status!r}")
    if isinstance(event.sequence, bool) or not isinstance(event.sequence, int):
        raise ValueError("sequence is a whole number")
    if event.sequence < 0:
        raise ValueError("sequence is not negative")
    if not event.uid or not event.uid.isprintable():
        raise ValueError("uid is printable text")
    for name, value in (("url", event.url), ("organizer_email", event.organizer_email)):
        # These are written unescaped (URI values): a space or line break would end them.
        if any(char.isspace() or not char.isprintable() for char in value):
            raise ValueError(f"{name} has whitespace or control characters")
    instants = [event.start_utc, event.end_utc, event.created_utc, event.updated_utc]
    instants += list(event.exdates_utc)
    for override in event.overrides:
        instants += [override.recurrence_id_utc, override.start_utc, override.end_utc]
        if override.end_utc <= override.start_utc:
            raise ValueError("a moved occurrence ends after it starts")
    if any(instant.tzinfo is None for instant in instants):
        raise ValueError("every time given to the calendar is aware")
    if event.end_utc <= event.start_utc:
        raise ValueError("the meeting ends after it starts")
    times.zone(event.zone_name)
    if event.rrule is None:
        if event.exdates_utc or event.overrides:
            raise ValueError("only a series has cancelled or moved occurrences")
        return [event.start_utc]
    first_local = times.to_local(event.start_utc, event.zone_name).replace(tzinfo=None)
    starts = [
        start
        for start, _ in recurrence.occurrences(
            event.rrule, first_local, event.end_utc - event.start_utc, event.zone_name
        )
    ]
    # RFC 5545 leaves a series undefined when DTSTART is not its first occurrence.
    if starts[0] != event.start_utc:
        raise ValueError("a series' start_utc is its first occurrence")
    known = set(starts)
    originals = [*event.exdates_utc, *(o.recurrence_id_utc for o in event.overrides)]
    if any(original not in known for original in originals):
        raise ValueError("a cancelled or moved occurrence is not one of the series'")
    return starts
