"""Meetings for hosts: schedule, start now, edit, move one occurrence, cancel, end for everyone,
rotate the link, invitees, the host's own join, calendar files and attendance.

Every method takes the actor and is one action (capability `host_meetings`, audited through
lib/auth/policy.py). A host acts on the meetings they host or co-host; an admin on all. Starting
and ending rooms goes through the scheduler's Lifecycle (lib/meetings/lifecycle.py), the one
path by which a meeting's room is created or deleted.

Concurrency: every change of an occurrence raises its version, and every write here is
conditional on the version read, as the scheduler's are. A meeting edit that meets a transition
the scheduler made meanwhile is re-read and applied again (a few times), so neither is lost.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..auth import passwords
from ..auth.policy import Actor, ActionError, Forbidden, Invalid, Policy
from ..livekit.gateway import LiveKitGateway
from ..livekit.tokens import Grants, IssuedToken, TokenRequest, build_token
from ..models import CoHost, Invitee, JoinGrant, Meeting, Occurrence, User, as_utc, utcnow
from ..outbound import events as webhook_events, outbox
from . import ics, invites, labels
from ..history.sessions import room_participant_spans
from ..history.store import HistoryStore
from .attendance import AttendanceRow, attendance_rows
from .emails import email_key, parse_emails
from .lifecycle import Lifecycle, LifecycleError
from .recurrence import Recurrence, RecurrenceError, occurrences as expand, to_json
from .times import TimeError, check_span, to_local, to_utc, zone
from .views import (
    ACTIVE, CANCELLED, ENDED, OPEN, SCHEDULED, Conflict, MeetingRow, MeetingView, NotFound, NotYours, managed_meeting,
    manages, meeting_view, occurrence_view, user_of,
)  # fmt: skip

log = logging.getLogger(__name__)

CAPABILITY = "host_meetings"
MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_PARTICIPANTS = 10_000
MAX_EARLY_JOIN = 120
MIN_PASSWORD, MAX_PASSWORD_BYTES = 4, 72
INSTANT_MINUTES = 60
TOKEN_LIFETIME = timedelta(minutes=15)
EDIT_ATTEMPTS = 3
HOST_ROLES = ("admin", "host")
MAX_AHEAD = timedelta(days=365 * 10)


@dataclass(frozen=True)
class MeetingDraft:
    """What the schedule and edit forms collect. Times are wall-clock times in `time_zone`;
    `fold` picks the first (0) or second (1) of a time that happens twice at a clock change.
    `password`: on scheduling, empty means none; on editing, None keeps the one set, "" removes
    it. `invitees` is a pasted list (None keeps the list on editing)."""

    title: str
    server: str
    start: datetime
    end: datetime
    time_zone: str
    description: str = ""
    fold: int | None = None
    private: bool = False
    password: str | None = None
    invitees: str | None = None
    cohosts: tuple[str, ...] = ()
    max_participants: int = 0
    early_join_minutes: int = 5
    guests_before_host: bool = False
    keep_chat: bool = False
    recurrence: Recurrence | None = None


@dataclass(frozen=True)
class HostTicket:
    """What the host's own join returns: the token (never logged) and where to connect."""

    token: IssuedToken
    server_url: str
    room: str
    occurrence_id: int


@dataclass(frozen=True)
class _Plan:
    """A draft checked against every rule, ready to write."""

    title: str
    description: str
    times: tuple[tuple[datetime, datetime], ...]
    invitees: tuple[str, ...] | None
    cohost_ids: tuple[int, ...]
    password_hash: str | None
    keep_password: bool


def new_room_name() -> str:
    """An opaque, unique room name with a readable prefix (never the title: rooms are listed)."""
    return f"meet-{secrets.token_hex(8)}"


def _hash_meeting_password(password: str) -> str:
    if len(password) < MIN_PASSWORD or not password.strip():
        raise Invalid(f"A meeting password needs at least {MIN_PASSWORD} characters (not only spaces).")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise Invalid(f"A meeting password can be at most {MAX_PASSWORD_BYTES} bytes.")
    return passwords.hash_secret(password)


