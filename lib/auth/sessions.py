"""Sign-in sessions: a random token in a signed, HttpOnly, SameSite=Lax cookie, and a row per
session holding only the token's SHA-256, its absolute expiry and when it was last used.

A cookie counts only when its signature matches this installation's key, its session row
exists, neither the absolute nor the idle limit has passed, and the user is not disabled.
Anything else (tampered, expired, revoked, foreign) is treated as no session at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import LoginSession, User
from .audit import AuditLog

COOKIE_NAME = "lkdash_session"
TOUCH_EVERY = timedelta(seconds=60)  # write last_seen at most this often


@dataclass(frozen=True)
class CurrentUser:
    username: str
    role: str
    expires_at: datetime


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


class SessionService:
    def __init__(
        self, sessions: sessionmaker[Session], key: bytes, lifetime: timedelta, idle: timedelta, audit: AuditLog | None = None
    ) -> None:
        self._sessions = sessions
        self._key = key
        self.lifetime = lifetime
        self.idle = idle
        self._audit = audit

    def _mac(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def create(self, user_id: int) -> tuple[str, datetime]:
        """A new session for `user_id`: the cookie value and when it expires."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        expires = now + self.lifetime
        with self._sessions.begin() as session:
            session.add(LoginSession(token_hash=self._hash(token), user_id=user_id, created_at=now, last_seen_at=now, expires_at=expires))
            session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
        return f"{token}.{self._mac(token)}", expires

    def _token(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > 256 or "." not in cookie:
            return None
        token, mac = cookie.rsplit(".", 1)
        # As bytes: compare_digest raises TypeError on a non-ASCII str, and the cookie is the client's.
        return token if hmac.compare_digest(mac.encode(), self._mac(token).encode()) else None

    def resolve(self, cookie: str | None, *, touch: bool = True) -> CurrentUser | None:
        """The signed-in user behind a cookie value, or None. `touch` counts this as activity."""
        token = self._token(cookie)
        if token is None:
            return None
        now = datetime.now(timezone.utc)
        with self._sessions.begin() as session:
            row = session.execute(
                select(LoginSession, User).join(User, User.id == LoginSession.user_id).where(LoginSession.token_hash == self._hash(token))
            ).one_or_none()
            if row is None:
                return None
            login, user = row
            if user.disabled or _utc(login.expires_at) <= now or now - _utc(login.last_seen_at) > self.idle:
                session.delete(login)
                return None
            if touch and now - _utc(login.last_seen_at) >= TOUCH_EVERY:
                login.last_seen_at = now
            return CurrentUser(user.username, user.role, _utc(login.expires_at))

    def csrf_token(self, cookie: str | None) -> str | None:
        """The token a browser sends (X-CSRF-Token) with a state-changing API request made with
        this session's cookie: derived from the session, so only a page that could read an API
        answer of this origin knows it; another site's form or fetch cannot."""
        token = self._token(cookie)
        return self._mac("api-csrf." + token) if token is not None else None

    def sign_out(self, cookie: str | None, address: str) -> None:
        """End the session behind `cookie` (if any) and audit it."""
        user = self.resolve(cookie, touch=False)
        self.revoke(cookie)
        if user is not None and self._audit is not None:
            self._audit.record(user.username, "logout", user.username, address=address)

    def revoke(self, cookie: str | None) -> None:
        token = self._token(cookie)
        if token is None:
            return
        with self._sessions.begin() as session:
            session.execute(delete(LoginSession).where(LoginSession.token_hash == self._hash(token)))
