"""The LiveKit servers the dashboard watches: the one from the environment plus the ones an admin
adds on the Servers page (stored in SQL with the secret encrypted).

Three parts: `ServerRegistry`, the stored list and its rules (a version row raised with every
change, so other processes notice); `ServerAdmin`, the actions on it (add, update, remove, test:
capability `manage_servers`, audited); `ServerFollower`, which keeps one process's gateway on the
stored list by polling that version.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .auth.policy import Actor, ActionError, Invalid, Outcome, Policy
from .config import ConfigError, ServerConfig, validate_url
from .livekit.gateway import ConnectionResult, LiveKitGateway
from .models import ChangeVersion, StoredServer
from .secretbox import SecretBox

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
VERSION_NAME = "servers"
CAPABILITY = "manage_servers"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ServerRegistryError(Invalid):
    """A server cannot be added, changed or removed; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message[:1].upper() + message[1:])  # a sentence on the page


class ConnectionFailed(ActionError):
    """A server's connection test failed, so it was not saved; `result` says how."""

    def __init__(self, name: str, result: ConnectionResult) -> None:
        error = result.error
        reason = f"{error.category.value}: {error.hint} ({error.detail})" if error else "no answer"
        super().__init__(f"Not saved: the connection test of '{name}' failed ({reason}).")
        self.result = result


