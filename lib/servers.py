"""The list of LiveKit servers the dashboard watches: the one from the environment plus the ones
an admin adds on the Settings page (stored in SQL with the secret encrypted)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .auth.audit import AuditLog
from .config import ConfigError, ServerConfig, validate_url
from .models import StoredServer
from .secretbox import SecretBox

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


class ServerRegistryError(ValueError):
    """A server cannot be added, changed or removed; the message says why."""


def validate_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise ServerRegistryError(
            "a server name is 1-64 characters: letters, digits, space, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _validate_credentials(url: str, api_key: str, api_secret: str | None) -> tuple[str, str]:
    try:
        url = validate_url(url)
    except ConfigError as exc:
        raise ServerRegistryError(str(exc)) from None
    api_key = api_key.strip()
    if not api_key or len(api_key) > 256 or any(c.isspace() for c in api_key):
        raise ServerRegistryError("the API key is required, without spaces, at most 256 characters")
    if api_secret is not None and (not api_secret or len(api_secret) > 1024):
        raise ServerRegistryError("the API secret is required, at most 1024 characters")
    return url, api_key


class ServerRegistry:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        box: SecretBox,
        default_server: ServerConfig | None,
        audit: AuditLog | None = None,
        on_change: Callable[[list[ServerConfig]], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._default = default_server
        self._audit = audit
        self._on_change = on_change

    def list(self) -> list[ServerConfig]:
        """Every server: the environment's first, then stored ones by name."""
        servers = [self._default] if self._default else []
        with self._sessions() as session:
            rows = session.scalars(select(StoredServer).order_by(StoredServer.name)).all()
        servers += [
            ServerConfig(r.name, r.url, r.api_key, self._box.decrypt(r.api_secret_encrypted), "settings")
            for r in rows
        ]
        return servers

    def get(self, name: str) -> ServerConfig | None:
        return next((s for s in self.list() if s.name == name), None)

    def _changed(self, actor: str, action: str, name: str, detail: str = "") -> None:
        if self._audit:
            self._audit.record(actor, action, name, detail=detail)
        if self._on_change:
            self._on_change(self.list())

    def _refuse_environment(self, name: str) -> None:
        if self._default and name == self._default.name:
            raise ServerRegistryError(
                f"'{name}' comes from the environment (LIVEKIT_URL, LIVEKIT_API_KEY, "
                "LIVEKIT_API_SECRET); change it there and restart"
            )

    def add(self, name: str, url: str, api_key: str, api_secret: str, *, actor: str = "system") -> ServerConfig:
        name = validate_name(name)
        self._refuse_environment(name)
        url, api_key = _validate_credentials(url, api_key, api_secret)
        try:
            with self._sessions.begin() as session:
                session.add(
                    StoredServer(name=name, url=url, api_key=api_key, api_secret_encrypted=self._box.encrypt(api_secret))
                )
        except IntegrityError:
            raise ServerRegistryError(f"a server named '{name}' already exists") from None
        self._changed(actor, "server.add", name, f"url {url}")
        return ServerConfig(name, url, api_key, api_secret, "settings")

    def update(
        self, name: str, *, url: str, api_key: str, api_secret: str | None = None, actor: str = "system"
    ) -> ServerConfig:
        """Change a stored server; `api_secret=None` keeps the stored secret."""
        self._refuse_environment(name)
        url, api_key = _validate_credentials(url, api_key, api_secret)
        with self._sessions.begin() as session:
            row = session.scalars(select(StoredServer).where(StoredServer.name == name)).one_or_none()
            if row is None:
                raise ServerRegistryError(f"no server named '{name}'")
            row.url, row.api_key = url, api_key
            if api_secret is not None:
                row.api_secret_encrypted = self._box.encrypt(api_secret)
            secret = self._box.decrypt(row.api_secret_encrypted)
        self._changed(actor, "server.update", name, f"url {url}" + ("; new secret" if api_secret is not None else ""))
        return ServerConfig(name, url, api_key, secret, "settings")

    def remove(self, name: str, *, actor: str = "system") -> None:
        self._refuse_environment(name)
        with self._sessions.begin() as session:
            row = session.scalars(select(StoredServer).where(StoredServer.name == name)).one_or_none()
            if row is None:
                raise ServerRegistryError(f"no server named '{name}'")
            session.delete(row)
        self._changed(actor, "server.remove", name)
