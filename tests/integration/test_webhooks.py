"""POST /webhooks/livekit against a real livekit-server that sends its webhooks to the route
served by uvicorn: exact events and sessions from real joins and leaves, and every delivery that
is not genuine (unsigned, forged, tampered, expired, unknown key, malformed) refused with nothing
written."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from livekit import api
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from lib import services
from lib.api.state import ProvideServices
from lib.api.webhooks import MAX_BODY_BYTES, livekit_webhook
from lib.config import load_settings
from lib.history.store import HistoryStore
from lib.livekit.devserver import DevServer, free_port
from lib.services import Services
from lib.sim.participants import ParticipantPool
from tests.conftest import ServerApi

pytestmark = pytest.mark.integration

PATH = "/webhooks/livekit"


class BodyRecorder:
    """ASGI wrapper that keeps every body the route received, to see what the server sent."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []

        async def tap():  # type: ignore[no-untyped-def]
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        await self.app(scope, tap, send)
        if scope["type"] == "http":
            self.bodies.append(b"".join(chunks))

    def event_names(self) -> list[str]:
        names = []
        for body in list(self.bodies):
            try:
                names.append(json.loads(body)["event"])
            except (ValueError, KeyError, TypeError):
                continue  # the fault tests' bodies
        return names


class ThreadedUvicorn:
    """The route on a real HTTP server in a thread of this process, so it shares `services`."""

    def __init__(self, app: BodyRecorder, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="webhook-uvicorn", daemon=True)

    def start(self, timeout: float = 10.0) -> ThreadedUvicorn:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


