"""How events fold into sessions: order and duplicates do not matter, exact ends beat estimated
ones, and an end that arrives before its start still makes a session."""

from datetime import datetime, timedelta, timezone

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
