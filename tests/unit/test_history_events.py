from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from lib.history.events import diff
from lib.livekit.records import Participant, Permission, Room, RoomSnapshot, ServerSnapshot, Track

T0 = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
PERM = Permission(True, True, True, (), False, False, False)


def person(sid: str, joined: datetime, *tracks: Track) -> Participant:
    return Participant("s", "r", sid, sid.lower(), "", "standard", "active", joined, "", bool(tracks), PERM, "", MappingProxyType({}), tracks)


def snap(at: datetime, *people: Participant, room: bool = True) -> ServerSnapshot:
    rooms = (RoomSnapshot(Room("s", "RM_1", "r", 0, 0, T0, 300, 20, 0, "", False), people),) if room else ()
    return ServerSnapshot("s", at, 0.01, rooms)


def mic(muted: bool) -> Track:
    return Track("TR_1", "mic", "audio", "microphone", muted, False, None, None, "audio/opus")


def test_first_snapshot_starts_rooms_and_joins_with_the_servers_times():
    events = diff(None, snap(T0 + timedelta(seconds=30), person("PA_A", T0 + timedelta(seconds=5))))
    assert [(e.kind, e.ts, e.estimated) for e in events] == [
        ("room_started", T0, False),
        ("participant_joined", T0 + timedelta(seconds=5), False),
    ]


def test_leaves_are_dated_by_the_snapshot_that_noticed_them_and_marked_estimated():
    a = person("PA_A", T0)
    events = diff(snap(T0 + timedelta(seconds=5), a), snap(T0 + timedelta(seconds=10)))
    [left] = events
    assert (left.kind, left.ts, left.estimated, left.identity) == ("participant_left", T0 + timedelta(seconds=10), True, "pa_a")


def test_ends_during_an_outage_are_dated_to_its_start():
    a = person("PA_A", T0)
    outage = T0 + timedelta(seconds=7)
    events = diff(snap(T0 + timedelta(seconds=5), a), snap(T0 + timedelta(seconds=60), room=False), ended_by=outage)
    assert {(e.kind, e.ts) for e in events} == {("participant_left", outage), ("room_finished", outage)}


def test_publish_and_mute_changes_are_events_with_stable_ids():
    before = snap(T0 + timedelta(seconds=5), person("PA_A", T0))
    published = snap(T0 + timedelta(seconds=10), person("PA_A", T0, mic(False)))
    muted = snap(T0 + timedelta(seconds=15), person("PA_A", T0, mic(True)))
    assert [e.kind for e in diff(before, published)] == ["track_published"]
    assert [e.kind for e in diff(published, muted)] == ["track_muted"]
    assert diff(before, published)[0].event_id == diff(before, published)[0].event_id == "snap:s:track_published:TR_1"


def test_a_participant_leaving_ends_their_tracks_too_as_livekit_webhooks_do():
    talking = person("PA_A", T0, mic(False))
    left = diff(snap(T0 + timedelta(seconds=5), talking), snap(T0 + timedelta(seconds=10)))
    assert [(e.kind, e.track_sid, e.estimated) for e in left] == [("track_unpublished", "TR_1", True), ("participant_left", "", True)]
    closed = diff(snap(T0 + timedelta(seconds=5), talking), snap(T0 + timedelta(seconds=60), room=False), ended_by=T0 + timedelta(seconds=7))
    assert {(e.kind, e.ts) for e in closed} == {(k, T0 + timedelta(seconds=7)) for k in ("track_unpublished", "participant_left", "room_finished")}


def test_a_failed_snapshot_says_nothing_changed():
    from lib.livekit.errors import Category, GatewayError

    failed = ServerSnapshot("s", T0, 0.0, error=GatewayError(Category.UNREACHABLE, "down"))
    assert diff(snap(T0, person("PA_A", T0)), failed) == []


def test_pruning_drops_old_samples_and_keeps_sessions(tmp_path):
    from lib.history.events import HistoryEvent
    from lib.history.store import HistoryStore, Prune, RoomSample, ServerSample

    store = HistoryStore(tmp_path / "h.duckdb")
    try:
        old, new = T0, T0 + timedelta(days=8)
        store.submit([
            RoomSample("s", old, "RM_1", "r", 2, 1, 0, 1), RoomSample("s", new, "RM_1", "r", 1, 1, 0, 1),
            ServerSample("s", old, True, 1, 2, None), ServerSample("s", new, True, 1, 1, None),
            HistoryEvent("wh:1", "s", old, "webhook", "participant_joined", "RM_1", "r", "PA_A", "a", "standard"),
        ])  # fmt: skip
        store.submit([Prune(T0 + timedelta(days=1))])
        store.flush()
        assert store.query("SELECT count(*) AS n FROM room_samples").n.iloc[0] == 1
        assert store.query("SELECT count(*) AS n FROM server_samples").n.iloc[0] == 1
        assert store.query("SELECT count(*) AS n FROM participant_sessions").n.iloc[0] == 1
    finally:
        store.close()


