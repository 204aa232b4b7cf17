"""Pieces the history pages share: the history store (or a clear word that it is not running
here), one time-range picker, and names made safe for a chart."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pandas as pd
import streamlit as st

from ..history import queries
from ..history.store import HistoryStore
from ..services import Services
from .format import chart_label

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
    """(start, end) of the chosen range: a preset ending now, or whole UTC days; None while a
    custom range is half picked."""
    choice = st.segmented_control("Range", [*queries.PRESETS, CUSTOM], default=default, key=f"{key}_range")
    if choice != CUSTOM:
        return queries.preset_range(choice or default)
    today = datetime.now(timezone.utc).date()
    picked = st.date_input("Days (UTC)", (today - timedelta(days=6), today), max_value=today, key=f"{key}_days")
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.caption("Pick the first and the last day.")
        return None
    first, last = picked
    return _utc(first), _utc(last) + timedelta(days=1)


def labelled(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of `frame` whose name columns a plotly chart draws as the text they are
    (format.chart_label); `frame` itself, which the downloads hold, keeps the names as stored."""
    return frame.assign(**{c: [chart_label(v) if isinstance(v, str) else v for v in frame[c]] for c in columns})
