"""What a date picker's value means, in whichever state a person leaves it."""

from __future__ import annotations

from datetime import date


def day_range(picked: object, today: date) -> tuple[date | None, date | None]:
    """The first and last day of a date picker's value, whatever state it is in: nothing picked
    (no bound), one day, a range, or a range half picked (its first day up to today)."""
    if isinstance(picked, date):
        return picked, picked
    days = [d for d in picked if isinstance(d, date)] if isinstance(picked, (tuple, list)) else []
    if not days:
        return None, None
    if len(days) == 1:
        return days[0], max(days[0], today)
    return min(days[0], days[1]), max(days[0], days[1])
