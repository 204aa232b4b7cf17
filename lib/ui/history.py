"""Pieces the history pages share: the history store (or a clear word that it is not running
here), one time-range picker, names made safe for a chart, and the layout of time axes and bars:
explicit ranges, bar widths and tick formats, because plotly's own guesses go wrong on little
data (one bar a millisecond wide, ticks like 23:59:59.9996)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ..history import queries
from ..history.store import HistoryStore
from ..meetings.labels import PICKER_LIMIT, MeetingChoice
from ..services import Services
from .dates import day_range
from .format import chart_label, clip, visible

CUSTOM = "custom"


def store_or_stop(svc: Services) -> HistoryStore:
    """The history store; without one (a process that is not the dashboard's server) the page
    says so and stops."""
    if svc.history is None:
        st.info("History is collected by the dashboard's server process; it is not running here.")
        st.stop()
    return svc.history


def _utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def range_picker(key: str, default: str = "24 h") -> tuple[datetime, datetime] | None:
    """(start, end) of the chosen range: a preset ending now, or whole UTC days up to now (a
    range half picked runs from its first day to now, as on the Audit page); None while no day
    is picked."""
    choice = st.segmented_control("Range", [*queries.PRESETS, CUSTOM], default=default, key=f"{key}_range")
    if choice != CUSTOM:
        return queries.preset_range(choice or default)
    now = datetime.now(timezone.utc)
    picked = st.date_input("Days (UTC)", (now.date() - timedelta(days=6), now.date()), max_value=now.date(), key=f"{key}_days")
    return custom_range(picked, now)


def custom_range(picked: object, now: datetime) -> tuple[datetime, datetime] | None:
    """The span of picked UTC days, never reaching past `now` (today's charts end now, not at
    midnight); a half-picked range runs to now; None when no day is picked."""
    first, last = day_range(picked, now.date())
    if first is None or last is None:
        st.caption("Pick the first and the last day.")
        return None
    if isinstance(picked, tuple) and len(picked) == 1:
        st.caption(f"Only the first day is picked: from {first:%Y-%m-%d} to now.")
    return _utc(first), min(_utc(last) + timedelta(days=1), now)


def meeting_labels(choices: list[MeetingChoice], known: Mapping[int, str]) -> dict[int, str]:
    """`known` plus a label for each choice it lacks: the title (hidden characters shown) and
    first start, with the meeting's number only where the label would read like another's."""
    labels = dict(known)
    taken = set(labels.values())
    for c in choices:
        if c.meeting_id in labels:
            continue
        label = f"{clip(visible(c.title), 80)} · {c.first_start:%Y-%m-%d %H:%M} UTC" + (" · series" if c.series else "")
        if label in taken:
            label += f" · #{c.meeting_id}"
        labels[c.meeting_id] = label
        taken.add(label)
    return labels


def meeting_picker(svc: Services, span: tuple[datetime, datetime] | None, key: str) -> list[tuple[str, str]] | None:
    """The rooms, as (server, room), of the meetings picked among those with an occurrence in
    `span`; None while none is picked. A multiselect keeps a pick by the label the browser
    showed and drops one whose label is not offered: each meeting keeps the label it was first
    offered under for the session, and what is picked stays offered, so neither a title edited
    meanwhile nor the range moving on drops a pick."""
    known: dict[int, str] = st.session_state.setdefault(f"{key}_labels", {})
    offered = svc.meetings.meetings_for_filter(*span) if span is not None else []
    known.update(meeting_labels(offered, known))
    picked = [m for m in st.session_state.get(key) or [] if m in known]
    options = list(dict.fromkeys([c.meeting_id for c in offered] + picked))
    chosen = st.multiselect("Meetings", options, format_func=lambda m: known.get(m, f"meeting {m}"), key=key, placeholder="All rooms")
    if len(offered) >= PICKER_LIMIT:
        st.caption(f"The latest {PICKER_LIMIT:,} meetings of the range are offered: narrow the range to find older ones.")
    return [pair for m in chosen for pair in svc.meetings.meeting_rooms(m)] if chosen else None


def labelled(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of `frame` whose name columns a plotly chart draws as the text they are
    (format.chart_label); `frame` itself, which the downloads hold, keeps the names as stored."""
    return frame.assign(**{c: [chart_label(v) if isinstance(v, str) else v for v in frame[c]] for c in columns})


DAY_MS = 86_400_000
# Tick labels by how far apart plotly puts the ticks (ms): seconds only while they are under a
# minute apart, which happens only when the span is minutes; the day under hours, as soon as
# the ticks are hours apart and the span may cross a midnight.
TIME_TICKS = (
    {"dtickrange": [None, 60_000], "value": "%H:%M:%S"},
    {"dtickrange": [60_000, 3_600_000], "value": "%H:%M"},
    {"dtickrange": [3_600_000, DAY_MS], "value": "%H:%M<br>%b %-d"},
    {"dtickrange": [DAY_MS, None], "value": "%b %-d"},
)
MAX_DAY_LABELS = 12
FEW_BUCKETS = 60
DAY_BAR = 0.8


def _naive_utc(ts: datetime) -> datetime:
    # plotly.js has no time zones: everything on a chart is UTC written without an offset.
    return ts.astimezone(timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def time_axis(figure: go.Figure, start: datetime, end: datetime) -> go.Figure:
    """The x axis spans exactly [start, end], with ticks labelled to suit the span."""
    return figure.update_xaxes(
        type="date", range=[_naive_utc(start), _naive_utc(end)], tickformatstops=list(TIME_TICKS),
        hoverformat="%Y-%m-%d %H:%M:%S",
    )  # fmt: skip


def marked_when_few(figure: go.Figure, start: datetime, end: datetime, step: int) -> go.Figure:
    """Lines that also mark each bucket while [start, end) holds at most FEW_BUCKETS: in a new
    history a lone bucket between breaks (or the only one yet) is drawn as a dot, not nothing."""
    if (end - start).total_seconds() / step <= FEW_BUCKETS:
        figure.update_traces(selector={"type": "scatter"}, mode="lines+markers")
    return figure


def bucket_bars(figure: go.Figure, step: int) -> go.Figure:
    """Each bar covers its bucket, [ts, ts + step), whatever the number of bars."""
    return figure.update_traces(selector={"type": "bar"}, width=step * 1000, offset=0)


def day_axis(figure: go.Figure, start: datetime, end: datetime) -> go.Figure:
    """For bars per UTC day: each bar stands in the middle of its day, DAY_BAR of it wide (so
    days read as separate bars, and one day alone as a bar rather than a filled chart); the axis
    shows the whole days that [start, end) touches, one label per day (or every few days) under
    the middle of its day."""
    first = _naive_utc(start).replace(hour=0, minute=0, second=0, microsecond=0)
    last_moment = _naive_utc(end) - timedelta(microseconds=1)
    after = last_moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    days = max(1, (after - first).days)
    figure.update_traces(selector={"type": "bar"}, width=round(DAY_BAR * DAY_MS), offset=round((1 - DAY_BAR) / 2 * DAY_MS))
    return figure.update_xaxes(
        type="date", range=[first, after], tick0=first, dtick=math.ceil(days / MAX_DAY_LABELS) * DAY_MS,
        tickformat="%b %-d", ticklabelmode="period", hoverformat="%Y-%m-%d",
    )  # fmt: skip


def whole_counts(figure: go.Figure) -> go.Figure:
    """A y axis of counts ticks at whole numbers: plotly's own choice for a top of 1 or 2 is
    steps of 0.5 (or 0.2), which reads as half a room. Stacked bars count as their sum."""
    tops: dict[object, float] = {}
    for trace in figure.data:
        ys = [float(y) for y in (trace.y if trace.y is not None else ()) if y is not None and y == y]
        if trace.type == "bar":
            for x, y in zip(trace.x if trace.x is not None else (), ys):
                tops[x] = tops.get(x, 0.0) + y
        else:
            tops.update({("line", i, trace.name): y for i, y in enumerate(ys)})
    top = max(tops.values(), default=0.0)
    step = next(d for d in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000) if top / d <= 6) if top <= 60_000 else None
    return figure.update_yaxes(rangemode="tozero", tickformat=",d", **({"dtick": step} if step else {}))
