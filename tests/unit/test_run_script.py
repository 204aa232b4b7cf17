"""scripts/run.py (`make run`) finds the LiveKit server the way the dashboard does."""

from __future__ import annotations

import importlib.util
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
