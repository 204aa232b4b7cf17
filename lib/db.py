"""The operational SQL database (servers now; users, audit and meetings later).

SQLite in data/ (WAL mode) by default, PostgreSQL by URL. The schema is owned by the Alembic
migrations in migrations/; `migrate()` brings any database to head, at start-up or by
`python -m lib.db upgrade`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import sessionmaker

from .config import REPO_ROOT, load_settings


class DatabaseError(RuntimeError):
    """The database cannot be reached or migrated; the message says which."""


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
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade the database behind `engine` to the newest migration."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot reach it"
        raise DatabaseError(f"cannot open the database ({type(exc).__name__}: {exc})") from None
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


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
