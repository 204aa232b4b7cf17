"""Composition root: builds a process's services once, in parts, and holds the ones page scripts
reach through `get()`.

- `build_core(settings)`: what any process of the dashboard needs (settings, the SQL store, the
  audit trail, the server registry, the LiveKit gateway, the live controls and the server
  admin). It neither migrates, nor generates keys, nor creates users, nor opens the history
  store: the scheduler sidecar builds this.
- `build(settings)`: the dashboard's server process: the core plus the migrations (under a lock),
  the keys (generated once into the data dir on SQLite), users, sign-in sessions and the first
  admin, and starts the outgoing webhook deliverer (lib/outbound/). `Services.start_history()`
  then opens the DuckDB history store and starts the collector (only that process may open
  the file).

app.py's lifespan calls `start()`; routes read the services from `request.state.services`
(lib/api/state.py), page scripts from `get()`. Nothing else reaches the process-wide object.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .auth.apikeys import ApiKeyService
from .auth.audit import AuditLog
from .auth.policy import Policy
from .auth.sessions import SessionService
from .auth.users import UserService
from .config import ConfigError, Settings, load_settings
from .control import LiveControl
from .db import make_engine, migrate, require_current, session_factory
from .history.collector import Collector
from .history.reports import HistoryReports
from .history.store import HistoryStore
from .livekit.gateway import LiveKitGateway
from .meetings.invites import invite_key
from .meetings.join import JoinService
from .meetings.lifecycle import Lifecycle
from .meetings.service import MeetingService
from .outbound.deliverer import Deliverer
from .outbound.outbox import Outbox
from .outbound.service import WebhookService
from .secretbox import SecretBox, load_or_create_key
from .servers import ServerAdmin, ServerFollower, ServerRegistry
from .tokens import TokenService

log = logging.getLogger(__name__)


@dataclass
class Core:
    """The parts every process of the dashboard shares."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    audit: AuditLog
    policy: Policy
    servers: ServerRegistry
    gateway: LiveKitGateway
    control: LiveControl
    server_admin: ServerAdmin
    follower: ServerFollower
    tokens: TokenService
    lifecycle: Lifecycle
    meetings: MeetingService
    joins: JoinService
    # Outgoing webhooks: the admins' service, LiveKit events for the outbox, and the sender
    # (started by build(); another process may start its own: claims keep sends single).
    webhooks: WebhookService
    outbox: Outbox
    deliverer: Deliverer

    def close(self) -> None:
        self.deliverer.stop()
        self.follower.stop()
        self.gateway.close()
        self.engine.dispose()


@dataclass
class Services(Core):
    """The dashboard's server process: the core plus users, sign-in and history."""

    users: UserService
    logins: SessionService
    api_keys: ApiKeyService
    # Opened only by the server process (start_history): DuckDB allows one process per file,
    # so command-line tools that build services must not take it.
    history: HistoryStore | None = None
    collector: Collector | None = None
    # The History charts' data for the REST API, reading `history` once it is open.
    reports: HistoryReports = field(init=False)

    def __post_init__(self) -> None:
        self.reports = HistoryReports(lambda: self.history, self.policy, self.meetings.meeting_rooms, self.settings.collect_seconds)

    def start_history(self) -> None:
        if self.history is None:
            path = self.settings.history_path or self.settings.data_dir / "history.duckdb"
            self.history = HistoryStore(path)
            self.collector = Collector(
                self.gateway, self.history, self.settings.collect_seconds, self.settings.sample_days, self.settings.retention_days
            )
            self.collector.start()
            self.meetings.use_history(self.history)

    def close(self) -> None:
        self.deliverer.stop()
        if self.collector is not None:
            self.collector.stop()
        self.follower.stop()
        self.gateway.close()
        if self.history is not None:
            self.history.close()
        self.engine.dispose()


def _shared_key(configured: str | None, generated: Path, setting: str, generate: bool) -> str:
    """A key from the settings, else the one generated into the data directory (created here
    only when `generate`)."""
    if configured:
        return configured
    if generate:
        return load_or_create_key(generated)
    if generated.is_file():
        return generated.read_text().strip()
    raise ConfigError(f"{setting} is not set and {generated} does not exist: start the dashboard first, or set {setting}")


