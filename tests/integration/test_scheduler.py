"""scheduler.py as the process it is: refuses an unmigrated database in one line, `--once` runs one
tick without opening the history store, and two schedulers at once over 200 meetings (SQLite and
PostgreSQL) start and end each exactly once, leave no room behind and stop on SIGTERM."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from livekit import api
from sqlalchemy import func, select

from lib.config import REPO_ROOT, ServerConfig
from lib.db import make_engine, migrate, session_factory
from lib.livekit.devserver import DevServer
from lib.livekit.gateway import LiveKitGateway
from lib.models import Occurrence, SchedulerBeat, Transition, utcnow
from tests.app_process import base_env
from tests.schedule import add_host, add_meeting, add_meetings, occurrence

pytestmark = pytest.mark.integration

MEETINGS = 200


def scheduler_env(livekit_server: DevServer, database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **base_env(),
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATABASE_URL": database_url,
        "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
        "DASHBOARD_SECRET_KEY": "scheduler-test-secret-key-0123456789",
        "DASHBOARD_HISTORY_PATH": str(tmp_path / "history.duckdb"),
        **extra,
    }


def scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python scheduler.py` with its output in `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "scheduler.py"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


@pytest.fixture
def migrated(database_url: str) -> Iterator[str]:
    engine = make_engine(database_url)
    migrate(engine)
    engine.dispose()
    yield database_url


def test_scheduler_refuses_an_unmigrated_database_in_one_line(livekit_server: DevServer, tmp_path: Path) -> None:
    env = scheduler_env(livekit_server, f"sqlite:///{tmp_path / 'empty.sqlite'}", tmp_path)
    done = subprocess.run([sys.executable, "scheduler.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the database is at migration (none)"), lines


def test_once_runs_one_tick_and_never_opens_the_history_store(livekit_server: DevServer, migrated: str, tmp_path: Path, lk_api) -> None:
    env = scheduler_env(livekit_server, migrated, tmp_path)
    engine = make_engine(migrated)
    sessions = session_factory(engine)
    now = utcnow()
    oid = add_meeting(sessions, add_host(sessions), now - timedelta(seconds=1), now + timedelta(minutes=10))
    name = occurrence(sessions, oid).room_name
    try:
        done = subprocess.run([sys.executable, "scheduler.py", "--once"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)

        assert done.returncode == 0, done.stderr
        assert "started 1, ended 0, rooms deleted again 0, waiting 0" in done.stdout
        assert occurrence(sessions, oid).status == "active"
        listed = lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[name])))
        assert [r.name for r in listed.rooms] == [name]
        with sessions() as s:
            beat = s.scalars(select(SchedulerBeat)).one()
        assert beat.stopped and beat.ticks == 1
        assert not (tmp_path / "history.duckdb").exists()
    finally:
        lk_api.call(lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=name)))
        engine.dispose()


def test_two_schedulers_start_and_end_every_meeting_exactly_once(livekit_server: DevServer, migrated: str, tmp_path: Path) -> None:
    engine = make_engine(migrated)
    sessions = session_factory(engine)
    host = add_host(sessions)
    env = scheduler_env(livekit_server, migrated, tmp_path, DASHBOARD_SCHEDULER_SECONDS="0.5")
    procs = [scheduler(env, log=tmp_path / f"scheduler{n}.log") for n in (1, 2)]
    gateway = LiveKitGateway([ServerConfig("default", livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)])
    try:
        # Both running (a process takes seconds to start on a busy machine) before anything is due.
        assert wait_for_beats(sessions, 2, ticks=1), _logs(tmp_path)
        # Starts spread over 20 s from 3 s ahead, each 3 to 6 s long: what is due at once overlaps.
        first = utcnow() + timedelta(seconds=3)
        prefix = f"meet-{secrets.token_hex(3)}"
        names = [f"{prefix}-{i}" for i in range(MEETINGS)]
        spans = [(first + timedelta(seconds=i * 0.1), first + timedelta(seconds=i * 0.1 + 3 + i % 4), names[i]) for i in range(MEETINGS)]
        ids = add_meetings(sessions, host, spans)

        def over() -> int:
            with sessions() as s:
                return s.scalar(select(func.count()).select_from(Occurrence).where(Occurrence.id.in_(ids), Occurrence.status == "ended"))

        deadline = time.monotonic() + 60
        while over() < MEETINGS and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), _logs(tmp_path)
            time.sleep(0.5)
        assert over() == MEETINGS, _logs(tmp_path)

        # A room re-created by an activation that lost its race is deleted by a later tick.
        deadline = time.monotonic() + 10
        while gateway.list_rooms("default", names) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert gateway.list_rooms("default", names) == []

        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=5) == 0, _logs(tmp_path)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        gateway.close()

    with sessions() as s:
        kinds = s.execute(
            select(Transition.occurrence_id, Transition.from_status, Transition.to_status).where(Transition.occurrence_id.in_(ids))
        ).all()
        beats = s.scalars(select(SchedulerBeat)).all()
    engine.dispose()
    starts = [o for o, a, b in kinds if (a, b) == ("scheduled", "active")]
    ends = [o for o, a, b in kinds if (a, b) == ("active", "ended")]
    assert sorted(starts) == sorted(ids) and sorted(ends) == sorted(ids), (Counter((a, b) for _, a, b in kinds), _logs(tmp_path))
    assert len(kinds) == 2 * MEETINGS
    assert sorted(b.name.rsplit(":", 1)[1] for b in beats) == sorted(str(p.pid) for p in procs)
    assert all(b.stopped for b in beats)
    logs = _logs(tmp_path)
    assert "Traceback" not in logs
    # Both raced: each process logs only the transitions it won, and each won some (starts or
    # ends: on a loaded machine one of them may win every start of a run).
    won = [(tmp_path / f"scheduler{n}.log").read_text() for n in (1, 2)]
    assert all(" started on default/" in text or " ended on default/" in text for text in won), logs


def wait_for_beats(sessions, count: int, ticks: int, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    """Whether `count` schedulers wrote a heartbeat after `ticks` ticks within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as s:
            if s.scalar(select(func.count()).select_from(SchedulerBeat).where(SchedulerBeat.ticks >= ticks)) >= count:
                return True
        time.sleep(0.2)
    return False


def _logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(tmp_path.glob("scheduler*.log")))


def test_sigint_stops_a_scheduler_waiting_between_ticks(livekit_server: DevServer, migrated: str, tmp_path: Path) -> None:
    env = scheduler_env(livekit_server, migrated, tmp_path, DASHBOARD_SCHEDULER_SECONDS="600")
    proc = scheduler(env, log=tmp_path / "scheduler.log")
    engine = make_engine(migrated)
    sessions = session_factory(engine)
    try:
        assert wait_for_beats(sessions, 1, ticks=1), _logs(tmp_path)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=5) == 0
        with sessions() as s:
            assert s.scalars(select(SchedulerBeat.stopped)).all() == [True]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        engine.dispose()
