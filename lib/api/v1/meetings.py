"""/api/v1/meetings and /api/v1/join: the meetings service (lib/meetings/service.py) and the
public join (lib/meetings/join.py) over HTTP. Routes only translate: a request model into a
service call, its result into a response model."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from ...meetings.attendance import AttendanceRow, attendance_csv
from ...meetings.join import JoinRequest
from ...meetings.recurrence import FREQUENCIES, MAX_INTERVAL, MAX_OCCURRENCES, Recurrence, RecurrenceError
from ...meetings.service import INSTANT_MINUTES, MeetingDraft
from ...meetings.views import MeetingRow, MeetingView, OccurrenceView
from ...auth.policy import Invalid
from . import cursors
from .deps import Caller, address, caller, limiter, services
from .idempotency import run_once
from .problems import ApiProblem
from .schema import ERRORS, MAX_ID, Id, Strict

router = APIRouter(tags=["meetings"])
join_router = APIRouter(tags=["join"])
HOSTS = caller("host_meetings")
Status = Literal["scheduled", "active", "ended", "cancelled"]
Frequency = Literal[FREQUENCIES]  # type: ignore[valid-type]


class RecurrenceIn(Strict):
    freq: Frequency
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(default_factory=list, max_length=7, description="0 Monday .. 6 Sunday; weekly only")
    interval: int = Field(1, ge=1, le=MAX_INTERVAL)
    until: date | None = Field(None, description="last local date, inclusive (or give count)")
    count: int | None = Field(None, ge=1, le=MAX_OCCURRENCES)

    def rule(self) -> Recurrence:
        try:
            return Recurrence(self.freq, tuple(self.weekdays), self.interval, self.until, self.count)
        except RecurrenceError as exc:
            raise Invalid(str(exc)) from None


class MeetingIn(Strict):
    """A meeting to schedule (a series with `recurrence`). `start` and `end` are wall-clock
    times in `time_zone`, without an offset; `fold` picks the first (0) or second (1) of a time
    that happens twice at a clock change."""

    title: str = Field(min_length=1, max_length=200)
    server: str = Field(min_length=1, max_length=64)
    start: datetime
    end: datetime
    time_zone: str = Field("UTC", max_length=64)
    fold: Literal[0, 1] | None = None
    description: str = Field("", max_length=20_000)
    private: bool = False
    password: str | None = Field(None, max_length=200, description="empty or absent: none")
    invitees: list[Annotated[str, Field(max_length=320)]] = Field(default_factory=list, max_length=1000)
    cohosts: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)
    max_participants: int = Field(0, ge=0, le=10_000)
    early_join_minutes: int = Field(5, ge=0, le=120)
    guests_before_host: bool = False
    keep_chat: bool = False
    recurrence: RecurrenceIn | None = None

    def draft(self) -> MeetingDraft:
        for t in (self.start, self.end):
            if t.tzinfo is not None:
                raise Invalid("start and end are wall-clock times in time_zone: give them without an offset.")
        return MeetingDraft(
            title=self.title, server=self.server, start=self.start, end=self.end, time_zone=self.time_zone,
            description=self.description, fold=self.fold, private=self.private, password=self.password,
            invitees=None if self.invitees is None else "\n".join(self.invitees), cohosts=tuple(self.cohosts), max_participants=self.max_participants,
            early_join_minutes=self.early_join_minutes, guests_before_host=self.guests_before_host, keep_chat=self.keep_chat,
            recurrence=self.recurrence.rule() if self.recurrence else None,
        )  # fmt: skip


class MeetingUpdate(MeetingIn):
    """The whole meeting as it should be, as read at `version`. `password` absent keeps the
    one set, "" removes it; `invitees` absent keeps the list."""

    version: int = Field(ge=0, le=MAX_ID)
    invitees: list[Annotated[str, Field(max_length=320)]] | None = Field(None, max_length=1000)  # type: ignore[assignment]


class InstantIn(Strict):
    """A meeting that starts now; its room exists when the answer comes."""

    title: str = Field(min_length=1, max_length=200)
    server: str = Field(min_length=1, max_length=64)
    minutes: int = Field(INSTANT_MINUTES, ge=1, le=14 * 24 * 60, description="at most DASHBOARD_MEETING_MAX_HOURS")
    time_zone: str = Field("UTC", max_length=64)
    private: bool = False
    password: str | None = Field(None, max_length=200)
    invitees: list[Annotated[str, Field(max_length=320)]] = Field(default_factory=list, max_length=1000)
    max_participants: int = Field(0, ge=0, le=10_000)
    guests_before_host: bool = True
    keep_chat: bool = False


class OccurrenceOut(BaseModel):
    id: int
    meeting_id: int
    starts_at: datetime
    ends_at: datetime
    original_start: datetime
    moved: bool
    status: Status
    room: str
    version: int
    started_at: datetime | None
    ended_at: datetime | None
    waiting_since: datetime | None = Field(description="the scheduler could not start or end it since then")
    last_error: str

    @classmethod
    def of(cls, o: OccurrenceView) -> OccurrenceOut:
        return cls(
            id=o.id, meeting_id=o.meeting_id, starts_at=o.starts_at, ends_at=o.ends_at, original_start=o.original_start, moved=o.moved,
            status=o.status, room=o.room_name, version=o.version, started_at=o.started_at, ended_at=o.ended_at,
            waiting_since=o.waiting_since, last_error=o.last_error,
        )  # fmt: skip


class RecurrenceOut(BaseModel):
    freq: str
    weekdays: list[int]
    interval: int
    until: date | None
    count: int | None


class MeetingOut(BaseModel):
    id: int
    title: str
    description: str
    status: Status
    host: str
    cohosts: list[str]
    server: str
    time_zone: str
    instant: bool
    private: bool
    has_password: bool
    max_participants: int
    early_join_minutes: int
    guests_before_host: bool
    keep_chat: bool
    recurrence: RecurrenceOut | None
    invitees: list[str]
    occurrences: list[OccurrenceOut]
    join_url: str = Field(description="the link to the join form; it holds no credential")
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, m: MeetingView) -> MeetingOut:
        r = m.recurrence
        return cls(
            id=m.id, title=m.title, description=m.description, status=m.status, host=m.host, cohosts=list(m.cohosts), server=m.server,
            time_zone=m.time_zone, instant=m.instant, private=m.private, has_password=m.has_password, max_participants=m.max_participants,
            early_join_minutes=m.early_join_minutes, guests_before_host=m.guests_before_host, keep_chat=m.keep_chat,
            recurrence=RecurrenceOut(freq=r.freq, weekdays=list(r.weekdays), interval=r.interval, until=r.until, count=r.count) if r else None,
            invitees=list(m.invitees), occurrences=[OccurrenceOut.of(o) for o in m.occurrences], join_url=m.join_url,
            version=m.version, created_at=m.created_at, updated_at=m.updated_at,
        )  # fmt: skip


class MeetingListItem(BaseModel):
    occurrence: OccurrenceOut
    meeting_id: int
    title: str
    host: str
    server: str
    private: bool
    series: bool
    mine: bool

    @classmethod
    def of(cls, row: MeetingRow) -> MeetingListItem:
        return cls(
            occurrence=OccurrenceOut.of(row.occurrence), meeting_id=row.meeting_id, title=row.title, host=row.host,
            server=row.server, private=row.private, series=row.series, mine=row.mine,
        )  # fmt: skip


class MeetingPage(BaseModel):
    items: list[MeetingListItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class InviteesIn(Strict):
    emails: list[Annotated[str, Field(max_length=320)]] = Field(min_length=1, max_length=1000)


class InviteesOut(BaseModel):
    meeting_id: int
    invitees: list[str]


class AttendanceOut(BaseModel):
    name: str
    identity: str
    email: str
    first_join: datetime
    last_leave: datetime | None
    minutes: float
    exact: bool = Field(description="every leave was seen by a webhook; none inferred from a snapshot")
    kind: str

    @classmethod
    def of(cls, a: AttendanceRow) -> AttendanceOut:
        return cls(**a.__dict__)


class JoinIn(Strict):
    link: str = Field(min_length=1, max_length=200, description="the m= part of the meeting's join link")
    name: str = Field(min_length=1, max_length=128)
    email: str = Field("", max_length=320)
    password: str = Field("", max_length=200)
    invite: str = Field("", max_length=2000, description="the invite= part of a personal invitation link")


class JoinOut(BaseModel):
    token: str = Field(description="the LiveKit access token, for this participant only")
    server_url: str
    room: str
    identity: str
    title: str
    occurrence_id: int
    ends_at: datetime
    expires_at: datetime


# ----- routes --------------------------------------------------------------------------------


@router.get("/meetings", response_model=MeetingPage, responses=ERRORS, summary="List meeting occurrences")
def list_meetings(
    request: Request,
    who: Caller = Depends(HOSTS),
    status: Annotated[list[Status] | None, Query(description="any of these statuses")] = None,
    since: Annotated[datetime | None, Query(description="ending at or after (with offset)")] = None,
    until: Annotated[datetime | None, Query(description="starting before (with offset)")] = None,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> MeetingPage:
    rows = services(request).meetings.list(
        who.actor, statuses=tuple(status or ()), since=cursors.require_offset(since, "since"), until=cursors.require_offset(until, "until"), mine=mine,
        limit=limit + 1, after=cursors.decode(cursor),
    )  # fmt: skip
    page = rows[:limit]
    return MeetingPage(items=[MeetingListItem.of(r) for r in page], next_cursor=cursors.encode(page[-1].occurrence.starts_at, page[-1].occurrence.id) if len(rows) > limit else None)


@router.post("/meetings", status_code=201, response_model=MeetingOut, responses=ERRORS, summary="Schedule a meeting or a series")
def create_meeting(
    body: MeetingIn, request: Request, who: Caller = Depends(HOSTS),
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response:  # fmt: skip
    svc = services(request)
    return run_once(svc.sessions, request, who, body.model_dump_json(), lambda: (201, MeetingOut.of(svc.meetings.schedule(who.actor, body.draft())).model_dump(mode="json")))


@router.post("/meetings/instant", status_code=201, response_model=MeetingOut, responses=ERRORS, summary="Start a meeting now")
def start_instant(
    body: InstantIn, request: Request, who: Caller = Depends(HOSTS),
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response:  # fmt: skip
    svc = services(request)

    def start() -> tuple[int, object]:
        meeting = svc.meetings.start_instant(
            who.actor, body.title, body.server, minutes=body.minutes, time_zone=body.time_zone, private=body.private,
            password=body.password, invitees="\n".join(body.invitees) or None, max_participants=body.max_participants,
            guests_before_host=body.guests_before_host, keep_chat=body.keep_chat,
        )  # fmt: skip
        return 201, MeetingOut.of(meeting).model_dump(mode="json")

    return run_once(svc.sessions, request, who, body.model_dump_json(), start)


@router.get("/meetings/{meeting_id}", response_model=MeetingOut, responses=ERRORS, summary="One meeting with its occurrences")
def get_meeting(meeting_id: Id, request: Request, who: Caller = Depends(HOSTS)) -> MeetingOut:
    return MeetingOut.of(services(request).meetings.get(who.actor, meeting_id))


@router.put("/meetings/{meeting_id}", response_model=MeetingOut, responses=ERRORS, summary="Change a meeting (or a whole series)")
def update_meeting(meeting_id: Id, body: MeetingUpdate, request: Request, who: Caller = Depends(HOSTS)) -> MeetingOut:
    return MeetingOut.of(services(request).meetings.update(who.actor, meeting_id, body.version, body.draft()))


@router.post("/meetings/{meeting_id}/cancel", response_model=MeetingOut, responses=ERRORS, summary="Cancel a meeting (every occurrence not over)")
def cancel_meeting(meeting_id: Id, request: Request, who: Caller = Depends(HOSTS)) -> MeetingOut:
    return MeetingOut.of(services(request).meetings.cancel(who.actor, meeting_id))


@router.post("/occurrences/{occurrence_id}/cancel", response_model=MeetingOut, responses=ERRORS, summary="Cancel one occurrence")
def cancel_occurrence(occurrence_id: Id, request: Request, who: Caller = Depends(HOSTS)) -> MeetingOut:
    return MeetingOut.of(services(request).meetings.cancel_occurrence(who.actor, occurrence_id))


@router.post("/occurrences/{occurrence_id}/end", response_model=MeetingOut, responses=ERRORS, summary="End an occurrence now for everyone (its room is deleted)")
def end_occurrence(occurrence_id: Id, request: Request, who: Caller = Depends(HOSTS)) -> MeetingOut:
    return MeetingOut.of(services(request).meetings.end_now(who.actor, occurrence_id))


@router.get("/meetings/{meeting_id}/invitees", response_model=InviteesOut, responses=ERRORS, summary="The invitees of a private meeting")
def list_invitees(meeting_id: Id, request: Request, who: Caller = Depends(HOSTS)) -> InviteesOut:
    return InviteesOut(meeting_id=meeting_id, invitees=list(services(request).meetings.get(who.actor, meeting_id).invitees))


@router.post("/meetings/{meeting_id}/invitees", response_model=InviteesOut, responses=ERRORS, summary="Add invitees")
def add_invitees(meeting_id: Id, body: InviteesIn, request: Request, who: Caller = Depends(HOSTS)) -> InviteesOut:
    meeting = services(request).meetings.set_invitees(who.actor, meeting_id, "\n".join(body.emails), add=True)
    return InviteesOut(meeting_id=meeting_id, invitees=list(meeting.invitees))


@router.delete("/meetings/{meeting_id}/invitees/{email}", response_model=InviteesOut, responses=ERRORS, summary="Remove an invitee")
def remove_invitee(meeting_id: Id, email: str, request: Request, who: Caller = Depends(HOSTS)) -> InviteesOut:
    meeting = services(request).meetings.remove_invitee(who.actor, meeting_id, email)
    return InviteesOut(meeting_id=meeting_id, invitees=list(meeting.invitees))


@router.get(
    "/meetings/{meeting_id}/calendar.ics", responses={**ERRORS, 200: {"content": {"text/calendar": {}}, "description": "an iCalendar file"}},
    response_class=Response, summary="The meeting as an iCalendar file",
)  # fmt: skip
def calendar(meeting_id: Id, request: Request, who: Caller = Depends(HOSTS)) -> Response:
    body = services(request).meetings.calendar(who.actor, meeting_id)
    return Response(body, media_type="text/calendar; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="meeting-{meeting_id}.ics"'})


@router.get(
    "/occurrences/{occurrence_id}/attendance", response_model=list[AttendanceOut],
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}}, "description": "who attended"}},
    summary="Who attended an occurrence (JSON, or CSV with format=csv)",
)  # fmt: skip
def attendance(occurrence_id: Id, request: Request, who: Caller = Depends(HOSTS), format: Literal["json", "csv"] = "json") -> object:
    rows = services(request).meetings.attendance(who.actor, occurrence_id)
    if format == "csv":
        return Response(attendance_csv(rows), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="attendance-{occurrence_id}.csv"'})
    return [AttendanceOut.of(r) for r in rows]


@join_router.post("/join", response_model=JoinOut, responses=ERRORS, summary="A guest's join token (public; limited per address)")
def join(body: JoinIn, request: Request) -> JoinOut:
    where = address(request)
    wait = limiter(request).take(f"join:{where}")
    if wait > 0:
        raise ApiProblem(429, "rate_limited", "Too many join requests from this address; slow down.", headers={"Retry-After": str(max(1, math.ceil(wait)))})
    ticket = services(request).joins.join(JoinRequest(body.link, body.name, body.email, body.password, body.invite), where)
    return JoinOut(
        token=ticket.token.jwt, server_url=ticket.server_url, room=ticket.room, identity=ticket.identity, title=ticket.title,
        occurrence_id=ticket.occurrence_id, ends_at=ticket.ends_at, expires_at=ticket.token.expires_at,
    )  # fmt: skip