def require_shared_keys(settings: Settings) -> None:
    """On PostgreSQL several processes and nodes share one database: keys generated per data
    directory would leave one node unable to read the servers another stored, and sign-in
    cookies would not carry between nodes, so both keys must come from the settings."""
    if settings.database_url.startswith("postgres") and not (settings.secret_key and settings.session_secret):
        missing = [n for n, v in (("DASHBOARD_SECRET_KEY", settings.secret_key), ("DASHBOARD_SESSION_SECRET", settings.session_secret)) if not v]
        raise ConfigError(
            "a PostgreSQL database is shared between processes, so DASHBOARD_SECRET_KEY and DASHBOARD_SESSION_SECRET "
            f"must both be set to the same values on every node ({', '.join(missing)} missing)"
        )


def _core(settings: Settings, engine: Engine, secret_key: str) -> Core:
    sessions = session_factory(engine)
    audit = AuditLog(sessions)
    policy = Policy(audit)
    gateway = LiveKitGateway(request_timeout=settings.request_timeout, concurrency=settings.snapshot_concurrency)
    box = SecretBox(secret_key)
    registry = ServerRegistry(sessions, box, settings.default_server)
    deliverer = Deliverer(sessions, box, timeout=settings.webhook_timeout, audit=audit)
    follower = ServerFollower(registry, gateway, interval=settings.refresh_seconds)
    lifecycle = Lifecycle(sessions, gateway, audit)
    key = invite_key(secret_key)
    meetings = MeetingService(sessions, policy, gateway, lifecycle, invite_key=key, public_url=settings.public_url, max_hours=settings.meeting_max_hours)
    return Core(
        settings=settings,
        engine=engine,
        sessions=sessions,
        audit=audit,
        policy=policy,
        servers=registry,
        gateway=gateway,
        control=LiveControl(gateway, policy),
        server_admin=ServerAdmin(registry, gateway, policy),
        follower=follower,
        tokens=TokenService(gateway, policy, hosted_rooms=meetings.hosted_rooms),
        lifecycle=lifecycle,
        meetings=meetings,
        joins=JoinService(sessions, audit, gateway, lifecycle, key),
        webhooks=WebhookService(sessions, policy, box, on_queued=deliverer.wake),
        outbox=Outbox(sessions),
        deliverer=deliverer,
    )


def build_core(settings: Settings) -> Core:
    """The shared parts for a process that is not the dashboard's server (the scheduler): the
    database must already be migrated and the secret key must exist. The gateway follows the
    stored servers once `follower.start()` is called."""
    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        key = _shared_key(settings.secret_key, settings.secret_key_path, "DASHBOARD_SECRET_KEY", generate=False)
    except Exception:
        engine.dispose()
        raise
    core = _core(settings, engine, key)
    try:
        core.follower.sync()
    except Exception:
        core.close()
        raise
    return core


def build(settings: Settings) -> Services:
    """Everything the dashboard's server process needs; raises DatabaseError or ConfigError with
    a clear message."""
    require_shared_keys(settings)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        secret_key = _shared_key(settings.secret_key, settings.secret_key_path, "DASHBOARD_SECRET_KEY", generate=True)
        session_key = _shared_key(settings.session_secret, settings.session_key_path, "DASHBOARD_SESSION_SECRET", generate=True)
    except Exception:
        engine.dispose()
        raise
    core = _core(settings, engine, secret_key)
    users = UserService(core.sessions, core.audit)
    logins = SessionService(
        core.sessions,
        session_key.encode(),
        lifetime=timedelta(hours=settings.session_hours),
        idle=timedelta(minutes=settings.idle_minutes),
        audit=core.audit,
    )
    svc = Services(
        **{f: getattr(core, f) for f in Core.__dataclass_fields__}, users=users, logins=logins, api_keys=ApiKeyService(core.sessions, core.policy)
    )
    try:
        svc.follower.start()
        svc.deliverer.start()
        users.ensure_first_admin(settings.admin_username, settings.admin_password)
    except Exception:
        svc.close()
        raise
    return svc


# ----- the process's services, for page scripts -------------------------------------------

_lock = threading.Lock()
_current: Services | None = None


def start(settings: Settings | None = None) -> Services:
    """Build the process's services once (app.py's lifespan, tests, the command line); later
    calls return the same object."""
    global _current
    with _lock:
        if _current is None:
            _current = build(settings or load_settings())
            log.info("services started: servers %s", ", ".join(_current.gateway.server_names()) or "none")
        return _current


def get() -> Services:
    """The process's services, for page scripts: the one way a page reaches them."""
    if _current is None:
        raise RuntimeError("the dashboard's services are not running (the server's start-up failed; see its log)")
    return _current


def current() -> Services | None:
    """The services if they were started, without starting them (for middleware)."""
    return _current


def stop() -> None:
    global _current
    with _lock:
        if _current is not None:
            _current.close()
            _current = None
