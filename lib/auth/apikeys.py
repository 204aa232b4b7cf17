"""API keys for the REST API: created by admins (the API keys page, `python -m lib.auth
create-api-key`, the admin API), shown once, stored as a SHA-256 with a visible prefix, each with
a role, an owner (the user it acts as: whose meetings a host key manages), an optional expiry and
its last use; revocable; every change audited.

A key is `lkd_<8 hex>_<43 url-safe characters>`: the first part is the prefix lists and the
audit trail show, the rest 256 random bits. Keys are looked up by their hash; a revoked or
expired key, a key of a disabled owner and a malformed one all authenticate as nobody, alike.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import ApiKey, User, as_utc, utcnow
from .policy import Actor, Invalid, Policy
from .roles import ROLES

CAPABILITY = "manage_api_keys"
PREFIX_LENGTH = 12  # "lkd_" + 8 hex
MAX_NAME = 64
_KEY = re.compile(r"^lkd_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")
TOUCH_EVERY = timedelta(minutes=1)  # last use is written at most this often per key


class KeyNotFound(Invalid):
    """No API key has that id."""


@dataclass(frozen=True)
class ApiKeyView:
    """An API key as lists show it; never the key itself."""

    id: int
    name: str
    prefix: str
    role: str
    owner: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_address: str
    revoked_at: datetime | None
    revoked_by: str

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class CreatedKey:
    """A new key: `secret` is the whole key, shown once and stored nowhere."""

    secret: str
    key: ApiKeyView


@dataclass(frozen=True)
class KeyCaller:
    """Who a request's key authenticates: the actor to act as, and the key behind it."""

    actor: Actor
    key_id: int
    prefix: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _view(k: ApiKey, owner: str) -> ApiKeyView:
    def maybe(t: datetime | None) -> datetime | None:
        return as_utc(t) if t is not None else None

    return ApiKeyView(
        k.id, k.name, k.prefix, k.role, owner, k.created_by, as_utc(k.created_at), maybe(k.expires_at),
        maybe(k.last_used_at), k.last_used_address, maybe(k.revoked_at), k.revoked_by,
    )  # fmt: skip


class ApiKeyService:
    def __init__(self, sessions: sessionmaker[Session], policy: Policy, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._policy = policy
        self._clock = clock

    def permits(self, actor: Actor) -> bool:
        return self._policy.permits(actor, CAPABILITY)

    def create(
        self, actor: Actor, name: str, role: str, *, owner: str | None = None, expires_at: datetime | None = None
    ) -> CreatedKey:
        """A new key acting as `owner` (the actor when not given) with `role`."""
        name = name.strip()
        with self._policy.act(actor, CAPABILITY, "apikey.create", name[:MAX_NAME] or "(no name)") as outcome:
            if not name or len(name) > MAX_NAME:
                raise Invalid(f"A key needs a name of 1 to {MAX_NAME} characters.")
            if role not in ROLES:
                raise Invalid(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
            now = self._clock()
            if expires_at is not None:
                expires_at = as_utc(expires_at)
                if expires_at <= now:
                    raise Invalid("The expiry must be in the future.")
            owner_name = (owner or actor.name).strip()
            with self._sessions.begin() as s:
                user = s.scalars(select(User).where(func.lower(User.username) == owner_name.lower())).first()
                if user is None:
                    raise Invalid(f"No user is called {owner_name!r}: a key acts as an existing user.")
                if user.disabled:
                    raise Invalid(f"The user {user.username!r} is disabled.")
                prefix = f"lkd_{secrets.token_hex(4)}"
                secret = f"{prefix}_{secrets.token_urlsafe(32)}"
                key = ApiKey(
                    name=name, prefix=prefix, secret_hash=digest(secret), role=role, owner_id=user.id,
                    created_by=actor.name, created_at=now, expires_at=expires_at,
                )  # fmt: skip
                s.add(key)
                s.flush()
                view = _view(key, user.username)
            until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ", no expiry"
            outcome.detail = f"{prefix}: role {role}, acts as {view.owner}{until}"
        return CreatedKey(secret, view)

    def revoke(self, actor: Actor, key_id: int) -> ApiKeyView:
        with self._policy.act(actor, CAPABILITY, "apikey.revoke", f"key {key_id}") as outcome:
            with self._sessions.begin() as s:
                key = s.get(ApiKey, key_id)
                if key is None:
                    raise KeyNotFound(f"No API key has id {key_id}.")
                if key.revoked_at is None:
                    key.revoked_at, key.revoked_by = self._clock(), actor.name
                    outcome.detail = f"{key.prefix} ({key.name})"
                else:
                    outcome.detail = f"{key.prefix} ({key.name}) was already revoked"
                owner = s.get(User, key.owner_id)
                view = _view(key, owner.username if owner else "?")
        return view

    def list(self, actor: Actor, *, include_revoked: bool = True) -> list[ApiKeyView]:
        self._policy.require(actor, CAPABILITY, "apikey.read", "api keys")
        with self._sessions() as s:
            stmt = select(ApiKey, User.username).join(User, User.id == ApiKey.owner_id).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            if not include_revoked:
                stmt = stmt.where(ApiKey.revoked_at.is_(None))
            return [_view(k, owner) for k, owner in s.execute(stmt).all()]

    def get(self, actor: Actor, key_id: int) -> ApiKeyView:
        self._policy.require(actor, CAPABILITY, "apikey.read", f"key {key_id}")
        with self._sessions() as s:
            key = s.get(ApiKey, key_id)
            owner = s.get(User, key.owner_id) if key is not None else None
            if key is None or owner is None:
                raise KeyNotFound(f"No API key has id {key_id}.")
            return _view(key, owner.username)

    def authenticate(self, secret: str, address: str) -> KeyCaller | None:
        """The caller a presented key stands for, or None (malformed, unknown, revoked,
        expired, owner disabled). Records the key's last use, at most once a minute."""
        if not _KEY.match(secret):
            return None
        now = self._clock()
        with self._sessions.begin() as s:
            row = s.execute(select(ApiKey, User).join(User, User.id == ApiKey.owner_id).where(ApiKey.secret_hash == digest(secret))).first()
            if row is None:
                return None
            key, owner = row
            if not secrets.compare_digest(key.secret_hash, digest(secret)):
                return None
            if key.revoked_at is not None or owner.disabled:
                return None
            if key.expires_at is not None and as_utc(key.expires_at) <= now:
                return None
            if key.last_used_at is None or now - as_utc(key.last_used_at) >= TOUCH_EVERY or key.last_used_address != address:
                key.last_used_at, key.last_used_address = now, address[:64]
            return KeyCaller(Actor(owner.username, key.role, address, via=key.prefix), key.id, key.prefix)
