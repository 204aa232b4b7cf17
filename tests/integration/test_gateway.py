"""The gateway against a real livekit-server: snapshots, and every control read back from the
server (or from the affected participant's own SDK)."""

from __future__ import annotations

import time

import pytest
from livekit import api

from lib.config import ServerConfig
from lib.livekit.errors import Category, GatewayError
from lib.livekit.gateway import LiveKitGateway, PermissionUpdate

SERVER = "test"


@pytest.fixture
def gateway(livekit_server):
    config = ServerConfig(SERVER, livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    gw = LiveKitGateway([config], request_timeout=4.0)
    yield gw
    gw.close()


def wait_for(check, timeout=15.0, interval=0.2):
    """Poll `check()` until it returns something truthy; the server's listings settle shortly
    after an event (a job's status, a mute)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def room_in(gw, name):
    return gw.snapshot(SERVER).room(name)


def participant_in(gw, room, identity):
    snap = room_in(gw, room)
    return next((p for p in snap.participants if p.identity == identity), None) if snap else None


def test_snapshot_shows_rooms_participants_and_tracks(gateway, lk_api, participants, unique_name):
    room = unique_name()
    lk_api.create_room(room, metadata="ops standup")
    participants.join(room, "alice", name="Alice", publish_audio=True, publish_video=True, attributes={"role": "host"})
    participants.join(room, "bob", publish_audio=True)
    participants.join(room, "carol")  # subscriber only

    snap = wait_for(lambda: (r := room_in(gateway, room)) and len(r.participants) == 3 and r)
    assert snap.room.metadata == "ops standup" and snap.room.server == SERVER
    by_id = {p.identity: p for p in snap.participants}
    assert set(by_id) == {"alice", "bob", "carol"}
    assert all(p.kind == "standard" and p.server == SERVER for p in by_id.values())
    alice = wait_for(lambda: (p := participant_in(gateway, room, "alice")) and len(p.tracks) == 2 and p)
    sources = {t.source: t for t in alice.tracks}
    assert set(sources) == {"camera", "microphone"}
    assert sources["camera"].type == "video" and sources["camera"].simulcast
    assert sources["microphone"].type == "audio" and not sources["microphone"].muted
    assert alice.name == "Alice" and dict(alice.attributes) == {"role": "host"}
    assert alice.joined_at is not None and alice.is_publisher
    assert by_id["carol"].tracks == () and not by_id["carol"].is_publisher


def test_snapshot_shows_agent_participants_and_dispatch_jobs(gateway, lk_api, participants, agent_worker, unique_name):
    room = unique_name()
    lk_api.create_room(room)
    participants.join(room, "caller", publish_audio=True)
    dispatch = gateway.create_dispatch(SERVER, room, agent_worker.agent_name, metadata='{"task": "notes"}')
    assert dispatch.agent_name == agent_worker.agent_name and dispatch.room == room

    def running():
        snap = room_in(gateway, room)
        mine = [d for d in snap.dispatches if d.id == dispatch.id] if snap else []
        return mine and mine[0].jobs and mine[0].jobs[0].status == "running" and snap

    snap = wait_for(running, timeout=30)
    assert snap, "the dispatched job never reached running"
    job = next(d for d in snap.dispatches if d.id == dispatch.id).jobs[0]
    agents = wait_for(lambda: [p for p in room_in(gateway, room).participants if p.kind == "agent"], timeout=30)
    assert [a.identity for a in agents] == [job.participant_identity]

    gateway.delete_dispatch(SERVER, room, dispatch.id)
    assert wait_for(lambda: dispatch.id not in {d.id for d in room_in(gateway, room).dispatches})


def test_create_room_and_update_metadata_read_back(gateway, lk_api, unique_name):
    room = unique_name()
    created = gateway.create_room(SERVER, room, empty_timeout=120, departure_timeout=15, max_participants=7, metadata="v1")
    assert (created.name, created.max_participants, created.empty_timeout) == (room, 7, 120)
    gateway.update_room_metadata(SERVER, room, "v2 <b>ü</b>")
    listed = lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[room]))).rooms
    assert [(r.name, r.metadata, r.max_participants, r.departure_timeout) for r in listed] == [(room, "v2 <b>ü</b>", 7, 15)]
    gateway.delete_room(SERVER, room)


def test_ended_room_is_gone_and_its_participants_disconnected(gateway, participants, unique_name):
    room = unique_name()
    gateway.create_room(SERVER, room)
    handle = participants.join(room, "dave", publish_audio=True)
    gateway.delete_room(SERVER, room)
    assert participants.wait_disconnected(handle, timeout=10)
    assert room_in(gateway, room) is None


def test_removed_participant_sees_the_disconnect_and_is_gone_from_listing(gateway, lk_api, participants, unique_name):
    room = unique_name()
    lk_api.create_room(room)
    erin = participants.join(room, "erin", publish_audio=True)
    participants.join(room, "frank")
    gateway.remove_participant(SERVER, room, "erin")
    assert participants.wait_disconnected(erin, timeout=10)
    assert wait_for(lambda: participant_in(gateway, room, "erin") is None)
    assert participant_in(gateway, room, "frank") is not None


def test_muted_track_shows_muted_and_unmute_restores_it(gateway, lk_api, participants, unique_name):
    room = unique_name()
    lk_api.create_room(room)
    handle = participants.join(room, "gina", publish_audio=True)
    track_sid = participants.track_sids(handle)["audio"]

    track = gateway.mute_track(SERVER, room, "gina", track_sid, True)
    assert track.sid == track_sid and track.muted
    def muted() -> bool | None:
        tracks = {t.sid: t for t in participant_in(gateway, room, "gina").tracks}
        return tracks[track_sid].muted if track_sid in tracks else None

    assert wait_for(lambda: muted() is True)
    gateway.mute_track(SERVER, room, "gina", track_sid, False)
    assert wait_for(lambda: muted() is False)


def test_permission_name_metadata_and_attribute_updates_read_back(gateway, lk_api, participants, unique_name):
    room = unique_name()
    lk_api.create_room(room)
    participants.join(room, "hank", attributes={"team": "red", "seat": "4"})

    gateway.update_participant(
        SERVER, room, "hank", permission=PermissionUpdate(can_publish=True, can_publish_sources=("microphone",), can_publish_data=False)
    )
    gateway.update_participant(SERVER, room, "hank", name="Hank ü", metadata='{"vip": true}', attributes={"team": "blue", "seat": ""})

    info = {p.identity: p for p in lk_api.list_participants(room)}["hank"]
    assert (info.name, info.metadata) == ("Hank ü", '{"vip": true}')
    assert dict(info.attributes) == {"team": "blue"}  # "" deletes the key
    assert info.permission.can_publish and not info.permission.can_publish_data
    hank = participant_in(gateway, room, "hank")
    assert hank.permission.can_publish_sources == ("microphone",)


def test_data_reaches_only_the_chosen_identities_with_its_topic(gateway, lk_api, participants, unique_name):
    room = unique_name()
    lk_api.create_room(room)
    ivy = participants.join(room, "ivy")
    jack = participants.join(room, "jack")

    gateway.send_data(SERVER, room, "hello ivy ü".encode(), topic="ops", destination_identities=["ivy"])
    got = participants.wait_for_data(ivy, topic="ops", timeout=10)
    assert got is not None and got.payload == "hello ivy ü".encode() and got.topic == "ops"

    gateway.send_data(SERVER, room, b"to everyone", topic="all")
    assert participants.wait_for_data(jack, topic="all", timeout=10) is not None
    assert all(d.topic != "ops" for d in participants.received_data(jack))


def test_controls_report_the_servers_error_category(gateway, unique_name):
    with pytest.raises(GatewayError) as missing:
        gateway.update_room_metadata(SERVER, unique_name("missing"), "x")
    assert missing.value.category is Category.NOT_FOUND
    with pytest.raises(GatewayError) as nameless:
        gateway.create_room(SERVER, "  ")
    assert nameless.value.category is Category.INVALID


def test_wrong_secret_and_closed_port_are_named(gateway, livekit_server):
    bad_secret = ServerConfig("bad", livekit_server.ws_url, livekit_server.api_key, "not-the-secret" * 3)
    result = gateway.test_connection(bad_secret)
    assert not result.ok and result.error.category is Category.UNAUTHORIZED
    bad_key = ServerConfig("bad", livekit_server.ws_url, "nokey", livekit_server.api_secret)
    assert gateway.test_connection(bad_key).error.category is Category.UNAUTHORIZED
    from lib.livekit.devserver import free_port

    closed = ServerConfig("down", f"ws://127.0.0.1:{free_port()}", "k", "s" * 32)
    assert gateway.test_connection(closed).error.category is Category.UNREACHABLE


def test_one_unreachable_server_does_not_hide_the_others(livekit_server, lk_api, unique_name):
    from lib.livekit.devserver import free_port

    room = unique_name()
    lk_api.create_room(room)
    good = ServerConfig("good", livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    down = ServerConfig("down", f"ws://127.0.0.1:{free_port()}", "k", "s" * 32)
    gw = LiveKitGateway([good, down], request_timeout=2.0)
    try:
        views = {v.server: v for v in gw.live(max_age=0, wait=3)}
        assert views["good"].snapshot.ok and views["good"].snapshot.room(room) is not None
        assert views["down"].snapshot.error.category is Category.UNREACHABLE
        assert views["down"].health.failing_since is not None and views["down"].health.reachable is False
    finally:
        gw.close()
