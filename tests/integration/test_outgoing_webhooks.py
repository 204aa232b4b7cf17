"""Outgoing webhooks against a real livekit-server and loopback receivers, on SQLite and on
PostgreSQL: a meeting the Lifecycle starts and ends reaches a receiver as meeting.started and
meeting.ended, signed so that the README's recipe verifies it; receivers that hang, answer 500
or reset the connection are retried with back-off, given up on and paused, while the scheduler
and the incoming LiveKit webhook route go on; two deliverers never send one attempt twice; and
WebhookService refuses every role but admin, audited."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from livekit import api
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.testclient import TestClient

from lib import services
from lib.api.state import ProvideServices
from lib.api.webhooks import livekit_webhook
from lib.auth.audit import AuditLog
from lib.auth.policy import Actor, Policy, Refused
from lib.config import ServerConfig, load_settings
from lib.db import make_engine, migrate, session_factory
from lib.history.store import HistoryStore
from lib.livekit.devserver import DevServer, free_port
from lib.livekit.gateway import LiveKitGateway
from lib.meetings.lifecycle import ACTIVE, ENDED, Lifecycle
from lib.models import OutboxEvent, WebhookDelivery, WebhookReceiver, as_utc, utcnow
from lib.outbound.deliverer import Deliverer
from lib.outbound.retry import RetryPolicy
from lib.outbound.service import WebhookService
from lib.secretbox import SecretBox
from tests.schedule import Clock, add_host, add_meeting, occurrence

pytestmark = pytest.mark.integration

SERVER = "default"
RECIPE = Path(__file__).resolve().parents[2] / "docs" / "webhook_verify.py"
ADMIN = Actor("root", "admin", "10.0.0.9")


def recipe() -> ModuleType:
    """The README's verification snippet, run exactly as a receiver would copy it."""
    module = ModuleType("webhook_verify")
    exec(compile(RECIPE.read_text(), str(RECIPE), "exec"), module.__dict__)
    return module


