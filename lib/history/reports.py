"""The History page's charts as data for a caller outside the page (the REST API): one chart's
DataFrame for a range and filters, with the span and bucket it was computed over, exactly as the
page computes it (lib/history/queries.py). Reading is checked against `read_history`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

from ..auth.policy import Actor, ActionError, Invalid, Policy
from . import queries
from .store import HistoryStore

CAPABILITY = "read_history"
MAX_RANGE = timedelta(days=400)
# name -> (query, whether it takes the bucket step)
CHARTS: dict[str, tuple[Callable[..., pd.DataFrame], bool]] = {
    "concurrency": (queries.concurrency, True),
    "participant_minutes": (queries.participant_minutes_per_day, False),
    "sessions_per_day": (queries.sessions_per_day, False),
    "session_durations": (queries.session_durations, False),
    "peak_per_room": (queries.peak_per_room, False),
    "top_rooms": (queries.top_rooms, False),
    "jobs_by_state": (queries.jobs_by_state, True),
    "tracks_by_source": (queries.tracks_by_source, True),
}


@dataclass(frozen=True)
class ChartData:
    chart: str
    start: datetime  # where the data starts (a young history raises the range's start)
    end: datetime
    step_seconds: int
    frame: pd.DataFrame


class HistoryReports:
    def __init__(
        self, store: Callable[[], HistoryStore | None], policy: Policy, meeting_rooms: Callable[[int], list[tuple[str, str]]], collect_seconds: float
    ) -> None:
        self._store = store
        self._policy = policy
        self._meeting_rooms = meeting_rooms
        self._collect_seconds = collect_seconds

    def chart(
        self, actor: Actor, chart: str, start: datetime, end: datetime, *, servers: list[str] | None = None,
        rooms: list[str] | None = None, meetings: list[int] | None = None,
    ) -> ChartData:  # fmt: skip
        """One chart's data. `meetings` narrows to those meetings' rooms, `rooms` further."""
        self._policy.require(actor, CAPABILITY, "history.read", chart)
        if chart not in CHARTS:
            raise Invalid(f"Unknown chart {chart!r}: one of {', '.join(CHARTS)}.")
        start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        if end <= start:
            raise Invalid("The range must end after it starts.")
        if end - start > MAX_RANGE:
            raise Invalid(f"A range can span at most {MAX_RANGE.days} days.")
        store = self._store()
        if store is None:
            raise ActionError("History is read from the history store, which only the dashboard's server process opens.")
        meeting_rooms = None
        if meetings:
            meeting_rooms = [pair for m in meetings for pair in self._meeting_rooms(m)]
        charted = queries.chart_span(start, end, queries.history_start(store), self._collect_seconds)
        query, stepped = CHARTS[chart]
        args = (store, charted.start, end, servers or None, queries.room_filter(rooms or None, meeting_rooms))
        frame = query(*args, step=charted.step) if stepped else query(*args)
        return ChartData(chart, charted.start, end, charted.step, frame)
