"""LiveKit's automatic dispatch (every room gets one, with no agent name and, unless a worker
without an agent name runs, no job) is counted and labelled apart from real agent dispatches:
in the snapshot summary, in the dispatches table and on the Agents page, against the real
server and a real agent worker."""

from __future__ import annotations

from dataclasses import replace

import pytest
from livekit import api

from lib.livekit.summary import count_dispatches
from lib.ui.tables import dispatches_frame
from tests.integration.test_gateway import SERVER, gateway  # noqa: F401 - fixture
from tests.integration.test_pages import dashboard, frames_with, metrics, rerun_until, run_page  # noqa: F401 - fixture


@pytest.fixture
def two_rooms(lk_api, participants, agent_worker, unique_name):
    """A room with a participant and an explicit dispatch of the test agent, and a room with a
    participant only; returns (dispatched room, its dispatch id, plain room)."""
    dispatched, plain = unique_name("dispatched"), unique_name("plain")
    for room in (dispatched, plain):
        lk_api.create_room(room)
        participants.join(room, f"caller-{room[-6:]}")
    created = lk_api.call(
        lambda lk: lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name=agent_worker.agent_name, room=dispatched))
    )
    return dispatched, created.id, plain


def test_automatic_dispatch_is_counted_apart_from_named_ones(gateway, two_rooms):  # noqa: F811 - fixture
    dispatched, dispatch_id, plain = two_rooms
    snapshot = gateway.snapshot(SERVER)
    mine = replace(snapshot, rooms=tuple(r for r in snapshot.rooms if r.room.name in (dispatched, plain)))

    counts = count_dispatches(mine.dispatches)

    assert [d.id for d in mine.room(dispatched).dispatches if d.agent_name] == [dispatch_id]
    assert [d.agent_name for d in mine.room(plain).dispatches] == [""]  # the server's own
    assert (counts.named, counts.automatic, counts.automatic_only_rooms) == (1, 2, 1)


def test_dispatch_rows_say_which_are_automatic(gateway, two_rooms):  # noqa: F811 - fixture
    dispatched, dispatch_id, plain = two_rooms
    snapshot = gateway.snapshot(SERVER)

    frame = dispatches_frame(snapshot.room(dispatched).dispatches + snapshot.room(plain).dispatches)

    kinds = dict(zip(frame["dispatch"], frame["kind"]))
    assert kinds[dispatch_id] == "named"
    automatic = frame[frame["kind"] == "automatic"]
    assert set(automatic["room"]) == {dispatched, plain}
    assert all("automatic" in agent for agent in automatic["agent"])


def test_agents_page_counts_only_named_dispatches(dashboard, two_rooms):  # noqa: F811 - fixture
    dispatched, dispatch_id, plain = two_rooms

    def listed(at):
        return any((f["dispatch"] == dispatch_id).any() for f in frames_with(at, "dispatch"))

    at = rerun_until(run_page("agents"), listed, timeout=30)

    [table] = frames_with(at, "dispatch")
    named = set(table.loc[table["kind"] == "named", "dispatch"])
    assert dispatch_id in named
    assert int(metrics(at)["Dispatches"]) == len(named)
    assert plain not in set(table["room"])  # its only dispatch is the automatic one, without a job
    assert int(metrics(at)["Automatic only"]) >= 1  # rooms whose only dispatch is the automatic one
