"""Meetings against a real livekit-server: scheduling and its rules, the join service's tokens
and every refusal, invites, the lockout on wrong passwords, who may manage which meeting,
editing while the scheduler acts, ending for everyone, series with calendar files, and
attendance read from the history store."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import func, select

from lib import services
from lib.auth.policy import Actor, Invalid, Refused
from lib.livekit.devserver import DevServer
from lib.meetings.invites import Invite, sign
from lib.meetings.join import JoinRefused, JoinRequest
from lib.meetings.recurrence import Recurrence
from lib.meetings.service import MeetingDraft
from lib.meetings.views import ACTIVE, CANCELLED, ENDED, NotFound
from lib.models import AuditEvent, JoinGrant, Occurrence, Transition
from lib.services import Services
from lib.sim.participants import ParticipantPool
from tests.integration.test_services import settings_for

pytestmark = pytest.mark.integration

SERVER = "default"
PASSWORD = "host-password-" + secrets.token_urlsafe(6)
SYSTEM = Actor.system("test")


@pytest.fixture
def svc(livekit_server: DevServer, tmp_path: Path) -> Iterator[Services]:
    built = services.build(settings_for(livekit_server, tmp_path / "data", DASHBOARD_COLLECT_SECONDS="1"))
    try:
        for name, role in (("hana", "host"), ("hugo", "host"), ("olga", "operator"), ("anna", "analyst")):
            built.users.create(SYSTEM, name, PASSWORD, role)
        yield built
    finally:
        built.close()


HANA, HUGO = Actor("hana", "host", "127.0.0.1"), Actor("hugo", "host", "127.0.0.1")


def draft(minutes_from_now: float = -1, length: float = 60, **extra: object) -> MeetingDraft:
    """A meeting in UTC wall time starting `minutes_from_now` (already under way by default)."""
    start = (datetime.now(timezone.utc) + timedelta(minutes=minutes_from_now)).replace(tzinfo=None, microsecond=0)
    fields: dict[str, object] = dict(title="Weekly sync", server=SERVER, start=start, end=start + timedelta(minutes=length), time_zone="UTC")
    fields.update(extra)
    return MeetingDraft(**fields)  # type: ignore[arg-type]


def rooms(svc: Services) -> set[str]:
    return {r.room.name for r in svc.gateway.snapshot(SERVER).rooms}


def audit_rows(svc: Services, action: str) -> list[AuditEvent]:
    with svc.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def grants(svc: Services) -> int:
    with svc.sessions() as s:
        return s.scalar(select(func.count()).select_from(JoinGrant)) or 0


def slug(url: str) -> str:
    return url.split("m=", 1)[1].split("&", 1)[0]


# ----- scheduling rules -----------------------------------------------------------------------


def test_schedule_refuses_broken_rules_with_their_reasons(svc: Services) -> None:
    cases = {
        "end must be after": draft(60, length=-30),
        "at least 5": draft(60, length=3),
        "24": draft(60, length=25 * 60),
        "does not exist": draft(title="x", start=datetime(2027, 3, 28, 2, 30), end=datetime(2027, 3, 28, 4), time_zone="Europe/Berlin"),
        "twice": draft(title="x", start=datetime(2027, 10, 31, 2, 30), end=datetime(2027, 10, 31, 4), time_zone="Europe/Berlin"),
        "'not-an-address'": draft(private=True, invitees="ok@example.org, not-an-address"),
        "already be over": draft(-120, length=30),
        "no server": draft(server="nowhere"),
        "co-host": draft(cohosts=("anna",)),
    }
    for expected, bad in cases.items():
        with pytest.raises(Invalid) as refused:
            svc.meetings.schedule(HANA, bad)
        assert expected.lower() in str(refused.value).lower(), (expected, str(refused.value))
    with svc.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Occurrence)) == 0


def test_roles_without_the_capability_are_refused_and_audited(svc: Services) -> None:
    for actor in (Actor("olga", "operator"), Actor("anna", "analyst")):
        with pytest.raises(Refused):
            svc.meetings.schedule(actor, draft())
    assert [r.result for r in audit_rows(svc, "meeting.schedule")] == ["refused", "refused"]


def test_a_host_manages_only_what_they_host_or_co_host(svc: Services) -> None:
    meeting = svc.meetings.schedule(HANA, draft(60))
    with pytest.raises(NotFound):
        svc.meetings.get(HUGO, meeting.id)
    with pytest.raises(NotFound):
        svc.meetings.cancel(HUGO, meeting.id)
    assert svc.meetings.list(HUGO) == []
    shared = svc.meetings.update(HANA, meeting.id, meeting.version, draft(60, cohosts=("hugo",)))
    assert svc.meetings.get(HUGO, meeting.id).cohosts == ("hugo",)
    assert [r.meeting_id for r in svc.meetings.list(HUGO)] == [meeting.id]
    assert svc.meetings.cancel(HUGO, shared.id).status == CANCELLED
    assert svc.meetings.list(Actor("admin", "admin"), statuses=(CANCELLED,))[0].meeting_id == meeting.id


# ----- join tokens -----------------------------------------------------------------------------


def test_a_join_token_lets_a_real_participant_in_with_guest_grants(svc: Services, livekit_server: DevServer) -> None:
    meeting = svc.meetings.schedule(HANA, draft(password="open sesame"))
    ticket = svc.joins.join(JoinRequest(slug(meeting.join_url), "Gus Guest", password="open sesame"), "10.0.0.1")
    assert ticket.identity.startswith("guest-") and ticket.room == meeting.occurrences[0].room_name
    assert timedelta(minutes=14) < ticket.token.expires_at - datetime.now(timezone.utc) <= timedelta(minutes=15)
    claims = ticket.token.claims
    assert claims["video"]["roomJoin"] and claims["video"]["canPublish"] and not claims["video"].get("roomAdmin")
    pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        pool.join(ticket.room, ticket.identity, token=ticket.token.jwt)
        [room] = [r for r in svc.gateway.snapshot(SERVER).rooms if r.room.name == ticket.room]
        assert [(p.identity, p.name) for p in room.participants] == [(ticket.identity, "Gus Guest")]
    finally:
        pool.close()
    assert "open sesame" not in " ".join(r.detail for r in audit_rows(svc, "join"))
    assert ticket.token.jwt not in " ".join(r.detail + r.target for r in audit_rows(svc, "join"))


def test_the_early_join_window_opens_the_room_and_later_meetings_refuse(svc: Services) -> None:
    soon = svc.meetings.schedule(HANA, draft(3, early_join_minutes=5))
    later = svc.meetings.schedule(HANA, draft(120, early_join_minutes=5))
    ticket = svc.joins.join(JoinRequest(slug(soon.join_url), "Early Bird"), "10.0.0.2")
    assert ticket.room in rooms(svc)
    assert svc.meetings.get(HANA, soon.id).occurrences[0].status == ACTIVE
    with pytest.raises(JoinRefused, match="not started yet"):
        svc.joins.join(JoinRequest(slug(later.join_url), "Too Early"), "10.0.0.2")
    assert later.occurrences[0].room_name not in rooms(svc)


def test_every_refusal_gets_no_token(svc: Services) -> None:
    public = svc.meetings.schedule(HANA, draft(password="right password"))
    private = svc.meetings.schedule(HANA, draft(private=True, invitees="Ann <ann@example.org>; bob@example.org"))
    ended = svc.meetings.schedule(HANA, draft())
    cancelled = svc.meetings.schedule(HANA, draft())
    svc.lifecycle.activate(ended.occurrences[0].id)
    svc.meetings.end_now(HANA, ended.occurrences[0].id)
    svc.meetings.cancel(HANA, cancelled.id)
    key = svc.meetings._invite_key
    now = datetime.now(timezone.utc)
    good = sign(key, Invite(public.id, 1, None, now + timedelta(hours=1)))
    cases = {
        "Wrong password": JoinRequest(slug(public.join_url), "X", password="wrong password"),
        "not on this meeting's list": JoinRequest(slug(private.join_url), "X", email="eve@example.org"),
        "ended": JoinRequest(slug(ended.join_url), "X"),
        "cancelled": JoinRequest(slug(cancelled.join_url), "X"),
        "not valid": JoinRequest(slug(public.join_url), "X", invite=good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")),
        "expired": JoinRequest(slug(public.join_url), "X", invite=sign(key, Invite(public.id, 1, None, now - timedelta(seconds=1)))),
        "another meeting": JoinRequest(slug(private.join_url), "X", invite=good),
        "no meeting at this link": JoinRequest("nope", "X"),
    }
    for expected, request in cases.items():
        with pytest.raises(JoinRefused, match=expected):
            svc.joins.join(request, f"10.1.0.{len(expected)}")
    assert grants(svc) == 0
    assert svc.joins.join(JoinRequest(slug(public.join_url), "X", invite=good), "10.1.0.99").identity.startswith("guest-")


def test_invites_are_bound_to_the_invitee_and_revoked_by_rotating(svc: Services) -> None:
    meeting = svc.meetings.schedule(HANA, draft(private=True, password="a password", invitees="ann@example.org, bob@example.org"))
    link = svc.meetings.invite_link(HANA, meeting.id, "ann@example.org")
    assert "a password" not in link
    invite = link.split("invite=", 1)[1]
    first = svc.joins.join(JoinRequest(slug(link), "Ann", email="bob@example.org", invite=invite), "10.2.0.1")
    again = svc.joins.join(JoinRequest(slug(link), "Ann again", invite=invite), "10.2.0.1")
    assert first.identity == again.identity  # the invitee's identity, whatever email was typed
    assert "ann" not in first.identity
    rotated = svc.meetings.rotate_link(HANA, meeting.id)
    with pytest.raises(JoinRefused, match="no meeting at this link"):
        svc.joins.join(JoinRequest(slug(link), "Ann", invite=invite), "10.2.0.1")
    with pytest.raises(JoinRefused, match="revoked"):
        svc.joins.join(JoinRequest(slug(rotated.join_url), "Ann", invite=invite), "10.2.0.1")
    with svc.sessions() as s:
        emails = set(s.scalars(select(JoinGrant.email)))
    assert emails == {"ann@example.org"}


def test_wrong_passwords_lock_one_address_out_of_one_meeting(svc: Services) -> None:
    meeting = svc.meetings.schedule(HANA, draft(password="the password"))
    other = svc.meetings.schedule(HANA, draft(password="the password"))
    for _ in range(5):
        with pytest.raises(JoinRefused, match="Wrong password"):
            svc.joins.join(JoinRequest(slug(meeting.join_url), "G", password="guess"), "10.3.0.1")
    with pytest.raises(JoinRefused, match="Too many failed attempts"):
        svc.joins.join(JoinRequest(slug(meeting.join_url), "G", password="the password"), "10.3.0.1")
    assert svc.joins.join(JoinRequest(slug(meeting.join_url), "G", password="the password"), "10.3.0.2")
    assert svc.joins.join(JoinRequest(slug(other.join_url), "G", password="the password"), "10.3.0.1")
    refused = [r for r in audit_rows(svc, "join") if r.result == "refused"]
    assert len(refused) == 6 and refused[4].detail.endswith("locked for 15 minutes")


# ----- the host's side --------------------------------------------------------------------------


def test_an_instant_meeting_has_its_room_when_it_returns(svc: Services) -> None:
    meeting = svc.meetings.start_instant(HANA, "Quick call", SERVER, minutes=30)
    occurrence = meeting.occurrences[0]
    assert occurrence.status == ACTIVE and occurrence.room_name in rooms(svc)
    assert timedelta(minutes=29) < occurrence.ends_at - datetime.now(timezone.utc) <= timedelta(minutes=30)


def test_end_for_everyone_deletes_the_room_and_disconnects_the_guest(svc: Services, livekit_server: DevServer) -> None:
    meeting = svc.meetings.start_instant(HANA, "Ending", SERVER)
    ticket = svc.joins.join(JoinRequest(slug(meeting.join_url), "Guest"), "10.4.0.1")
    pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        guest = pool.join(ticket.room, ticket.identity, token=ticket.token.jwt)
        with pytest.raises(NotFound):  # another host's meeting: refused, as if it did not exist
            svc.meetings.end_now(HUGO, meeting.occurrences[0].id)
        assert svc.meetings.end_now(HANA, meeting.occurrences[0].id).occurrences[0].status == ENDED
        assert pool.wait_disconnected(guest, timeout=10)
        assert pool.disconnect_reason(guest) == "ROOM_DELETED"
    finally:
        pool.close()
    assert ticket.room not in rooms(svc)
    assert [r.result for r in audit_rows(svc, "meeting.end_now")] == ["refused", "ok"]


def test_an_edit_while_the_scheduler_acts_keeps_both_changes(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    rule = Recurrence(freq="daily", count=3)
    meeting = svc.meetings.schedule(HANA, draft(3, early_join_minutes=5, recurrence=rule))
    first = meeting.occurrences[0]
    planned = svc.meetings._plan
    raced = []

    def plan_then_scheduler_acts(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not raced:  # the scheduler starts the first occurrence between the edit's read and write
            raced.append(svc.lifecycle.activate(first.id))
        return planned(*args, **kwargs)

    monkeypatch.setattr(svc.meetings, "_plan", plan_then_scheduler_acts)
    edited = svc.meetings.update(HANA, meeting.id, meeting.version, draft(3, early_join_minutes=5, recurrence=rule, title="Renamed"))
    assert raced == [True]
    assert edited.title == "Renamed"
    assert [o.status for o in edited.occurrences].count(ACTIVE) == 1
    assert next(o for o in edited.occurrences if o.status == ACTIVE).id == first.id
    assert len(edited.occurrences) == 3


def test_a_series_moves_and_cancels_one_occurrence_and_its_calendar_says_so(svc: Services) -> None:
    start = datetime(2030, 3, 25, 10, 0)  # a Monday; Berlin changes its clocks on the 31st
    series = svc.meetings.schedule(
        HANA, MeetingDraft(title="Stand-up; <b>daily</b>, \\ really", server=SERVER, start=start, end=start + timedelta(minutes=15),
                           time_zone="Europe/Berlin", recurrence=Recurrence(freq="weekdays", count=10)),
    )  # fmt: skip
    assert len(series.occurrences) == 10
    assert {o.starts_at.astimezone(timezone.utc).hour for o in series.occurrences} == {9, 8}  # 10:00 CET, then CEST
    second, third = series.occurrences[1], series.occurrences[2]
    moved = svc.meetings.move_occurrence(HANA, second.id, second.version, datetime(2030, 3, 26, 14, 0), datetime(2030, 3, 26, 14, 30))
    cancelled = svc.meetings.cancel_occurrence(HANA, third.id)
    assert cancelled.sequence == moved.sequence + 1 > series.sequence
    parsed = icalendar.Calendar.from_ical(svc.meetings.calendar(HANA, series.id))
    events = [c for c in parsed.walk("VEVENT")]
    main = next(e for e in events if "RECURRENCE-ID" not in e)
    override = next(e for e in events if "RECURRENCE-ID" in e)
    assert str(main["SUMMARY"]) == "Stand-up; <b>daily</b>, \\ really"
    assert main["UID"] == override["UID"] == series.uid
    assert int(main["SEQUENCE"]) == cancelled.sequence
    assert main["RRULE"]["FREQ"] == ["WEEKLY"] or main["RRULE"]["FREQ"] == ["DAILY"]
    exdates = main.get("EXDATE")
    exdates = exdates if isinstance(exdates, list) else [exdates]
    assert {d.dt.astimezone(timezone.utc) for ex in exdates for d in ex.dts} == {third.original_start}
    assert override["DTSTART"].dt.astimezone(timezone.utc) == datetime(2030, 3, 26, 13, 0, tzinfo=timezone.utc)


def test_a_cancelled_meeting_calendar_is_a_cancellation(svc: Services) -> None:
    meeting = svc.meetings.schedule(HANA, draft(60))
    svc.meetings.cancel(HANA, meeting.id)
    text = svc.meetings.calendar(HANA, meeting.id).decode()
    assert "STATUS:CANCELLED" in text and "METHOD:CANCEL" in text


# ----- attendance -------------------------------------------------------------------------------


def test_attendance_gives_each_participant_minutes_within_one_collection_interval(svc: Services, livekit_server: DevServer) -> None:
    svc.start_history()
    meeting = svc.meetings.start_instant(HANA, "Attended", SERVER)
    link = slug(meeting.join_url)
    pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    truth: dict[str, list[float]] = {}
    try:
        handles = {}
        for name in ("Ada", "Bo", "Cy"):
            ticket = svc.joins.join(JoinRequest(link, name), "10.5.0.1")
            handles[name] = (pool.join(ticket.room, ticket.identity, token=ticket.token.jwt), ticket.identity)
            truth[ticket.identity] = [time.monotonic()]
        time.sleep(4)
        pool.leave(handles["Bo"][0])
        truth[handles["Bo"][1]].append(time.monotonic())
        time.sleep(4)
        for name in ("Ada", "Cy"):
            pool.leave(handles[name][0])
            truth[handles[name][1]].append(time.monotonic())
    finally:
        pool.close()
    time.sleep(3)  # the collector notices the leaves within one interval (1 s here)
    rows = {r.identity: r for r in svc.meetings.attendance(HANA, meeting.occurrences[0].id)}
    assert {r.name for r in rows.values()} == {"Ada", "Bo", "Cy"}
    interval = svc.settings.collect_seconds
    for identity, (joined, left) in truth.items():
        seconds = rows[identity].minutes * 60
        # The join time is the server's own (whole seconds); the leave is seen within one interval.
        assert abs(seconds - (left - joined)) <= interval + 1.0, (identity, seconds, left - joined)
        assert rows[identity].last_leave is not None
    assert rows[handles["Bo"][1]].minutes < rows[handles["Ada"][1]].minutes


def test_a_cancel_records_the_status_it_changed_from(svc: Services) -> None:
    scheduled = svc.meetings.schedule(HANA, draft(60))
    running = svc.meetings.start_instant(HANA, "Running", SERVER)
    svc.meetings.cancel(HANA, scheduled.id)
    svc.meetings.cancel(HANA, running.id)
    with svc.sessions() as s:
        moves = {(t.occurrence_id, t.from_status, t.to_status) for t in s.scalars(select(Transition))}
    assert (scheduled.occurrences[0].id, "scheduled", "cancelled") in moves
    assert (running.occurrences[0].id, "active", "cancelled") in moves
    assert not any(a == b for _, a, b in moves)


def test_an_instant_meeting_lasts_as_long_as_asked(svc: Services) -> None:
    before = datetime.now(timezone.utc)
    meeting = svc.meetings.start_instant(HANA, "Exactly", SERVER, minutes=5)
    occurrence = meeting.occurrences[0]
    assert occurrence.ends_at - occurrence.starts_at == timedelta(minutes=5)
    assert occurrence.starts_at >= before.replace(microsecond=0)


def test_a_co_host_saving_an_edit_stays_co_host(svc: Services) -> None:
    meeting = svc.meetings.schedule(HANA, draft(60, cohosts=("hugo",)))
    shown = svc.meetings.get(HUGO, meeting.id)
    edited = svc.meetings.update(HUGO, meeting.id, shown.version, draft(60, description="changed by hugo", cohosts=shown.cohosts))
    assert edited.cohosts == ("hugo",) and edited.description == "changed by hugo"


def test_a_flood_while_locked_out_of_a_meeting_writes_one_audit_row(svc: Services) -> None:
    meeting = svc.meetings.schedule(HANA, draft(password="the password"))
    for _ in range(5):
        with pytest.raises(JoinRefused, match="Wrong password"):
            svc.joins.join(JoinRequest(slug(meeting.join_url), "G", password="guess"), "10.4.0.1")
    for _ in range(30):
        with pytest.raises(JoinRefused, match="Too many failed attempts"):
            svc.joins.join(JoinRequest(slug(meeting.join_url), "G", password="guess"), "10.4.0.1")
    locked = [r for r in audit_rows(svc, "join") if r.detail.startswith("locked after repeated failures")]
    assert len(locked) == 1, [r.detail for r in locked]
