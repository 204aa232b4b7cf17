"""The custom routes on the real st.App (Starlette TestClient, real lifespan) against real
livekit-servers, including a server that stops and comes back while the dashboard runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import app as appmod
from lib import services
from lib.config import load_settings
from lib.history.store import RoomSample
from lib.livekit.devserver import DevServer, DevServerError, find_binary, free_port
from lib.livekit.errors import Category

pytestmark = pytest.mark.integration

SERVER = "default"
# Settings the lifespan could also pick up from a developer's shell or secrets file.
_OTHER_SETTINGS = (
    "DASHBOARD_SERVER_NAME", "DASHBOARD_DATABASE_URL", "DATABASE_URL", "DASHBOARD_REQUEST_TIMEOUT",
    "DASHBOARD_SNAPSHOT_CONCURRENCY", "DASHBOARD_REFRESH_SECONDS",
)  # fmt: skip


@pytest.fixture(scope="module")
def client(livekit_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app with its lifespan, entered once for the module: Streamlit's Runtime is a
    process-wide singleton that cannot start again once stopped, so tests share this client
    and `serve` swaps the services under it (/healthz reads `services.current()`)."""
    data = tmp_path_factory.mktemp("routes")
    with pytest.MonkeyPatch.context() as mp:
        for name in _OTHER_SETTINGS:
            mp.delenv(name, raising=False)
        mp.setenv("LIVEKIT_URL", livekit_server.ws_url)
        mp.setenv("LIVEKIT_API_KEY", livekit_server.api_key)
        mp.setenv("LIVEKIT_API_SECRET", livekit_server.api_secret)
        mp.setenv("DASHBOARD_DATA_DIR", str(data / "lifespan"))
        mp.setenv("DASHBOARD_SECRET_KEY", "test-secret-key-for-the-route-tests")
        services.stop()
        try:
            with TestClient(appmod.app) as test_client:
                assert services.current() is not None, "the lifespan starts the services"
                yield test_client
        finally:
            services.stop()


@pytest.fixture
def serve(client: TestClient, tmp_path: Path) -> Iterator[Callable[[str, str, str], TestClient]]:
    """`serve(url, key, secret)` -> the app's client, its services rebuilt for that server as the
    lifespan builds them from the environment. They are stopped after the test."""

    def start(url: str, api_key: str, api_secret: str, **extra: str) -> TestClient:
        env = extra | {
            "LIVEKIT_URL": url,
            "LIVEKIT_API_KEY": api_key,
            "LIVEKIT_API_SECRET": api_secret,
            "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
            "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-route-tests",
        }
        services.stop()
        services.start(load_settings(env, tmp_path / "none.toml"))
        return client

    try:
        yield start
    finally:
        services.stop()


def start_dev_server(**fields: Any) -> DevServer:
    """Start a livekit-server, trying again when it lost a port race: DevServer picks its RTC
    ports with free_port(), and the RTC TCP port (bound on every interface) is now and then
    taken by another socket before the server binds it ("address already in use")."""
    for _ in range(2):
        server = DevServer(**fields)
        try:
            return server.start()
        except DevServerError:
            server.stop()  # removes its temporary directory
    return DevServer(**fields).start()


@pytest.fixture
def own_server() -> Iterator[DevServer]:
    """A livekit-server for one test on a fixed port, so the test can stop and restart it."""
    try:
        find_binary()
    except DevServerError as exc:
        pytest.skip(str(exc))
    server = start_dev_server(http_port=free_port())
    try:
        yield server
    finally:
        server.stop()


def stop_now(server: DevServer) -> None:
    """Stop a server the way a crash does. livekit-server's graceful shutdown (one SIGTERM, not
    forced) outlasts DevServer's default 10 s wait even with nothing to drain."""
    server.stop(timeout=1.0)


def restart(stopped: DevServer) -> DevServer:
    """The same server again: same port and the same key and secret."""
    return start_dev_server(api_key=stopped.api_key, api_secret=stopped.api_secret, http_port=stopped.http_port)


def healthz(client: TestClient) -> tuple[int, dict[str, Any], str]:
    response = client.get("/healthz")
    return response.status_code, response.json(), response.text


def server_entry(body: dict[str, Any]) -> dict[str, Any]:
    [entry] = [s for s in body["servers"] if s["name"] == SERVER]
    return entry


