"""The public join: a guest with a meeting's link, a name, an email for a private meeting and
the password (or the link's signed invite) gets a LiveKit token for the meeting's room.

A token is issued only while an occurrence is under way or inside its early-join window (which
starts it, creating the room), never for one later, ended or cancelled. It lives 15 minutes or
until the occurrence's end, whichever comes first, because a token cannot be revoked and a
guest holding one re-creates a deleted room. Failed passwords, emails and invites are counted
per meeting and address: after 5 in 15 minutes that address is refused for the rest of the
window, without checking anything. Every outcome is audited; tokens never are, nor logged.
The identity in the room is opaque: never the email (the list is a gate, not proof of who
someone is, and an email in the room would show it to everyone there).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from ..auth import passwords
from ..auth.audit import AuditLog
from ..auth.policy import ActionError
from ..livekit.gateway import LiveKitGateway
from ..livekit.tokens import Grants, IssuedToken, TokenRequest, build_token
from ..models import Invitee, JoinAttempt, JoinGrant, Meeting, Occurrence, as_utc, utcnow
from . import invites
from .emails import EmailError, email_key, normalize_email
from .lifecycle import Lifecycle, LifecycleError
from .views import ACTIVE, CANCELLED, ENDED, SCHEDULED

log = logging.getLogger(__name__)

FAILURES = 5
WINDOW = timedelta(minutes=15)
TOKEN_LIFETIME = timedelta(minutes=15)
MIN_TOKEN = timedelta(seconds=30)  # closer to the end than this, there is nothing to join
MAX_NAME = 64
MAX_SLUG = 64


class JoinRefused(ActionError):
    """No token: the message tells the guest why (never which of password or email was wrong
    beyond what they typed themselves)."""


@dataclass(frozen=True)
class JoinRequest:
    link: str  # the meeting's link slug
    name: str
    email: str = ""
    password: str = ""
    invite: str = ""


@dataclass(frozen=True)
class JoinTicket:
    token: IssuedToken  # its jwt is for the guest's browser only
    server_url: str
    room: str
    identity: str
    title: str
    occurrence_id: int
    ends_at: datetime
    keep_chat: bool


@dataclass(frozen=True)
class JoinInfo:
    """What the join form may show before anyone proves anything: the link itself is the key
    to this much (no invitee, host or password is shown)."""

    title: str
    private: bool
    needs_password: bool
    status: str  # of the occurrence the link leads to now
    starts_at: datetime | None
    opens_at: datetime | None
    ends_at: datetime | None


class JoinService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        gateway: LiveKitGateway,
        lifecycle: Lifecycle,
        invite_key: bytes,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._gateway = gateway
        self._lifecycle = lifecycle
        self._key = invite_key
        # (meeting, address) -> when a refusal while locked was last audited: a flood of
        # attempts while locked out writes one row per lockout window, not one per attempt.
        self._locked_audited: dict[tuple[int, str], datetime] = {}
        self._locked_mutex = threading.Lock()
        self._clock = clock

    # ----- what the form shows -------------------------------------------------------------------

    def describe(self, link: str) -> JoinInfo | None:
        with self._sessions() as s:
            m = self._meeting(s, link)
            if m is None:
                return None
            o = self._occurrence(s, m, self._clock())
            if o is None:
                return JoinInfo(m.title, m.private, m.password_hash is not None, ENDED, None, None, None)
            opens = as_utc(o.starts_at) - timedelta(minutes=m.early_join_minutes)
            return JoinInfo(m.title, m.private, m.password_hash is not None, o.status, as_utc(o.starts_at), opens, as_utc(o.ends_at))

    @staticmethod
    def _meeting(s: Session, link: str) -> Meeting | None:
        if not link or len(link) > MAX_SLUG:
            return None
        return s.scalars(select(Meeting).where(Meeting.link_slug == link)).first()

    @staticmethod
    def _occurrence(s: Session, m: Meeting, now: datetime) -> Occurrence | None:
        """The occurrence the link leads to now: the one under way, else the next one not yet
        over, else the last one (to say it ended or was cancelled)."""
        rows = s.scalars(select(Occurrence).where(Occurrence.meeting_id == m.id).order_by(Occurrence.starts_at)).all()
        active = [o for o in rows if o.status == ACTIVE]
        if active:
            return active[0]
        ahead = [o for o in rows if o.status == SCHEDULED and as_utc(o.ends_at) > now]
        if ahead:
            return ahead[0]
        return rows[-1] if rows else None

    # ----- the join ------------------------------------------------------------------------------

    def join(self, request: JoinRequest, address: str) -> JoinTicket:
        now = self._clock()
        target = f"link {request.link[:6]}…"  # a link is a key: the audit keeps only its start
        with self._sessions() as s:
            m = self._meeting(s, request.link)
            if m is None:
                self._audit.record("guest", "join", target, "refused", "no meeting at this link", address)
                raise JoinRefused("There is no meeting at this link. Check the link, or ask the host for a new one.")
            target = f"meeting {m.id}"
            meeting_id = m.id
        if self._locked(meeting_id, address, now):
            if self._first_locked_refusal(meeting_id, address, now):
                detail = "locked after repeated failures (further attempts while locked are not recorded one by one)"
                self._audit.record("guest", "join", target, "refused", detail, address)
            raise JoinRefused("Too many failed attempts from here. Wait 15 minutes and try again.")
        name = " ".join(request.name.split())
        if not name or len(name) > MAX_NAME:
            raise JoinRefused(f"Enter your name (up to {MAX_NAME} characters).")
        with self._sessions() as s:
            m = s.get(Meeting, meeting_id)
            o = self._occurrence(s, m, now)
            self._check_open(m, o, now)
            try:
                email = self._check_credentials(s, m, request, now)
            except JoinRefused as exc:
                self._failed(m.id, address, now, str(exc), target)
                raise
            occurrence_id, status, ends_at = o.id, o.status, as_utc(o.ends_at)
            server, room, title, keep_chat = m.server, o.room_name, m.title, m.keep_chat
        if status == SCHEDULED:
            try:
                self._lifecycle.activate(occurrence_id, "join")
            except LifecycleError:
                self._audit.record("guest", "join", target, "failed", "the meeting's server did not answer", address)
                raise JoinRefused("The meeting could not open: its server does not answer. Try again in a minute.") from None
        identity = self._identity(meeting_id, email)
        config = self._gateway.server_config(server)
        token = build_token(
            config.api_key, config.api_secret,
            TokenRequest(room=room, identity=identity, name=name, ttl=min(TOKEN_LIFETIME, ends_at - now), grants=Grants.guest()),
        )  # fmt: skip
        with self._sessions.begin() as s:
            s.add(JoinAttempt(meeting_id=meeting_id, address=address[:64], at=now, succeeded=True))
            s.add(JoinGrant(occurrence_id=occurrence_id, identity=identity, name=name, email=email, host=False, issued_at=now, expires_at=token.expires_at))
        self._audit.record("guest", "join", target, "ok", f"{name!r} as {identity}" + (f" ({email})" if email else ""), address)
        return JoinTicket(token, config.ws_url, room, identity, title, occurrence_id, ends_at, keep_chat)

    def _check_open(self, m: Meeting, o: Occurrence | None, now: datetime) -> None:
        if o is None or o.status == ENDED or (o.status == SCHEDULED and as_utc(o.ends_at) <= now):
            raise JoinRefused("This meeting has ended.")
        if o.status == CANCELLED:
            raise JoinRefused("This meeting was cancelled.")
        if as_utc(o.ends_at) - now < MIN_TOKEN:
            raise JoinRefused("This meeting is ending.")
        opens = as_utc(o.starts_at) - timedelta(minutes=m.early_join_minutes)
        if o.status == SCHEDULED and now < opens:
            raise JoinRefused(f"This meeting has not started yet: it opens at {opens:%Y-%m-%d %H:%M} UTC.")

    def _check_credentials(self, s: Session, m: Meeting, request: JoinRequest, now: datetime) -> str | None:
        """The email the guest joins with (None for a public meeting), once the invite, or the
        email and password, let them in."""
        if request.invite:
            try:
                invite = invites.verify(self._key, request.invite, meeting_id=m.id, link_version=m.link_version, now=now)
            except invites.InviteError as exc:
                raise JoinRefused(str(exc)) from None
            if m.private and (invite.email is None or s.get(Invitee, (m.id, invite.email)) is None):
                raise JoinRefused("This invite's address is no longer on the meeting's list.")
            return invite.email if m.private else None
        email = None
        if m.private:
            try:
                email = email_key(normalize_email(request.email))
            except EmailError as exc:
                raise JoinRefused(f"Enter the email address you were invited with ({exc}).") from None
        password_ok = passwords.verify(request.password, m.password_hash) if m.password_hash else True
        listed = s.get(Invitee, (m.id, email)) is not None if m.private else True
        if not password_ok:
            raise JoinRefused("Wrong password for this meeting.")
        if not listed:
            raise JoinRefused("That email address is not on this meeting's list.")
        return email

    def _identity(self, meeting_id: int, email: str | None) -> str:
        """An invitee keeps one identity per meeting (a second tab replaces the first, as LiveKit
        does with a duplicate identity), derived so it reveals nothing of the email; a guest of a
        public meeting gets a fresh one."""
        if email is None:
            return f"guest-{secrets.token_hex(8)}"
        digest = hmac.new(self._key, f"identity\0{meeting_id}\0{email}".encode(), hashlib.sha256).hexdigest()
        return f"guest-{digest[:16]}"

    # ----- slowing guesses -----------------------------------------------------------------------

    def _locked(self, meeting_id: int, address: str, now: datetime) -> bool:
        with self._sessions() as s:
            failures = s.scalar(
                select(func.count()).select_from(JoinAttempt).where(
                    JoinAttempt.meeting_id == meeting_id, JoinAttempt.address == address[:64],
                    JoinAttempt.succeeded.is_(False), JoinAttempt.at > now - WINDOW,
                )  # fmt: skip
            )
        return (failures or 0) >= FAILURES

    def _first_locked_refusal(self, meeting_id: int, address: str, now: datetime) -> bool:
        key = (meeting_id, address[:64])
        with self._locked_mutex:
            last = self._locked_audited.get(key)
            if last is not None and now - last < WINDOW:
                return False
            if len(self._locked_audited) > 10_000:  # forget lockouts long over
                self._locked_audited = {k: t for k, t in self._locked_audited.items() if now - t < WINDOW}
            self._locked_audited[key] = now
            return True

    def _failed(self, meeting_id: int, address: str, now: datetime, reason: str, target: str) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(JoinAttempt).where(JoinAttempt.at <= now - WINDOW))
            s.add(JoinAttempt(meeting_id=meeting_id, address=address[:64], at=now, succeeded=False))
        locked = self._locked(meeting_id, address, now)
        self._audit.record("guest", "join", target, "refused", reason + ("; locked for 15 minutes" if locked else ""), address)
