"""Several dashboard processes on one database: migrations run once under a lock when they start
together (SQLite and a real PostgreSQL), two app processes come up side by side on a fresh
PostgreSQL database, PostgreSQL without the shared keys is refused in one line, and a server added
or removed in one process reaches another process's gateway by the registry's version."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lib import services
from lib.config import REPO_ROOT, load_settings
from lib.livekit.devserver import DevServer, free_port
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
