"""The scheduler's scans read ranges of the (status, time) indexes, never the whole occurrence
table, so a tick over many meetings far in the future stays cheap (SQLite's plan)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Select

from lib.db import make_engine, migrate
from lib.meetings.lifecycle import due_to_end, due_to_start, recently_over

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("scan", "index"),
    [
        (due_to_start, "ix_occurrences_status_starts_at"),
        (due_to_end, "ix_occurrences_status_ends_at"),
        (recently_over, "ix_occurrences_status_ends_at"),
    ],
)
def test_each_scan_is_a_range_of_its_index(tmp_path: Path, scan, index: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.sqlite'}")
    migrate(engine)
    statement: Select = scan(NOW)
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    params = tuple(compiled.params[name] for name in compiled.positiontup)
    with engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)]
    engine.dispose()
    occurrences = [step for step in plan if "occurrences" in step]
    assert occurrences and all(index in step for step in occurrences), plan
    assert not any(step.startswith("SCAN occurrences") for step in plan), plan
