"""How many calls a snapshot keeps in flight, from the quickest call of the last snapshot: enough
to cover the round trip, at least 32, at most the configured concurrency; and a server quicker
than that floor is read in order, without reading ahead."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lib.livekit.gateway import DEFAULT_CONCURRENCY, LiveKitGateway


@pytest.fixture
def gateway():
    gw = LiveKitGateway()
    yield gw
    gw.close()


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        (None, DEFAULT_CONCURRENCY),  # nothing measured yet: everything at once
        (0.0001, 32),  # loopback
        (0.005, 100),  # a LAN or a busy server
        (0.020, 400),
        (0.200, DEFAULT_CONCURRENCY),  # across the world: the cap
    ],
)
def test_calls_in_flight_cover_the_round_trip_within_the_bounds(gateway, latency, expected):
    assert gateway._bound(SimpleNamespace(latency=latency)) == expected


def test_a_concurrency_below_the_floor_is_kept():
    gw = LiveKitGateway(concurrency=8)
    try:
        assert gw._bound(SimpleNamespace(latency=0.0001)) == 8
        assert gw._bound(SimpleNamespace(latency=1.0)) == 8
    finally:
        gw.close()


@pytest.mark.parametrize(("latency", "early"), [(None, True), (0.0001, False), (0.0015, False), (0.002, True), (0.020, True)])
def test_only_a_server_farther_than_the_floor_is_read_ahead(gateway, latency, early):
    srv = SimpleNamespace(latency=latency, seen={"busy": True, "quiet": False})

    assert bool(gateway._read_ahead(srv)) is early
    assert gateway._speculate(srv, "busy") is early and gateway._speculate(srv, "new") is early
    assert gateway._speculate(srv, "quiet") is False
