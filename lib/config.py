"""Settings from the environment and `.streamlit/secrets.toml`, read and validated once.

The environment wins over secrets.toml. Secrets may use the same upper-case names at the top
level, or a `[livekit]` table with `url`, `api_key`, `api_secret`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class ServerConfig:
    """How to reach one LiveKit server. The secret is excluded from repr so it never lands in a log."""

    name: str
    url: str
    api_key: str
    api_secret: str = field(repr=False)
    source: str = "settings"  # "environment" (read-only here) or "settings" (stored, editable)

    @property
    def http_url(self) -> str:
        if self.url.startswith("ws"):
            return "http" + self.url[2:]
        return self.url

    @property
    def ws_url(self) -> str:
        if self.url.startswith("http"):
            return "ws" + self.url[4:]
        return self.url

    @property
    def masked_secret(self) -> str:
        return mask_secret(self.api_secret)


def mask_secret(secret: str) -> str:
    """What the UI may show of a secret: its length class and last four characters, never more."""
    if len(secret) < 12:
        return "•" * 8
    return "•" * 8 + secret[-4:]


def validate_url(url: str) -> str:
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("ws", "wss", "http", "https"):
        url = f"{scheme.lower()}://{rest}"  # a scheme's letter case does not matter (WS:// is ws://)
    if not url.startswith(("ws://", "wss://", "http://", "https://")):
        raise ConfigError("a LiveKit URL starts with ws://, wss://, http:// or https://")
    if len(url) > 2048 or any(c.isspace() for c in url):
        raise ConfigError("the LiveKit URL contains spaces or is too long")
    return url.rstrip("/")


# History retention beyond raw samples, by RETENTION group: the setting that says how many days.
RETENTION_SETTINGS = {
    "minute_rollups": "DASHBOARD_HISTORY_MINUTE_ROLLUP_DAYS",
    "hour_rollups": "DASHBOARD_HISTORY_HOUR_ROLLUP_DAYS",
    "events": "DASHBOARD_HISTORY_EVENT_DAYS",
    "sessions": "DASHBOARD_HISTORY_SESSION_DAYS",
}


def _retention(raw: str, name: str) -> float:
    """Days to keep; 0 (the default) keeps forever, anything else is at least a day."""
    days = _number(raw, name, 0, 0, 36500)
    if 0 < days < 1:
        raise ConfigError(f"{name} must be 0 (keep) or at least 1 day, not {raw}")
    return days


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    default_server: ServerConfig | None
    secret_key: str | None = field(repr=False)
    request_timeout: float
    snapshot_concurrency: int
    refresh_seconds: int
    admin_username: str = "admin"
    admin_password: str | None = field(default=None, repr=False)
    session_secret: str | None = field(default=None, repr=False)
    session_hours: float = 12.0
    idle_minutes: float = 30.0
    cookie_secure: bool = False
    history_path: Path | None = None
    collect_seconds: float = 5.0
    sample_days: float = 7.0
    # Days each other history table group is kept (a lib.history.store.RETENTION key); 0 keeps it.
    retention_days: dict[str, float] = field(default_factory=dict)
    # Reverse proxies whose X-Forwarded-For is believed (lib/auth/addresses.py); empty trusts none.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Seconds between the scheduler's ticks (scheduler.py).
    scheduler_seconds: float = 5.0
    # The longest meeting a host may schedule, in hours.
    meeting_max_hours: float = 24.0
    # Where people reach the dashboard (join links in invitations and calendars). Never taken
    # from a request's headers, which a client can forge.
    public_url: str = "http://127.0.0.1:8501"
    # The REST API's limit per caller (API key or user): requests a second on average, and the
    # burst allowed above it (lib/api/v1/deps.py). A rate of 0 turns the limit off.
    api_rate: float = 20.0
    api_burst: float = 60.0
    # Seconds an outgoing webhook may take to connect, and then to answer (lib/outbound/).
    webhook_timeout: float = 10.0

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def session_key_path(self) -> Path:
        return self.data_dir / "session.key"


def _read_secrets_file(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _number(raw: str | None, name: str, default: float, low: float, high: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


def _networks(raw: str, name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Addresses or CIDR networks separated by commas or spaces. A network with host bits set
    (10.0.0.1/8) is refused: it is more likely a typo than a wish to trust all of 10/8."""
    networks = []
    for entry in (e for e in re.split(r"[\s,]+", raw) if e):
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc} (addresses or networks, separated by commas)") from None
    return tuple(networks)


