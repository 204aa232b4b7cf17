"""The Meetings page's forms and tables: what a form collects becomes a MeetingDraft for the
meetings service; what the service returns becomes rows and captions. No rule is checked here
beyond what a widget can say (the service names every broken rule)."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime, timedelta, timezone

import streamlit as st

from ..meetings.recurrence import Recurrence, describe as describe_rule
from ..meetings.service import MeetingDraft
from ..meetings.views import ACTIVE, SCHEDULED, MeetingRow, MeetingView, OccurrenceView
from . import live
from .format import clock, since

REPEATS = {"Does not repeat": None, "Daily": "daily", "Every weekday (Mon-Fri)": "weekdays", "Weekly": "weekly", "Monthly": "monthly"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GATE_NOTE = (
    "The list is a gate, not proof of identity: anyone who types a listed address (and the password, if one is set) "
    "can join. Guests appear in the room under an opaque identity, never their email."
)


@functools.cache
def zone_names() -> list[str]:
    return sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")


def default_zone() -> str:
    """The browser's zone when it told us one we know, else UTC."""
    browser = getattr(st.context, "timezone", None)
    return browser if browser in zone_names() else "UTC"


def local(instant: datetime, zone_name: str) -> datetime:
    return instant.astimezone(zoneinfo.ZoneInfo(zone_name))


def when(instant: datetime, zone_name: str) -> str:
    """A time as the meeting's zone shows it, e.g. 'Tue 2027-03-30 10:00 CEST'."""
    return local(instant, zone_name).strftime("%a %Y-%m-%d %H:%M %Z")


def status_text(o: OccurrenceView, now: datetime) -> str:
    if o.status == SCHEDULED and o.waiting_since is not None:
        return f"scheduled, waiting for the server since {clock(o.waiting_since)} ({since(o.waiting_since)} ago): {o.last_error}"
    if o.status == ACTIVE and o.ends_at <= now:
        return "active, ending"
    return o.status


def rows_table(rows: list[MeetingRow], zone_name: str, now: datetime) -> list[dict[str, object]]:
    return [
        {
            "title": r.title, "starts": when(r.occurrence.starts_at, zone_name), "ends": when(r.occurrence.ends_at, zone_name),
            "status": status_text(r.occurrence, now), "host": r.host, "server": r.server,
            "access": "private" if r.private else "public", "series": "yes" if r.series else "",
        }  # fmt: skip
        for r in rows
    ]


FOLDS = {"Ask me": None, "The first (before the clocks go back)": 0, "The second (after the clocks go back)": 1}


