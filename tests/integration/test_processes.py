"""Several dashboard processes on one database: migrations run once under a lock when they start
together (SQLite and a real PostgreSQL), two app processes come up side by side on a fresh
PostgreSQL database, PostgreSQL without the shared keys is refused in one line, a server added
or removed in one process reaches another process's gateway by the registry's version, and
`make run` (scripts/run.py) runs the scheduler beside the dashboard, restarts it and stops it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from lib import services
from lib.config import REPO_ROOT, load_settings
from lib.db import make_engine, session_factory
from lib.livekit.devserver import DevServer, free_port
from lib.models import SchedulerBeat
from tests.app_process import AppProcess, base_env
from tests.postgres import create_database, drop_database

pytestmark = pytest.mark.integration

NO_SECRETS = Path("/nonexistent/secrets.toml")


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_two_upgrades_started_together_migrate_once(database_url: str) -> None:
    env = {**base_env(), "DASHBOARD_DATABASE_URL": database_url, "DASHBOARD_DATA_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")))}
    command = [sys.executable, "-m", "lib.db", "upgrade"]
    runs = [subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert sum("database migrated to the newest migration" in o for o in outputs) == 1, outputs
    assert sum("already at the newest migration" in o for o in outputs) == 2, outputs


def app_env(livekit_server: DevServer, data: Path, **extra: str) -> dict[str, str]:
    return {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(data),
        **extra,
    }


def test_two_app_processes_started_together_on_a_fresh_postgresql_both_come_up(
    livekit_server: DevServer, postgres_server: str, tmp_path: Path
) -> None:
    url = create_database(postgres_server)
    shared = {
        "DASHBOARD_DATABASE_URL": url.render_as_string(hide_password=False),
        "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(32),
        "DASHBOARD_SESSION_SECRET": secrets.token_urlsafe(32),
        "DASHBOARD_ADMIN_PASSWORD": "both-nodes-admin-password",
    }
    apps = [
        AppProcess(app_env(livekit_server, tmp_path / f"node{i}", DASHBOARD_HISTORY_PATH=str(tmp_path / f"node{i}.duckdb"), **shared), tmp_path / f"node{i}.log")
        for i in (1, 2)
    ]
    try:
        for app in apps:  # both launched before either is waited for
            app.launch()
        for app in apps:
            app.wait_ready()
        logs = [app.log() for app in apps]
        assert sum("database migrated from empty" in log for log in logs) == 1, logs
        for app in apps:
            assert httpx.get(f"{app.url}/healthz", timeout=10).json()["ready"] is True
        # One admin for both: the first-admin step ran in one process only.
        core = services.build(load_settings({**app_env(livekit_server, tmp_path / "check"), **shared}, NO_SECRETS))
        try:
            assert [u.username for u in core.users.list()] == ["admin"]
        finally:
            core.close()
    finally:
        for app in apps:
            app.stop()
        drop_database(url)


def test_postgresql_without_the_shared_keys_stops_the_app_with_one_line(
    livekit_server: DevServer, postgres_server: str, tmp_path: Path
) -> None:
    env = {**base_env(), **app_env(livekit_server, tmp_path / "data", DASHBOARD_DATABASE_URL=postgres_server)}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(free_port()), "--server.headless", "true"]
    process = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=90)

    assert process.returncode != 0
    output = process.stdout + process.stderr
    lines = [line for line in output.splitlines() if "DASHBOARD_SECRET_KEY" in line]
    assert len(lines) == 1 and "DASHBOARD_SESSION_SECRET" in lines[0], output
    assert "Traceback" not in output


def test_a_server_added_in_one_process_reaches_another_processs_gateway(livekit_server: DevServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = app_env(livekit_server, data, DASHBOARD_SECRET_KEY=secrets.token_urlsafe(32), DASHBOARD_REFRESH_SECONDS="1",
                  DASHBOARD_ADMIN_PASSWORD="follower-admin-password")  # fmt: skip
    with AppProcess(env, tmp_path / "app.log").start() as app:

        def watched() -> set[str]:
            return {s["name"] for s in httpx.get(f"{app.url}/healthz", timeout=10).json()["servers"]}

        assert watched() == {"default"}
        here = services.build(load_settings(env, NO_SECRETS))  # a second process's view of the same store
        try:
            here.servers.add("second", f"ws://127.0.0.1:{free_port()}", "second-key", "second-secret-" + "s" * 20)
            assert eventually(lambda: watched() == {"default", "second"}), watched()
            here.servers.remove("second")
            assert eventually(lambda: watched() == {"default"}), watched()
        finally:
            here.close()
        assert "server list changed" in app.log()


def test_make_run_starts_the_scheduler_restarts_it_and_stops_it_with_the_dashboard(livekit_server: DevServer, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **base_env(),
        **app_env(livekit_server, tmp_path / "data"),
        "DASHBOARD_ADMIN_PASSWORD": "run-script-admin-password",
        "DASHBOARD_HISTORY_PATH": str(tmp_path / "history.duckdb"),
        "DASHBOARD_SCHEDULER_SECONDS": "0.5",
        "DASHBOARD_PORT": str(port),
    }
    log = tmp_path / "run.log"
    with open(log, "ab") as out:
        run = subprocess.Popen(
            [sys.executable, "scripts/run.py"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    database = tmp_path / "data" / "dashboard.sqlite"
    engines = []
    try:
        # The dashboard makes and migrates the database; the scheduler, started after it, beats.
        assert eventually(database.exists, 60), log.read_text()
        engines.append(make_engine(f"sqlite:///{database}"))
        sessions = session_factory(engines[0])

        def beats() -> list[SchedulerBeat]:
            try:
                with sessions() as s:
                    return list(s.scalars(select(SchedulerBeat).order_by(SchedulerBeat.started_at)))
            except OperationalError:
                return []  # not migrated yet

        assert eventually(lambda: len(beats()) == 1, 60), log.read_text()
        first = int(beats()[0].name.rsplit(":", 1)[1])
        assert f"started scheduler (pid {first})" in log.read_text()

        os.kill(first, signal.SIGKILL)  # a scheduler that dies is started again
        assert eventually(lambda: len(beats()) == 2 and not beats()[1].stopped, 30), log.read_text()
        second = int(beats()[1].name.rsplit(":", 1)[1])
        assert f"scheduler (pid {first}) exited with code -9; starting it again" in log.read_text()

        run.send_signal(signal.SIGINT)  # Ctrl-C
        assert run.wait(timeout=30) == 0, log.read_text()
        text = log.read_text()
        assert f"stopping scheduler (pid {second})" in text
        assert text.index("stopping scheduler") < text.index("stopping streamlit"), "the scheduler stops first"
        assert beats()[1].stopped, "its last heartbeat says it stopped"
        with pytest.raises(ProcessLookupError):
            os.kill(second, 0)
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=30)
        for engine in engines:
            engine.dispose()
