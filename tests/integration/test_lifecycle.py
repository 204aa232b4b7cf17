"""The meeting lifecycle against a real livekit-server, on SQLite and on PostgreSQL: rooms open at
their start with the meeting's limit and metadata, close at the end with everyone told
ROOM_DELETED, come back when a guest reconnects and are deleted again; a server that does not
answer leaves its meetings waiting until it returns; edits made meanwhile win over the
scheduler's stale reads; and the heartbeat the Overview reads."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from lib.auth.audit import AuditLog
from lib.config import ServerConfig
from lib.db import make_engine, migrate, session_factory
from lib.livekit.devserver import DevServer, free_port
from lib.livekit.gateway import LiveKitGateway
from lib.livekit.records import Room
from lib.meetings.lifecycle import ACTIVE, CANCELLED, ENDED, SCHEDULED, Lifecycle, LifecycleError, run, scheduler_state
from lib.models import Occurrence, SchedulerBeat, Transition, utcnow
from lib.sim.participants import ParticipantPool
from tests.schedule import Clock, add_host, add_meeting, occurrence, transitions, utc

pytestmark = pytest.mark.integration

SERVER = "default"


@dataclass
class World:
    engine: Engine
    sessions: sessionmaker[Session]
    audit: AuditLog
    gateway: LiveKitGateway
    clock: Clock
    lifecycle: Lifecycle
    host: int
    lk: DevServer

    def meeting(self, start_in: float, length: float, **fields: object) -> int:
        now = self.clock.now
        return add_meeting(self.sessions, self.host, now + timedelta(seconds=start_in), now + timedelta(seconds=start_in + length), **fields)

    def room(self, name: str) -> Room | None:
        return self.gateway.find_room(SERVER, name)

    def actions(self, action: str) -> list[str]:
        return [r.target for r in self.audit.query(action=action)]


def server_config(lk: DevServer, name: str = SERVER, url: str | None = None) -> ServerConfig:
    return ServerConfig(name, url or lk.ws_url, lk.api_key, lk.api_secret)


@pytest.fixture
def world(database_url: str, livekit_server: DevServer) -> Iterator[World]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    audit = AuditLog(sessions)
    gateway = LiveKitGateway([server_config(livekit_server)], request_timeout=3)
    clock = Clock(utcnow().replace(microsecond=0))
    try:
        yield World(engine, sessions, audit, gateway, clock, Lifecycle(sessions, gateway, audit, clock=clock), add_host(sessions), livekit_server)
    finally:
        gateway.close()
        engine.dispose()


def test_a_meeting_gets_its_room_at_its_start_with_its_limit_and_metadata(world: World) -> None:
    oid = world.meeting(60, 1800, title="Budget review", max_participants=7)
    name = occurrence(world.sessions, oid).room_name

    assert world.lifecycle.tick().activated == 0
    assert world.room(name) is None, "no room a minute before the start"

    world.clock.advance(60)
    report = world.lifecycle.tick()

    assert (report.activated, report.waiting, report.errors) == (1, 0, ())
    room = world.room(name)
    assert room is not None and room.max_participants == 7
    row = occurrence(world.sessions, oid)
    assert json.loads(room.metadata) == {"meeting": {"id": row.meeting_id, "occurrence": oid, "title": "Budget review"}}
    # Empty for the whole meeting, it stays open until 5 minutes after its end; so does a room
    # everyone left (LiveKit's own departure timeout closed it 20 s after the last one left).
    assert room.empty_timeout == 1800 + 300
    assert room.departure_timeout == 1800 + 300
    assert row.status == ACTIVE and utc(row.started_at) == world.clock.now and row.version == 2
    assert transitions(world.sessions) == {(SCHEDULED, ACTIVE): 1}
    assert world.actions("meeting.start") == [f"{SERVER}/{name}"]
    assert world.lifecycle.tick().activated == 0, "a second tick changes nothing"


def test_a_meeting_opens_its_early_join_minutes_before_its_start(world: World) -> None:
    oid = world.meeting(600, 600, early_join_minutes=5)
    world.clock.advance(299)
    assert world.lifecycle.tick().activated == 0
    world.clock.advance(1)
    assert world.lifecycle.tick().activated == 1
    assert occurrence(world.sessions, oid).status == ACTIVE


def test_a_meeting_a_few_seconds_ahead_starts_at_the_first_tick_after_its_start(
    database_url: str, livekit_server: DevServer
) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    gateway = LiveKitGateway([server_config(livekit_server)], request_timeout=3)
    lifecycle = Lifecycle(sessions, gateway, AuditLog(sessions))  # the real clock
    try:
        starts = utcnow() + timedelta(seconds=3)
        oid = add_meeting(sessions, add_host(sessions), starts, starts + timedelta(minutes=30))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            before = utcnow()
            if lifecycle.tick().activated:
                break
            assert before < starts, "a tick that began after the start did not open the room"
            time.sleep(0.2)
        row = occurrence(sessions, oid)
        assert row.status == ACTIVE and utc(row.started_at) >= starts
        assert gateway.find_room(SERVER, row.room_name) is not None
    finally:
        gateway.delete_room(SERVER, occurrence(sessions, oid).room_name)
        gateway.close()
        engine.dispose()


def test_at_its_end_the_room_is_deleted_and_a_guest_coming_back_is_deleted_again(
    world: World, participants: ParticipantPool
) -> None:
    oid = world.meeting(0, 600, title="Retro")
    name = occurrence(world.sessions, oid).room_name
    assert world.lifecycle.tick().activated == 1
    guest = participants.join(name, "guest-1")

    world.clock.advance(600)
    report = world.lifecycle.tick()

    assert report.ended == 1
    assert participants.wait_disconnected(guest, timeout=10)
    assert participants.disconnect_reason(guest) == "ROOM_DELETED"
    row = occurrence(world.sessions, oid)
    assert row.status == ENDED and utc(row.ended_at) == world.clock.now
    assert world.room(name) is None

    # The guest's token is still valid: joining again re-creates the room (auto_create) ...
    again = participants.join(name, "guest-1")
    assert world.room(name) is not None
    world.clock.advance(5)
    report = world.lifecycle.tick()

    # ... and the next tick deletes it again, and says so.
    assert (report.reconciled, report.ended) == (1, 0)
    assert participants.wait_disconnected(again, timeout=10)
    assert world.room(name) is None
    assert world.actions("meeting.room_deleted_again") == [f"{SERVER}/{name}"]
    assert world.actions("meeting.end") == [f"{SERVER}/{name}"]
    assert transitions(world.sessions) == {(SCHEDULED, ACTIVE): 1, (ACTIVE, ENDED): 1}
    assert world.lifecycle.tick().reconciled == 0


def test_a_meeting_whose_end_passed_before_it_started_ends_without_a_room(world: World) -> None:
    oid = world.meeting(-700, 600)
    report = world.lifecycle.tick()
    assert (report.activated, report.ended) == (0, 1)
    assert world.room(occurrence(world.sessions, oid).room_name) is None
    assert transitions(world.sessions) == {(SCHEDULED, ENDED): 1}


def test_an_end_moved_later_keeps_the_meeting_active_and_one_moved_earlier_ends_it(world: World) -> None:
    oid = world.meeting(0, 600)
    assert world.lifecycle.tick().activated == 1
    with world.sessions.begin() as s:  # the host moves the end half an hour later
        s.execute(update(Occurrence).where(Occurrence.id == oid).values(ends_at=world.clock.now + timedelta(minutes=40), version=Occurrence.version + 1))
    world.clock.advance(600)
    assert world.lifecycle.tick().ended == 0
    assert occurrence(world.sessions, oid).status == ACTIVE
    with world.sessions.begin() as s:  # and then to a minute ago
        s.execute(update(Occurrence).where(Occurrence.id == oid).values(ends_at=world.clock.now - timedelta(minutes=1), version=Occurrence.version + 1))
    assert world.lifecycle.tick().ended == 1
    assert occurrence(world.sessions, oid).status == ENDED
    assert world.room(occurrence(world.sessions, oid).room_name) is None


def test_a_cancelled_occurrence_whose_room_exists_loses_it_within_one_tick(world: World, lk_api) -> None:
    oid = world.meeting(3600, 600)
    name = occurrence(world.sessions, oid).room_name
    lk_api.create_room(name)
    with world.sessions.begin() as s:
        s.execute(update(Occurrence).where(Occurrence.id == oid).values(status=CANCELLED, version=Occurrence.version + 1))

    assert world.lifecycle.tick().reconciled == 1
    assert world.room(name) is None


def test_finish_cancels_an_active_meeting_and_disconnects_its_participants(world: World, participants: ParticipantPool) -> None:
    oid = world.meeting(0, 600)
    assert world.lifecycle.activate(oid, actor="alice") is True
    assert world.lifecycle.activate(oid) is False, "already active"
    name = occurrence(world.sessions, oid).room_name
    guest = participants.join(name, "guest-2")

    assert world.lifecycle.finish(oid, CANCELLED, actor="alice") is True

    assert participants.wait_disconnected(guest, timeout=10)
    assert participants.disconnect_reason(guest) == "ROOM_DELETED"
    assert occurrence(world.sessions, oid).status == CANCELLED
    assert world.lifecycle.finish(oid) is False, "already over"
    with world.sessions() as s:
        assert [(t.from_status, t.to_status, t.actor) for t in s.scalars(select(Transition).order_by(Transition.id))] == [
            (SCHEDULED, ACTIVE, "alice"), (ACTIVE, CANCELLED, "alice"),
        ]  # fmt: skip
    assert {r.actor for r in world.audit.query()} == {"alice"}
    with pytest.raises(ValueError):
        world.lifecycle.finish(oid, ACTIVE)


def test_cancelling_a_meeting_whose_window_has_not_opened_needs_no_server(world: World) -> None:
    world.gateway.set_servers([server_config(world.lk, url=f"ws://127.0.0.1:{free_port()}")])
    oid = world.meeting(3600, 600, early_join_minutes=10)
    assert world.lifecycle.finish(oid, CANCELLED) is True
    assert occurrence(world.sessions, oid).status == CANCELLED


class EditingGateway(LiveKitGateway):
    """The real gateway, with a host's edit of the occurrence landing while the scheduler waits
    for the server's answer (the window in which a stale read would otherwise win)."""

    edit: tuple[sessionmaker[Session], int] | None = None

    def create_room(self, server: str, name: str, **fields: object) -> Room:  # type: ignore[override]
        room = super().create_room(server, name, **fields)  # type: ignore[arg-type]
        if self.edit is not None:
            sessions, oid = self.edit
            with sessions.begin() as s:
                s.execute(update(Occurrence).where(Occurrence.id == oid).values(starts_at=Occurrence.starts_at, version=Occurrence.version + 1))
        return room