# ----- a loopback receiver -------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, object]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers as `mode` says: "ok" (204), "500", "hang"
    (reads the request and never answers until released) or "reset" (RST instead of an answer)."""

    mode: str = "ok"
    received: list[Received] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)  # a request is being handled
    answered: threading.Event = field(default_factory=threading.Event)  # a hanging request let go
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.entered.set()
                if receiver.mode == "hang":
                    receiver.release.wait(120)
                    receiver.answered.set()
                    self.close_connection = True
                    return
                if receiver.mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                self.send_response(500 if receiver.mode == "500" else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="test-receiver", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?tenant=t1"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[Callable[[str], Receiver]]:
    made: list[Receiver] = []

    def make(mode: str = "ok") -> Receiver:
        made.append(Receiver(mode))
        return made[-1]

    yield make
    for r in made:
        r.close()


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ----- the SQL store, a gateway to the real server, the services under test -----------------


@dataclass
class World:
    engine: Engine
    sessions: sessionmaker[Session]
    audit: AuditLog
    box: SecretBox
    gateway: LiveKitGateway
    webhooks: WebhookService
    host: int

    def deliveries(self, receiver_id: int) -> list[WebhookDelivery]:
        with self.sessions() as s:
            return list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.receiver_id == receiver_id).order_by(WebhookDelivery.id)))

    def receiver(self, receiver_id: int) -> WebhookReceiver:
        with self.sessions() as s:
            row = s.get(WebhookReceiver, receiver_id)
            assert row is not None
            return row

    def event_type(self, delivery: WebhookDelivery) -> str:
        with self.sessions() as s:
            return s.get(OutboxEvent, delivery.event_id).type  # type: ignore[union-attr]


@pytest.fixture
def world(database_url: str, livekit_server: DevServer) -> Iterator[World]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    audit = AuditLog(sessions)
    box = SecretBox("test-key-for-outgoing-webhooks-" * 2)
    gateway = LiveKitGateway([ServerConfig(SERVER, livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)], request_timeout=3)
    try:
        yield World(engine, sessions, audit, box, gateway, WebhookService(sessions, Policy(audit), box), add_host(sessions))
    finally:
        gateway.close()
        engine.dispose()


def test_a_meeting_the_lifecycle_starts_and_ends_reaches_the_receiver_signed_as_the_readme_says(world: World, receiver_factory) -> None:
    receiver = receiver_factory("ok")
    added = world.webhooks.add(ADMIN, receiver.url, ["meeting.started", "meeting.ended"], "ops")
    lifecycle = Lifecycle(world.sessions, world.gateway, world.audit)  # the real clock: deliveries are due at once
    deliverer = Deliverer(world.sessions, world.box, timeout=5, poll_seconds=0.05)
    now = utcnow()
    oid = add_meeting(world.sessions, world.host, now - timedelta(seconds=1), now + timedelta(seconds=2), title="Quarterly review")
    room = occurrence(world.sessions, oid).room_name
    deliverer.start()
    try:
        assert lifecycle.tick().activated == 1
        assert world.gateway.find_room(SERVER, room) is not None
        assert wait_for(lambda: len(receiver.received) == 1), "meeting.started was not delivered"
        assert wait_for(lambda: utcnow() > now + timedelta(seconds=2))
        assert lifecycle.tick().ended == 1
        assert wait_for(lambda: len(receiver.received) == 2), "meeting.ended was not delivered"
    finally:
        deliverer.stop()

    verify = recipe().verify
    assert all(verify(added.secret, r.headers["x-dashboard-signature"], r.body) for r in receiver.received)
    assert not verify("whsec_another", receiver.received[0].headers["x-dashboard-signature"], receiver.received[0].body)
    started, ended = (r.event for r in receiver.received)
    assert (started["type"], ended["type"]) == ("meeting.started", "meeting.ended")
    assert [r.headers["x-dashboard-event"] for r in receiver.received] == ["meeting.started", "meeting.ended"]
    for event, status in ((started, ACTIVE), (ended, ENDED)):
        data = event["data"]
        assert isinstance(data, dict)
        assert (data["occurrence_id"], data["room"], data["server"], data["title"], data["status"]) == (oid, room, SERVER, "Quarterly review", status)
        assert data["actor"] == "scheduler" and str(event["id"]).startswith("evt_")
    rows = world.deliveries(added.receiver.id)
    assert [(d.status, d.attempts, d.last_status_code) for d in rows] == [("delivered", 1, 204)] * 2
    assert sorted(r.headers["x-dashboard-delivery"] for r in receiver.received) == sorted(str(d.id) for d in rows)
    assert world.receiver(added.receiver.id).consecutive_failures == 0


EXPECTED_ERROR = {"hang": "timed out", "500": "HTTP 500", "reset": ("reset", "closed the connection")}


@pytest.mark.parametrize("mode", ["hang", "500", "reset"])
def test_a_failing_receiver_is_retried_with_back_off_given_up_on_and_paused_then_resumed(world: World, receiver_factory, mode: str) -> None:
    receiver = receiver_factory(mode)
    added = world.webhooks.add(ADMIN, receiver.url, ["meeting.started"])
    rid = added.receiver.id
    clock = Clock(utcnow().replace(microsecond=0))
    retry = RetryPolicy(backoff=(10, 30), max_attempts=3, pause_after=4)
    deliverer = Deliverer(world.sessions, world.box, retry=retry, timeout=0.3, clock=clock, audit=world.audit)
    lifecycle = Lifecycle(world.sessions, world.gateway, world.audit, clock=clock)
    oid = add_meeting(world.sessions, world.host, clock.now, clock.now + timedelta(minutes=30))
    try:
        assert lifecycle.tick().activated == 1
    finally:
        world.gateway.delete_room(SERVER, occurrence(world.sessions, oid).room_name)

    seen = []
    for attempt in (1, 2, 3):
        assert deliverer.deliver_due() == 1, f"attempt {attempt} was due"
        [d] = world.deliveries(rid)
        seen.append((d.attempts, d.status, as_utc(d.next_attempt_at), d.last_error))
        assert deliverer.deliver_due() == 0, "nothing is due before its back-off passed"
        clock.advance(retry.delay(attempt))
    assert [(a, s) for a, s, _, _ in seen] == [(1, "failed"), (2, "failed"), (3, "given_up")]
    start = clock.now - timedelta(seconds=10 + 30 + 30)
    assert [seen[0][2], seen[1][2]] == [start + timedelta(seconds=10), start + timedelta(seconds=10 + 30)], "10 s, then 30 s later"
    expected = EXPECTED_ERROR[mode]
    assert all(any(e in err for e in ((expected,) if isinstance(expected, str) else expected)) for *_, err in seen), seen
    assert len(receiver.received) == 3, "each attempt reached the receiver"
    assert world.receiver(rid).paused_at is None and world.receiver(rid).consecutive_failures == 3

    ping = world.webhooks.test(ADMIN, rid)
    assert deliverer.deliver_due() == 1
    paused = world.receiver(rid)
    assert paused.paused_at is not None and paused.consecutive_failures == 4
    assert paused.paused_reason.startswith("4 failed attempts in a row; the last: ")
    [auto] = world.audit.query(action="webhook.pause")
    assert (auto.actor, auto.target, auto.result) == ("dashboard", f"webhook {rid} at 127.0.0.1:{receiver.port}", "ok") and "tenant" not in auto.detail
    assert [v.state for v in world.webhooks.receivers(ADMIN)] == ["paused"]
    clock.advance(3600)
    assert deliverer.deliver_due() == 0, "a paused receiver gets no attempts"
    assert len(receiver.received) == 4

    receiver.mode = "ok"
    receiver.release.set()
    world.webhooks.resume(ADMIN, rid)
    assert deliverer.deliver_due() == 1
    by_id = {d.id: d for d in world.deliveries(rid)}
    assert (by_id[ping].status, by_id[ping].attempts, by_id[ping].last_status_code) == ("delivered", 2, 204)
    assert world.receiver(rid).consecutive_failures == 0
    assert [d.status for d in world.webhooks.deliveries(ADMIN, receiver_id=rid)] == ["delivered", "given_up"]
    assert [d.id for d in world.webhooks.deliveries(ADMIN, status="given_up")] == [d.id for d in world.deliveries(rid) if d.id != ping]
    # What the log and the page show never holds the secret or the URL's query.
    for d in world.webhooks.deliveries(ADMIN):
        assert added.secret not in d.last_error and "tenant" not in d.last_error


def test_two_deliverers_on_one_database_send_each_delivery_once(world: World, receiver_factory) -> None:
    receiver = receiver_factory("ok")
    added = world.webhooks.add(ADMIN, receiver.url, ["room.started"])
    ids = [world.webhooks.test(ADMIN, added.receiver.id) for _ in range(20)]
    # One request per receiver at a time per process: a second receiver on the same server lets
    # each deliverer hold two.
    second = world.webhooks.add(ADMIN, receiver.url.replace("t1", "t2"), ["room.started"])
    ids += [world.webhooks.test(ADMIN, second.receiver.id) for _ in range(20)]
    racers = [Deliverer(world.sessions, world.box, timeout=5, poll_seconds=0.01, workers=2) for _ in range(2)]
    for d in racers:
        d.start()
    try:
        assert wait_for(lambda: len(receiver.received) >= len(ids) and all(
            d.status == "delivered" for r in (added, second) for d in world.deliveries(r.receiver.id)
        ))  # fmt: skip
    finally:
        for d in racers:
            d.stop()
    sent = [int(r.headers["x-dashboard-delivery"]) for r in receiver.received]
    assert sorted(sent) == sorted(ids), "every delivery once, none twice"


# ----- nothing waits for a receiver ---------------------------------------------------------


@pytest.fixture
def dashboard(livekit_server: DevServer, tmp_path: Path) -> Iterator[services.Services]:
    env = {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
        "DASHBOARD_SECRET_KEY": "test-secret-key-for-outgoing-webhooks",
        "DASHBOARD_WEBHOOK_TIMEOUT": "60",
    }
    services.stop()
    svc = services.start(load_settings(env, tmp_path / "none.toml"))
    store = HistoryStore(tmp_path / "h.duckdb")
    svc.history = store  # what app.py's lifespan opens
    try:
        yield svc
    finally:
        svc.history = None
        services.stop()
        store.close()


def signed(body: bytes, server: DevServer) -> str:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return api.AccessToken(server.api_key, server.api_secret).with_sha256(digest).with_ttl(timedelta(minutes=5)).to_jwt()


def test_a_hanging_receiver_holds_up_neither_the_scheduler_nor_the_livekit_webhook_route(
    dashboard: services.Services, livekit_server: DevServer, receiver_factory
) -> None:
    receiver = receiver_factory("hang")
    rid = dashboard.webhooks.add(ADMIN, receiver.url, ["meeting.started", "participant.joined", "room.started"]).receiver.id
    ping = dashboard.webhooks.test(ADMIN, rid)
    assert receiver.entered.wait(20), "the server process's deliverer sent the ping"

    now = utcnow()
    oid = add_meeting(dashboard.sessions, add_host(dashboard.sessions), now, now + timedelta(minutes=30))
    room = occurrence(dashboard.sessions, oid).room_name
    try:
        assert dashboard.lifecycle.tick().activated == 1
        assert occurrence(dashboard.sessions, oid).status == ACTIVE
        body = json.dumps({
            "event": "participant_joined", "id": "EV_outgoing_hang", "createdAt": str(int(time.time())),
            "room": {"sid": "RM_outgoing", "name": room},
            "participant": {"sid": "PA_outgoing", "identity": "guest-1", "joinedAtMs": str(int(time.time() * 1000))},
        }).encode()  # fmt: skip
        app = Starlette(routes=[Route("/webhooks/livekit", livekit_webhook, methods=["POST"])], middleware=[Middleware(ProvideServices, services=services.current)])
        with TestClient(app) as client:
            response = client.post("/webhooks/livekit", content=body, headers={"Authorization": signed(body, livekit_server), "Content-Type": "application/webhook+json"})
            again = client.post("/webhooks/livekit", content=body, headers={"Authorization": signed(body, livekit_server), "Content-Type": "application/webhook+json"})
        assert response.status_code == 200 and response.json() == {"stored": 1}
        assert again.status_code == 200
    finally:
        dashboard.gateway.delete_room(SERVER, room)

    # Both finished while the receiver still holds the ping's request open.
    assert not receiver.answered.is_set() and len(receiver.received) == 1
    with dashboard.sessions() as s:
        rows = s.execute(
            select(WebhookDelivery.id, WebhookDelivery.status, OutboxEvent.type, OutboxEvent.body)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.receiver_id == rid)
            .order_by(WebhookDelivery.id)
        ).all()
    assert [(r.type, r.status) for r in rows] == [("ping", "delivering"), ("meeting.started", "pending"), ("participant.joined", "pending")]
    assert rows[0].id == ping
    joined = json.loads(rows[2].body)["data"]
    assert joined["meeting"]["occurrence_id"] == oid and joined["participant"] == {"identity": "guest-1", "sid": "PA_outgoing"}


def test_participant_events_are_only_for_meeting_rooms_and_room_events_for_any_room(dashboard: services.Services, livekit_server: DevServer, receiver_factory) -> None:
    receiver = receiver_factory("ok")
    added = dashboard.webhooks.add(ADMIN, receiver.url, ["participant.joined", "room.started"])
    app = Starlette(routes=[Route("/webhooks/livekit", livekit_webhook, methods=["POST"])], middleware=[Middleware(ProvideServices, services=services.current)])
    t = int(time.time())
    bodies = [
        {"event": "room_started", "id": "EV_room", "createdAt": str(t), "room": {"sid": "RM_lobby", "name": "lobby", "creationTime": str(t)}},
        {"event": "participant_joined", "id": "EV_lobby_join", "createdAt": str(t), "room": {"sid": "RM_lobby", "name": "lobby"},
         "participant": {"sid": "PA_x", "identity": "walker", "joinedAtMs": str(t * 1000)}},
    ]  # fmt: skip
    with TestClient(app) as client:
        for event in bodies:
            body = json.dumps(event).encode()
            assert client.post("/webhooks/livekit", content=body, headers={"Authorization": signed(body, livekit_server)}).status_code == 200
    with dashboard.sessions() as s:
        assert list(s.scalars(select(OutboxEvent.type))) == ["room.started"], "no participant event for a room that is no meeting's"
    assert wait_for(lambda: len(receiver.received) == 1)
    [only] = receiver.received
    assert only.event["type"] == "room.started" and only.event["data"]["meeting"] is None  # type: ignore[index]
    verify = recipe().verify
    assert verify(added.secret, only.headers["x-dashboard-signature"], only.body)


# ----- who may manage receivers ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["operator", "host", "analyst"])
def test_every_role_but_admin_is_refused_by_the_service_audited_and_nothing_changes(world: World, role: str) -> None:
    rid = world.webhooks.add(ADMIN, "https://hooks.example.com/in", ["room.started"]).receiver.id
    actor = Actor(f"{role}-person", role, "10.1.2.3")
    calls = {
        "webhook.add": lambda: world.webhooks.add(actor, "https://elsewhere.example.com/", ["room.started"]),
        "webhook.update": lambda: world.webhooks.update(actor, rid, ["meeting.ended"], "changed"),
        "webhook.pause": lambda: world.webhooks.pause(actor, rid),
        "webhook.resume": lambda: world.webhooks.resume(actor, rid),
        "webhook.test": lambda: world.webhooks.test(actor, rid),
        "webhook.remove": lambda: world.webhooks.remove(actor, rid),
        "webhook.read": lambda: world.webhooks.receivers(actor),
    }
    for action, call in calls.items():
        with pytest.raises(Refused):
            call()
        rows = world.audit.query(actor=actor.name, action=action)
        assert rows and all((r.result, r.address) == ("refused", "10.1.2.3") and "manage_webhooks" in r.detail for r in rows), action
    with pytest.raises(Refused):
        world.webhooks.deliveries(actor)
    [view] = world.webhooks.receivers(ADMIN)
    assert (view.id, view.events, view.description, view.state, view.version) == (rid, ("room.started",), "", "active", 1)
    assert world.deliveries(rid) == []


def test_admin_actions_are_audited_ok_and_the_secret_is_never_in_the_audit_trail(world: World) -> None:
    added = world.webhooks.add(ADMIN, "https://hooks.example.com/in?token=abc", ["room.started"], "ops")
    rid = added.receiver.id
    assert added.secret.startswith("whsec_") and added.secret not in repr(added)
    world.webhooks.update(ADMIN, rid, ["room.started", "meeting.ended"], "ops team", version=added.receiver.version)
    world.webhooks.pause(ADMIN, rid)
    world.webhooks.resume(ADMIN, rid)
    world.webhooks.test(ADMIN, rid)
    world.webhooks.remove(ADMIN, rid)
    rows = [r for r in world.audit.query(actor="root") if r.action.startswith("webhook.")]
    assert sorted(r.action for r in rows) == sorted(["webhook.add", "webhook.update", "webhook.pause", "webhook.resume", "webhook.test", "webhook.remove"])
    assert all(r.result == "ok" for r in rows)
    for r in rows:
        assert added.secret not in r.detail + r.target and "token=abc" not in r.detail + r.target
    with world.sessions() as s:
        assert s.scalar(select(WebhookReceiver.id)) is None
        assert s.scalar(select(WebhookDelivery.id)) is None
