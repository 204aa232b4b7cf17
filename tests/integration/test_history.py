"""The collector against a real livekit-server, with webhooks off (snapshots only): samples,
sessions and their durations, and an outage of the server recorded as a gap."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pandas as pd
import pytest

from lib.config import ServerConfig
from lib.history import sessions
from lib.history.collector import Collector
from lib.history.store import HistoryStore
from lib.livekit.devserver import DevServer
from lib.livekit.gateway import LiveKitGateway
from lib.sim.participants import ParticipantPool

INTERVAL = 1.0


def wait_for(check, timeout=20.0, interval=0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@pytest.fixture
def history(tmp_path):
    store = HistoryStore(tmp_path / "history.duckdb")
    yield store
    store.close()


def collecting(server: DevServer, store: HistoryStore, name: str = "test") -> tuple[LiveKitGateway, Collector]:
    gateway = LiveKitGateway([ServerConfig(name, server.ws_url, server.api_key, server.api_secret)], request_timeout=2.0)
    collector = Collector(gateway, store, interval=INTERVAL)
    collector.start()
    return gateway, collector


def sessions_of(store: HistoryStore, room: str):  # type: ignore[no-untyped-def]
    store.flush()
    return store.query("SELECT * FROM participant_sessions WHERE room = ? ORDER BY identity", [room])


def test_sessions_and_durations_come_from_snapshots_alone(livekit_server, lk_api, participants, history, unique_name):
    room = unique_name()
    lk_api.create_room(room)
    gateway, collector = collecting(livekit_server, history)
    try:
        alice = participants.join(room, "alice", publish_audio=True)
        participants.join(room, "bob")
        assert wait_for(lambda: len(sessions_of(history, room)) == 2)
        time.sleep(3)
        left_at_least = datetime.now(timezone.utc)
        participants.leave(alice)
        left_at_most = datetime.now(timezone.utc)
        closed = wait_for(lambda: bool((s := sessions_of(history, room)).loc[s.identity == "alice", "left_at"].notna().all()))
        assert closed
    finally:
        collector.stop()
        gateway.close()

    rows = sessions_of(history, room).set_index("identity")
    alice_row, bob_row = rows.loc["alice"], rows.loc["bob"]
    assert bool(alice_row.left_estimated)  # inferred from snapshots, so marked estimated
    assert pd.isna(bob_row.left_at)  # still in the room
    left = alice_row.left_at.to_pydatetime()
    # Inferred from snapshots: at most one interval (plus the snapshot's own time) after the leave.
    assert left_at_least.timestamp() - 0.5 <= left.timestamp() <= left_at_most.timestamp() + INTERVAL + 1.5
    joined = alice_row.joined_at.to_pydatetime()
    assert 2.5 <= (left - joined).total_seconds() <= 3 + INTERVAL + 3
    events = history.query("SELECT kind, source, count(*) AS n FROM events WHERE room = ? GROUP BY ALL", [room])
    counts = {(r.kind, r.source): r.n for r in events.itertuples()}
    assert counts[("participant_joined", "snapshot")] == 2 and counts[("participant_left", "snapshot")] == 1
    assert counts[("track_published", "snapshot")] == 1
    samples = history.query("SELECT max(participants) AS peak FROM room_samples WHERE room = ?", [room])
    assert samples.peak.iloc[0] == 2
    assert history.query("SELECT peak_participants FROM room_sessions WHERE room = ?", [room]).iloc[0, 0] == 2

    # The Sessions page's timeline of this room: one span each, alice's ended (estimated), bob's
    # open; alice's microphone published and, when she left, unpublished (estimated), once each.
    room_sid = history.query("SELECT room_sid FROM room_sessions WHERE room = ?", [room]).iloc[0, 0]
    spans, marks = sessions.timeline(history, "test", room_sid)
    by_name = spans.set_index("identity")
    assert sorted(by_name.index) == ["alice", "bob"]
    assert not by_name.loc["alice", "open"] and by_name.loc["alice", "left_estimated"] and by_name.loc["bob", "open"]
    assert [(m.identity, m.kind, m.track_source) for m in marks.itertuples()] == [
        ("alice", "track_published", "microphone"),
        ("alice", "track_unpublished", "microphone"),
    ]
    track = history.query("SELECT source, unpublished_at IS NOT NULL AS ended, unpublished_estimated FROM tracks WHERE room = ?", [room])
    assert [tuple(row) for row in track.itertuples(index=False)] == [("microphone", True, True)]


def test_server_outage_is_a_gap_and_collection_resumes_without_duplicates(tmp_path, history, unique_name):
    server = DevServer().start()
    port, key, secret = server.http_port, server.api_key, server.api_secret
    gateway, collector = collecting(server, history, "outage")
    pool = ParticipantPool(server.ws_url, key, secret)
    room = unique_name()
    try:
        gateway.create_room("outage", room, empty_timeout=600)
        pool.join(room, "carol")
        assert wait_for(lambda: len(sessions_of(history, room)) == 1)
        pool.close()
        server.stop(timeout=2)
        killed_at = datetime.now(timezone.utc)
        gap = wait_for(lambda: len(history.query("SELECT * FROM gaps WHERE server = 'outage'")) == 1, timeout=10)
        assert gap
        time.sleep(2 * INTERVAL)
        server = DevServer(http_port=port, api_key=key, api_secret=secret).start()
        restarted_at = time.monotonic()
        closed = wait_for(lambda: history.query("SELECT ended_at FROM gaps WHERE server = 'outage'").ended_at.notna().all(), timeout=15)
        resumed_after = time.monotonic() - restarted_at
        assert closed
    finally:
        collector.stop()
        gateway.close()
        pool.close()
        server.stop(timeout=2)
    history.flush()

    # Collection resumed within two intervals of the server answering again (plus slack for a
    # snapshot in flight); the bound is the collector's back-off, not a timing benchmark.
    assert resumed_after <= 2 * INTERVAL + 3
    samples = history.query("SELECT ts, ok FROM server_samples WHERE server = 'outage' ORDER BY ts")
    failed = samples[~samples.ok]
    assert len(failed) >= 1  # the outage is recorded as failed samples, not as zero rooms
    rooms_during = history.query(
        "SELECT count(*) FROM room_samples r JOIN gaps g ON r.server = g.server WHERE r.server = 'outage' AND r.ts > g.started_at AND r.ts < g.ended_at"
    ).iloc[0, 0]
    assert rooms_during == 0  # no invented rows inside the gap
    carol = sessions_of(history, room).iloc[0]
    assert bool(carol.left_estimated)
    assert carol.left_at.to_pydatetime() <= datetime.now(timezone.utc)
    assert abs((carol.left_at.to_pydatetime() - killed_at).total_seconds()) <= 2 * INTERVAL + 2
    dupes = history.query("SELECT event_id, count(*) n FROM events GROUP BY event_id HAVING n > 1")
    assert dupes.empty
    assert history.last_error is None


def test_sessions_of_a_server_no_longer_watched_end_instead_of_staying_live(livekit_server, participants, history, unique_name):
    room = unique_name()
    gateway, collector = collecting(livekit_server, history, name="soon-removed")
    try:
        participants.join(room, "alice", publish_audio=True)
        assert wait_for(lambda: len(sessions_of(history, room)) == 1)
        removed_at = datetime.now(timezone.utc)
        gateway.set_servers([])  # removed on the Servers page
        closed = wait_for(lambda: bool(sessions_of(history, room)["left_at"].notna().all()), timeout=10)
    finally:
        collector.stop()
        gateway.close()

    assert closed, "the participant of a removed server is not left 'live'"
    [row] = sessions_of(history, room).itertuples()
    assert row.left_estimated and row.left_at.to_pydatetime() <= removed_at, "ended when the server last answered"
    rooms = history.query("SELECT ended_at, end_estimated FROM room_sessions WHERE room = ?", [room])
    assert rooms["ended_at"].notna().all() and rooms["end_estimated"].all()
    open_tracks = history.query("SELECT count(*) AS n FROM tracks WHERE room = ? AND unpublished_at IS NULL", [room])
    assert int(open_tracks["n"].iloc[0]) == 0
