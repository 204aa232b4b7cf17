"""How the scheduler backs off: a server that does not answer is tried again after 1, 2, 4 ...
seconds (at most 30), a failing tick after 2, 4 ... intervals (at most a minute), and each outage
is logged once when it starts and once when it ends."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from lib.meetings.lifecycle import OutageLog, next_tick_in
from tests.schedule import Clock


def test_a_failing_server_is_tried_after_1_2_4_seconds_up_to_the_most() -> None:
    clock = Clock(datetime(2026, 12, 1, tzinfo=timezone.utc))
    outages = OutageLog(clock, backoff_max=3.0)
    waits = []
    for _ in range(4):
        outages.failed("LiveKit server far", "far: unreachable")
        start = clock.now
        while not outages.ready("LiveKit server far"):
            clock.advance(0.5)
        waits.append((clock.now - start).total_seconds())
    assert waits == [1.0, 2.0, 3.0, 3.0]
    outages.ok("LiveKit server far")
    assert outages.ready("LiveKit server far") and outages.failures("LiveKit server far") == 0
    assert outages.ready("LiveKit server near"), "another server is not held back"


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(datetime(2026, 12, 1, tzinfo=timezone.utc))
    outages = OutageLog(clock, backoff_max=30.0)
    caplog.set_level(logging.INFO, logger="lib.meetings.lifecycle")
    for _ in range(5):
        outages.failed("database", "OperationalError: connection refused")
        clock.advance(3)
    outages.ok("database")
    outages.ok("database")  # nothing to say when nothing was failing
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "database: OperationalError: connection refused; retrying with back-off"),
        ("INFO", "database: recovered after 15 s"),
    ]
    assert outages.error("database") == ""


def test_ticks_keep_their_pace_and_failed_ones_back_off() -> None:
    assert next_tick_in(5.0, 0, 1.5) == 3.5
    assert next_tick_in(5.0, 0, 7.0) == 0.0, "a slow tick is followed at once"
    assert [next_tick_in(5.0, n, 0.1) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 60.0]
    assert next_tick_in(0.5, 1, 0.1) == 1.0
    assert timedelta(seconds=next_tick_in(5.0, 30, 0)) == timedelta(minutes=1)
