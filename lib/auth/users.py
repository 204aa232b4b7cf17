"""Users: create, disable, change role, reset password, and sign-in with a lockout after
repeated failures (per user name and address, and per address across user names)."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..models import LoginAttempt, LoginSession, User, as_utc
from . import passwords
from .audit import AuditLog
from .policy import Actor, Invalid, Policy
from .roles import ROLES

log = logging.getLogger(__name__)

# Failures are counted per (user name, address): a guesser at one address never locks the real
# user out from another. Per address across user names a higher threshold stops spraying one
# password over many names. Never per user name alone, which would let anyone lock anyone out.
LOCKOUT_FAILURES = 5
ADDRESS_LOCKOUT_FAILURES = 20
LOCKOUT_WINDOW = timedelta(minutes=15)
PRUNE_EVERY = timedelta(minutes=1)  # how often sign-in deletes attempts older than the window
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




def _info(u: User) -> UserInfo:
    return UserInfo(u.id, u.username, u.role, u.disabled, as_utc(u.created_at), as_utc(u.last_login_at) if u.last_login_at else None)


def _named(username: str):  # type: ignore[no-untyped-def]
    """The condition that finds a user by name: letter case does not tell two users apart
    ("Ann" signs in as "ann"), so the lookup ignores it."""
    return func.lower(User.username) == username.lower()


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
        self._lockouts = _Lockouts(sessions)

    # ----- administration (capability manage_users; each action audited by the policy) ------

    def list(self) -> list[UserInfo]:
        with self._sessions() as session:
            return [_info(u) for u in session.scalars(select(User).order_by(User.username)).all()]

    def get(self, username: str) -> UserInfo | None:
        with self._sessions() as session:
            user = session.scalars(select(User).where(_named(username))).one_or_none()
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
                    taken = session.scalars(select(User.username).where(_named(username))).first()
                    if taken is not None:
                        raise UserError(f"A user named '{taken}' already exists (names ignore letter case).")
                    user = User(username=username, password_hash=hashed, role=role)
                    session.add(user)
                    session.flush()
                    return _info(user)
            except IntegrityError:
                raise UserError(f"A user named '{username}' already exists.") from None

    def _change(self, actor: Actor, username: str, action: str, detail: str, change, capability: str = MANAGE) -> UserInfo:  # type: ignore[no-untyped-def]
        with self._policy.act(actor, capability, action, username, detail):
            with self._sessions.begin() as session:
                user = session.scalars(select(User).where(_named(username))).one_or_none()
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
            if new == current:
                raise UserError("The new password is the current one; choose another.")
            user.password_hash = _hash(new)
            self._sign_out_everywhere(session, user)

        return self._change(actor, actor.name, "account.password", "", change, capability=OWN_ACCOUNT)

    def check_password(self, username: str, password: str) -> bool:
        with self._sessions() as session:
            user = session.scalars(select(User).where(_named(username))).one_or_none()
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

    def sign_in(self, username: str, password: str, address: str) -> SignInResult:
        """Check a user name and password; the messages never tell whether the user exists.
        While locked out, an attempt costs no bcrypt check and writes no attempt row, and only
        the first refusal of each lockout goes to the audit trail."""
        # Lower-cased, so letter case neither finds another user nor makes another lockout count.
        username, address = username.strip()[:64].lower(), address[:64]
        now = datetime.now(timezone.utc)
        self._lockouts.prune_if_due(now)
        lock = self._lockouts.check(username, address, now)
        if lock is not None:
            if self._lockouts.first_refusal(lock):
                scope = "from this address" if lock.username is None else "for this user name from this address"
                detail = f"locked out after repeated failures {scope} until {lock.until:%Y-%m-%d %H:%M:%S} UTC; refused attempts until then are not recorded"
                self._audit.record(username or "(empty)", "login.refused", username, "refused", detail, address)
            return SignInResult(None, LOCKED_OUT)
        with self._sessions.begin() as session:
            user = session.scalars(select(User).where(_named(username))).one_or_none()
            ok = passwords.verify(password, user.password_hash if user else None)
            ok = ok and user is not None and not user.disabled
            session.add(LoginAttempt(username=username, address=address, at=now, succeeded=ok))
            if ok:
                user.last_login_at = now
                info = _info(user)
        if not ok:
            self._audit.record(username or "(empty)", "login.failed", username, "failed", "", address)
            return SignInResult(None, SIGN_IN_FAILED)
        self._audit.record(info.username, "login", info.username, "ok", "", address)
        return SignInResult(info)

    def prune_attempts(self, older_than: timedelta = LOCKOUT_WINDOW) -> int:
        """Delete sign-in attempts older than `older_than` (none of them counts any more);
        returns how many. Sign-in calls this itself at most every PRUNE_EVERY."""
        return self._lockouts.prune(datetime.now(timezone.utc), older_than)


@dataclass(frozen=True)
class Lockout:
    """A lockout in force: of one user name from `address`, or (username None) of the address."""

    username: str | None
    address: str
    until: datetime


class _Lockouts:
    """Counts failed sign-ins in the database and remembers, in memory, which lockouts have
    been audited and how many attempts each refused since. The memory holds one entry per
    lockout in force: each took at least LOCKOUT_FAILURES recorded failures, each a bcrypt
    check, so a flood of refused attempts cannot grow it."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._mutex = threading.Lock()
        self._refused: dict[tuple[str | None, str], tuple[datetime, int]] = {}  # -> (until, refused since audited)
        self._pruned_at: datetime | None = None

    def check(self, username: str, address: str, now: datetime) -> Lockout | None:
        """The lockout `username` from `address` is under, if any. It lasts until the failure
        that reached the threshold leaves the window; refused attempts do not extend it."""
        failures = select(LoginAttempt.at).where(
            LoginAttempt.address == address, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= now - LOCKOUT_WINDOW
        )
        with self._sessions() as session:
            for name, stmt, threshold in (
                (None, failures, ADDRESS_LOCKOUT_FAILURES),
                (username, failures.where(LoginAttempt.username == username), LOCKOUT_FAILURES),
            ):
                reached = session.scalar(stmt.order_by(LoginAttempt.at.desc()).offset(threshold - 1).limit(1))
                if reached is not None:
                    return Lockout(name, address, as_utc(reached) + LOCKOUT_WINDOW)
        return None

    def first_refusal(self, lock: Lockout) -> bool:
        """True for the first refused attempt of `lock`; later ones are only counted."""
        key = (lock.username, lock.address)
        with self._mutex:
            until, refused = self._refused.get(key, (None, 0))
            if until == lock.until:
                self._refused[key] = (until, refused + 1)
                return False
            self._refused[key] = (lock.until, 0)
        if until is not None:
            self._report(key, refused)
        return True

    def prune_if_due(self, now: datetime) -> None:
        with self._mutex:
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
                return
            self._pruned_at = now
        self.prune(now, LOCKOUT_WINDOW)

    def prune(self, now: datetime, older_than: timedelta) -> int:
        with self._sessions.begin() as session:
            deleted = session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - older_than)).rowcount
        with self._mutex:
            ended = {key: refused for key, (until, refused) in self._refused.items() if until <= now}
            for key in ended:
                del self._refused[key]
        for key, refused in ended.items():
            self._report(key, refused)
        return deleted or 0

    @staticmethod
    def _report(key: tuple[str | None, str], refused: int) -> None:
        if refused:
            scope = "address" if key[0] is None else "a user name from address"
            log.warning("sign-in lockout of %s %s ended; it refused %d more attempts than the audit trail shows", scope, key[1], refused)
