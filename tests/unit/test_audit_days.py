"""The Audit page's date picker in every state it can be in."""

from datetime import date

from lib.auth.audit import day_range

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
