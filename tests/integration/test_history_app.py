"""History through the real app: livekit-server posts its webhooks to /webhooks/livekit while the
collector samples; after the app stops, the DuckDB file holds exact sessions."""

from __future__ import annotations

import secrets
import signal
import time

import duckdb

from lib.history import sessions
from lib.history.store import HistoryStore
from lib.livekit.devserver import DevServer
from lib.sim.participants import ParticipantPool
from tests.app_process import AppProcess


def test_webhooks_make_exact_sessions_in_the_running_app(tmp_path):
    data = tmp_path / "data"
    app = AppProcess({}, tmp_path / "app.log")  # its URL is known before it starts
    server = DevServer(webhook_urls=(f"{app.url}/webhooks/livekit",)).start()
    app.env.update(
        LIVEKIT_URL=server.ws_url,
        LIVEKIT_API_KEY=server.api_key,
        LIVEKIT_API_SECRET=server.api_secret,
        DASHBOARD_DATA_DIR=str(data),
        DASHBOARD_SECRET_KEY=secrets.token_urlsafe(32),
        DASHBOARD_COLLECT_SECONDS="1",
    )
    pool = ParticipantPool(server.ws_url, server.api_key, server.api_secret)
    try:
        app.start()
        dana = pool.join("webhook-room", "dana", publish_audio=True)
        time.sleep(3)
        pool.leave(dana)
        time.sleep(3)  # webhooks are delivered within moments; the collector samples every second
    finally:
        pool.close()
        app.stop()  # the lifespan closes the store, flushing what was queued
        server.stop(timeout=2)

    store = HistoryStore(data / "history.duckdb")  # the app has stopped: the file is ours to open
    try:
        session = store.query(
            "SELECT epoch(left_at) - epoch(joined_at) AS seconds, left_at IS NOT NULL AS has_left, left_estimated, server, room_sid "
            "FROM participant_sessions WHERE identity = 'dana'"
        )
        sources = set(store.query("SELECT DISTINCT source FROM events WHERE room = 'webhook-room'")["source"])
        samples = store.query("SELECT count(*) AS n FROM room_samples WHERE room = 'webhook-room'")["n"].iloc[0]
        tracks = store.query("SELECT source, unpublished_estimated FROM tracks WHERE room = 'webhook-room'")
        [(seconds, left, estimated, server, room_sid)] = [tuple(row) for row in session.itertuples(index=False)]
        spans, marks = sessions.timeline(store, server, room_sid)
    finally:
        store.close()
    assert left and not estimated  # the webhook's exact leave, not the snapshot's bound
    assert 2.0 <= seconds <= 6.0
    assert "webhook" in sources and "snapshot" in sources
    assert samples >= 2
    # Seen by both the webhook and the collector, the track is one publication with an exact end,
    # and the timeline shows each change once, at the webhook's time.
    assert [tuple(row) for row in tracks.itertuples(index=False)] == [("microphone", False)]
    assert list(spans["identity"]) == ["dana"] and not spans["left_estimated"].iloc[0] and not spans["open"].iloc[0]
    assert [(m.kind, m.source) for m in marks.itertuples()] == [("track_published", "webhook"), ("track_unpublished", "webhook")]


def test_history_file_survives_sigkill_of_the_app(tmp_path, livekit_server, lk_api):
    data = tmp_path / "data"
    lk_api.create_room("kill-room", empty_timeout=600)
    app = AppProcess(
        {
            "LIVEKIT_URL": livekit_server.ws_url,
            "LIVEKIT_API_KEY": livekit_server.api_key,
            "LIVEKIT_API_SECRET": livekit_server.api_secret,
            "DASHBOARD_DATA_DIR": str(data),
            "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(32),
            "DASHBOARD_COLLECT_SECONDS": "1",
        },
        tmp_path / "app.log",
    ).start()
    try:
        time.sleep(6)  # about six collection rounds are written, one may be in flight
        app.process.send_signal(signal.SIGKILL)
        app.process.wait(10)
    finally:
        app.stop()

    db = duckdb.connect(str(data / "history.duckdb"))  # opens (and replays its WAL) after the kill
    try:
        rounds = db.execute("SELECT count(DISTINCT ts) FROM server_samples WHERE ok").fetchone()[0]
        room_rows = db.execute("SELECT count(*) FROM room_samples WHERE room = 'kill-room'").fetchone()[0]
    finally:
        db.close()
    # Rounds written before the kill are all there; at most the one in flight is missing.
    assert rounds >= 3
    assert room_rows >= rounds - 1
