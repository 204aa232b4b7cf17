"""scripts/run.py (`make run`) finds the LiveKit server the way the dashboard does, and restarts
the children that may be restarted (the traffic simulator, the scheduler) each within its own
budget."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from lib.config import REPO_ROOT, ConfigError


def run_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_script", REPO_ROOT / "scripts" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_livekit_table_of_secrets_toml_names_the_server(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[livekit]\nurl = "wss://lk.example.com"\napi_key = "tablekey"\napi_secret = "table-secret-0123456789"\n')

    found = run_script().configured_livekit({}, secrets)

    assert (found.url, found.api_key, found.api_secret) == ("wss://lk.example.com", "tablekey", "table-secret-0123456789")


def test_the_environment_wins_over_secrets_toml(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('LIVEKIT_URL = "wss://file.example"\nLIVEKIT_API_KEY = "filekey"\nLIVEKIT_API_SECRET = "file-secret"\n')
    env = {"LIVEKIT_URL": "ws://127.0.0.1:7999", "LIVEKIT_API_KEY": "envkey", "LIVEKIT_API_SECRET": "env-secret"}

    found = run_script().configured_livekit(env, secrets)

    assert (found.url, found.api_key) == ("ws://127.0.0.1:7999", "envkey")


def test_no_server_configured_means_a_local_one_and_half_configured_is_an_error(tmp_path: Path) -> None:
    script = run_script()
    assert script.configured_livekit({}, tmp_path / "missing.toml") is None
    with pytest.raises(ConfigError, match="LIVEKIT_API_SECRET"):
        script.configured_livekit({"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k"}, tmp_path / "missing.toml")


def test_a_child_that_keeps_dying_is_restarted_only_so_often() -> None:
    restarts = run_script().Restarts(limit=2, window=60.0)
    assert [restarts.allow(t) for t in (0.0, 10.0, 20.0)] == [True, True, False]
    assert restarts.allow(61.0), "an old restart no longer counts"


def test_a_restarted_child_keeps_its_own_restart_budget() -> None:
    script = run_script()
    env = dict(os.environ)
    quick = [sys.executable, "-c", "pass"]
    scheduler = script.spawn("scheduler", quick, env, respawn=True)
    simulator = script.spawn("traffic simulator", quick, env, respawn=True)
    streamlit = script.spawn("streamlit", quick, env)
    started = [scheduler, simulator, streamlit]
    scheduler.restarts.limit = 2

    def restart(child, now: float):  # type: ignore[no-untyped-def]
        again = script.restart(child, now)
        if again is not None:
            started.append(again)
        return again

    try:
        again = restart(scheduler, 0.0)
        assert again is not None and again.restarts is scheduler.restarts and again.pid != scheduler.pid
        assert restart(again, 1.0) is not None
        assert restart(again, 2.0) is None, "the scheduler used up its restarts"
        assert restart(simulator, 2.0) is not None, "the simulator's are its own"
        assert restart(streamlit, 2.0) is None, "the dashboard itself is never restarted"
    finally:
        script.stop_all(started)


def test_the_scheduler_runs_from_the_checkout_with_the_given_python() -> None:
    assert run_script().scheduler_command("/venv/bin/python") == ["/venv/bin/python", str(REPO_ROOT / "scheduler.py")]
