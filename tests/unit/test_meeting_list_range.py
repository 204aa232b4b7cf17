"""The Meetings list's day filter: the viewer's days, as the table's times are; a half-picked
range runs from its day on (the list is mostly of days ahead)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from lib.ui.meetings import start_range


def test_days_are_the_viewers_not_utc() -> None:
    since, until, note = start_range((date(2027, 4, 3), date(2027, 4, 3)), "America/New_York")
    # Sat 2027-04-03 20:30 EDT is Sunday 00:30 UTC: inside the picked Saturday.
    assert since <= datetime(2027, 4, 4, 0, 30, tzinfo=timezone.utc) < until
    assert until == datetime(2027, 4, 4, 4, 0, tzinfo=timezone.utc) and note == ""


def test_a_half_picked_range_runs_from_its_day_on() -> None:
    since, until, note = start_range((date(2026, 12, 10),), "UTC")
    assert since == datetime(2026, 12, 10, tzinfo=timezone.utc) and until is None
    assert "from 2026-12-10 on" in note


def test_nothing_picked_is_every_day() -> None:
    assert start_range((), "UTC")[:2] == (None, None)
