import pytest

from lib.config import ConfigError, load_settings


def test_environment_defines_the_default_server(tmp_path):
    s = load_settings({"LIVEKIT_URL": "ws://127.0.0.1:7880/", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s" * 32}, tmp_path / "none.toml")
    assert s.default_server.url == "ws://127.0.0.1:7880"
    assert s.default_server.http_url == "http://127.0.0.1:7880"
    assert s.default_server.source == "environment"
    assert "s" * 32 not in repr(s)


def test_secrets_toml_is_read_and_environment_wins(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text('[livekit]\nurl = "wss://lk.example"\napi_key = "file-key"\napi_secret = "file-secret"\n')
    s = load_settings({"LIVEKIT_API_KEY": "env-key"}, path)
    assert (s.default_server.url, s.default_server.api_key) == ("wss://lk.example", "env-key")


def test_half_configured_server_names_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match="LIVEKIT_API_SECRET"):
        load_settings({"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k"}, tmp_path / "none.toml")


def test_bad_numbers_are_refused_with_the_setting_name(tmp_path):
    with pytest.raises(ConfigError, match="DASHBOARD_REQUEST_TIMEOUT"):
        load_settings({"DASHBOARD_REQUEST_TIMEOUT": "soon"}, tmp_path / "none.toml")


def test_no_server_configured_is_allowed(tmp_path):
    assert load_settings({}, tmp_path / "none.toml").default_server is None


def test_history_retention_defaults_to_keeping_and_refuses_less_than_a_day(tmp_path):
    none = tmp_path / "none.toml"
    assert load_settings({}, none).retention_days == {"minute_rollups": 0, "hour_rollups": 0, "events": 0, "sessions": 0}
    s = load_settings({"DASHBOARD_HISTORY_EVENT_DAYS": "30", "DASHBOARD_HISTORY_MINUTE_ROLLUP_DAYS": "90"}, none)
    assert s.retention_days["events"] == 30 and s.retention_days["minute_rollups"] == 90 and s.retention_days["sessions"] == 0
    with pytest.raises(ConfigError, match="DASHBOARD_HISTORY_SESSION_DAYS"):
        load_settings({"DASHBOARD_HISTORY_SESSION_DAYS": "0.5"}, none)
    with pytest.raises(ConfigError, match="DASHBOARD_HISTORY_HOUR_ROLLUP_DAYS"):
        load_settings({"DASHBOARD_HISTORY_HOUR_ROLLUP_DAYS": "-1"}, none)