def validate_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise ServerRegistryError(
            "a server name is 1-64 characters: letters, digits, space, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_credentials(url: str, api_key: str, api_secret: str | None) -> tuple[str, str]:
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


def _addresses(host: str) -> set[str]:
    """The addresses a host name stands for (itself when it does not resolve)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)} or {host}
    except (OSError, UnicodeError):
        return {host}


def same_server(a: ServerConfig, url: str, api_key: str) -> bool:
    """Whether `url` with `api_key` reaches the server `a` describes: ws and http spellings of
    one address, a default port written or not, letter case, and two names of one address
    (localhost and 127.0.0.1) are the same."""

    def where(u: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(ServerConfig("", u, "", "").http_url)
        return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme), parts.path.rstrip("/")

    (scheme_a, host_a, port_a, path_a), (scheme_b, host_b, port_b, path_b) = where(a.url), where(url)
    if a.api_key != api_key or (scheme_a, port_a, path_a) != (scheme_b, port_b, path_b):
        return False
    return host_a == host_b or bool(_addresses(host_a) & _addresses(host_b))


class ServerRegistry:
    def __init__(self, sessions: sessionmaker[Session], box: SecretBox, default_server: ServerConfig | None) -> None:
        self._sessions = sessions
        self._box = box
        self._default = default_server

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

    def stored(self, name: str) -> ServerConfig:
        """A server added on the Servers page; ServerRegistryError for the environment's or an
        unknown name."""
        self._refuse_environment(name)
        found = self.get(name)
        if found is None:
            raise ServerRegistryError(f"no server named '{name}'")
        return found

    def version(self) -> int:
        """Raised by every add, update and remove, in whichever process made it."""
        with self._sessions() as session:
            return session.scalar(select(ChangeVersion.version).where(ChangeVersion.name == VERSION_NAME)) or 0

    @staticmethod
    def _bump(session: Session) -> None:
        raised = session.execute(
            update(ChangeVersion).where(ChangeVersion.name == VERSION_NAME).values(version=ChangeVersion.version + 1)
        )
        if raised.rowcount == 0:
            session.add(ChangeVersion(name=VERSION_NAME, version=1))

    def _refuse_environment(self, name: str) -> None:
        if self._default and name == self._default.name:
            raise ServerRegistryError(
                f"'{name}' comes from the environment (LIVEKIT_URL, LIVEKIT_API_KEY, "
                "LIVEKIT_API_SECRET); change it there and restart"
            )

    def refuse_conflicts(self, name: str, url: str, api_key: str) -> None:
        """ServerRegistryError when `name` is the environment's server, or when another entry
        already reaches this server with this key."""
        self._refuse_environment(name)
        for existing in self.list():
            if existing.name != name and same_server(existing, url, api_key):
                raise ServerRegistryError(
                    f"this server (same URL and API key) is already watched as '{existing.name}'; "
                    "watching it twice would count its rooms twice"
                )

    def add(self, name: str, url: str, api_key: str, api_secret: str) -> ServerConfig:
        name = validate_name(name)
        self._refuse_environment(name)
        url, api_key = validate_credentials(url, api_key, api_secret)
        self.refuse_conflicts(name, url, api_key)
        try:
            with self._sessions.begin() as session:
                session.add(
                    StoredServer(name=name, url=url, api_key=api_key, api_secret_encrypted=self._box.encrypt(api_secret))
                )
                self._bump(session)
        except IntegrityError:
            raise ServerRegistryError(f"a server named '{name}' already exists") from None
        return ServerConfig(name, url, api_key, api_secret, "settings")

    def update(self, name: str, *, url: str, api_key: str, api_secret: str | None = None) -> ServerConfig:
        """Change a stored server; `api_secret=None` keeps the stored secret."""
        self._refuse_environment(name)
        url, api_key = validate_credentials(url, api_key, api_secret)
        self.refuse_conflicts(name, url, api_key)
        with self._sessions.begin() as session:
            row = session.scalars(select(StoredServer).where(StoredServer.name == name)).one_or_none()
            if row is None:
                raise ServerRegistryError(f"no server named '{name}'")
            row.url, row.api_key = url, api_key
            if api_secret is not None:
                row.api_secret_encrypted = self._box.encrypt(api_secret)
            secret = self._box.decrypt(row.api_secret_encrypted)
            self._bump(session)
        return ServerConfig(name, url, api_key, secret, "settings")

    def remove(self, name: str) -> None:
        self._refuse_environment(name)
        with self._sessions.begin() as session:
            row = session.scalars(select(StoredServer).where(StoredServer.name == name)).one_or_none()
            if row is None:
                raise ServerRegistryError(f"no server named '{name}'")
            session.delete(row)
            self._bump(session)


def _describe(outcome: Outcome, result: ConnectionResult) -> None:
    outcome.detail = f"connected, {result.rooms} room(s)" if result.ok else f"{result.error}"
    outcome.failed = not result.ok


class ServerAdmin:
    """The admin actions on the server list. Each checks `manage_servers` and is audited; a new
    or changed server is saved only after it answered a connection test."""

    def __init__(self, registry: ServerRegistry, gateway: LiveKitGateway, policy: Policy) -> None:
        self._registry = registry
        self._gateway = gateway
        self._policy = policy

    def _follow(self) -> None:
        # This process at once; the others through the version they poll (ServerFollower).
        self._gateway.set_servers(self._registry.list())

    def test(self, actor: Actor, name: str, url: str, api_key: str, api_secret: str) -> ConnectionResult:
        """Try a server's details without saving them. Never raises for a failed connection:
        the result says how it went."""
        with self._policy.act(actor, CAPABILITY, "server.test", name or url) as outcome:
            url, api_key = validate_credentials(url, api_key, api_secret)
            result = self._gateway.test_connection(ServerConfig(name or "new server", url, api_key, api_secret))
            _describe(outcome, result)
            return result

    def test_saved(self, actor: Actor, name: str) -> ConnectionResult:
        """Try a server on the list with its stored details."""
        with self._policy.act(actor, CAPABILITY, "server.test", name) as outcome:
            config = self._registry.get(name)
            if config is None:
                raise ServerRegistryError(f"no server named '{name}'")
            result = self._gateway.test_connection(config)
            _describe(outcome, result)
            return result

    def add(self, actor: Actor, name: str, url: str, api_key: str, api_secret: str) -> tuple[ServerConfig, ConnectionResult]:
        with self._policy.act(actor, CAPABILITY, "server.add", name.strip()) as outcome:
            name = validate_name(name)
            url, api_key = validate_credentials(url, api_key, api_secret)
            self._registry.refuse_conflicts(name, url, api_key)
            result = self._gateway.test_connection(ServerConfig(name, url, api_key, api_secret))
            if not result.ok:
                raise ConnectionFailed(name, result)
            saved = self._registry.add(name, url, api_key, api_secret)
            outcome.detail = f"url {url}"
        self._follow()
        return saved, result

    def update(
        self, actor: Actor, name: str, *, url: str, api_key: str, api_secret: str | None = None
    ) -> tuple[ServerConfig, ConnectionResult]:
        """Change a stored server (`api_secret=None` keeps the stored one) after a test."""
        with self._policy.act(actor, CAPABILITY, "server.update", name) as outcome:
            current = self._registry.stored(name)
            url, api_key = validate_credentials(url, api_key, api_secret)
            self._registry.refuse_conflicts(name, url, api_key)
            secret = api_secret if api_secret is not None else current.api_secret
            result = self._gateway.test_connection(ServerConfig(name, url, api_key, secret))
            if not result.ok:
                raise ConnectionFailed(name, result)
            saved = self._registry.update(name, url=url, api_key=api_key, api_secret=api_secret)
            outcome.detail = f"url {url}" + ("; new secret" if api_secret is not None else "")
        self._follow()
        return saved, result

    def remove(self, actor: Actor, name: str) -> None:
        with self._policy.act(actor, CAPABILITY, "server.remove", name):
            self._registry.remove(name)
        self._follow()


class ServerFollower:
    """Keeps one process's gateway watching the stored servers: every `interval` seconds it reads
    the registry's version and, when another process changed the list, hands the gateway the new
    one. A daemon thread, so a slow database never holds up the gateway's event loop."""

    def __init__(self, registry: ServerRegistry, gateway: LiveKitGateway, interval: float) -> None:
        self._registry = registry
        self._gateway = gateway
        self.interval = interval
        self._seen: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def sync(self) -> bool:
        """Follow a change if there was one since the last look; True when the list was reloaded."""
        version = self._registry.version()
        if version == self._seen:
            return False
        self._gateway.set_servers(self._registry.list())
        self._seen = version
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.sync():
                    log.info("server list changed; now watching %s", ", ".join(self._gateway.server_names()) or "none")
                if self._failing:
                    log.info("server list readable again")
                self._failing = False
            except Exception as exc:  # noqa: BLE001 - logged once per outage, retried next interval
                if not self._failing:
                    log.warning("cannot read the server list (%s); retrying every %g s", exc, self.interval)
                self._failing = True

    def start(self) -> None:
        self.sync()
        self._thread = threading.Thread(target=self._run, name="server-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