def draft_form(form: str, servers: list[str], hosts: list[str], host: str, existing: MeetingView | None = None) -> MeetingDraft | None:
    """The schedule form, or the edit form of `existing` (a single meeting or a whole series).
    `hosts` are the users who may co-host; `host` hosts it (never offered as a co-host).
    Returns the draft when submitted."""
    hosts = [h for h in hosts if h != host]
    zone_default = existing.time_zone if existing else default_zone()
    first = existing.current() if existing else None
    start_local = local(first.starts_at, zone_default) if first else (datetime.now(timezone.utc) + timedelta(hours=1)).astimezone(zoneinfo.ZoneInfo(zone_default)).replace(minute=0, second=0, microsecond=0)
    end_local = local(first.ends_at, zone_default) if first else start_local + timedelta(hours=1)
    rule = existing.recurrence if existing else None
    key = functools.partial(live.widget_key, form)
    with st.form(form):
        title = st.text_input("Title", value=existing.title if existing else "", max_chars=200, key=key("title"))
        description = st.text_area("Description", value=existing.description if existing else "", key=key("description"))
        c1, c2 = st.columns(2)
        server = c1.selectbox("Server", servers, index=servers.index(existing.server) if existing and existing.server in servers else 0, key=key("server"))
        zones = zone_names()
        zone_name = c2.selectbox("Time zone", zones, index=zones.index(zone_default) if zone_default in zones else 0, key=key("zone"), help="Times below are wall-clock times in this zone.")
        c1, c2, c3, c4 = st.columns(4)
        start_day = c1.date_input("Starts on", value=start_local.date(), key=key("start_day"))
        start_time = c2.time_input("at", value=start_local.time(), step=timedelta(minutes=5), key=key("start_time"))
        end_day = c3.date_input("Ends on", value=end_local.date(), key=key("end_day"))
        end_time = c4.time_input("at", value=end_local.time(), step=timedelta(minutes=5), key=key("end_time"))
        fold_label = st.selectbox(
            "A time that happens twice (the night the clocks go back) means", list(FOLDS), key=key("fold"),
            help="Only matters for a start or end inside the hour that repeats when clocks go back.",
        )  # fmt: skip
        if existing is None or rule is not None:
            repeat_labels = list(REPEATS)
            current = next((label for label, freq in REPEATS.items() if rule and freq == rule.freq), repeat_labels[0])
            c1, c2, c3 = st.columns(3)
            repeat = c1.selectbox("Repeats", repeat_labels, index=repeat_labels.index(current), key=key("repeat"), disabled=existing is not None and rule is None)
            days = c2.multiselect("On (weekly)", WEEKDAYS, default=[WEEKDAYS[d] for d in rule.weekdays] if rule else [], key=key("days"))
            until = c3.date_input("Until (inclusive)", value=rule.until if rule and rule.until else None, key=key("until"), help="Or give a number of times below.")
            count = c3.number_input("Or this many times", min_value=0, max_value=500, value=rule.count if rule and rule.count else 0, key=key("count"))
        else:
            repeat, days, until, count = "Does not repeat", [], None, 0
        private = st.toggle("Private: only invited email addresses may join", value=existing.private if existing else False, key=key("private"))
        invitees = st.text_area(
            "Invited email addresses", value="\n".join(existing.invitees) if existing else "", key=key("invitees"),
            help="Paste them in any common form: one per line, separated by commas or semicolons, or as Name <address>.",
        )  # fmt: skip
        st.caption(GATE_NOTE)
        password_help = "Leave empty to keep the current password." if existing and existing.has_password else "Leave empty for none."
        password = st.text_input("Meeting password", type="password", key=key("password"), help=password_help)
        remove_password = st.checkbox("Remove the password", key=key("no_password")) if existing and existing.has_password else False
        cohosts = st.multiselect("Co-hosts", hosts, default=[h for h in (existing.cohosts if existing else ()) if h in hosts], key=key("cohosts"))
        c1, c2, c3, c4 = st.columns(4)
        max_participants = c1.number_input("Participant limit (0: none)", min_value=0, max_value=10_000, value=existing.max_participants if existing else 0, key=key("max"))
        early = c2.number_input("Guests may join this many minutes early", min_value=0, max_value=120, value=existing.early_join_minutes if existing else 5, key=key("early"))
        before_host = c3.checkbox("Guests may join before a host", value=existing.guests_before_host if existing else False, key=key("before_host"))
        keep_chat = c4.checkbox("Keep the chat", value=existing.keep_chat if existing else False, key=key("keep_chat"))
        submitted = st.form_submit_button("Save changes" if existing else "Schedule meeting", type="primary")
    if not submitted:
        return None
    recurrence = None
    if REPEATS[repeat] is not None:
        try:
            recurrence = Recurrence(
                freq=REPEATS[repeat], weekdays=tuple(WEEKDAYS.index(d) for d in days), until=until if isinstance(until, date) else None,
                count=int(count) or None,
            )  # fmt: skip
        except ValueError as exc:  # the rule's own check: until or count, not both
            st.error(str(exc))
            return None
    return MeetingDraft(
        title=title, description=description, server=server, time_zone=zone_name, fold=FOLDS[fold_label],
        start=datetime.combine(start_day, start_time), end=datetime.combine(end_day, end_time),
        private=private, password=("" if remove_password else (password or None)) if existing else password,
        invitees=invitees if (private or invitees.strip()) else ("" if existing else None),
        cohosts=tuple(cohosts), max_participants=int(max_participants), early_join_minutes=int(early),
        guests_before_host=before_host, keep_chat=keep_chat, recurrence=recurrence,
    )  # fmt: skip


def start_range(picked: object, zone_name: str) -> tuple[datetime | None, datetime | None, str]:
    """The list's date filter as instants: days are the viewer's (`zone_name`), as the table's
    times are; a range half picked runs from its day on. The caption says what is shown."""
    tz = zoneinfo.ZoneInfo(zone_name)
    days = [d for d in picked if isinstance(d, date)] if isinstance(picked, (tuple, list)) else ([picked] if isinstance(picked, date) else [])
    if not days:
        return None, None, "No days picked: showing every day."
    first = datetime.combine(min(days), datetime.min.time(), tz)
    if len(days) == 1 and isinstance(picked, (tuple, list)):
        return first, None, f"Only the first day is picked: showing from {min(days):%Y-%m-%d} on."
    last = datetime.combine(max(days) + timedelta(days=1), datetime.min.time(), tz)
    return first, last, ""


def rule_text(meeting: MeetingView) -> str:
    return describe_rule(meeting.recurrence) if meeting.recurrence else "Does not repeat"
