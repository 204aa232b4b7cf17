"""Tokens from build_token against the real livekit-server and real SDK participants: they join
with what the token says, a token without publishing cannot publish, a hidden participant is not
shown to the others, and a dispatch in the token's room configuration sends a real agent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from livekit import api
from livekit.rtc.participant import PublishTrackError

from lib.livekit.devserver import DevServer
from lib.livekit.tokens import Grants, IssuedToken, TokenRequest, build_token
from lib.sim.agent_worker import AgentWorker
from lib.sim.participants import ParticipantHandle, ParticipantPool, SimParticipant

pytestmark = pytest.mark.integration


def token(server: DevServer, room: str, identity: str, **fields: object) -> IssuedToken:
    return build_token(server.api_key, server.api_secret, TokenRequest(room, identity, **fields))  # type: ignore[arg-type]


def join(participants: ParticipantPool, issued: IssuedToken, **options: object) -> ParticipantHandle:
    return participants.join(issued.room, issued.identity, token=issued.jwt, **options)


def others_seen_by(participants: ParticipantPool, handle: ParticipantHandle) -> set[str]:
    """The identities a participant's own SDK shows in its room."""
    member: SimParticipant = participants.participant(handle)

    async def read() -> set[str]:
        return {p.identity for p in member.room.remote_participants.values()}

    return participants.run(read())


def test_a_built_token_lets_a_real_participant_join_as_it_says(livekit_server: DevServer, participants, lk_api, unique_name) -> None:
    room = unique_name()
    issued = token(livekit_server, room, "alice", name="Alice A.", metadata='{"seat": 4}', attributes={"role": "speaker"},
                   grants=Grants.host(), ttl=timedelta(minutes=5))  # fmt: skip

    join(participants, issued)

    [alice] = lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)), until=lambda r: r.participants).participants
    assert (alice.identity, alice.name, alice.metadata, dict(alice.attributes)) == ("alice", "Alice A.", '{"seat": 4}', {"role": "speaker"})
    assert alice.permission.can_publish and alice.permission.can_subscribe and alice.permission.can_publish_data
    assert not alice.permission.hidden


def test_a_token_for_another_room_does_not_join_this_one(livekit_server: DevServer, participants, lk_api, unique_name) -> None:
    room, other = unique_name(), unique_name()

    participants.join(room, "alice", token=token(livekit_server, other, "alice").jwt)

    # The room is the token's, whatever room the client names.
    assert lk_api.list_participants(room) == []
    assert [p.identity for p in lk_api.list_participants(other)] == ["alice"]


def test_a_token_without_publishing_cannot_publish(livekit_server: DevServer, participants, lk_api, unique_name) -> None:
    room = unique_name()
    handle = join(participants, token(livekit_server, room, "listener", grants=Grants(can_publish=False)))

    with pytest.raises(PublishTrackError):
        participants.run(participants.participant(handle).publish_audio(), timeout=40)

    [listener] = lk_api.list_participants(room)
    assert not listener.permission.can_publish and listener.permission.can_subscribe
    assert list(listener.tracks) == []


def test_a_hidden_participant_is_not_shown_to_the_others(livekit_server: DevServer, participants, lk_api, unique_name) -> None:
    room = unique_name()
    observer = join(participants, token(livekit_server, room, "observer"))
    join(participants, token(livekit_server, room, "ghost", grants=Grants(hidden=True)))
    join(participants, token(livekit_server, room, "visible"))

    lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)), until=lambda r: len(r.participants) == 3)
    seen = others_seen_by(participants, observer)
    for _ in range(50):  # the visible participant's arrival reaches the observer a moment later
        if "visible" in seen:
            break
        participants.run(asyncio.sleep(0.1))
        seen = others_seen_by(participants, observer)

    assert seen == {"visible"}, "the ghost joined before 'visible', so it would have been seen first"
    ghost = next(p for p in lk_api.list_participants(room) if p.identity == "ghost")
    assert ghost.permission.hidden


def test_a_dispatch_in_the_tokens_room_configuration_sends_the_agent(
    livekit_server: DevServer, agent_worker: AgentWorker, participants, lk_api, unique_name
) -> None:
    room, plain = unique_name(), unique_name()
    issued = token(livekit_server, room, "caller", dispatch_agent=agent_worker.agent_name, dispatch_metadata='{"job": "greet"}')

    join(participants, issued)  # the room does not exist yet: joining creates it with the token's configuration
    join(participants, token(livekit_server, plain, "caller"))

    def agents_in(name: str) -> list[api.ParticipantInfo]:
        return [p for p in lk_api.list_participants(name) if p.kind == api.ParticipantInfo.Kind.AGENT]

    listed = lk_api.poll(lambda lk: lk.agent_dispatch.list_dispatch(room), until=lambda d: any(x.agent_name for x in d), timeout=30)
    [dispatch] = [d for d in listed if d.agent_name]
    assert (dispatch.agent_name, dispatch.metadata) == (agent_worker.agent_name, '{"job": "greet"}')
    # The worker's agent joins, then takes the job's metadata (the dispatch's) as its own.
    lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
                until=lambda r: any(p.kind == api.ParticipantInfo.Kind.AGENT and p.metadata for p in r.participants), timeout=30)  # fmt: skip
    [agent] = agents_in(room)
    assert agent.metadata == '{"job": "greet"}'
    assert not [d for d in lk_api.call(lambda lk: lk.agent_dispatch.list_dispatch(plain)) if d.agent_name]
    assert agents_in(plain) == []
