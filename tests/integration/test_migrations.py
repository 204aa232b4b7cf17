"""The SQL schema on SQLite and on a real PostgreSQL: the Alembic chain from an empty database, up,
again, down and up; `python -m lib.db upgrade`; and the server registry's round trip on both."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from lib.config import REPO_ROOT, ServerConfig
from lib.db import alembic_config, make_engine, migrate, session_factory
from lib.livekit.devserver import free_port
from lib.models import Base
from lib.secretbox import SecretBox
from lib.servers import ServerRegistry, ServerRegistryError
from tests.postgres import create_database, drop_database

SCHEMA_TABLES = {
    "users", "login_sessions", "login_attempts", "audit_events", "servers", "change_versions",
    "meetings", "occurrences", "meeting_cohosts", "meeting_invitees", "meeting_transitions",
    "join_grants", "join_attempts", "scheduler_heartbeats",
    "webhook_receivers", "webhook_events", "webhook_deliveries",
}  # fmt: skip


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def stored_revisions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def schema_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def downgrade_to_base(engine: Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")


def test_empty_database_upgrades_to_head(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
    migrate(engine)
    assert SCHEMA_TABLES <= schema_tables(engine)
    assert stored_revisions(engine) == [head_revision()]


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO audit_events (at, actor, action, result) VALUES (CURRENT_TIMESTAMP, 'a', 'b', 'ok')")
        )
    tables = schema_tables(engine)
    migrate(engine)
    assert schema_tables(engine) == tables
    assert stored_revisions(engine) == [head_revision()]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1


def test_downgrade_to_base_then_upgrade_again_reaches_head(engine: Engine) -> None:
    migrate(engine)
    downgrade_to_base(engine)
    assert schema_tables(engine) == set()
    assert stored_revisions(engine) == []
    migrate(engine)
    assert SCHEMA_TABLES <= schema_tables(engine)
    assert stored_revisions(engine) == [head_revision()]


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    """The migrations and lib/models.py describe the same tables, columns and indexes."""
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_server_registry_round_trip(engine: Engine) -> None:
    migrate(engine)
    env = ServerConfig("default", "ws://127.0.0.1:7880", "devkey", "x" * 40, "environment")
    registry = ServerRegistry(session_factory(engine), SecretBox("k" * 40), env)

    registry.add("edge-eu", "wss://eu.example", "key", "first-secret-value")
    with pytest.raises(ServerRegistryError, match="already exists"):
        registry.add("edge-eu", "wss://other.example", "key", "s")
    registry.update("edge-eu", url="wss://eu2.example", api_key="key2")
    stored = registry.get("edge-eu")
    assert stored is not None
    assert (stored.url, stored.api_key, stored.api_secret) == ("wss://eu2.example", "key2", "first-secret-value")
    registry.update("edge-eu", url="wss://eu2.example", api_key="key2", api_secret="second-secret-value")
    assert registry.get("edge-eu").api_secret == "second-secret-value"  # type: ignore[union-attr]

    registry.remove("edge-eu")
    assert [s.name for s in registry.list()] == ["default"]
    with pytest.raises(ServerRegistryError, match="No server"):
        registry.remove("edge-eu")


def run_upgrade_cli(database_url: str, tmp_path: os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DASHBOARD_DATABASE_URL")}
    env |= {"DASHBOARD_DATABASE_URL": database_url, "DASHBOARD_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "lib.db", "upgrade"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_upgrade_migrates_postgresql(postgres_server: str, tmp_path: os.PathLike[str]) -> None:
    url = create_database(postgres_server)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        # The plain scheme a user would write; lib.db picks the psycopg driver for it.
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        result = run_upgrade_cli(plain, tmp_path)
        assert result.returncode == 0, result.stderr
        assert stored_revisions(engine) == [head_revision()]
    finally:
        engine.dispose()
        drop_database(url)


def test_cli_upgrade_with_unreachable_postgresql_prints_one_line(tmp_path: os.PathLike[str]) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://dash:not-a-real-password@127.0.0.1:{port}/dashboard"
    result = run_upgrade_cli(url, tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "cannot open the database" in lines[0]
    assert "not-a-real-password" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
