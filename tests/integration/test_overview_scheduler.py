"""The Overview says whether a scheduler is running, from the heartbeats in the SQL store: a
warning with none (or only a stale or stopped one), the last tick's age and name with a fresh one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from lib.meetings.lifecycle import NO_SCHEDULER, Lifecycle
from lib.models import utcnow
from lib.services import Services
from tests.integration.test_pages import dashboard, run_page  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def scheduler_texts(svc: Services) -> tuple[list[str], list[str]]:
    at = run_page("overview")
    return [w.value for w in at.warning], [c.value for c in at.caption if c.value.startswith("Scheduler:")]


def test_the_overview_warns_when_no_scheduler_beats_and_shows_the_last_tick_when_one_does(dashboard: Services) -> None:
    warnings, captions = scheduler_texts(dashboard)
    assert NO_SCHEDULER in warnings and captions == []

    now = utcnow()
    beats = Lifecycle(dashboard.sessions, dashboard.gateway, dashboard.audit, clock=lambda: now - timedelta(seconds=3))
    beats.beat("sched-host:4242", now - timedelta(minutes=5), 60, "")
    warnings, captions = scheduler_texts(dashboard)
    assert NO_SCHEDULER not in warnings
    # 3 s old when written; the page runs a moment later.
    assert len(captions) == 1 and re.fullmatch(r"Scheduler: last tick [34]s ago \(sched\\-host\\:4242\)", captions[0]), captions

    beats.beat("sched-host:4242", now - timedelta(minutes=5), 61, "", stopped=True)
    warnings, captions = scheduler_texts(dashboard)
    assert NO_SCHEDULER in warnings and captions == [], "a scheduler that stopped runs no more"


def test_a_heartbeat_older_than_three_intervals_is_no_running_scheduler(dashboard: Services) -> None:
    old = utcnow() - timedelta(seconds=3 * dashboard.settings.scheduler_seconds + 5)
    Lifecycle(dashboard.sessions, dashboard.gateway, dashboard.audit, clock=lambda: old).beat("gone:1", old, 3, "")
    warnings, _ = scheduler_texts(dashboard)
    assert NO_SCHEDULER in warnings
