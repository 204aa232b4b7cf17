"""The operational SQL database (servers now; users, audit and meetings later).

SQLite in data/ (WAL mode) by default, PostgreSQL by URL (`postgresql://` or `postgres://`, run
with the psycopg 3 driver). The schema is owned by the Alembic migrations in migrations/;
`migrate()` brings any database to head, at start-up or by `python -m lib.db upgrade`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from .config import REPO_ROOT, load_settings

log = logging.getLogger(__name__)


class DatabaseError(RuntimeError):
    """The database cannot be reached or migrated; the message says which."""


# Seconds libpq waits for a PostgreSQL server, so an unreachable host fails start-up quickly.
POSTGRES_CONNECT_TIMEOUT = 10
# The PostgreSQL advisory lock every dashboard process takes to migrate: any constant of ours.
MIGRATION_LOCK_KEY = 0x6C6B6461  # "lkda"


def postgres_url(url: str) -> URL:
    """`postgresql://` and `postgres://` (as hosting providers hand them out) with the psycopg 3
    driver; a URL that names its own driver (`postgresql+...://`) is kept as given."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL; None for another database or an in-memory one."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite does: it holds
    password and session hashes and encrypted secrets. SQLite gives its -wal and -shm files the
    database file's own mode. A file left by an earlier version is made private too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        log.info("made %s readable by its owner only", path)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            _private_file(path)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgres"):
        parsed = postgres_url(url)
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": POSTGRES_CONNECT_TIMEOUT}
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def describe_failure(engine: Engine, exc: BaseException) -> str:
    """One line for a driver error: the database (password hidden) and the driver's first line.

    SQLAlchemy's own text spans lines (the SQL, a "Background on this error" link) and libpq
    adds a hint line; none of it helps someone fixing a URL or starting a server."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    reason = lines[0] if lines else type(cause).__name__
    password = str(engine.url.password or "")
    if len(password) >= 4:  # libpq does not echo it; this guards odd driver texts, not "p" in "port"
        reason = reason.replace(password, "***")
    return f"{engine.url.render_as_string(hide_password=True)}: {reason}"


def _reachable(engine: Engine) -> None:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot reach it"
        raise DatabaseError(f"cannot open the database {describe_failure(engine, exc)}") from None


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, an exclusive lock on a file beside the database, held around the migration's
    whole transaction (commit included); nothing on other databases."""
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    if path is None:
        yield
        return
    fd = os.open(path.with_name(path.name + ".migrate-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock_in_transaction(engine: Engine, connection: Connection) -> None:
    """On PostgreSQL, an advisory lock that the migration's transaction holds until it commits."""
    if engine.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def revision(connection: Connection) -> str | None:
    """The migration the database is at (None for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def migrate(engine: Engine) -> bool:
    """Upgrade the database behind `engine` to the newest migration, under the migration lock.
    True when this call migrated it, False when it was already at the newest."""
    _reachable(engine)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        # Processes starting together wait here in turn; the one that finds the newest
        # migration already applied does nothing.
        with _file_lock(engine), engine.begin() as connection:
            _lock_in_transaction(engine, connection)
            before = revision(connection)
            if before == head_revision():
                return False
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
            log.info("database migrated from %s to %s", before or "empty", head_revision())
            return True
    except OperationalError as exc:  # the connection dropped or the server refused mid-way
        raise DatabaseError(f"cannot migrate the database {describe_failure(engine, exc)}") from None


def require_current(engine: Engine) -> None:
    """For processes that do not migrate (the scheduler): the database must be at the newest
    migration, which the dashboard's server process applies when it starts."""
    _reachable(engine)
    with engine.connect() as connection:
        found = revision(connection)
    if found != head_revision():
        raise DatabaseError(
            f"the database is at migration {found or '(none)'}, not {head_revision()}: start the dashboard "
            "first (it migrates at start-up) or run `python -m lib.db upgrade`"
        )


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def main(argv: list[str]) -> int:
    if argv[:1] != ["upgrade"]:
        print("usage: python -m lib.db upgrade", file=sys.stderr)
        return 2
    settings = load_settings()
    try:
        migrated = migrate(make_engine(settings.database_url))
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("database migrated to the newest migration" if migrated else "database is already at the newest migration")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