class MeetingService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: Policy,
        gateway: LiveKitGateway,
        lifecycle: Lifecycle,
        *,
        invite_key: bytes,
        public_url: str,
        max_hours: float = 24.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._policy = policy
        self._gateway = gateway
        self._lifecycle = lifecycle
        self._public_url = public_url
        self._invite_key = invite_key
        self._max_hours = max_hours
        self._clock = clock
        self._history: HistoryStore | None = None  # only the dashboard's server process opens it

    def use_history(self, store: HistoryStore) -> None:
        self._history = store

    def permits(self, actor: Actor) -> bool:
        return self._policy.permits(actor, CAPABILITY)

    # ----- checking a draft ------------------------------------------------------------------

    def _plan(self, s: Session, actor: Actor, draft: MeetingDraft, *, editing: bool, host_id: int) -> _Plan:
        title = draft.title.strip()
        if not title:
            raise Invalid("A meeting needs a title.")
        if len(title) > MAX_TITLE:
            raise Invalid(f"A title can be at most {MAX_TITLE} characters (this one is {len(title)}).")
        if len(draft.description) > MAX_DESCRIPTION:
            raise Invalid(f"A description can be at most {MAX_DESCRIPTION} characters.")
        if draft.server not in self._gateway.server_names():
            raise Invalid(f"There is no server '{draft.server}'.")
        if not 0 <= draft.max_participants <= MAX_PARTICIPANTS:
            raise Invalid(f"The participant limit is 0 (no limit) to {MAX_PARTICIPANTS}.")
        if not 0 <= draft.early_join_minutes <= MAX_EARLY_JOIN:
            raise Invalid(f"Guests may join at most {MAX_EARLY_JOIN} minutes early.")
        try:
            zone(draft.time_zone)
            start = to_utc(draft.start, draft.time_zone, fold=draft.fold)
            end = to_utc(draft.end, draft.time_zone, fold=draft.fold)
            check_span(start, end, max_hours=self._max_hours)
            if draft.recurrence is None:
                times = ((start, end),)
            else:
                times = tuple(expand(draft.recurrence, draft.start, end - start, draft.time_zone))
        except (TimeError, RecurrenceError) as exc:
            raise Invalid(str(exc)) from None
        except OverflowError:  # a time near year 1 or 9999 moved past the calendar by its zone or a series
            raise Invalid("That date is too far in the past or the future.") from None
        if not editing and times[-1][1] <= self._clock():
            raise Invalid("That meeting would already be over: pick a start and end ahead of now.")
        if times[0][0] > self._clock() + MAX_AHEAD:
            # Calendars need the zone's rules past the last meeting: near year 9999 there are none.
            raise Invalid(f"A meeting can start at most {MAX_AHEAD.days // 365} years from now.")
        invitees = None
        if draft.invitees is not None:
            parsed = parse_emails(draft.invitees)
            if parsed.invalid:
                named = "; ".join(f"'{text}' ({reason})" for text, reason in parsed.invalid[:20])
                more = f" and {len(parsed.invalid) - 20} more" if len(parsed.invalid) > 20 else ""
                raise Invalid(f"Not an email address: {named}{more}. Nothing was saved.")
            invitees = tuple(dict.fromkeys(email_key(e) for e in parsed.valid))
            if invitees and not draft.private:
                raise Invalid("Only a private meeting has a list of invitees: make it private, or clear the list.")
        if draft.private and not invitees and (draft.invitees is not None or not editing):
            raise Invalid("A private meeting needs at least one invited email address.")
        cohost_ids = []
        for name in dict.fromkeys(n.strip() for n in draft.cohosts if n.strip()):
            user = user_of(s, Actor(name, ""))
            if user is None or user.disabled:
                raise Invalid(f"There is no active user '{name}' to be a co-host.")
            if user.role not in HOST_ROLES:
                raise Invalid(f"'{user.username}' is a {user.role}: only hosts and admins can co-host.")
            if user.id != host_id:
                cohost_ids.append(user.id)
        keep_password = editing and draft.password is None
        password_hash = _hash_meeting_password(draft.password) if draft.password else None
        return _Plan(title, draft.description, times, invitees, tuple(cohost_ids), password_hash, keep_password)

    @staticmethod
    def _write_people(s: Session, meeting_id: int, plan: _Plan) -> None:
        s.execute(delete(CoHost).where(CoHost.meeting_id == meeting_id))
        s.add_all(CoHost(meeting_id=meeting_id, user_id=uid) for uid in plan.cohost_ids)
        if plan.invitees is not None:
            s.execute(delete(Invitee).where(Invitee.meeting_id == meeting_id))
            s.add_all(Invitee(meeting_id=meeting_id, email=email) for email in plan.invitees)

    def _host(self, s: Session, actor: Actor) -> User:
        user = user_of(s, actor)
        if user is None or user.disabled:
            raise Forbidden("Only a signed-in user can host a meeting.")
        return user

    # ----- scheduling ------------------------------------------------------------------------

    def schedule(self, actor: Actor, draft: MeetingDraft, *, instant: bool = False) -> MeetingView:
        """A new meeting (a series when the draft recurs), its occurrences scheduled."""
        action = "meeting.instant" if instant else "meeting.schedule"
        with self._policy.act(actor, CAPABILITY, action, draft.title.strip()[:200]) as outcome:
            with self._sessions.begin() as s:
                host = self._host(s, actor)
                plan = self._plan(s, actor, draft, editing=False, host_id=host.id)
                now = self._clock()
                m = Meeting(
                    title=plan.title, description=plan.description, host_id=host.id, server=draft.server,
                    time_zone=draft.time_zone, instant=instant, private=draft.private, password_hash=plan.password_hash,
                    max_participants=draft.max_participants, early_join_minutes=draft.early_join_minutes,
                    guests_before_host=draft.guests_before_host, keep_chat=draft.keep_chat,
                    recurrence=to_json(draft.recurrence) if draft.recurrence else None,
                    first_start=plan.times[0][0], link_slug=secrets.token_urlsafe(16), uid=f"{secrets.token_hex(16)}@livekit-dashboard",
                    created_at=now, updated_at=now,
                )  # fmt: skip
                s.add(m)
                s.flush()
                added = [
                    Occurrence(meeting_id=m.id, starts_at=a, ends_at=b, original_start=a, status=SCHEDULED, room_name=new_room_name())
                    for a, b in plan.times
                ]
                s.add_all(added)
                self._write_people(s, m.id, plan)
                meeting_id = m.id
                s.flush()
                refs = [webhook_events.OccurrenceRef(o.id, o.room_name, a, b) for o, (a, b) in zip(added, plan.times)]
                data = webhook_events.scheduled_data(m.id, plan.title, draft.server, refs, instant, actor.name)
                outbox.enqueue(s, webhook_events.MEETING_SCHEDULED, data, now)
            outcome.detail = f"meeting {meeting_id}, {len(plan.times)} occurrence(s) from {plan.times[0][0]:%Y-%m-%d %H:%M} UTC on {draft.server}"
        return self.get(actor, meeting_id)

    def start_instant(
        self,
        actor: Actor,
        title: str,
        server: str,
        *,
        minutes: int = INSTANT_MINUTES,
        time_zone: str = "UTC",
        private: bool = False,
        password: str | None = None,
        invitees: str | None = None,
        max_participants: int = 0,
        guests_before_host: bool = True,
        keep_chat: bool = False,
    ) -> MeetingView:
        """A meeting that starts now: its room exists when this returns. If the server does not
        answer, no meeting is left behind."""
        try:
            here = self._clock().astimezone(zone(time_zone))
        except TimeError as exc:
            raise Invalid(str(exc)) from None
        start = here.replace(tzinfo=None, microsecond=0)  # wall time, to the second: it lasts as long as asked
        draft = MeetingDraft(
            title=title, server=server, start=start, end=start + timedelta(minutes=minutes), time_zone=time_zone, fold=here.fold,
            private=private, password=password, invitees=invitees, max_participants=max_participants,
            early_join_minutes=0, guests_before_host=guests_before_host, keep_chat=keep_chat,
        )  # fmt: skip
        meeting = self.schedule(actor, draft, instant=True)
        occurrence = meeting.occurrences[0]
        try:
            self._lifecycle.activate(occurrence.id, actor.name)
        except LifecycleError as exc:
            with self._sessions.begin() as s:
                s.execute(delete(Meeting).where(Meeting.id == meeting.id))
                # Its meeting.scheduled went out with it: receivers learn it is gone.
                ref = webhook_events.OccurrenceRef(occurrence.id, occurrence.room_name, occurrence.starts_at, occurrence.ends_at)
                data = webhook_events.meeting_data(meeting.id, meeting.title, meeting.server, ref, CANCELLED, actor.name)
                outbox.enqueue(s, webhook_events.MEETING_CANCELLED, data, self._clock())
            raise ActionError(f"The meeting was not started: {exc}") from None
        return self.get(actor, meeting.id)

    # ----- editing ---------------------------------------------------------------------------

    def update(self, actor: Actor, meeting_id: int, version: int, draft: MeetingDraft) -> MeetingView:
        """Change a meeting (or a whole series) as read at `version`. A single meeting under way
        keeps its start; its end may move. A series is expanded again: occurrences ahead that
        were not moved alone are replaced, the others kept."""
        with self._policy.act(actor, CAPABILITY, "meeting.update", f"meeting {meeting_id}") as outcome:
            for attempt in range(1, EDIT_ATTEMPTS + 1):
                try:
                    outcome.detail = self._update_once(actor, meeting_id, version, draft)
                    break
                except _Raced:
                    if attempt == EDIT_ATTEMPTS:
                        raise Conflict("The scheduler kept changing this meeting while it was saved: try again.") from None
                    log.info("meeting %s changed by the scheduler during an edit; applying the edit again", meeting_id)
        return self.get(actor, meeting_id)

    def _update_once(self, actor: Actor, meeting_id: int, version: int, draft: MeetingDraft) -> str:
        now = self._clock()
        with self._sessions.begin() as s:
            m = managed_meeting(s, actor, meeting_id)
            if m.version != version:
                raise Conflict("Someone changed this meeting since you opened it: reload it, then make your change again.")
            occurrences = s.scalars(select(Occurrence).where(Occurrence.meeting_id == m.id).order_by(Occurrence.starts_at)).all()
            if not any(o.status in OPEN for o in occurrences):
                raise Invalid("This meeting is over or cancelled: it can no longer be changed.")
            if m.recurrence and draft.recurrence is None or not m.recurrence and draft.recurrence is not None:
                raise Invalid("A single meeting cannot become a series, nor a series a single meeting: schedule a new one.")
            plan = self._plan(s, actor, draft, editing=True, host_id=m.host_id)
            if draft.recurrence is None:
                self._retime_single(s, occurrences[0], plan.times[0], now)
            else:
                self._retime_series(s, m, occurrences, plan.times, now)
            m.title, m.description, m.server = plan.title, plan.description, draft.server
            m.time_zone, m.private = draft.time_zone, draft.private
            if not plan.keep_password:
                m.password_hash = plan.password_hash
            m.max_participants, m.early_join_minutes = draft.max_participants, draft.early_join_minutes
            m.guests_before_host, m.keep_chat = draft.guests_before_host, draft.keep_chat
            m.recurrence = to_json(draft.recurrence) if draft.recurrence else None
            m.first_start = plan.times[0][0]
            m.version, m.sequence, m.updated_at = m.version + 1, m.sequence + 1, now
            self._write_people(s, m.id, plan)
            return f"version {m.version}; {len(plan.times)} occurrence(s)"

    @staticmethod
    def _retime_single(s: Session, o: Occurrence, times: tuple[datetime, datetime], now: datetime) -> None:
        start, end = times
        if o.status == ACTIVE and start != as_utc(o.starts_at):
            raise Invalid("This meeting is under way: its start cannot change, only its end.")
        if o.status == ACTIVE and end <= now:
            raise Invalid("The new end has already passed: to end the meeting now, use End for everyone.")
        if o.status not in OPEN:
            raise Invalid("This meeting is over or cancelled: it can no longer be changed.")
        moved = s.execute(
            update(Occurrence)
            .where(Occurrence.id == o.id, Occurrence.version == o.version, Occurrence.status == o.status)
            .values(starts_at=start, ends_at=end, original_start=start, version=Occurrence.version + 1)
        ).rowcount
        if not moved:
            raise _Raced()

    @staticmethod
    def _retime_series(s: Session, m: Meeting, occurrences: list[Occurrence], times: tuple[tuple[datetime, datetime], ...], now: datetime) -> None:
        kept = [o for o in occurrences if o.status != SCHEDULED or o.moved]
        taken = {as_utc(o.original_start) for o in kept}
        for o in occurrences:
            if o.status == SCHEDULED and not o.moved:
                gone = s.execute(delete(Occurrence).where(Occurrence.id == o.id, Occurrence.version == o.version, Occurrence.status == SCHEDULED)).rowcount
                if not gone:
                    raise _Raced()
        s.add_all(
            Occurrence(meeting_id=m.id, starts_at=a, ends_at=b, original_start=a, status=SCHEDULED, room_name=new_room_name())
            for a, b in times
            if b > now and a not in taken
        )

    def move_occurrence(self, actor: Actor, occurrence_id: int, version: int, start: datetime, end: datetime, fold: int | None = None) -> MeetingView:
        """Move one occurrence of a series (or a single meeting) alone; times are wall-clock
        times in the meeting's zone. The series' other occurrences stay as they are."""
        with self._policy.act(actor, CAPABILITY, "meeting.move", f"occurrence {occurrence_id}") as outcome:
            with self._sessions.begin() as s:
                o, m = self._managed_occurrence(s, actor, occurrence_id)
                if o.version != version:
                    raise Conflict("This occurrence changed since you opened it: reload it and try again.")
                if o.status != SCHEDULED:
                    raise Invalid(f"This occurrence is {o.status}: only one that has not started can move.")
                try:
                    a, b = to_utc(start, m.time_zone, fold=fold), to_utc(end, m.time_zone, fold=fold)
                    check_span(a, b, max_hours=self._max_hours)
                except TimeError as exc:
                    raise Invalid(str(exc)) from None
                if b <= self._clock():
                    raise Invalid("That time has already passed: pick a start and end ahead of now.")
                moved = s.execute(
                    update(Occurrence)
                    .where(Occurrence.id == o.id, Occurrence.version == o.version, Occurrence.status == SCHEDULED)
                    .values(starts_at=a, ends_at=b, moved=m.recurrence is not None, version=Occurrence.version + 1)
                ).rowcount
                if not moved:
                    raise Conflict("The scheduler started this occurrence meanwhile: it can no longer move.")
                m.sequence, m.version, m.updated_at = m.sequence + 1, m.version + 1, self._clock()
                meeting_id = m.id
                outcome.detail = f"meeting {m.id} to {a:%Y-%m-%d %H:%M} UTC"
        return self.get(actor, meeting_id)

    def _managed_occurrence(self, s: Session, actor: Actor, occurrence_id: int) -> tuple[Occurrence, Meeting]:
        o = s.get(Occurrence, occurrence_id)
        m = s.get(Meeting, o.meeting_id) if o else None
        if o is None or m is None:
            raise NotFound(f"There is no meeting occurrence {occurrence_id} that you host.")
        if not manages(s, actor, m):
            raise NotYours(f"There is no meeting occurrence {occurrence_id} that you host.")
        return o, m

    # ----- cancelling and ending ---------------------------------------------------------------

    def cancel(self, actor: Actor, meeting_id: int) -> MeetingView:
        """Cancel a meeting, or every occurrence of a series not yet over. A room under way is
        deleted (everyone in it is disconnected); if its server does not answer now, the
        scheduler deletes it when it does."""
        with self._policy.act(actor, CAPABILITY, "meeting.cancel", f"meeting {meeting_id}") as outcome:
            with self._sessions.begin() as s:
                m = managed_meeting(s, actor, meeting_id)
                ids = s.scalars(select(Occurrence.id).where(Occurrence.meeting_id == m.id, Occurrence.status.in_(OPEN))).all()
                if not ids:
                    raise Invalid("This meeting is already over or cancelled.")
            for oid in ids:
                self._cancel_one(actor, oid)
            with self._sessions.begin() as s:
                m = s.get(Meeting, meeting_id)
                m.sequence, m.version, m.updated_at = m.sequence + 1, m.version + 1, self._clock()
            outcome.detail = f"{len(ids)} occurrence(s)"
        return self.get(actor, meeting_id)

    def cancel_occurrence(self, actor: Actor, occurrence_id: int) -> MeetingView:
        with self._policy.act(actor, CAPABILITY, "meeting.cancel_occurrence", f"occurrence {occurrence_id}") as outcome:
            with self._sessions.begin() as s:
                o, m = self._managed_occurrence(s, actor, occurrence_id)
                if o.status not in OPEN:
                    raise Invalid(f"This occurrence is already {o.status}.")
                meeting_id = m.id
            self._cancel_one(actor, occurrence_id)
            outcome.detail = f"meeting {meeting_id}"
            with self._sessions.begin() as s:
                m = s.get(Meeting, meeting_id)
                m.sequence, m.version, m.updated_at = m.sequence + 1, m.version + 1, self._clock()
        return self.get(actor, meeting_id)

    def _cancel_one(self, actor: Actor, occurrence_id: int) -> None:
        """Cancel one occurrence through the lifecycle (the one path for a meeting's room and
        status), trying again when the scheduler changes it meanwhile. A room whose server does
        not answer now is deleted by the scheduler when it does (the lifecycle logs it)."""
        for _ in range(EDIT_ATTEMPTS):
            with self._sessions() as s:
                o = s.get(Occurrence, occurrence_id)
                if o is None or o.status not in OPEN:
                    return
            if self._lifecycle.finish(occurrence_id, CANCELLED, actor.name, mark_anyway=True):
                return
        raise Conflict("The scheduler kept changing this meeting while it was cancelled: try again.")

    def end_now(self, actor: Actor, occurrence_id: int) -> MeetingView:
        """End a meeting under way for everyone: its room is deleted, which disconnects all."""
        with self._policy.act(actor, CAPABILITY, "meeting.end_now", f"occurrence {occurrence_id}") as outcome:
            with self._sessions.begin() as s:
                o, m = self._managed_occurrence(s, actor, occurrence_id)
                if o.status == SCHEDULED:
                    raise Invalid("This meeting has not started: cancel it instead.")
                if o.status != ACTIVE:
                    raise Invalid(f"This meeting is already {o.status}.")
                meeting_id, outcome.detail = m.id, f"meeting {m.id} room {o.room_name}"
            try:
                if not self._lifecycle.finish(occurrence_id, ENDED, actor.name):
                    raise Conflict("The meeting changed meanwhile (the scheduler may have ended it): reload.")
            except LifecycleError as exc:
                raise ActionError(f"Not ended: {exc}") from None
            with self._sessions.begin() as s:
                m = s.get(Meeting, meeting_id)
                m.version, m.updated_at = m.version + 1, self._clock()
        return self.get(actor, meeting_id)

    # ----- links, invitees and the host's join ------------------------------------------------

    def rotate_link(self, actor: Actor, meeting_id: int) -> MeetingView:
        """A new join link: the old link stops working and every invite signed before is revoked."""
        with self._policy.act(actor, CAPABILITY, "meeting.rotate_link", f"meeting {meeting_id}"):
            with self._sessions.begin() as s:
                m = managed_meeting(s, actor, meeting_id)
                m.link_slug, m.link_version = secrets.token_urlsafe(16), m.link_version + 1
                m.version, m.sequence, m.updated_at = m.version + 1, m.sequence + 1, self._clock()
        return self.get(actor, meeting_id)

    def set_invitees(self, actor: Actor, meeting_id: int, text: str, *, add: bool = False) -> MeetingView:
        """Replace (or, with `add`, extend) a private meeting's list from a pasted list."""
        with self._policy.act(actor, CAPABILITY, "meeting.invitees", f"meeting {meeting_id}") as outcome:
            parsed = parse_emails(text)
            if parsed.invalid:
                named = "; ".join(f"'{t}' ({reason})" for t, reason in parsed.invalid[:20])
                raise Invalid(f"Not an email address: {named}. Nothing was saved.")
            with self._sessions.begin() as s:
                m = managed_meeting(s, actor, meeting_id)
                if not m.private:
                    raise Invalid("Only a private meeting has a list of invitees.")
                current = set(s.scalars(select(Invitee.email).where(Invitee.meeting_id == m.id)).all())
                pasted = [email_key(e) for e in parsed.valid]
                wanted = (current | set(pasted)) if add else set(pasted)
                if not wanted:
                    raise Invalid("A private meeting needs at least one invited email address.")
                s.execute(delete(Invitee).where(Invitee.meeting_id == m.id, Invitee.email.not_in(wanted)))
                s.add_all(Invitee(meeting_id=m.id, email=e) for e in dict.fromkeys(pasted) if e in wanted - current)
                m.version, m.updated_at = m.version + 1, self._clock()
                outcome.detail = f"{len(wanted)} invitee(s): +{len(wanted - current)} -{len(current - wanted)}"
        return self.get(actor, meeting_id)

    def remove_invitee(self, actor: Actor, meeting_id: int, email: str) -> MeetingView:
        email = email_key(email.strip())
        with self._policy.act(actor, CAPABILITY, "meeting.invitees", f"meeting {meeting_id}") as outcome:
            with self._sessions.begin() as s:
                m = managed_meeting(s, actor, meeting_id)
                left = s.scalars(select(Invitee.email).where(Invitee.meeting_id == m.id, Invitee.email != email)).all()
                if not left:
                    raise Invalid("A private meeting needs at least one invited email address.")
                if not s.execute(delete(Invitee).where(Invitee.meeting_id == m.id, Invitee.email == email)).rowcount:
                    raise NotFound(f"{email} is not on the list.")
                m.version, m.updated_at = m.version + 1, self._clock()
                outcome.detail = f"-{email}"
        return self.get(actor, meeting_id)

    def invite_link(self, actor: Actor, meeting_id: int, email: str | None = None) -> str:
        """A join link carrying a signed invite that stands in for the password; for a private
        meeting it is bound to one invitee. It expires with the meeting's last occurrence and is
        revoked when the link is rotated."""
        with self._policy.act(actor, CAPABILITY, "meeting.invite", f"meeting {meeting_id}", email or "") as outcome:
            email = email_key(email.strip()) if email else None
            with self._sessions.begin() as s:
                m = managed_meeting(s, actor, meeting_id)
                if m.private:
                    if not email or s.get(Invitee, (m.id, email)) is None:
                        raise Invalid("An invite to a private meeting is for one address on its list: pick one.")
                else:
                    email = None
                ends = [as_utc(o.ends_at) for o in s.scalars(select(Occurrence).where(Occurrence.meeting_id == m.id, Occurrence.status.in_(OPEN)))]
                if not ends:
                    raise Invalid("This meeting is over or cancelled: there is nothing to invite to.")
                signed = invites.sign(self._invite_key, invites.Invite(m.id, m.link_version, email, max(ends)))
                url = f"{meeting_view(s, m, self._public_url).join_url}&invite={signed}"
            outcome.detail = f"for {email}" if email else "for anyone with the link"
        return url

    def host_join(self, actor: Actor, occurrence_id: int) -> HostTicket:
        """A token for the host or a co-host (room admin) to join an occurrence under way, or one
        inside its early-join window (which starts it)."""
        with self._policy.act(actor, CAPABILITY, "meeting.host_join", f"occurrence {occurrence_id}") as outcome:
            now = self._clock()
            with self._sessions.begin() as s:
                o, m = self._managed_occurrence(s, actor, occurrence_id)
                user = self._host(s, actor)
                early = as_utc(o.starts_at) - timedelta(minutes=m.early_join_minutes)
                if o.status == SCHEDULED and not early <= now < as_utc(o.ends_at):
                    raise Invalid(f"This meeting opens at {early:%Y-%m-%d %H:%M} UTC.")
                if o.status in (ENDED, CANCELLED):
                    raise Invalid(f"This meeting is {o.status}.")
                server, room, ends_at, status = m.server, o.room_name, as_utc(o.ends_at), o.status
            if status == SCHEDULED:
                try:
                    self._lifecycle.activate(occurrence_id, actor.name)
                except LifecycleError as exc:
                    raise ActionError(f"The meeting could not open: {exc}") from None
            config = self._gateway.server_config(server)
            token = build_token(
                config.api_key, config.api_secret,
                TokenRequest(room=room, identity=f"host-{user.id}", name=user.username, ttl=min(TOKEN_LIFETIME, ends_at - now), grants=Grants.host()),
            )  # fmt: skip
            with self._sessions.begin() as s:
                s.add(JoinGrant(occurrence_id=occurrence_id, identity=token.identity, name=user.username, host=True, issued_at=now, expires_at=token.expires_at))
            outcome.detail = f"as {token.identity} until {token.expires_at:%H:%M:%S} UTC"
        return HostTicket(token, config.ws_url, room, occurrence_id)

    # ----- reading -----------------------------------------------------------------------------

    def get(self, actor: Actor, meeting_id: int) -> MeetingView:
        self._policy.require(actor, CAPABILITY, "meeting.read", f"meeting {meeting_id}")
        with self._sessions() as s:
            return meeting_view(s, managed_meeting(s, actor, meeting_id), self._public_url)

    def list(
        self,
        actor: Actor,
        *,
        statuses: tuple[str, ...] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        mine: bool = False,
        limit: int = 1000,
        after: tuple[datetime, int] | None = None,
    ) -> list[MeetingRow]:
        """Occurrences the actor may see (a host: those they host or co-host; an admin: all, or
        only their own with `mine`), soonest first, filtered by status and by a start range.
        `after` (an occurrence's start and id) pages on: only occurrences ordered after it."""
        self._policy.require(actor, CAPABILITY, "meeting.read", "meetings")
        with self._sessions() as s:
            user = user_of(s, actor)
            uid = user.id if user else -1
            own = select(CoHost.meeting_id).where(CoHost.user_id == uid)
            stmt = (
                select(Occurrence, Meeting, User.username)
                .join(Meeting, Meeting.id == Occurrence.meeting_id)
                .join(User, User.id == Meeting.host_id)
                .order_by(Occurrence.starts_at, Occurrence.id)
                .limit(limit)
            )
            if mine or actor.role != "admin":
                stmt = stmt.where((Meeting.host_id == uid) | Meeting.id.in_(own))
            if statuses:
                stmt = stmt.where(Occurrence.status.in_(statuses))
            if since is not None:
                stmt = stmt.where(Occurrence.ends_at >= since)
            if until is not None:
                stmt = stmt.where(Occurrence.starts_at < until)
            if after is not None:
                at, oid = after
                stmt = stmt.where((Occurrence.starts_at > at) | ((Occurrence.starts_at == at) & (Occurrence.id > oid)))
            cohosted = set(s.scalars(own).all())
            return [
                MeetingRow(occurrence_view(o), m.id, m.title, host, m.server, m.private, m.recurrence is not None, m.host_id == uid or m.id in cohosted)
                for o, m, host in s.execute(stmt).all()
            ]

    def hosted_rooms(self, actor: Actor) -> dict[tuple[str, str], datetime]:
        """(server, room) of every occurrence not yet over of the meetings the actor hosts or
        co-hosts, with when it ends: the rooms a host may issue tokens for on the Tokens page,
        and how long such a token may live."""
        with self._sessions() as s:
            user = user_of(s, actor)
            if user is None:
                return {}
            own = select(CoHost.meeting_id).where(CoHost.user_id == user.id)
            rows = s.execute(
                select(Meeting.server, Occurrence.room_name, Occurrence.ends_at)
                .join(Occurrence, Occurrence.meeting_id == Meeting.id)
                .where((Meeting.host_id == user.id) | Meeting.id.in_(own), Occurrence.status.in_(OPEN))
            ).all()
            return {(server, room): as_utc(ends) for server, room, ends in rows}

    def calendar(self, actor: Actor, meeting_id: int) -> bytes:
        """The meeting as an .ics file: one event, or the series as an RRULE with its cancelled
        occurrences as EXDATEs and the ones moved alone as their own events."""
        meeting = self.get(actor, meeting_id)
        return ics.calendar(ics_event(meeting), method="CANCEL" if meeting.status == CANCELLED else "PUBLISH")

    def attendance(self, actor: Actor, occurrence_id: int) -> list[AttendanceRow]:
        """Who was in an occurrence's room, from the history store's participant sessions, with
        the name and email given at join."""
        self._policy.require(actor, CAPABILITY, "meeting.read", f"occurrence {occurrence_id}")
        with self._sessions() as s:
            o, m = self._managed_occurrence(s, actor, occurrence_id)
            grants = s.scalars(select(JoinGrant).where(JoinGrant.occurrence_id == o.id)).all()
            server, room = m.server, o.room_name
            known = {g.identity: (g.name, g.email) for g in grants}
        store = self._history
        if store is None:
            raise ActionError("Attendance is read from the history store, which only the dashboard's server process opens.")
        return attendance_rows(room_participant_spans(store, server, room), known, self._clock())

    # ----- meetings beside their rooms (the Rooms, Sessions and History pages) -------------------
    # No capability is checked: these pages are the operators' and analysts', who see every room
    # anyway, and a title and status say no more than the metadata of the rooms the scheduler
    # creates already does (hosts, who see neither page, are not asked for).

    def titles_for_rooms(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], labels.MeetingLabel]:
        """The meeting each (server, room) belongs to, for the rooms that are a meeting's."""
        with self._sessions() as s:
            return labels.titles_for_rooms(s, pairs)

    def meeting_rooms(self, meeting_id: int) -> list[tuple[str, str]]:
        """(server, room) of every occurrence of a meeting."""
        with self._sessions() as s:
            return labels.meeting_rooms(s, meeting_id)

    def meetings_for_filter(self, since: datetime, until: datetime) -> list[labels.MeetingChoice]:
        """The meetings with an occurrence in [since, until), latest first (at most
        labels.PICKER_LIMIT), for the History page's picker."""
        with self._sessions() as s:
            return labels.meetings_in_range(s, since, until)


