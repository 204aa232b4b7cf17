"""Composition root: builds the process-wide objects once (settings, SQL store, server registry,
LiveKit gateway) and hands them to app.py's lifespan, page scripts and tests."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from datetime import timedelta

from .auth.audit import AuditLog
from .auth.sessions import SessionService
from .auth.users import UserService
from .config import Settings, load_settings
from .history.collector import Collector
from .history.store import HistoryStore
from .db import make_engine, migrate, session_factory
from .livekit.gateway import LiveKitGateway
from .secretbox import SecretBox, load_or_create_key
from .servers import ServerRegistry

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    servers: ServerRegistry
    gateway: LiveKitGateway
    audit: AuditLog
    users: UserService
    logins: SessionService
    # Opened only by the server process (start_history): DuckDB allows one process per file,
    # so command-line tools that build services must not take it.
    history: HistoryStore | None = None
    collector: Collector | None = None

    def start_history(self) -> None:
        if self.history is None:
            path = self.settings.history_path or self.settings.data_dir / "history.duckdb"
            self.history = HistoryStore(path)
            self.collector = Collector(
                self.gateway, self.history, self.settings.collect_seconds, self.settings.sample_days, self.settings.retention_days
            )
            self.collector.start()

    def close(self) -> None:
        if self.collector is not None:
            self.collector.stop()
        self.gateway.close()
        if self.history is not None:
            self.history.close()
        self.engine.dispose()


_lock = threading.Lock()
_current: Services | None = None


def build(settings: Settings) -> Services:
    """Build everything for `settings`; raises DatabaseError or ConfigError with a clear message."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    box = SecretBox(settings.secret_key or load_or_create_key(settings.secret_key_path))
    gateway = LiveKitGateway(
        request_timeout=settings.request_timeout, concurrency=settings.snapshot_concurrency
    )
    audit = AuditLog(sessions)
    registry = ServerRegistry(sessions, box, settings.default_server, audit, on_change=gateway.set_servers)
    gateway.set_servers(registry.list())
    users = UserService(sessions, audit)
    users.ensure_first_admin(settings.admin_username, settings.admin_password)
    session_key = settings.session_secret or load_or_create_key(settings.session_key_path)
    logins = SessionService(
        sessions,
        session_key.encode(),
        lifetime=timedelta(hours=settings.session_hours),
        idle=timedelta(minutes=settings.idle_minutes),
    )
    return Services(settings, engine, sessions, registry, gateway, audit, users, logins)


def start(settings: Settings | None = None) -> Services:
    """Build the process's services once; later calls return the same object."""
    global _current
    with _lock:
        if _current is None:
            _current = build(settings or load_settings())
            log.info("services started: servers %s", ", ".join(_current.gateway.server_names()) or "none")
        return _current


def get() -> Services:
    """The process's services, building them on first use (page scripts under AppTest do this)."""
    return _current or start()


def stop() -> None:
    global _current
    with _lock:
        if _current is not None:
            _current.close()
            _current = None


def current() -> Services | None:
    """The services if they were started, without starting them."""
    return _current
