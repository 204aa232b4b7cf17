"""History through the real app: livekit-server posts its webhooks to /webhooks/livekit while the
collector samples; after the app stops, the DuckDB file holds exact sessions."""

from __future__ import annotations

import secrets
import signal
import time

import duckdb

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

    db = duckdb.connect(str(data / "history.duckdb"), read_only=True)
    try:
        session = db.execute(
            "SELECT epoch(left_at) - epoch(joined_at), left_at IS NOT NULL, left_estimated FROM participant_sessions WHERE identity = 'dana'"
        ).fetchall()
        sources = {row[0] for row in db.execute("SELECT DISTINCT source FROM events WHERE room = 'webhook-room'").fetchall()}
        samples = db.execute("SELECT count(*) FROM room_samples WHERE room = 'webhook-room'").fetchone()[0]
    finally:
        db.close()
    [(seconds, left, estimated)] = session
    assert left and not estimated  # the webhook's exact leave, not the snapshot's bound
    assert 2.0 <= seconds <= 6.0
    assert "webhook" in sources and "snapshot" in sources
    assert samples >= 2


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