class Hooks:
    """What a test needs: the server that sends webhooks, the route's URL, the store behind it."""

    def __init__(self, server: DevServer, url: str, recorder: BodyRecorder) -> None:
        self.server, self.url, self.recorder = server, url, recorder
        self.store: HistoryStore | None = None

    def post(self, body: bytes, token: str | None, **headers: str) -> httpx.Response:
        if token is not None:
            headers["Authorization"] = token
        return httpx.post(self.url, content=body, headers={"Content-Type": "application/webhook+json", **headers}, timeout=15)

    def rows(self, sql: str, params: list[object] | None = None) -> pd.DataFrame:
        assert self.store is not None
        self.store.flush()
        return self.store.query(sql, params)

    def handmade_count(self) -> int:
        """Rows about the hand-made deliveries; the real server's late webhooks may add others."""
        return int(self.rows("SELECT count(*) AS n FROM events WHERE room_sid = 'RM_handmade'").n[0])


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[tuple[DevServer, str, BodyRecorder]]:
    """A livekit-server of this module's own whose webhooks go to the route on uvicorn."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{PATH}"
    # Routes find the services where app.py's middleware puts them.
    app = Starlette(routes=[Route(PATH, livekit_webhook, methods=["POST"])], middleware=[Middleware(ProvideServices, services=services.current)])
    recorder = BodyRecorder(app)
    http = ThreadedUvicorn(recorder, port).start()
    server = DevServer(webhook_urls=(url,))
    try:
        server.start()
        yield server, url, recorder
    finally:
        server.stop()
        http.stop()


@pytest.fixture
def hooks(webhook_server: tuple[DevServer, str, BodyRecorder], tmp_path: Path) -> Iterator[Hooks]:
    """The process's services watching the module's server, with a history store of this test."""
    server, url, recorder = webhook_server
    env = {
        "LIVEKIT_URL": server.ws_url,
        "LIVEKIT_API_KEY": server.api_key,
        "LIVEKIT_API_SECRET": server.api_secret,
        "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
        "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-webhook-tests",
    }
    services.stop()
    svc: Services = services.start(load_settings(env, tmp_path / "none.toml"))
    h = Hooks(server, url, recorder)
    h.store = HistoryStore(tmp_path / "h.duckdb")
    svc.history = h.store  # the server process opens it in app.py; this test has no app process
    try:
        yield h
    finally:
        svc.history = None
        services.stop()
        h.store.close()


@pytest.fixture
def pool(webhook_server: tuple[DevServer, str, BodyRecorder]) -> Iterator[ParticipantPool]:
    server = webhook_server[0]
    pool = ParticipantPool(server.ws_url, server.api_key, server.api_secret)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def server_api(webhook_server: tuple[DevServer, str, BodyRecorder]) -> Iterator[ServerApi]:
    helper = ServerApi(webhook_server[0])
    try:
        yield helper
    finally:
        helper.close()


def sign(body: bytes, key: str, secret: str, ttl: timedelta = timedelta(minutes=5)) -> str:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).with_ttl(ttl).to_jwt()


def event_body(event_id: str, room: str = "hand-made-room") -> bytes:
    return json.dumps({
        "event": "participant_joined", "id": event_id, "createdAt": str(int(time.time())),
        "room": {"sid": "RM_handmade", "name": room},
        "participant": {"sid": "PA_handmade", "identity": "mallory", "joinedAtMs": str(int(time.time() * 1000))},
    }).encode()  # fmt: skip


def wait_for(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# ----- the real server ---------------------------------------------------------------------


def test_real_joins_and_leaves_become_exact_events_and_sessions(hooks, pool, server_api, unique_name):
    room = unique_name()
    alice = pool.join(room, "alice", publish_audio=True)
    bob = pool.join(room, "bob")
    time.sleep(1.0)
    pool.leave(bob)

    def kinds() -> list[str]:
        return list(hooks.rows("SELECT kind FROM events WHERE room = ?", [room]).kind)

    assert wait_for(lambda: {"room_started", "participant_joined", "participant_left"} <= set(kinds())), kinds()
    pool.leave(alice)
    server_api.call(lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=room)))
    assert wait_for(lambda: {"room_finished", "track_published"} <= set(kinds()) and kinds().count("participant_left") == 2), kinds()

    events = hooks.rows("SELECT * FROM events WHERE room = ? ORDER BY ts", [room])
    assert set(events.source) == {"webhook"}
    assert all(events.event_id.str.startswith("wh:"))
    counts = events.groupby("kind").size().to_dict()
    assert counts["room_started"] == 1 and counts["room_finished"] == 1
    assert counts["participant_joined"] == 2 and counts["participant_left"] == 2
    joins = events[events.kind == "participant_joined"].set_index("identity")
    assert joins.loc["alice", "participant_sid"] == alice.sid and joins.loc["bob", "participant_sid"] == bob.sid

    sessions = hooks.rows("SELECT * FROM participant_sessions WHERE room = ?", [room]).set_index("identity")
    for who in ("alice", "bob"):
        row = sessions.loc[who]
        assert pd.notna(row.joined_at) and pd.notna(row.left_at) and not bool(row.left_estimated)
        assert row.left_at >= row.joined_at
    bob_stayed = (sessions.loc["bob", "left_at"] - sessions.loc["bob", "joined_at"]).total_seconds()
    assert 0.0 <= bob_stayed <= 5.0
    rooms = hooks.rows("SELECT * FROM room_sessions WHERE room = ?", [room])
    assert len(rooms) == 1 and pd.notna(rooms.started_at[0]) and pd.notna(rooms.ended_at[0])
    assert not bool(rooms.end_estimated[0])

    published = events[events.kind == "track_published"]
    assert list(published.identity) == ["alice"] and list(published.track_source) == ["microphone"]
    names = set(hooks.recorder.event_names())
    assert {"room_started", "participant_joined", "track_published", "participant_left", "room_finished"} <= names


# ----- deliveries that are not genuine write nothing ---------------------------------------


def assert_refused(hooks: Hooks, response: httpx.Response, status: int, body: bytes) -> None:
    assert response.status_code == status, response.text
    assert "mallory" not in response.text and body.decode(errors="replace")[:40] not in response.text
    assert hooks.handmade_count() == 0


def test_unsigned_delivery_is_refused(hooks):
    body = event_body("EV_unsigned")
    assert_refused(hooks, hooks.post(body, None), 401, body)
    assert_refused(hooks, hooks.post(body, "not-a-jwt"), 401, body)
    assert_refused(hooks, hooks.post(body, ""), 401, body)


def test_delivery_signed_with_another_secret_is_refused(hooks):
    body = event_body("EV_forged")
    assert_refused(hooks, hooks.post(body, sign(body, hooks.server.api_key, "not-the-real-secret-but-long-enough-0123456789")), 401, body)


def test_tampered_body_is_refused(hooks):
    signed = event_body("EV_tampered")
    changed = signed.replace(b"mallory", b"mallorx")
    assert_refused(hooks, hooks.post(changed, sign(signed, hooks.server.api_key, hooks.server.api_secret)), 401, changed)


def test_expired_token_is_refused(hooks):
    body = event_body("EV_expired")
    token = sign(body, hooks.server.api_key, hooks.server.api_secret, ttl=timedelta(minutes=-10))
    assert_refused(hooks, hooks.post(body, token), 401, body)


def test_token_from_an_unknown_api_key_is_refused(hooks):
    body = event_body("EV_unknown_key")
    assert_refused(hooks, hooks.post(body, sign(body, "someone-elses-key", hooks.server.api_secret)), 401, body)


def test_token_without_a_body_hash_is_refused(hooks):
    body = event_body("EV_no_hash")
    token = api.AccessToken(hooks.server.api_key, hooks.server.api_secret).to_jwt()
    assert_refused(hooks, hooks.post(body, token), 401, body)


@pytest.mark.parametrize(
    "body",
    [b"mallory is not json", b'{"event": 5, "who": "mallory"}', b'["mallory"]', b'"mallory"', b"{}", b"\xff\xfe mallory"],
    ids=["not-json", "wrong-field-type", "array", "string", "no-event", "not-utf8"],
)
def test_signed_body_that_is_not_a_webhook_event_is_a_bad_request(hooks, body):
    token = sign(body, hooks.server.api_key, hooks.server.api_secret)
    assert_refused(hooks, hooks.post(body, token), 400, body)


def signed_event(**fields: object) -> dict[str, object]:
    """A participant_joined LiveKit could have sent, with `fields` replacing its own."""
    now = int(time.time())
    event: dict[str, object] = {
        "event": "participant_joined", "id": "EV_invalid", "createdAt": str(now),
        "room": {"sid": "RM_handmade", "name": "hand-made-room", "creationTime": str(now - 60)},
        "participant": {"sid": "PA_handmade", "identity": "mallory", "joinedAt": str(now), "joinedAtMs": str(now * 1000)},
    }  # fmt: skip
    event.update(fields)
    return event


ROOM = {"sid": "RM_handmade", "name": "hand-made-room"}
MALLORY = {"sid": "PA_handmade", "identity": "mallory"}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (signed_event(createdAt="253402300800"), "createdAt"),  # 10000-01-01: past what a datetime holds
        (signed_event(createdAt=str(int(time.time()) + 2 * 86400)), "createdAt"),
        (signed_event(createdAt="-5"), "createdAt"),
        (signed_event(event="room_started", room={**ROOM, "creationTime": "1"}), "room.creationTime"),
        (signed_event(event="room_started", room={**ROOM, "creationTimeMs": "1"}), "room.creationTimeMs"),
        (signed_event(participant={**MALLORY, "joinedAtMs": "999999999999999999"}), "participant.joinedAtMs"),
        (signed_event(room="mallory"), "room"),
        (signed_event(room={"name": "hand-made-room"}), "room"),
        (signed_event(participant={"identity": "mallory"}), "participant"),
        (signed_event(participant={"sid": "PA_handmade"}), "participant"),
        (signed_event(event="track_published", participant=MALLORY, track={"source": "MICROPHONE"}), "track"),
        (signed_event(event="agent_job_started", participant=None, job={"room": ROOM}), "job"),
    ],
    ids=[
        "year-beyond-9999", "days-ahead", "negative-time", "room-created-in-1970", "room-created-1-ms-after-1970",
        "joined-far-in-the-future", "room-not-an-object", "room-without-sid", "participant-without-sid",
        "participant-without-identity", "track-without-sid", "job-without-id",
    ],  # fmt: skip
)
def test_signed_event_that_is_not_valid_is_a_bad_request_and_stores_nothing(hooks, event, reason):
    body = json.dumps({k: v for k, v in event.items() if v is not None}).encode()
    response = hooks.post(body, sign(body, hooks.server.api_key, hooks.server.api_secret))
    assert_refused(hooks, response, 400, body)
    assert reason in response.json()["error"]
    assert hooks.rows("SELECT count(*) AS n FROM events WHERE event_id = 'wh:EV_invalid'")["n"][0] == 0
    assert hooks.rows("SELECT count(*) AS n FROM room_sessions WHERE room_sid IN ('', 'RM_handmade')")["n"][0] == 0
    assert hooks.rows("SELECT count(*) AS n FROM participant_sessions WHERE identity = 'mallory' OR participant_sid = 'PA_handmade'")["n"][0] == 0


def test_body_over_one_megabyte_is_refused(hooks):
    body = b'{"event": "room_started", "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    token = sign(body, hooks.server.api_key, hooks.server.api_secret)
    assert hooks.post(body, token).status_code == 413
    assert hooks.handmade_count() == 0


def test_without_a_history_store_the_route_answers_503_and_writes_nothing(hooks):
    body = event_body("EV_no_store")
    services.get().history = None
    try:
        response = hooks.post(body, sign(body, hooks.server.api_key, hooks.server.api_secret))
    finally:
        services.get().history = hooks.store
    assert response.status_code == 503
    assert hooks.handmade_count() == 0


# ----- genuine deliveries ------------------------------------------------------------------


def test_a_signed_delivery_is_stored_once_however_often_it_arrives(hooks):
    body = event_body("EV_flood")
    token = sign(body, hooks.server.api_key, hooks.server.api_secret)
    with ThreadPoolExecutor(10) as workers:
        responses = list(workers.map(lambda _: hooks.post(body, token), range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    answers = [r.json() for r in responses]
    assert answers.count({"stored": 1}) == 1, "one delivery stores it, even before the writer catches up"
    assert answers.count({"stored": 0, "duplicate": True}) == 49
    rows = hooks.rows("SELECT * FROM events WHERE event_id = 'wh:EV_flood'")
    assert len(rows) == 1 and rows.source[0] == "webhook" and rows.identity[0] == "mallory"
    assert hooks.handmade_count() == 1
    assert len(hooks.rows("SELECT * FROM participant_sessions WHERE participant_sid = 'PA_handmade'")) == 1
    # Redelivered once it is on disk, it is known from the store itself.
    assert hooks.post(body, sign(body, hooks.server.api_key, hooks.server.api_secret)).json() == {"stored": 0, "duplicate": True}


def test_bearer_prefix_is_accepted(hooks):
    body = event_body("EV_bearer")
    response = hooks.post(body, "Bearer " + sign(body, hooks.server.api_key, hooks.server.api_secret))
    assert response.status_code == 200 and response.json() == {"stored": 1}


def test_events_that_are_not_history_are_acknowledged_and_not_stored(hooks):
    body = json.dumps({"event": "egress_started", "id": "EV_egress", "createdAt": str(int(time.time()))}).encode()
    response = hooks.post(body, sign(body, hooks.server.api_key, hooks.server.api_secret))
    assert response.status_code == 200 and response.json() == {"stored": 0}
    assert hooks.rows("SELECT * FROM events WHERE event_id = 'wh:EV_egress'").empty


def test_a_store_that_cannot_be_read_answers_503_so_livekit_tries_again(hooks, tmp_path):
    broken = HistoryStore(tmp_path / "broken.duckdb")
    broken._conn.close()  # the lookup of the event's id fails
    services.get().history = broken
    try:
        body = event_body("EV_broken_store")
        response = hooks.post(body, sign(body, hooks.server.api_key, hooks.server.api_secret))
    finally:
        services.get().history = hooks.store
        broken.close()
    assert response.status_code == 503 and response.json() == {"error": "the history store could not be read"}
    assert hooks.handmade_count() == 0
