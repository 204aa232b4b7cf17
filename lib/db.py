"""The operational SQL database (servers now; users, audit and meetings later).

SQLite in data/ (WAL mode) by default, PostgreSQL by URL (`postgresql://` or `postgres://`, run
with the psycopg 3 driver). The schema is owned by the Alembic migrations in migrations/;
`migrate()` brings any database to head, at start-up or by `python -m lib.db upgrade`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from .config import REPO_ROOT, load_settings


class DatabaseError(RuntimeError):
    """The database cannot be reached or migrated; the message says which."""


# Seconds libpq waits for a PostgreSQL server, so an unreachable host fails start-up quickly.
POSTGRES_CONNECT_TIMEOUT = 10


def postgres_url(url: str) -> URL:
    """`postgresql://` and `postgres://` (as hosting providers hand them out) with the psycopg 3
    driver; a URL that names its own driver (`postgresql+...://`) is kept as given."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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


def migrate(engine: Engine) -> None:
    """Upgrade the database behind `engine` to the newest migration."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot reach it"
        raise DatabaseError(f"cannot open the database {describe_failure(engine, exc)}") from None
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    except OperationalError as exc:  # the connection dropped or the server refused mid-way
        raise DatabaseError(f"cannot migrate the database {describe_failure(engine, exc)}") from None


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def main(argv: list[str]) -> int:
    if argv[:1] != ["upgrade"]:
        print("usage: python -m lib.db upgrade", file=sys.stderr)
        return 2
    settings = load_settings()
    try:
        migrate(make_engine(settings.database_url))
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("database is at the newest migration")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