def load_settings(
    env: Mapping[str, str] | None = None, secrets_path: Path | None = None
) -> Settings:
    env = os.environ if env is None else env
    secrets = _read_secrets_file(secrets_path or REPO_ROOT / ".streamlit" / "secrets.toml")
    livekit_table = secrets.get("livekit", {}) if isinstance(secrets.get("livekit"), dict) else {}

    def pick(name: str, table_key: str | None = None) -> str:
        if env.get(name):
            return env[name]
        if secrets.get(name):
            return str(secrets[name])
        if table_key and livekit_table.get(table_key):
            return str(livekit_table[table_key])
        return ""

    url, key, secret = pick("LIVEKIT_URL", "url"), pick("LIVEKIT_API_KEY", "api_key"), pick(
        "LIVEKIT_API_SECRET", "api_secret"
    )
    default_server = None
    if url or key or secret:
        missing = [n for n, v in (("LIVEKIT_URL", url), ("LIVEKIT_API_KEY", key), ("LIVEKIT_API_SECRET", secret)) if not v]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set (the other LIVEKIT_* settings are)")
        name = pick("DASHBOARD_SERVER_NAME") or "default"
        default_server = ServerConfig(name, validate_url(url), key, secret, source="environment")

    data_dir = Path(pick("DASHBOARD_DATA_DIR") or REPO_ROOT / "data")
    sql_table = secrets.get("connections", {}).get("sql", {}) if isinstance(secrets.get("connections"), dict) else {}
    database_url = (
        pick("DASHBOARD_DATABASE_URL")
        or pick("DATABASE_URL")
        or (str(sql_table.get("url")) if isinstance(sql_table, dict) and sql_table.get("url") else "")
        or f"sqlite:///{data_dir / 'dashboard.sqlite'}"
    )
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        default_server=default_server,
        secret_key=pick("DASHBOARD_SECRET_KEY") or None,
        request_timeout=_number(pick("DASHBOARD_REQUEST_TIMEOUT"), "DASHBOARD_REQUEST_TIMEOUT", 4.0, 0.5, 60),
        # The most calls a snapshot keeps in flight per server, and so connections kept open to
        # it; the gateway uses fewer for a server that answers fast (lib/livekit/gateway.py).
        snapshot_concurrency=int(
            _number(pick("DASHBOARD_SNAPSHOT_CONCURRENCY"), "DASHBOARD_SNAPSHOT_CONCURRENCY", 512, 1, 4096)
        ),
        refresh_seconds=int(_number(pick("DASHBOARD_REFRESH_SECONDS"), "DASHBOARD_REFRESH_SECONDS", 5, 1, 3600)),
        admin_username=pick("DASHBOARD_ADMIN_USERNAME") or "admin",
        admin_password=pick("DASHBOARD_ADMIN_PASSWORD") or None,
        session_secret=pick("DASHBOARD_SESSION_SECRET") or None,
        session_hours=_number(pick("DASHBOARD_SESSION_HOURS"), "DASHBOARD_SESSION_HOURS", 12, 0.1, 24 * 30),
        idle_minutes=_number(pick("DASHBOARD_IDLE_MINUTES"), "DASHBOARD_IDLE_MINUTES", 30, 1, 24 * 60),
        cookie_secure=pick("DASHBOARD_COOKIE_SECURE").lower() in ("1", "true", "yes"),
        history_path=Path(pick("DASHBOARD_HISTORY_PATH") or data_dir / "history.duckdb"),
        collect_seconds=_number(pick("DASHBOARD_COLLECT_SECONDS"), "DASHBOARD_COLLECT_SECONDS", 5, 1, 3600),
        sample_days=_number(pick("DASHBOARD_HISTORY_SAMPLE_DAYS"), "DASHBOARD_HISTORY_SAMPLE_DAYS", 7, 0.01, 3650),
        retention_days={what: _retention(pick(name), name) for what, name in RETENTION_SETTINGS.items()},
        trusted_proxies=_networks(pick("DASHBOARD_TRUSTED_PROXIES"), "DASHBOARD_TRUSTED_PROXIES"),
        scheduler_seconds=_number(pick("DASHBOARD_SCHEDULER_SECONDS"), "DASHBOARD_SCHEDULER_SECONDS", 5, 0.2, 3600),
        meeting_max_hours=_number(pick("DASHBOARD_MEETING_MAX_HOURS"), "DASHBOARD_MEETING_MAX_HOURS", 24, 0.1, 24 * 14),
        api_rate=_number(pick("DASHBOARD_API_RATE"), "DASHBOARD_API_RATE", 20, 0, 100_000),
        api_burst=_number(pick("DASHBOARD_API_BURST"), "DASHBOARD_API_BURST", 60, 1, 1_000_000),
        webhook_timeout=_number(pick("DASHBOARD_WEBHOOK_TIMEOUT"), "DASHBOARD_WEBHOOK_TIMEOUT", 10, 1, 60),
        public_url=_public_url(pick("DASHBOARD_PUBLIC_URL") or f"http://{pick('DASHBOARD_HOST') or '127.0.0.1'}:{pick('DASHBOARD_PORT') or '8501'}"),
    )


def _public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or any(c in rest for c in "?#"):
        raise ConfigError(f"DASHBOARD_PUBLIC_URL must be an http:// or https:// address without a query, got {raw!r}")
    return url
