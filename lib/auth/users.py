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
from .policy import Actor, Invalid, Policy
from .roles import ROLES

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
# One message for a wrong password, an unknown user and a disabled account alike.
SIGN_IN_FAILED = "Wrong user name or password."
LOCKED_OUT = "Too many failed sign-ins. Wait 15 minutes and try again."


MANAGE = "manage_users"
OWN_ACCOUNT = "own_account"


class UserError(Invalid):
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


def _hash(password: str) -> str:
    try:
        return passwords.hash_password(password)
    except passwords.PasswordError as exc:
        raise UserError(str(exc)) from None


class UserService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog) -> None:
        self._sessions = sessions
        self._audit = audit
        self._policy = Policy(audit)

    # ----- administration (capability manage_users; each action audited by the policy) ------

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

    def create(self, actor: Actor, username: str, password: str, role: str) -> UserInfo:
        with self._policy.act(actor, MANAGE, "user.create", username.strip()[:64], f"role {role}"):
            username, role = validate_username(username), validate_role(role)
            hashed = _hash(password)
            try:
                with self._sessions.begin() as session:
                    user = User(username=username, password_hash=hashed, role=role)
                    session.add(user)
                    session.flush()
                    return _info(user)
            except IntegrityError:
                raise UserError(f"A user named '{username}' already exists.") from None

    def _change(self, actor: Actor, username: str, action: str, detail: str, change, capability: str = MANAGE) -> UserInfo:  # type: ignore[no-untyped-def]
        with self._policy.act(actor, capability, action, username, detail):
            with self._sessions.begin() as session:
                user = session.scalars(select(User).where(User.username == username)).one_or_none()
                if user is None:
                    raise UserError(f"No user named '{username}'.")
                change(session, user)
                return _info(user)

    def _guard_last_admin(self, session: Session, user: User, losing: str) -> None:
        if user.role != "admin" or user.disabled:
            return
        admins = session.scalar(select(func.count(User.id)).where(User.role == "admin", User.disabled.is_(False)))
        if admins <= 1:
            raise UserError(f"'{user.username}' is the last active admin and cannot {losing}.")

    @staticmethod
    def _sign_out_everywhere(session: Session, user: User) -> None:
        for s in session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)).all():
            session.delete(s)

    def set_role(self, actor: Actor, username: str, role: str) -> UserInfo:
        def change(session: Session, user: User) -> None:
            new_role = validate_role(role)
            if new_role != "admin":
                self._guard_last_admin(session, user, "lose the admin role")
            user.role = new_role

        return self._change(actor, username, "user.role", f"role {role}", change)

    def set_disabled(self, actor: Actor, username: str, disabled: bool) -> UserInfo:
        """Disable (signing the user out everywhere at once) or enable a user."""

        def change(session: Session, user: User) -> None:
            if disabled:
                self._guard_last_admin(session, user, "be disabled")
                self._sign_out_everywhere(session, user)
            user.disabled = disabled

        return self._change(actor, username, "user.disable" if disabled else "user.enable", "", change)

    def reset_password(self, actor: Actor, username: str, password: str) -> UserInfo:
        """Set a new password for a user; their sessions are signed out."""

        def change(session: Session, user: User) -> None:
            user.password_hash = _hash(password)
            self._sign_out_everywhere(session, user)

        return self._change(actor, username, "user.password", "", change)

    def change_own_password(self, actor: Actor, current: str, new: str) -> UserInfo:
        """The actor's own password, after checking the current one; every session of theirs,
        this one included, is signed out."""

        def change(session: Session, user: User) -> None:
            if not passwords.verify(current, user.password_hash):
                raise UserError("The current password is wrong.")
            user.password_hash = _hash(new)
            self._sign_out_everywhere(session, user)

        return self._change(actor, actor.name, "account.password", "", change, capability=OWN_ACCOUNT)

    def check_password(self, username: str, password: str) -> bool:
        with self._sessions() as session:
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
            return passwords.verify(password, user.password_hash if user else None)

    def ensure_first_admin(self, username: str, password: str | None) -> UserInfo | None:
        """Create the first admin from DASHBOARD_ADMIN_PASSWORD when there is no user at all.
        Two processes starting together may both try: the second finds the name taken and
        leaves it (no error, no audit row)."""
        if not password or self.count() > 0:
            return None
        username = validate_username(username)
        try:
            with self._sessions.begin() as session:
                user = User(username=username, password_hash=_hash(password), role="admin")
                session.add(user)
                session.flush()
                info = _info(user)
        except IntegrityError:
            return None
        system = Actor.system()
        self._audit.record(system.name, "user.create", username, "ok", "role admin (first admin)", system.address)
        return info

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
