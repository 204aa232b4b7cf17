"""Rollups: long ranges read the minute and hour rollups, which keep answering after raw
samples are pruned, and an outage stays a break rather than a zero."""

from datetime import datetime, timedelta, timezone

import pytest

from lib.history import queries
from lib.history.store import HistoryStore, Prune, RoomSample, ServerSample

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "h.duckdb")
    items = []
    # Two days, a sample every 5 minutes; two rooms; the server is down from 10:00 to 14:00 on day 1.
    for i in range(2 * 24 * 12):
        ts = T0 + timedelta(minutes=5 * i)
        if timedelta(hours=10) <= ts - T0 < timedelta(hours=14):
            items.append(ServerSample("lk", ts, False, None, None, "unreachable"))
            continue
        a, b = (i % 7), (3 if i % 2 else 1)
        items.append(ServerSample("lk", ts, True, 2, a + b, None))
        items += [RoomSample("lk", ts, "RM_a", "alpha", a, a, 0, a), RoomSample("lk", ts, "RM_b", "beta", b, b, 0, b)]
    s.submit(items)
    s.flush()
    yield s
    s.close()


def test_long_ranges_read_rollups_with_exact_peaks_and_breaks_for_outages(store):
    start, end = T0, T0 + timedelta(days=2)
    assert queries.rollup_grain(queries.bucket_seconds(start, end)) == "minute"
    frame = queries.concurrency(store, start, end, None, None)
    assert frame["participants"].max() == 9  # 6 in alpha and 3 in beta at the same sample
    outage = frame[(frame.ts >= T0 + timedelta(hours=10, minutes=10)) & (frame.ts < T0 + timedelta(hours=13, minutes=50))]
    assert len(outage) > 0 and outage["participants"].isna().all()


def test_rollups_keep_answering_after_raw_samples_are_pruned(store):
    start, end = T0 - timedelta(days=28), T0 + timedelta(days=2)
    before = queries.concurrency(store, start, end, None, None)
    peaks_before = queries.peak_per_room(store, start, end, None, None)
    store.submit([Prune(T0 + timedelta(days=3))])
    store.flush()
    assert store.query("SELECT count(*) AS n FROM room_samples").n.iloc[0] == 0
    after = queries.concurrency(store, start, end, None, None)
    assert queries.rollup_grain(queries.bucket_seconds(start, end)) == "hour"
    assert before.equals(after) and after["participants"].max() == 9
    assert queries.peak_per_room(store, start, end, None, None).equals(peaks_before)
    assert dict(zip(peaks_before.room, peaks_before.peak_participants)) == {"alpha": 6, "beta": 3}


def test_a_room_filter_on_rollups_adds_each_rooms_busiest_moment(store):
    start, end = T0, T0 + timedelta(days=2)
    one = queries.concurrency(store, start, end, None, ["beta"])
    assert one["participants"].max() == 3 and one["rooms"].max() == 1
    both = queries.concurrency(store, start, end, None, ["alpha", "beta"])
    # An upper bound when several rooms are chosen: at most alpha's 6 plus beta's 3 per bucket.
    assert both["participants"].max() <= 9


def test_history_begins_at_the_first_sample_and_the_rollups_keep_that_once_samples_are_pruned(store):
    assert queries.history_start(store) == T0
    store.submit([Prune(T0 + timedelta(days=1))])  # raw samples of the first day go
    store.flush()
    assert queries.history_start(store) == T0, "the minute rollups still reach back"
    store.submit([Prune(T0 + timedelta(days=1), "minute_rollups")])
    store.flush()
    assert queries.history_start(store) == T0, "and the hour rollups after them"


def test_history_starts_at_the_first_sample_not_at_its_rollups_whole_hour(tmp_path):
    s = HistoryStore(tmp_path / "h.duckdb")
    try:
        first = T0 + timedelta(minutes=37, seconds=11)
        s.submit([ServerSample("lk", first, True, 0, 0, None), ServerSample("lk", first + timedelta(seconds=5), True, 0, 0, None)])
        s.flush()
        assert queries.history_start(s) == first
    finally:
        s.close()
