"""The simulated traffic against a real livekit-server: participants, data, removal, the agent
worker and the traffic simulator process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from livekit import api

from lib.livekit.devserver import REPO_ROOT, DevServer
from lib.sim.agent_worker import AGENT_ATTRIBUTE, AgentWorker
from lib.sim.participants import ParticipantPool
from lib.sim.traffic import FIRST_NAMES

pytestmark = pytest.mark.integration


def _tracks_by_source(info: api.ParticipantInfo) -> dict[int, api.TrackInfo]:
    return {track.source: track for track in info.tracks}


def test_publishing_participant_is_listed_with_simulcast_camera_and_microphone(
    participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    alice = participants.join(
        room, "alice", name="Alice", metadata='{"role":"camera"}', attributes={"team": "blue"},
        publish_audio=True, publish_video=True, simulcast=True,
    )  # fmt: skip
    sids = participants.track_sids(alice)

    listed = lk_api.poll(
        lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
        until=lambda r: any(
            _tracks_by_source(p).get(api.TrackSource.CAMERA, api.TrackInfo()).simulcast
            and api.TrackSource.MICROPHONE in _tracks_by_source(p)
            for p in r.participants
        ),
    )

    [info] = listed.participants
    assert (info.identity, info.name, info.metadata) == ("alice", "Alice", '{"role":"camera"}')
    assert dict(info.attributes) == {"team": "blue"}
    tracks = _tracks_by_source(info)
    camera, microphone = tracks[api.TrackSource.CAMERA], tracks[api.TrackSource.MICROPHONE]
    assert camera.type == api.TrackType.VIDEO and camera.simulcast
    assert camera.sid == sids["video"]
    assert microphone.type == api.TrackType.AUDIO
    assert microphone.sid == sids["audio"]


def test_participant_removed_by_server_api_sees_the_disconnect(
    participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    bob = participants.join(room, "bob", publish_audio=True)

    bob_in_room = api.RoomParticipantIdentity(room=room, identity="bob")
    lk_api.call(lambda lk: lk.room.remove_participant(bob_in_room))

    assert participants.wait_disconnected(bob, timeout=15)
    assert participants.disconnect_reason(bob) == "PARTICIPANT_REMOVED"
    assert lk_api.list_participants(room) == []


def test_data_sent_with_server_api_reaches_participant_with_its_topic(
    participants: ParticipantPool, lk_api, unique_name
) -> None:
    room = unique_name()
    carol = participants.join(room, "carol")
    participants.join(room, "dave")

    lk_api.call(
        lambda lk: lk.room.send_data(
            api.SendDataRequest(
                room=room, data=b"maintenance at noon", kind=api.DataPacket.Kind.RELIABLE,
                topic="ops-notice", destination_identities=["carol"],
            )
        )
    )  # fmt: skip

    packet = participants.wait_for_data(carol, topic="ops-notice", timeout=15)
    assert packet is not None
    assert packet.topic == "ops-notice"
    assert packet.payload == b"maintenance at noon"
    assert packet.sender == ""  # sent by the Server API, not by a participant
    assert participants.received_data(carol) == [packet]


def test_agent_worker_takes_a_dispatch_and_joins_as_agent(
    agent_worker: AgentWorker, lk_api, unique_name
) -> None:
    room = unique_name()
    lk_api.create_room(room)

    dispatch = lk_api.call(
        lambda lk: lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=agent_worker.agent_name, room=room, metadata='{"purpose":"test"}'
            )
        )
    )

    listed = lk_api.poll(
        lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
        until=lambda r: any(AGENT_ATTRIBUTE in p.attributes for p in r.participants),
    )
    agents = [p for p in listed.participants if p.kind == api.ParticipantInfo.Kind.AGENT]
    assert len(agents) == 1
    assert agents[0].attributes[AGENT_ATTRIBUTE] == "test-agent"
    assert agents[0].metadata == '{"purpose":"test"}'

    dispatches = lk_api.poll(
        lambda lk: lk.agent_dispatch.list_dispatch(room),
        until=lambda ds: any(
            job.state.status == api.JobStatus.JS_RUNNING for d in ds for job in d.state.jobs
        ),
    )
    [ours] = [d for d in dispatches if d.id == dispatch.id]
    [job] = ours.state.jobs
    assert job.state.status == api.JobStatus.JS_RUNNING
    assert job.state.participant_identity == agents[0].identity


def test_traffic_simulator_fills_rooms_and_exits_cleanly_on_sigint(
    livekit_server: DevServer, lk_api, unique_name, tmp_path: Path
) -> None:
    prefix = unique_name("traffic")
    log_path = tmp_path / "traffic.log"
    env = dict(
        os.environ,
        LIVEKIT_URL=livekit_server.http_url,  # the simulator turns it into ws:// for rtc
        LIVEKIT_API_KEY=livekit_server.api_key,
        LIVEKIT_API_SECRET=livekit_server.api_secret,
    )
    args = ["--rooms", "2", "--participants", "5", "--seed", "7", "--prefix", prefix]
    args += ["--agent-name", f"{prefix}-agent", "--duration", "120"]  # a bound if SIGINT is lost

    def ours(rooms: api.ListRoomsResponse) -> list[api.Room]:
        return [room for room in rooms.rooms if room.name.startswith(prefix)]

    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lib.sim.traffic", *args],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            rooms = lk_api.poll(
                lambda lk: lk.room.list_rooms(api.ListRoomsRequest()),
                until=lambda r: len(ours(r)) == 2 and all(rm.num_participants for rm in ours(r)),
                timeout=45,
            )
            listed = [lk_api.list_participants(room.name) for room in ours(rooms)]
            agents = lk_api.poll(lambda lk: _agents_in_rooms(lk, prefix), until=bool, timeout=30)
            process.send_signal(signal.SIGINT)
            returncode = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    output = log_path.read_text()
    assert returncode == 0, output
    assert sorted(room.name for room in ours(rooms)) == [f"{prefix}-standup", f"{prefix}-support"]
    assert all('"simulated": true' in room.metadata for room in ours(rooms))
    identities = {
        p.identity for room in listed for p in room if p.kind == api.ParticipantInfo.Kind.STANDARD
    }
    cast = {f"{first}-{i}" for i, first in enumerate(FIRST_NAMES[:5], start=1)}
    assert identities and identities <= cast
    assert agents, output
    assert "join room=" in output and "agent joined room=" in output, output
    assert output.rstrip().endswith("stopped"), output
    assert ours(lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest()))) == []


async def _agents_in_rooms(lk: api.LiveKitAPI, prefix: str) -> list[str]:
    """Identities of agent participants in the rooms whose names start with `prefix`."""
    found = []
    for room in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms:
        if room.name.startswith(prefix):
            listing = await lk.room.list_participants(api.ListParticipantsRequest(room=room.name))
            found += [
                p.identity
                for p in listing.participants
                if p.kind == api.ParticipantInfo.Kind.AGENT and AGENT_ATTRIBUTE in p.attributes
            ]
    return found