class _Raced(Exception):
    """A conditional write found the occurrence changed by the scheduler; the edit is re-read."""


def ics_event(meeting: MeetingView) -> ics.IcsEvent:
    """A series is its rule from where it was last planned (DTSTART): its cancelled occurrences
    are exceptions (EXDATE), the ones moved alone overrides (RECURRENCE-ID). Occurrences from
    before the last edit of the series' times are not in its rule any more and are left out."""
    if meeting.recurrence is None:
        [o] = meeting.occurrences
        start, end, exdates, overrides = o.starts_at, o.ends_at, (), ()
    else:
        planned = [o for o in meeting.occurrences if not o.moved] or list(meeting.occurrences)
        length = planned[-1].ends_at - planned[-1].starts_at
        start = meeting.first_start
        first_local = to_local(start, meeting.time_zone).replace(tzinfo=None)
        in_rule = {a for a, _ in expand(meeting.recurrence, first_local, length, meeting.time_zone)}
        end = start + length
        exdates = tuple(o.original_start for o in meeting.occurrences if o.status == CANCELLED and o.original_start in in_rule)
        overrides = tuple(
            ics.IcsOverride(o.original_start, o.starts_at, o.ends_at, cancelled=False)
            for o in meeting.occurrences
            if o.moved and o.status != CANCELLED and o.original_start in in_rule
        )
    return ics.IcsEvent(
        uid=meeting.uid, sequence=meeting.sequence, title=meeting.title, description=meeting.description,
        start_utc=start, end_utc=end, zone_name=meeting.time_zone, url=meeting.join_url,
        organizer_name=meeting.host, status=meeting.status, created_utc=meeting.created_at, updated_utc=meeting.updated_at,
        rrule=meeting.recurrence, exdates_utc=exdates, overrides=overrides,
    )  # fmt: skip