def test_a_transition_from_a_stale_version_loses_and_changes_nothing(world: World) -> None:
    gateway = EditingGateway([server_config(world.lk)], request_timeout=3)
    try:
        lifecycle = Lifecycle(world.sessions, gateway, world.audit, clock=world.clock)
        oid = world.meeting(0, 600)
        gateway.edit = (world.sessions, oid)

        assert lifecycle.activate(oid) is False

        row = occurrence(world.sessions, oid)
        assert (row.status, row.version, row.started_at) == (SCHEDULED, 2, None), "only the edit changed it"
        assert transitions(world.sessions) == {}
        assert world.actions("meeting.start") == []
        gateway.edit = None
        assert lifecycle.activate(oid) is True, "read afresh, it starts"
    finally:
        gateway.delete_room(SERVER, occurrence(world.sessions, oid).room_name)
        gateway.close()


def test_a_server_that_does_not_answer_leaves_its_meeting_waiting_until_it_answers(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    world.gateway.set_servers([server_config(world.lk), ServerConfig("far", f"ws://127.0.0.1:{port}", "farkey", "far-secret-" + "f" * 24)])
    far = world.meeting(0, 3600, server="far")
    near = world.meeting(0, 3600)
    caplog.set_level(logging.INFO, logger="lib.meetings.lifecycle")

    first = world.lifecycle.tick()

    assert (first.activated, first.waiting) == (1, 1), "the server that answers is not held up"
    assert occurrence(world.sessions, near).status == ACTIVE
    row = occurrence(world.sessions, far)
    assert row.status == SCHEDULED and utc(row.waiting_since) == world.clock.now
    assert "unreachable" in row.last_error and len(first.errors) == 1 and "far" in first.errors[0]
    with pytest.raises(LifecycleError, match="did not answer"):
        world.lifecycle.activate(far)

    for _ in range(3):  # later ticks keep the first time and do not write the same again
        world.clock.advance(2)
        assert world.lifecycle.tick().waiting == 1
    later = occurrence(world.sessions, far)
    assert (utc(later.waiting_since), later.version) == (utc(row.waiting_since), row.version)
    outage = [r for r in caplog.records if r.levelno == logging.WARNING and "LiveKit server far" in r.getMessage()]
    assert len(outage) == 1, "an outage is logged once"

    back = DevServer(api_key="farkey", api_secret="far-secret-" + "f" * 24, http_port=port).start()
    try:
        world.clock.advance(60)
        report = world.lifecycle.tick()
        assert (report.activated, report.waiting, report.errors) == (1, 0, ())
        row = occurrence(world.sessions, far)
        assert (row.status, row.waiting_since, row.last_error) == (ACTIVE, None, "")
        assert any("LiveKit server far: recovered after" in r.getMessage() for r in caplog.records)
        # Its end is retried the same way: never marked ended while the room may be there.
        back.stop()
        world.clock.advance(3600)
        report = world.lifecycle.tick()
        assert report.ended == 1 and report.waiting == 1
        assert occurrence(world.sessions, far).status == ACTIVE
    finally:
        back.stop()


def test_the_heartbeat_says_whether_a_scheduler_runs(world: World) -> None:
    state = scheduler_state(world.sessions, world.clock.now, 5)
    assert (state.running, state.last_tick_at, state.name) == (False, None, "")

    started = world.clock.now
    world.lifecycle.beat("box:11", started, 0, "")
    world.clock.advance(5)
    world.lifecycle.beat("box:11", started, 1, "far: unreachable")
    state = scheduler_state(world.sessions, world.clock.now + timedelta(seconds=14), 5)
    assert (state.running, state.last_tick_at, state.name, state.last_error) == (True, world.clock.now, "box:11", "far: unreachable")
    assert scheduler_state(world.sessions, world.clock.now + timedelta(seconds=16), 5).running is False, "three intervals old"

    world.lifecycle.beat("box:11", started, 2, "", stopped=True)
    assert scheduler_state(world.sessions, world.clock.now, 5).running is False
    with world.sessions() as s:
        assert s.scalars(select(SchedulerBeat.ticks)).all() == [2]


def test_a_new_scheduler_deletes_heartbeats_gone_for_a_week(world: World) -> None:
    world.lifecycle.beat("old:1", world.clock.now, 9, "")
    world.clock.advance(8 * 86400)
    world.lifecycle.beat("new:2", world.clock.now, 0, "")
    with world.sessions() as s:
        assert s.scalars(select(SchedulerBeat.name)).all() == ["new:2"]


def test_participants_are_disconnected_only_by_the_delete_not_by_the_activation(world: World, participants: ParticipantPool) -> None:
    # A guest who joined early (the room came from auto_create) keeps the room the scheduler
    # then "creates": LiveKit answers a create of an existing room with that room.
    oid = world.meeting(60, 600)
    name = occurrence(world.sessions, oid).room_name
    guest = participants.join(name, "early-guest")
    world.clock.advance(60)
    assert world.lifecycle.tick().activated == 1
    assert not participants.wait_disconnected(guest, timeout=1)
    world.gateway.delete_room(SERVER, name)


def test_the_loop_outlives_a_database_outage_logging_it_once(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lib.meetings.lifecycle")
    stop = threading.Event()

    def ticks() -> int:
        with world.sessions() as s:
            return s.scalar(select(SchedulerBeat.ticks).where(SchedulerBeat.name == "box:7")) or 0

    def wait_for(check, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not check() and time.monotonic() < deadline:
            time.sleep(0.05)
        return check()

    loop = threading.Thread(target=run, args=(world.lifecycle, 0.05, stop, "box:7"))
    loop.start()
    try:
        assert wait_for(lambda: ticks() >= 2)
        # The table the tick reads goes away, as a database that fails every query would.
        with world.engine.begin() as connection:
            connection.execute(text("ALTER TABLE meetings RENAME TO meetings_away"))
        assert wait_for(lambda: any("database:" in r.getMessage() for r in caplog.records))
        time.sleep(1.0)  # several retries
        before = ticks()
        with world.engine.begin() as connection:
            connection.execute(text("ALTER TABLE meetings_away RENAME TO meetings"))
        assert wait_for(lambda: ticks() > before + 1), "ticks resume"
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("database:") and "retrying" in m]) == 1, messages
    assert len([m for m in messages if m.startswith("database: recovered after")]) == 1, messages
    with world.sessions() as s:
        beat = s.get(SchedulerBeat, "box:7")
    assert beat.stopped and beat.last_error == ""


def test_a_meeting_on_a_server_no_longer_configured_waits_without_rewriting_itself(world: World) -> None:
    oid = world.meeting(0, 600, server="gone")
    report = world.lifecycle.tick()
    assert (report.activated, report.waiting) == (0, 1)
    assert report.errors == ("gone: not configured",)
    row = occurrence(world.sessions, oid)
    assert (row.status, row.last_error) == (SCHEDULED, "not configured") and row.waiting_since is not None
    for _ in range(3):  # skipped while backing off, then tried again: the same error is not written again
        world.clock.advance(1.5)
        assert world.lifecycle.tick().waiting == 1
    assert occurrence(world.sessions, oid).version == row.version
    with pytest.raises(LifecycleError, match="No server named gone is configured"):
        world.lifecycle.activate(oid)
