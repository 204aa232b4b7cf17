"""A live view keeps the last snapshot that succeeded when its server stops answering: the real
server behind a proxy (bench/latency_proxy.py, on a thread here) that the test then stops."""

from __future__ import annotations

import pytest

from bench.latency_proxy import ProxyThread
from lib.config import ServerConfig
from lib.livekit.devserver import free_port
from lib.livekit.errors import Category
from lib.livekit.gateway import LiveKitGateway


@pytest.fixture
def proxy(livekit_server):
    running = ProxyThread(("127.0.0.1", livekit_server.http_port), delay_ms=0)
    yield running
    running.stop()


def test_view_keeps_the_last_good_snapshot_after_the_server_stops_answering(livekit_server, lk_api, proxy, unique_name):
    room = unique_name()
    lk_api.create_room(room)
    config = ServerConfig("proxied", f"ws://127.0.0.1:{proxy.port}", livekit_server.api_key, livekit_server.api_secret)
    gateway = LiveKitGateway([config], request_timeout=2.0)
    try:
        [answered] = gateway.live(max_age=0, wait=5)
        proxy.stop()
        [failed] = gateway.live(max_age=0, wait=5)
    finally:
        gateway.close()

    assert answered.current is not None and answered.current.room(room) is not None
    assert answered.last_good is answered.snapshot and not answered.stale
    assert failed.snapshot is not None and failed.snapshot.error is not None
    assert failed.snapshot.error.category is Category.UNREACHABLE
    assert failed.current is None and failed.stale
    assert failed.last_good is answered.snapshot and failed.last_good.room(room) is not None
    assert failed.snapshot.taken_at > failed.last_good.taken_at


def test_a_server_that_never_answered_has_no_last_good_snapshot():
    config = ServerConfig("down", f"ws://127.0.0.1:{free_port()}", "key", "s" * 32)
    gateway = LiveKitGateway([config], request_timeout=2.0)
    try:
        [view] = gateway.live(max_age=0, wait=5)
    finally:
        gateway.close()

    assert view.snapshot is not None and not view.snapshot.ok
    assert view.last_good is None and view.current is None and not view.stale


def test_a_page_does_not_wait_again_for_a_server_that_is_already_failing(livekit_server):
    stalled = ProxyThread(("127.0.0.1", livekit_server.http_port), delay_ms=0, stall=True)
    config = ServerConfig("hung", f"ws://127.0.0.1:{stalled.port}", livekit_server.api_key, livekit_server.api_secret)
    gateway = LiveKitGateway([config], request_timeout=1.0)
    try:
        [first] = gateway.live(max_age=0, wait=30)  # waited for: it times out
        [second] = gateway.live(max_age=0, wait=30)  # already failing: its new refresh is not waited for
    finally:
        gateway.close()
        stalled.stop()

    assert first.snapshot is not None and first.snapshot.error is not None and first.snapshot.error.category is Category.TIMEOUT
    assert not first.refreshing
    assert second.refreshing, "the view came back while the refresh was still in flight"
    assert second.snapshot is first.snapshot
