"""The 90-day history generator and the query benchmark, run small: what they write is what the
store reconstructs, and every query the benchmark times runs."""

from datetime import datetime, timedelta, timezone

from bench.history_data import generate
from bench.history_queries import CHARTS, ROUND_JOINS, measure
from lib.history.store import HistoryStore

END = datetime(2026, 3, 4, 18, 0, tzinfo=timezone.utc)  # a Wednesday evening


def test_generated_history_is_what_the_store_reconstructs_and_every_query_runs(tmp_path):
    path = tmp_path / "h.duckdb"
    made = generate(path, END, days=9, rooms=6, seed=3, progress=False)
    assert made["sessions"] > 100 and made["peak_concurrent"] > 5

    store = HistoryStore(path)
    try:
        count = store.query(
            "SELECT count(*) AS sessions, count(*) FILTER (WHERE left_at IS NULL) AS still_open, "
            "count(*) FILTER (WHERE left_estimated) AS estimated FROM participant_sessions"
        ).iloc[0]
        assert count["sessions"] == made["sessions"]
        assert count["estimated"] == 0, "every leave was also reported by a webhook, which wins"
        oldest = store.query("SELECT min(ts) AS ts FROM room_samples")["ts"].iloc[0]
        assert END - oldest.to_pydatetime() <= timedelta(days=7), "raw samples past retention are pruned"
        minutes = store.query("SELECT count(DISTINCT bucket) AS n FROM server_rollup WHERE grain = 'minute'")["n"].iloc[0]
        assert minutes > 8 * 24 * 60, "the rollups cover the days the raw samples no longer do"
        tracks = store.query("SELECT count(*) AS n FROM tracks")["n"].iloc[0]
        assert tracks > made["sessions"], "most people publish a microphone and many a camera"
    finally:
        store.close()

    measured = measure(path, runs=1)
    charted = [r for r in measured["results"] if r["query"] in CHARTS]
    assert len(charted) == len(CHARTS) * 5 * 2  # every chart, five ranges, with and without a room filter
    assert measured["counts"]["participant_sessions"] == made["sessions"] + ROUND_JOINS