def poll_healthz(client: TestClient, reachable: bool, timeout: float = 20.0) -> dict[str, Any]:
    """/healthz until the server's `reachable` is as expected or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        _, body, _ = healthz(client)
        if server_entry(body)["reachable"] is reachable or time.monotonic() >= deadline:
            return body
        time.sleep(0.3)


def test_healthz_is_ready_and_names_the_reachable_server_without_its_credentials(
    serve, livekit_server: DevServer
) -> None:
    client = serve(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)

    status, body, text = healthz(client)

    assert status == 200
    assert body["status"] == "ok" and body["live"] is True and body["ready"] is True
    entry = server_entry(body)
    assert entry["reachable"] is True and entry["error"] is None and entry["unreachable_since"] is None
    assert livekit_server.api_secret not in text
    assert livekit_server.ws_url not in text and livekit_server.http_url not in text
    assert f"127.0.0.1:{livekit_server.http_port}" not in text


def test_healthz_with_a_wrong_secret_reports_the_server_unauthorized(
    serve, livekit_server: DevServer
) -> None:
    wrong_secret = "wrong-secret-" + "w" * 32
    client = serve(livekit_server.ws_url, livekit_server.api_key, wrong_secret)

    status, body, text = healthz(client)

    assert status == 200
    assert body["status"] == "degraded" and body["ready"] is True
    entry = server_entry(body)
    assert entry["reachable"] is False and entry["error"] == "unauthorized"
    assert wrong_secret not in text and livekit_server.api_secret not in text
    assert livekit_server.ws_url not in text and f"127.0.0.1:{livekit_server.http_port}" not in text


def test_healthz_reports_a_stopped_server_and_its_recovery_without_an_app_restart(
    serve, own_server: DevServer
) -> None:
    client = serve(own_server.ws_url, own_server.api_key, own_server.api_secret)
    assert server_entry(healthz(client)[1])["reachable"] is True

    stop_now(own_server)
    down = server_entry(poll_healthz(client, reachable=False))

    assert down["reachable"] is False and down["error"] == "unreachable"
    assert datetime.fromisoformat(down["unreachable_since"]).tzinfo is not None
    assert healthz(client)[1]["status"] == "degraded"

    same = restart(own_server)
    try:
        back = poll_healthz(client, reachable=True)
        entry = server_entry(back)
        assert entry["reachable"] is True and entry["error"] is None and entry["unreachable_since"] is None
        assert back["status"] == "ok"
    finally:
        stop_now(same)


def test_gateway_live_view_shows_the_snapshot_error_then_recovers(
    serve, own_server: DevServer
) -> None:
    serve(own_server.ws_url, own_server.api_key, own_server.api_secret)
    gateway = services.get().gateway

    def view(ok: bool, timeout: float = 20.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            [current] = gateway.live(max_age=0.0, wait=3.0)
            snapshot = current.snapshot
            if (snapshot is not None and snapshot.ok is ok) or time.monotonic() >= deadline:
                return current
            time.sleep(0.3)

    assert view(ok=True).snapshot.ok

    stop_now(own_server)
    failed = view(ok=False)
    assert failed.snapshot.error.category is Category.UNREACHABLE
    assert failed.health.reachable is False and failed.health.failing_since is not None

    same = restart(own_server)
    try:
        recovered = view(ok=True)
        assert recovered.snapshot.ok and recovered.snapshot.error is None
        assert recovered.health.reachable is True and recovered.health.failing_since is None
    finally:
        stop_now(same)


def test_healthz_reports_failing_history_writes_without_their_contents_and_their_recovery(
    serve, livekit_server: DevServer
) -> None:
    # One collection round at the start and none during the test: only the test's batches.
    client = serve(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, DASHBOARD_COLLECT_SECONDS="3600")
    svc = services.get()
    svc.start_history()  # what the lifespan does for its own services
    deadline = time.monotonic() + 20
    while svc.history.query("SELECT count(*) AS n FROM server_samples")["n"].iloc[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    svc.history.flush()
    now = datetime.now(timezone.utc)
    # DuckDB refuses it with a message that quotes the value.
    svc.history.submit([RoomSample(SERVER, now, "RM_private", "private-room", "mallory", 1, 0, 1)])  # type: ignore[arg-type]
    svc.history.flush()

    status, body, text = healthz(client)

    assert status == 200 and body["status"] == "degraded"
    history = body["history"]
    assert history["failed_batches"] == 1 and history["failing"] is True and history["queued"] == 0
    assert datetime.fromisoformat(history["last_failure_at"]) >= now
    assert history["last_failure"] == "ConversionException"
    assert "mallory" in svc.history.status().last_failure, "the process keeps the message"
    assert "mallory" not in text and "private" not in text, "anyone may read /healthz"
    collector = body["collector"]
    assert collector == {"restarts": 0, "last_crash_at": None, "last_crash": None, "running": True}
    assert livekit_server.api_secret not in text and livekit_server.ws_url not in text

    svc.history.submit([RoomSample(SERVER, now, "RM_fine", "fine", 1, 1, 0, 1)])
    svc.history.flush()
    status, body, _ = healthz(client)
    assert body["status"] == "ok"
    assert body["history"]["failing"] is False and body["history"]["failed_batches"] == 1


def test_healthz_of_services_without_a_history_store_says_so(serve, livekit_server: DevServer) -> None:
    client = serve(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    _, body, _ = healthz(client)
    assert body["history"] is None and body["collector"] is None and body["status"] == "ok"


@pytest.mark.parametrize("path", ["/api/v1/servers/%0A/rooms", "/api/v1/meetings/1%0A", "/api/v1/nowhere%0A"])
def test_an_api_path_with_a_newline_is_answered_by_the_api(serve, livekit_server: DevServer, path: str) -> None:  # type: ignore[no-untyped-def]
    """Starlette's Mount pattern stops at a newline: without DOTALL such a path fell through to
    Streamlit, which answered with its HTML page."""
    client = serve(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    answer = client.get(path)
    assert answer.status_code in (401, 404), answer.text[:200]
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text[:200]
