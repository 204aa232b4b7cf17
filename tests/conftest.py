"""Root test harness: one real livekit-server per session, simulated participants, an agent
worker, a small sync Server API helper and unique room names; one private PostgreSQL cluster per
session and a fresh empty database per test on SQLite and on PostgreSQL.

Any test that uses a server fixture (directly or through another fixture) is marked
`integration`, so `-m integration` selects it and `-m "not integration"` leaves it out.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from livekit import api

from lib.aio import LoopThread
from lib.livekit.devserver import DevServer, DevServerError, find_binary
from lib.sim.agent_worker import AgentWorker
from lib.sim.participants import ParticipantPool
from tests.postgres import PostgresServer, PostgresUnavailable, create_database, drop_database

T = TypeVar("T")

SERVER_FIXTURES = frozenset({"livekit_server", "participants", "agent_worker", "lk_api"})
TEST_AGENT_NAME = "test-agent"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs the real livekit-server (scripts/install-livekit-server.sh)"
    )
    _CONFIG.append(config)
    signal.signal(signal.SIGTERM, _terminated)


def _panic_lines() -> list[str]:
    """What the rtc SDK printed about a native panic in the output captured so far."""
    capture = _CONFIG[0].pluginmanager.getplugin("capturemanager") if _CONFIG else None
    try:
        err = capture.read_global_capture().err if capture is not None else ""
    except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the stop itself
        return [f"(captured output not read: {exc})"]
    return [line[:300] for line in err.splitlines() if "Panic" in line or "panicked" in line]


def _terminated(signum: int, frame: object) -> None:
    """A SIGTERM ends the run as Ctrl-C does, so fixtures stop the servers they started (killed
    outright, a run leaves livekit-servers and dashboards behind); the summary then says what
    was running. (The rtc SDK's native side sends its own process SIGTERM when it panics, after
    printing "FFI Panic" to the captured stderr: otherwise a bare "Terminated".)"""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one ends it at once
    try:
        listing = subprocess.run(["ps", "-eww", "-o", "pid,ppid,etime,args"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        listing = f"(no process list: {exc})"
    processes = [line for line in listing.splitlines() if not line.split(None, 3)[-1].startswith("[")]  # not kernel threads
    _TERMINATED.append("Processes when pytest received SIGTERM:")
    _TERMINATED.extend(line[:200] for line in processes[:80])
    # Last, so that the tail of the output (what CI shows) says it.
    _TERMINATED.append(f"pytest (pid {os.getpid()}) received SIGTERM during {_RUNNING[-1] if _RUNNING else 'no test'}")
    _TERMINATED.extend(_panic_lines() or ["(no native panic in the captured output)"])
    _TERMINATED.append("and stopped its tests and their servers.")
    raise KeyboardInterrupt


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    _RUNNING[:] = [nodeid]


_TERMINATED: list[str] = []
_CONFIG: list[pytest.Config] = []
_RUNNING: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for line in _TERMINATED:
        terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so the added marker counts
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[DevServer]:
    """A real `livekit-server --dev` on 127.0.0.1, started once per session."""
    try:
        find_binary()
    except DevServerError as exc:
        # A failure, not a skip: `make test` installs it, so its absence is a broken set-up.
        pytest.fail(str(exc))
    server = DevServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def participants(livekit_server: DevServer) -> Iterator[ParticipantPool]:
    """Simulated rtc participants for one test; all leave when the test ends."""
    pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def agent_worker(livekit_server: DevServer) -> Iterator[AgentWorker]:
    """A real livekit-agents worker registered as "test-agent"."""
    worker = AgentWorker(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, TEST_AGENT_NAME
    ).start()
    try:
        yield worker
    finally:
        worker.stop()


class ServerApi:
    """Synchronous calls to the real Server API, for test setup and checks.

    `call(lambda lk: lk.room.list_rooms(...))` runs any livekit.api call; rooms made with
    `create_room` are deleted when the test ends.
    """

    def __init__(self, server: DevServer, timeout: float = 15.0) -> None:
        self._timeout = timeout
        self._loop = LoopThread("test-server-api")
        self._created_rooms: list[str] = []
        self._client: api.LiveKitAPI = self._loop.run(
            self._make_client(server.http_url, server.api_key, server.api_secret), timeout
        )

    @staticmethod
    async def _make_client(url: str, key: str, secret: str) -> api.LiveKitAPI:
        return api.LiveKitAPI(url, key, secret)  # its aiohttp session binds to this loop

    def call(self, fn: Callable[[api.LiveKitAPI], Awaitable[T]]) -> T:
        async def invoke() -> T:
            return await fn(self._client)

        return self._loop.run(invoke(), self._timeout)

    def poll(
        self,
        fn: Callable[[api.LiveKitAPI], Awaitable[T]],
        until: Callable[[T], bool],
        timeout: float = 15.0,
        interval: float = 0.2,
    ) -> T:
        """Call `fn` until `until(result)` holds or `timeout` passes; returns the last result.

        The server's listings are eventually consistent (a job's status, a track's layers),
        so tests poll for the state they expect and then assert on what came back.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = self.call(fn)
            if until(result) or time.monotonic() >= deadline:
                return result
            time.sleep(interval)

    def create_room(self, name: str, **fields: object) -> api.Room:
        room = self.call(lambda lk: lk.room.create_room(api.CreateRoomRequest(name=name, **fields)))
        self._created_rooms.append(name)
        return room

    def list_participants(self, room: str) -> list[api.ParticipantInfo]:
        request = api.ListParticipantsRequest(room=room)
        return list(self.call(lambda lk: lk.room.list_participants(request)).participants)

    def close(self) -> None:
        async def cleanup() -> None:
            for name in self._created_rooms:
                try:
                    await self._client.room.delete_room(api.DeleteRoomRequest(room=name))
                except api.TwirpError:
                    pass  # the test already ended it
            await self._client.aclose()

        try:
            self._loop.run(cleanup(), self._timeout)
        finally:
            self._loop.stop()


@pytest.fixture
def lk_api(livekit_server: DevServer) -> Iterator[ServerApi]:
    helper = ServerApi(livekit_server)
    try:
        yield helper
    finally:
        helper.close()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """`unique_name("room")` -> a name made from the test's name that no other test uses."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[-40:].strip("-")
    counter = itertools.count(1)

    def make(prefix: str = "room") -> str:
        return f"{prefix}-{slug}-{next(counter)}-{secrets.token_hex(3)}"

    return make


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL cluster on 127.0.0.1 (tests/postgres.py), started once per session;
    the SQLAlchemy URL of an empty database on it."""
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        # In CI `make test` installs PostgreSQL, so its absence is a broken set-up, not a skip.
        if _in_ci():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server.url().render_as_string(hide_password=False)
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dashboard.sqlite'}"
        return
    url = create_database(request.getfixturevalue("postgres_server"))
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        drop_database(url)
