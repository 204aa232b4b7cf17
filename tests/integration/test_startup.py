"""`streamlit run app.py` with a database it cannot reach: the process ends on its own, non-zero,
with one line naming the database problem and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lib.config import REPO_ROOT
from lib.livekit.devserver import free_port

PASSWORD = "start-up-test-password"


def test_unreachable_database_stops_start_up_with_one_clear_line(tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LIVEKIT_", "DASHBOARD_")) and k != "DATABASE_URL"
    }
    env |= {
        "DASHBOARD_DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:{closed_port}/x",
        "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
        # Set, so that the missing database is what stops it (tests/integration/test_processes.py
        # checks the refusal without them).
        "DASHBOARD_SECRET_KEY": "start-up-test-secret-key",
        "DASHBOARD_SESSION_SECRET": "start-up-test-session-secret",
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(free_port()), "--server.headless", "true",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the dashboard kept running with an unreachable database:\n{output}")

    assert process.returncode != 0, output
    errors = [line for line in output.splitlines() if "cannot open the database" in line]
    assert len(errors) == 1, output
    assert f"127.0.0.1:{closed_port}" in errors[0]
    assert "Traceback" not in output
    assert PASSWORD not in output
