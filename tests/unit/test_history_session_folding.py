"""How events fold into sessions: order and duplicates do not matter, exact ends beat estimated
ones, and an end that arrives before its start still makes a session."""

from datetime import datetime, timedelta, timezone

import duckdb

from lib.history.events import HistoryEvent
from lib.history.store import HistoryStore

T0 = datetime(2026, 5, 1, 9, tzinfo=timezone.utc)


def person(event_id: str, kind: str, seconds: int, source: str = "webhook") -> HistoryEvent:
    return HistoryEvent(event_id, "s", T0 + timedelta(seconds=seconds), source, kind, "RM_1", "r", "PA_1", "ann", "standard")


def session(store: HistoryStore):  # type: ignore[no-untyped-def]
    store.flush()
    frame = store.query("SELECT epoch(joined_at) - epoch(?) AS joined, epoch(left_at) - epoch(?) AS left_s, left_estimated FROM participant_sessions", [T0, T0])
    return tuple(frame.iloc[0])


def test_an_exact_leave_beats_an_estimated_one_in_any_order(tmp_path):
    for order in ("estimate first", "exact first", "same batch"):
        store = HistoryStore(tmp_path / f"{order}.duckdb")
        try:
            join = person("wh:j", "participant_joined", 0)
            estimated = person("snap:l", "participant_left", 65, source="snapshot")
            exact = person("wh:l", "participant_left", 61)
            batches = {"estimate first": [[join, estimated], [exact]], "exact first": [[join, exact], [estimated]], "same batch": [[estimated, join, exact]]}[order]
            for batch in batches:
                store.submit(batch)
            assert session(store) == (0, 61, False), order
        finally:
            store.close()


def test_a_leave_before_its_join_still_makes_one_session_and_duplicates_are_ignored(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    try:
        store.submit([person("wh:l", "participant_left", 30)])
        store.submit([person("wh:j", "participant_joined", 5), person("wh:j", "participant_joined", 5)])
        store.submit([person("snap:j", "participant_joined", 7, source="snapshot")])  # a later, rounder join time
        assert session(store) == (5, 30, False)
        assert store.query("SELECT count(*) AS n FROM participant_sessions").n.iloc[0] == 1
        assert store.query("SELECT count(*) AS n FROM room_sessions").n.iloc[0] == 1
    finally:
        store.close()


def track(event_id: str, kind: str, seconds: int, source: str = "webhook") -> HistoryEvent:
    return HistoryEvent(event_id, "s", T0 + timedelta(seconds=seconds), source, kind, "RM_1", "r", "PA_1", "ann", "standard", "TR_1", "camera")


def test_a_track_reported_by_both_sources_is_one_publication_with_the_best_times(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    try:
        store.submit([track("snap:p", "track_published", 5, source="snapshot"), track("snap:u", "track_unpublished", 70, source="snapshot")])
        store.submit([track("wh:p", "track_published", 2), track("wh:u", "track_unpublished", 66)])
        store.submit([track("wh:p", "track_published", 2)])  # a redelivered webhook
        store.flush()
        frame = store.query(
            "SELECT source, epoch(published_at) - epoch(?) AS on_s, epoch(unpublished_at) - epoch(?) AS off_s, unpublished_estimated FROM tracks", [T0, T0]
        )
        assert [tuple(row) for row in frame.itertuples(index=False)] == [("camera", 2, 66, False)]
    finally:
        store.close()


def test_a_file_written_before_the_tracks_table_gets_it_filled_from_its_events(tmp_path):
    path = tmp_path / "old.duckdb"
    store = HistoryStore(path)
    store.submit([track("wh:p", "track_published", 2), track("snap:u", "track_unpublished", 70, source="snapshot")])
    store.flush()
    store.close()
    with duckdb.connect(str(path)) as conn:  # as the file was before the table existed
        conn.execute("DROP TABLE tracks")
    store = HistoryStore(path)
    try:
        frame = store.query("SELECT track_sid, epoch(unpublished_at) - epoch(?) AS off_s, unpublished_estimated FROM tracks", [T0])
        assert [tuple(row) for row in frame.itertuples(index=False)] == [("TR_1", 70, True)]
    finally:
        store.close()
