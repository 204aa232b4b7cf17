"""A snapshot of a server across a network reads the rooms of the last good snapshot beside
ListRooms (with their dispatches when they had participants) and other rooms once ListRooms
names them; whichever way a room was read, it reports the same participants and dispatches, none
for an empty room, and rooms that closed or opened in between are gone or there. Real server
behind a proxy adding a 4 ms round trip (a server on loopback is read in order), real agent
worker."""

from __future__ import annotations

import pytest

from bench.latency_proxy import ProxyThread
from lib.config import ServerConfig
from lib.livekit.gateway import LiveKitGateway

SERVER = "test"


class RecordingGateway(LiveKitGateway):
    """Notes how each room was read in the last snapshot, so the test knows it covered every
    way: "ahead" (before ListRooms answered) or "after", each with or without dispatches."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.reads: dict[str, list[str]] = {}
        self._ahead: set[str] = set()
        super().__init__(*args, **kwargs)

    def snapshot(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.reads.clear()
        return super().snapshot(*args, **kwargs)

    def _read_ahead(self, srv):  # type: ignore[no-untyped-def]
        ahead = super()._read_ahead(srv)
        self._ahead = set(ahead)
        return ahead

    async def _read_room(self, srv, room, with_dispatches):  # type: ignore[no-untyped-def]
        when = "ahead" if room in self._ahead and room not in self.reads else "after"
        self.reads.setdefault(room, []).append(f"{when}{' with dispatches' if with_dispatches else ''}")
        return await super()._read_room(srv, room, with_dispatches)


@pytest.fixture
def gateway(livekit_server):
    proxy = ProxyThread(("127.0.0.1", livekit_server.http_port), delay_ms=2)
    config = ServerConfig(SERVER, f"ws://127.0.0.1:{proxy.port}", livekit_server.api_key, livekit_server.api_secret)
    gw = RecordingGateway([config], request_timeout=4.0)
    yield gw
    gw.close()
    proxy.stop()


def named(room_snapshot):
    return sorted(d.id for d in room_snapshot.dispatches if not d.automatic)


def test_rooms_read_ahead_or_after_list_rooms_report_the_same_dispatches(gateway, lk_api, participants, agent_worker, unique_name):
    busy, empty = unique_name("busy"), unique_name("empty")
    lk_api.create_room(busy)
    lk_api.create_room(empty)
    participants.join(busy, "caller")
    dispatch = gateway.create_dispatch(SERVER, busy, agent_worker.agent_name)

    first = gateway.snapshot(SERVER)  # nothing known yet: both read after ListRooms
    first_reads = dict(gateway.reads)
    second = gateway.snapshot(SERVER)  # both known: read ahead, dispatches only for the busy one
    second_reads = dict(gateway.reads)
    participants.join(empty, "late")
    third = gateway.snapshot(SERVER)  # read ahead as empty, found busy: dispatches read after

    assert first_reads[busy] == first_reads[empty] == ["after with dispatches"]
    assert second_reads[busy] == ["ahead with dispatches"] and second_reads[empty] == ["ahead"]
    assert gateway.reads[empty] == ["ahead"]
    for snap in (first, second, third):
        assert named(snap.room(busy)) == [dispatch.id]
        assert any(d.automatic for d in snap.room(busy).dispatches)  # the server's own, beside it
        assert snap.room(busy).error is None
    for snap in (first, second):
        assert snap.room(empty).participants == () and snap.room(empty).dispatches == ()
    assert [p.identity for p in third.room(empty).participants] == ["late"]
    assert [d.automatic for d in third.room(empty).dispatches] == [True]


def test_a_room_closed_since_the_last_snapshot_is_gone_and_a_new_one_is_there(gateway, lk_api, participants, unique_name):
    closing, opening = unique_name("closing"), unique_name("opening")
    lk_api.create_room(closing)
    participants.join(closing, "leaver")
    assert gateway.snapshot(SERVER).room(closing) is not None

    gateway.delete_room(SERVER, closing)
    lk_api.create_room(opening)
    participants.join(opening, "joiner")
    snap = gateway.snapshot(SERVER)

    assert gateway.reads[closing] == ["ahead with dispatches"]  # read, then dropped
    assert gateway.reads[opening] == ["after with dispatches"]
    assert snap.ok and snap.room(closing) is None
    assert [p.identity for p in snap.room(opening).participants] == ["joiner"]
    assert [d.automatic for d in snap.room(opening).dispatches] == [True]
