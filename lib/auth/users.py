"""Users: create, disable, change role, reset password, and sign-in with a lockout after
repeated failures (per user name and per address, 5 in 15 minutes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..models import LoginAttempt, LoginSession, User
from . import passwords
from .audit import AuditLog
from .roles import ROLES

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
# One message for a wrong password, an unknown user and a disabled account alike.
SIGN_IN_FAILED = "Wrong user name or password."
LOCKED_OUT = "Too many failed sign-ins. Wait 15 minutes and try again."


class UserError(ValueError):
    """A user change breaks a rule; the message says which."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class SignInResult:
    user: UserInfo | None
    message: str = ""  # what to tell the person when `user` is None


def _utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _info(u: User) -> UserInfo:
    return UserInfo(u.id, u.username, u.role, u.disabled, _utc(u.created_at), _utc(u.last_login_at) if u.last_login_at else None)


def validate_username(username: str) -> str:
    username = username.strip()
    if not _USERNAME.match(username):
        raise UserError("A user name is 2-64 characters: letters, digits, '.', '_', '@' or '-', starting with a letter or digit.")
    return username


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"The role must be one of: {', '.join(ROLES)}.")
    return role


class UserService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog) -> None:
        self._sessions = sessions
        self._audit = audit

    # ----- administration ------------------------------------------------------------------

    def list(self) -> list[UserInfo]:
        with self._sessions() as session:
            return [_info(u) for u in session.scalars(select(User).order_by(User.username)).all()]

    def get(self, username: str) -> UserInfo | None:
        with self._sessions() as session:
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
            return _info(user) if user else None

    def count(self) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count(User.id))) or 0

    def create(self, username: str, password: str, role: str, *, actor: str = "system") -> UserInfo:
        username, role = validate_username(username), validate_role(role)
        try:
            hashed = passwords.hash_password(password)
        except passwords.PasswordError as exc:
            raise UserError(str(exc)) from None
        try:
            with self._sessions.begin() as session:
                user = User(username=username, password_hash=hashed, role=role)
                session.add(user)
                session.flush()
                info = _info(user)
        except IntegrityError:
            raise UserError(f"A user named '{username}' already exists.") from None
        self._audit.record(actor, "user.create", username, detail=f"role {role}")
        return info

    def _change(self, username: str, actor: str, action: str, detail: str, change) -> UserInfo:  # type: ignore[no-untyped-def]
        with self._sessions.begin() as session:
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
            if user is None:
                raise UserError(f"No user named '{username}'.")
            change(session, user)
            info = _info(user)
        self._audit.record(actor, action, username, detail=detail)
        return info

    def _guard_last_admin(self, session: Session, user: User, losing: str) -> None:
        if user.role != "admin" or user.disabled:
            return
        admins = session.scalar(select(func.count(User.id)).where(User.role == "admin", User.disabled.is_(False)))
        if admins <= 1:
            raise UserError(f"'{user.username}' is the last active admin and cannot {losing}.")

    def set_role(self, username: str, role: str, *, actor: str) -> UserInfo:
        role = validate_role(role)

        def change(session: Session, user: User) -> None:
            if role != "admin":
                self._guard_last_admin(session, user, "lose the admin role")
            user.role = role

        return self._change(username, actor, "user.role", f"role {role}", change)

    def set_disabled(self, username: str, disabled: bool, *, actor: str) -> UserInfo:
        def change(session: Session, user: User) -> None:
            if disabled:
                self._guard_last_admin(session, user, "be disabled")
                # A disabled user is signed out everywhere at once.
                for s in session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)).all():
                    session.delete(s)
            user.disabled = disabled

        return self._change(username, actor, "user.disable" if disabled else "user.enable", "", change)

    def reset_password(self, username: str, password: str, *, actor: str) -> UserInfo:
        try:
            hashed = passwords.hash_password(password)
        except passwords.PasswordError as exc:
            raise UserError(str(exc)) from None

        def change(session: Session, user: User) -> None:
            user.password_hash = hashed
            for s in session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)).all():
                session.delete(s)

        return self._change(username, actor, "user.password", "", change)

    def check_password(self, username: str, password: str) -> bool:
        with self._sessions() as session:
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
            return passwords.verify(password, user.password_hash if user else None)

    def ensure_first_admin(self, username: str, password: str | None) -> UserInfo | None:
        """Create the first admin from DASHBOARD_ADMIN_PASSWORD when there is no user at all."""
        if not password or self.count() > 0:
            return None
        return self.create(username, password, "admin", actor="system")

    # ----- sign-in -------------------------------------------------------------------------

    def _locked(self, session: Session, username: str, address: str, now: datetime) -> bool:
        since = now - LOCKOUT_WINDOW
        failures = lambda column, value: session.scalar(  # noqa: E731
            select(func.count(LoginAttempt.id)).where(column == value, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since)
        )
        return failures(LoginAttempt.username, username) >= LOCKOUT_FAILURES or failures(LoginAttempt.address, address) >= LOCKOUT_FAILURES

    def sign_in(self, username: str, password: str, address: str) -> SignInResult:
        """Check a user name and password; the messages never tell whether the user exists."""
        username = username.strip()[:64]
        now = datetime.now(timezone.utc)
        with self._sessions.begin() as session:
            if self._locked(session, username, address, now):
                session.add(LoginAttempt(username=username, address=address, at=now, succeeded=False))
                locked = True
            else:
                locked = False
                user = session.scalars(select(User).where(User.username == username)).one_or_none()
                ok = passwords.verify(password, user.password_hash if user else None)
                ok = ok and user is not None and not user.disabled
                session.add(LoginAttempt(username=username, address=address, at=now, succeeded=ok))
                if ok:
                    user.last_login_at = now
                    info = _info(user)
        if locked:
            self._audit.record(username or "(empty)", "login.refused", username, "refused", "locked out after repeated failures", address)
            return SignInResult(None, LOCKED_OUT)
        if not ok:
            self._audit.record(username or "(empty)", "login.failed", username, "failed", "", address)
            return SignInResult(None, SIGN_IN_FAILED)
        self._audit.record(username, "login", username, "ok", "", address)
        return SignInResult(info)

    def prune_attempts(self, older_than: timedelta = timedelta(days=1)) -> None:
        cutoff = datetime.now(timezone.utc) - older_than
        with self._sessions.begin() as session:
            for a in session.scalars(select(LoginAttempt).where(LoginAttempt.at < cutoff)).all():
                session.delete(a)
