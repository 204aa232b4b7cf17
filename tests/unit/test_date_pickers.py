"""The Audit and History pages' date pickers in every state they can be in."""

from datetime import date, datetime, timezone

from lib.history import queries
from lib.ui.dates import day_range
from lib.ui.history import custom_range

TODAY = date(2026, 12, 1)


def test_a_whole_range_is_its_first_and_last_day_in_order() -> None:
    assert day_range((date(2026, 11, 20), date(2026, 11, 25)), TODAY) == (date(2026, 11, 20), date(2026, 11, 25))
    assert day_range((date(2026, 11, 25), date(2026, 11, 20)), TODAY) == (date(2026, 11, 20), date(2026, 11, 25))


def test_a_half_picked_range_runs_to_today() -> None:
    assert day_range((date(2026, 11, 20),), TODAY) == (date(2026, 11, 20), TODAY)


def test_nothing_picked_is_no_bound_and_one_day_is_that_day() -> None:
    assert day_range((), TODAY) == (None, None)
    assert day_range(None, TODAY) == (None, None)
    assert day_range(date(2026, 11, 3), TODAY) == (date(2026, 11, 3), date(2026, 11, 3))


def test_a_custom_history_range_ends_now_not_at_midnight() -> None:
    now = datetime(2026, 12, 1, 9, 10, tzinfo=timezone.utc)
    assert custom_range((date(2026, 11, 28), date(2026, 12, 1)), now) == (datetime(2026, 11, 28, tzinfo=timezone.utc), now)
    assert custom_range((date(2026, 11, 28),), now) == (datetime(2026, 11, 28, tzinfo=timezone.utc), now)
    assert custom_range((date(2026, 11, 1), date(2026, 11, 20)), now) == (
        datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 21, tzinfo=timezone.utc))
    assert custom_range((), now) is None


def test_a_range_wholly_before_the_history_is_charted_as_it_is() -> None:
    start, end = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 21, tzinfo=timezone.utc)
    span = queries.chart_span(start, end, datetime(2026, 12, 1, 9, tzinfo=timezone.utc), collect_seconds=5)
    assert (span.start, span.end, span.raised) == (start, end, False)