def test_each_retention_group_prunes_only_its_tables_and_only_ended_sessions(tmp_path):
    from lib.history.events import HistoryEvent
    from lib.history.store import RETENTION, HistoryStore, Prune, RoomSample, ServerSample

    def person(event_id: str, kind: str, when, sid: str) -> HistoryEvent:
        return HistoryEvent(event_id, "s", when, "webhook", kind, "RM_1", "r", sid, sid.lower(), "standard")

    def counts(store: HistoryStore) -> dict[str, int]:
        store.flush()
        tables = ["room_samples", "server_samples", "events", "room_sessions", "participant_sessions"]
        found = {t: int(store.query(f"SELECT count(*) AS n FROM {t}").n.iloc[0]) for t in tables}
        for grain in ("minute", "hour"):
            found[f"{grain} rollups"] = int(store.query("SELECT count(*) AS n FROM room_rollup WHERE grain = ?", [grain]).n.iloc[0])
        return found

    store = HistoryStore(tmp_path / "h.duckdb")
    try:
        old, later = T0, T0 + timedelta(days=8)
        store.submit([
            RoomSample("s", old, "RM_1", "r", 2, 1, 0, 1), ServerSample("s", old, True, 1, 2, None),
            person("wh:1", "participant_joined", old, "PA_OLD"), person("wh:2", "participant_left", old + timedelta(minutes=5), "PA_OLD"),
            person("wh:3", "participant_joined", old, "PA_STAYS"),  # still in the room: kept whatever its age
        ])  # fmt: skip
        before = counts(store)
        assert before["minute rollups"] == before["hour rollups"] == 1
        cut = T0 + timedelta(days=1)
        store.submit([Prune(cut, "minute_rollups")])
        assert counts(store) == before | {"minute rollups": 0}
        store.submit([Prune(cut, "events")])
        assert counts(store) == before | {"minute rollups": 0, "events": 0}
        store.submit([Prune(cut, "sessions")])
        assert counts(store) == before | {"minute rollups": 0, "events": 0, "participant_sessions": 1}, "the open session stays"
        assert list(store.query("SELECT participant_sid FROM participant_sessions").participant_sid) == ["PA_STAYS"]
        store.submit([Prune(later, "hour_rollups"), Prune(later, "samples")])
        assert counts(store) == before | {"minute rollups": 0, "hour rollups": 0, "events": 0, "participant_sessions": 1,
                                          "room_samples": 0, "server_samples": 0}  # fmt: skip
        assert set(RETENTION) == {"samples", "minute_rollups", "hour_rollups", "events", "sessions"}
    finally:
        store.close()
    with pytest.raises(ValueError):
        Prune(T0, "everything")


def test_the_collector_prunes_what_retention_says_and_keeps_what_is_zero():
    from lib.history.collector import Collector

    collector = Collector(None, None, sample_days=7, retention_days={"events": 30, "sessions": 0})  # type: ignore[arg-type]
    now = T0 + timedelta(days=100)
    assert {(p.what, now - p.before) for p in collector.prunes(now)} == {("samples", timedelta(days=7)), ("events", timedelta(days=30))}


def test_at_start_up_sessions_and_tracks_gone_from_the_server_are_closed_estimated(tmp_path):
    from lib.history.collector import close_missing
    from lib.history.store import HistoryStore

    store = HistoryStore(tmp_path / "h.duckdb")
    try:
        talking, quiet = person("PA_A", T0, mic(False)), person("PA_B", T0)
        store.submit(diff(None, snap(T0 + timedelta(seconds=5), talking, quiet)))  # an earlier run saw both
        store.flush()
        later = T0 + timedelta(hours=1)
        still_there = snap(later, quiet)  # PA_A left (and her mic with her) while nothing collected
        events = close_missing(store, still_there, ended_by=T0 + timedelta(seconds=30))
        assert sorted((e.kind, e.participant_sid, e.track_sid, e.estimated) for e in events) == [
            ("participant_left", "PA_A", "", True),
            ("track_unpublished", "PA_A", "TR_1", True),
        ]
        assert close_missing(store, snap(later, talking, quiet), ended_by=later) == [], "nothing is missing"
    finally:
        store.close()
