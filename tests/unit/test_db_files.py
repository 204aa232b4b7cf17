"""The SQLite file holds password and session hashes and encrypted secrets: it and its WAL and
shared-memory files are readable by their owner only, whoever's umask created them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from lib.db import make_engine, migrate


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'dashboard.sqlite'}")
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO audit_events (at, actor, action, target, result, detail, address) "
                                    "VALUES (CURRENT_TIMESTAMP, 'a', 'b', '', 'ok', '', '')"))  # fmt: skip
            files = sorted(tmp_path.glob("dashboard.sqlite*"))
            assert {p.name for p in files} >= {"dashboard.sqlite", "dashboard.sqlite-wal", "dashboard.sqlite-shm"}
            assert {p.name: mode(p) for p in files if not p.name.endswith("lock")} == {p.name: 0o600 for p in files if not p.name.endswith("lock")}
        engine.dispose()
    finally:
        os.umask(old)


def test_a_database_left_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.sqlite"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o600
