"""What the History charts span and how their axes and bars are laid out, from plain data: a new
history is charted from where it begins, in buckets no finer than the collector samples, with
bars one bucket wide and ticks that suit the span."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import plotly.express as px
import pytest

from lib.history import queries
from lib.ui import history as history_ui

END = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def test_a_history_older_than_the_range_is_charted_over_the_whole_range() -> None:
    span = queries.chart_span(END - DAY, END, END - 3 * DAY, collect_seconds=5)
    assert (span.start, span.end, span.raised) == (END - DAY, END, False)
    assert span.step == queries.bucket_seconds(END - DAY, END) == 180


def test_no_history_at_all_keeps_the_range() -> None:
    span = queries.chart_span(END - DAY, END, None, collect_seconds=5)
    assert (span.start, span.raised, span.step) == (END - DAY, False, 180)


def test_a_new_history_is_charted_from_its_first_data_on_a_whole_bucket() -> None:
    first = END - timedelta(minutes=4, seconds=7, milliseconds=300)  # 11:55:52.700
    span = queries.chart_span(END - DAY, END, first, collect_seconds=5)
    assert span.raised and span.end == END and span.began == first
    assert span.step == 10, "never under two collector intervals: every bucket holds a sample"
    assert span.start == datetime(2026, 6, 1, 11, 55, 50, tzinfo=timezone.utc)


def test_a_history_begun_seconds_ago_is_charted_over_a_minute() -> None:
    span = queries.chart_span(END - DAY, END, END - timedelta(seconds=3), collect_seconds=5)
    assert span.raised and span.start == END - queries.MIN_SPAN and span.step == 10
    assert span.began == END - timedelta(seconds=3), "what the page says the history starts at"


def test_the_bucket_follows_the_collector_interval_and_rounds_to_a_whole_unit() -> None:
    assert queries.chart_step(END - timedelta(hours=1), END, collect_seconds=5) == 10  # 7.2 s would split samples
    assert queries.chart_step(END - timedelta(hours=1), END, collect_seconds=2) == 8
    assert queries.chart_step(END - timedelta(hours=1), END, collect_seconds=45) == 120  # 90 s, as whole minutes
    assert queries.chart_step(END - 30 * DAY, END, collect_seconds=5) == 7200


def test_a_time_axis_covers_the_span_with_ticks_that_suit_its_length() -> None:
    figure = history_ui.time_axis(px.line(x=[END - timedelta(minutes=3), END], y=[1, 2]), END - timedelta(minutes=4), END)
    axis = figure.layout.xaxis
    assert list(axis.range) == [datetime(2026, 6, 1, 11, 56), datetime(2026, 6, 1, 12, 0)]
    stops = {tuple(s.dtickrange): s.value for s in axis.tickformatstops}
    assert stops[(None, 60_000)] == "%H:%M:%S", "seconds only while ticks are under a minute apart"
    assert stops[(60_000, 3_600_000)] == "%H:%M"
    assert stops[(3_600_000, 86_400_000)] == "%H:%M<br>%b %-d", "hours apart: which day, too"
    assert stops[(86_400_000, None)] == "%b %-d"
    assert axis.hoverformat == "%Y-%m-%d %H:%M:%S"


def test_bucket_bars_are_one_bucket_wide_from_the_buckets_start() -> None:
    figure = history_ui.bucket_bars(px.bar(x=[END], y=[3]), 180)
    [bar] = figure.data
    assert (bar.width, bar.offset) == (180_000, 0)


def test_day_bars_stand_in_the_middle_of_their_day_and_the_axis_shows_whole_days() -> None:
    start = datetime(2026, 6, 1, 11, 55, 50, tzinfo=timezone.utc)
    figure = history_ui.day_axis(px.bar(x=[start.date()], y=[12.5]), start, END)
    [bar] = figure.data
    assert (bar.width, bar.offset) == (69_120_000, 8_640_000)
    axis = figure.layout.xaxis
    assert list(axis.range) == [datetime(2026, 6, 1), datetime(2026, 6, 2)]
    assert (axis.tickformat, axis.dtick, axis.ticklabelmode) == ("%b %-d", 86_400_000, "period")


@pytest.mark.parametrize(("days", "every"), [(1, 1), (7, 1), (10, 1), (30, 3), (90, 8)])
def test_day_ticks_thin_out_over_many_days(days: int, every: int) -> None:
    figure = history_ui.day_axis(px.bar(x=[END.date()], y=[1]), END - days * DAY + timedelta(hours=1), END)
    assert figure.layout.xaxis.dtick == every * 86_400_000


def test_lines_mark_each_bucket_only_while_there_are_few() -> None:
    def modes(start: datetime) -> set[str]:
        figure = history_ui.marked_when_few(px.line(x=[start, END], y=[1, 2]), start, END, 10)
        return {trace.mode for trace in figure.data}

    assert modes(END - timedelta(minutes=10)) == {"lines+markers"}  # 60 buckets
    assert modes(END - timedelta(minutes=11)) == {"lines"}


def test_count_axes_tick_at_whole_numbers() -> None:
    import plotly.express as px
    import plotly.graph_objects as go

    from lib.ui.history import whole_counts

    few = whole_counts(px.bar(x=["a", "b"], y=[1, 2]))
    assert few.layout.yaxis.dtick == 1 and few.layout.yaxis.tickformat == ",d"
    stacked = whole_counts(go.Figure([go.Bar(x=["a"], y=[20]), go.Bar(x=["a"], y=[15])]))
    assert stacked.layout.yaxis.dtick == 10  # 35 at the top of the stack: ticks every 10
    line = whole_counts(px.line(x=[1, 2, 3], y=[0, 1, 1]))
    assert line.layout.yaxis.dtick == 1
