"""The History page and its queries over a real history store filled through the store's own
API: two servers, two rooms, an outage recorded as a gap, sessions built from join and leave
events. Numbers are checked against values worked out by hand."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import services
from lib.auth.guard import TOKEN_STATE_KEY
from lib.config import load_settings
from lib.history import queries
from lib.history.events import (
    JOB_STATE,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    ROOM_STARTED,
    SNAPSHOT,
    TRACK_PUBLISHED,
    WEBHOOK,
    HistoryEvent,
)
from lib.history.store import GapEnd, GapStart, HistoryStore, RoomSample, ServerSample
from lib.livekit.devserver import REPO_ROOT
from lib.services import Services
from lib.auth.policy import Actor

PAGE = REPO_ROOT / "pages" / "history.py"
PASSWORD = "history-page-password"
A, B = "lk-a", "lk-b"
# Three hours ago on a whole minute: inside the page's default 24 h range.
BASE = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=3)
NOW = BASE + timedelta(minutes=70)  # "now" for the unit checks: carol is still in the room
RANGE = (BASE - timedelta(hours=1), BASE + timedelta(hours=2))
MIDNIGHT = datetime(2026, 1, 1, 23, 30, tzinfo=timezone.utc)  # a session across a UTC midnight
_ids = itertools.count()


def at(minutes: float, base: datetime = BASE) -> datetime:
    return base + timedelta(minutes=minutes)


def event(kind: str, minutes: float, room: str, server: str = A, source: str = WEBHOOK, base: datetime = BASE, **fields: str) -> HistoryEvent:
    return HistoryEvent(f"ev-{next(_ids)}", server, at(minutes, base), source, kind, f"RM_{room}", room, **fields)


def person(kind: str, minutes: float, room: str, identity: str, source: str = WEBHOOK, base: datetime = BASE) -> HistoryEvent:
    return event(kind, minutes, room, source=source, base=base, participant_sid=f"PA_{identity}", identity=identity, participant_kind="standard")


def recorded() -> list[object]:
    """An hour of lk-a with an outage from minute 20 to 30, and an idle lk-b beside it.
    standup: alice 0-50, bob 0-30 (end noticed by a snapshot), carol from 10 and still there.
    review: dave 40-60. Participant-minutes up to NOW (minute 70): 50 + 30 + 60 + 20 = 160."""
    items: list[object] = [GapStart(A, at(20), "unreachable"), GapEnd(A, at(30))]
    for m in range(60):
        down = 20 <= m < 30
        in_standup = 2 if m < 10 else 3 if m < 30 else 2 if m >= 50 else 3
        in_review = 1 if m >= 40 else 0
        rooms = [("standup", in_standup)] + ([("review", in_review)] if in_review else [])
        if down:
            items.append(ServerSample(A, at(m), False, None, None, "unreachable"))
        else:
            people = sum(n for _, n in rooms)
            items.append(ServerSample(A, at(m), True, len(rooms), people, None))
            items += [RoomSample(A, at(m), f"RM_{r}", r, n, n, 0, n) for r, n in rooms]
        items.append(ServerSample(B, at(m), True, 0, 0, None))
    items += [
        event(ROOM_STARTED, 0, "standup"),
        event(ROOM_STARTED, 40, "review"),
        person(PARTICIPANT_JOINED, 0, "standup", "alice"),
        person(PARTICIPANT_JOINED, 0, "standup", "bob"),
        person(PARTICIPANT_JOINED, 10, "standup", "carol"),
        person(PARTICIPANT_LEFT, 30, "standup", "bob", source=SNAPSHOT),
        person(PARTICIPANT_JOINED, 40, "review", "dave"),
        person(PARTICIPANT_LEFT, 50, "standup", "alice"),
        person(PARTICIPANT_LEFT, 60, "review", "dave"),
        event(JOB_STATE, 40, "review", job_id="AJ_1", job_status="JS_PENDING"),
        event(JOB_STATE, 41, "review", job_id="AJ_1", job_status="JS_RUNNING"),
        event(TRACK_PUBLISHED, 1, "standup", participant_sid="PA_alice", identity="alice", track_sid="TR_1", track_source="MICROPHONE"),
        event(TRACK_PUBLISHED, 1, "standup", participant_sid="PA_alice", identity="alice", track_sid="TR_2", track_source="CAMERA"),
        event(TRACK_PUBLISHED, 41, "review", participant_sid="PA_dave", identity="dave", track_sid="TR_3", track_source="MICROPHONE"),
        # The same publish and job state again, as the collector infers them between snapshots.
        event(TRACK_PUBLISHED, 1.1, "standup", source=SNAPSHOT, participant_sid="PA_alice", identity="alice", track_sid="TR_1", track_source="MICROPHONE"),
        event(JOB_STATE, 41.1, "review", source=SNAPSHOT, job_id="AJ_1", job_status="JS_RUNNING"),
        # 30 minutes on 1 January and 45 on 2 January.
        person(PARTICIPANT_JOINED, 0, "nightly", "erin", base=MIDNIGHT),
        person(PARTICIPANT_LEFT, 75, "nightly", "erin", base=MIDNIGHT),
    ]
    return items


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoryStore]:
    history = HistoryStore(tmp_path_factory.mktemp("history") / "history.duckdb")
    history.submit(recorded())
    history.flush()
    assert history.last_error is None
    try:
        yield history
    finally:
        history.close()


@pytest.fixture
def dashboard(store: HistoryStore, tmp_path: Path) -> Iterator[Services]:
    env = {"DASHBOARD_DATA_DIR": str(tmp_path / "data"), "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-history-page"}
    services.stop()
    svc = services.start(load_settings(env, tmp_path / "none.toml"))
    svc.history = store
    try:
        yield svc
    finally:
        svc.history = None  # the module's store is closed by its own fixture
        services.stop()


def cookie_for(svc: Services, role: str) -> str:
    user = svc.users.create(Actor.system("test"), f"{role}-history", PASSWORD, role)
    return svc.logins.create(user.id)[0]


def run_page(cookie: str) -> AppTest:
    app = AppTest.from_file(str(PAGE), default_timeout=30)
    app.session_state[TOKEN_STATE_KEY] = cookie
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


# ----- queries ------------------------------------------------------------------------------


def test_bucket_is_range_over_500_rounded_up_to_a_whole_unit() -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert queries.bucket_seconds(start, start + timedelta(hours=1)) == 8  # 7.2 s
    assert queries.bucket_seconds(start, start + timedelta(hours=24)) == 180  # 172.8 s
    assert queries.bucket_seconds(start, start + timedelta(days=7)) == 21 * 60  # 20.16 min
    assert queries.bucket_seconds(start, start + timedelta(days=30)) == 2 * 3600  # 1.44 h
    assert queries.bucket_seconds(start, start + timedelta(seconds=10)) == 1


def test_filters_list_the_servers_and_rooms_seen(store: HistoryStore) -> None:
    assert queries.servers(store) == [A, B]
    assert queries.rooms(store, None) == ["nightly", "review", "standup"]
    assert queries.rooms(store, [B]) == []


def test_concurrency_shows_the_outage_as_missing_and_an_idle_server_as_zero(store: HistoryStore) -> None:
    frame = queries.concurrency(store, BASE, at(60), None, None)
    assert len(frame) == 2 * 450  # 3600 s in 8 s buckets, per server
    a = frame[frame["server"] == A].set_index("ts")

    def bucket(m: int) -> pd.Series:
        return a.loc[pd.Timestamp(BASE + timedelta(seconds=(m * 60 // 8) * 8))]

    assert (bucket(5)["rooms"], bucket(5)["participants"]) == (1, 2)
    assert (bucket(45)["rooms"], bucket(45)["participants"]) == (2, 4)
    assert pd.isna(bucket(25)["participants"]) and pd.isna(bucket(25)["rooms"])
    assert a["participants"].notna().sum() == 50  # 60 one-minute samples less the 10 in the gap
    b = frame[frame["server"] == B]
    assert b["participants"].notna().sum() == 60 and b["participants"].max() == 0


def test_concurrency_filtered_to_a_room_counts_only_that_room(store: HistoryStore) -> None:
    frame = queries.concurrency(store, BASE, at(60), [A], ["review"])
    assert set(frame["server"]) == {A}
    values = frame.dropna(subset=["participants"])
    assert values["participants"].max() == 1 and len(values) == 50
    assert values["participants"].sum() == 20  # minutes 40 to 59


def test_participant_minutes_sum_overlaps_and_count_open_sessions_up_to_now(store: HistoryStore) -> None:
    frame = queries.participant_minutes_per_day(store, *RANGE, None, None, now=NOW)
    assert frame["participant_minutes"].sum() == pytest.approx(50 + 30 + 60 + 20)
    clipped = queries.participant_minutes_per_day(store, at(20), at(45), None, ["standup"], now=NOW)
    assert clipped["participant_minutes"].sum() == pytest.approx(25 + 10 + 25)  # alice, bob, carol


def test_participant_minutes_split_at_utc_midnight(store: HistoryStore) -> None:
    frame = queries.participant_minutes_per_day(store, MIDNIGHT - timedelta(days=1), MIDNIGHT + timedelta(days=2), None, None)
    assert [str(d) for d in frame["day"]] == ["2026-01-01", "2026-01-02"]
    assert list(frame["participant_minutes"]) == pytest.approx([30, 45])


def test_top_rooms_rank_by_participant_minutes(store: HistoryStore) -> None:
    frame = queries.top_rooms(store, *RANGE, None, None, now=NOW)
    assert list(frame["room"]) == ["standup", "review"]
    assert list(frame["participant_minutes"]) == pytest.approx([140, 20])


def test_sessions_per_day_count_room_sessions_started(store: HistoryStore) -> None:
    frame = queries.sessions_per_day(store, *RANGE, None, None)
    assert frame["sessions"].sum() == 2
    assert queries.sessions_per_day(store, *RANGE, [B], None).empty


def test_session_durations_count_ended_sessions_per_bin_with_the_estimated_flag(store: HistoryStore) -> None:
    frame = queries.session_durations(store, *RANGE, None, None)
    # carol has not left; alice 50 min, bob 30 (noticed by a snapshot), dave 20.
    assert list(zip(frame["minutes"], frame["estimated"], frame["sessions"])) == [
        ("20-30 min", False, 1),
        ("30-45 min", True, 1),
        ("45-60 min", False, 1),
    ]
    assert list(frame["from_min"]) == [20, 30, 45] and list(frame["to_min"]) == [30, 45, 60]
    assert queries.session_durations(store, *RANGE, None, ["review"])["sessions"].sum() == 1


def test_peak_per_room_is_the_largest_sample(store: HistoryStore) -> None:
    frame = queries.peak_per_room(store, *RANGE, None, None)
    assert dict(zip(frame["room"], frame["peak_participants"])) == {"standup": 3, "review": 1}


def test_jobs_and_tracks_are_counted_by_state_and_source_once_per_change(store: HistoryStore) -> None:
    jobs = queries.jobs_by_state(store, *RANGE, None, None)
    assert jobs.groupby("job_status")["events"].sum().to_dict() == {"JS_PENDING": 1, "JS_RUNNING": 1}
    tracks = queries.tracks_by_source(store, *RANGE, None, None)
    assert tracks.groupby("track_source")["events"].sum().to_dict() == {"CAMERA": 1, "MICROPHONE": 2}
    assert queries.tracks_by_source(store, *RANGE, None, ["review"])["events"].sum() == 1


def test_filter_values_are_parameters_not_sql(store: HistoryStore) -> None:
    hostile = ["x') OR TRUE --", "standup"]
    frame = queries.peak_per_room(store, *RANGE, None, hostile)
    assert list(frame["room"]) == ["standup"]


def test_a_filter_of_server_and_room_pairs_keeps_each_room_to_its_own_server(store: HistoryStore) -> None:
    assert list(queries.peak_per_room(store, *RANGE, None, [(A, "standup")])["room"]) == ["standup"]
    assert queries.peak_per_room(store, *RANGE, None, [(B, "standup")]).empty, "standup is on lk-a only"
    assert queries.peak_per_room(store, *RANGE, None, []).empty, "an empty filter matches nothing, unlike None"
    assert queries.peak_per_room(store, *RANGE, None, [("x') OR TRUE --", "standup")]).empty
    assert queries.top_rooms(store, *RANGE, None, [(A, "review"), (B, "standup")], now=NOW)["room"].tolist() == ["review"]
    assert queries.rooms(store, None, [(A, "review"), (B, "standup")]) == ["review"]
    for step in (8, 60):  # the raw samples and the minute rollups
        by_pair = queries.concurrency(store, BASE, at(60), None, [(A, "review")], step=step)
        by_name = queries.concurrency(store, BASE, at(60), None, ["review"], step=step)
        pd.testing.assert_frame_equal(by_pair, by_name)
        assert by_pair["participants"].max() == 1
        elsewhere = queries.concurrency(store, BASE, at(60), None, [(B, "review")], step=step)
        assert not (elsewhere["participants"].fillna(0) > 0).any()


# ----- the page -----------------------------------------------------------------------------


def test_analyst_sees_eight_charts_each_with_csv_and_parquet_downloads(dashboard: Services) -> None:
    app = run_page(cookie_for(dashboard, "analyst"))
    assert len(app.get("plotly_chart")) == 8
    downloads = app.get("download_button")
    assert len(downloads) == 16
    labels = [d.proto.label for d in downloads]
    assert labels.count("CSV") == 8 and labels.count("Parquet") == 8
    assert not [c.value for c in app.caption if c.value == "No data in this range"]


def test_room_filter_without_jobs_says_no_data_instead_of_a_zero_chart(dashboard: Services) -> None:
    app = run_page(cookie_for(dashboard, "analyst"))
    app.multiselect(key="history_rooms").set_value(["standup"]).run()
    assert not app.exception, [e.value for e in app.exception]
    assert "No data in this range" in [c.value for c in app.caption]
    assert len(app.get("plotly_chart")) == 7  # standup has no agent jobs


def test_host_is_refused(dashboard: Services) -> None:
    app = run_page(cookie_for(dashboard, "host"))
    assert not app.get("plotly_chart")
    assert [e.value for e in app.error] == ["The host role may not open this page."]


def test_without_a_history_store_the_page_says_it_is_not_running(dashboard: Services) -> None:
    dashboard.history = None
    app = run_page(cookie_for(dashboard, "operator"))
    assert [i.value for i in app.info] == ["History is collected by the dashboard's server process; it is not running here."]
    assert not app.get("plotly_chart")


# ----- a history a few minutes old ----------------------------------------------------------

FRESH_SERVER = "fresh"
TRICKY_ROOM = 'o"neil <b>room</b> &amp; \u202eevil'


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Services, datetime]]:
    """Services over a store whose history began three minutes ago: a sample every 5 s (as the
    default collector takes them), a room with two people, a track published. Yields the
    services and the first sample's time."""
    first = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=3, seconds=2)
    items: list[object] = []
    for i in range(36):
        ts = first + timedelta(seconds=5 * i)
        items += [ServerSample(FRESH_SERVER, ts, True, 1, 2, None), RoomSample(FRESH_SERVER, ts, "RM_fresh", TRICKY_ROOM, 2, 1, 0, 1)]
    items += [
        HistoryEvent("ev-fresh-1", FRESH_SERVER, first, WEBHOOK, ROOM_STARTED, "RM_fresh", TRICKY_ROOM),
        HistoryEvent("ev-fresh-2", FRESH_SERVER, first, WEBHOOK, PARTICIPANT_JOINED, "RM_fresh", TRICKY_ROOM, "PA_x", "xena", "standard"),
        HistoryEvent("ev-fresh-3", FRESH_SERVER, first + timedelta(seconds=20), WEBHOOK, PARTICIPANT_JOINED, "RM_fresh", TRICKY_ROOM, "PA_y", "yuri", "standard"),
        HistoryEvent("ev-fresh-4", FRESH_SERVER, first + timedelta(seconds=21), WEBHOOK, TRACK_PUBLISHED, "RM_fresh", TRICKY_ROOM,
                     "PA_y", "yuri", "standard", "TR_y", "microphone"),  # fmt: skip
    ]
    env = {"DASHBOARD_DATA_DIR": str(tmp_path / "data"), "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-history-page"}
    services.stop()
    svc = services.start(load_settings(env, tmp_path / "none.toml"))
    svc.history = HistoryStore(tmp_path / "fresh.duckdb")
    svc.history.submit(items)
    svc.history.flush()
    assert svc.history.status().failed_batches == 0
    try:
        yield svc, first
    finally:
        services.stop()  # closes the store too


CHART_NAMES = ("concurrency", "participant_minutes", "sessions_per_day", "session_durations", "peak_per_room", "top_rooms",
               "jobs_by_state", "tracks_by_source")  # fmt: skip


def figures(app: AppTest) -> dict[str, dict]:
    """Each chart's plotly figure by the chart's name (the page keys each chart `<name>_chart`,
    and Streamlit ends the element's id with its key)."""
    found = {}
    for chart in app.get("plotly_chart"):
        [name] = [n for n in CHART_NAMES if chart.proto.id.endswith(f"-{n}_chart")]
        found[name] = json.loads(chart.proto.spec)
    return found


def test_a_new_history_is_charted_from_where_it_begins_in_buckets_of_whole_samples(fresh) -> None:  # type: ignore[no-untyped-def]
    svc, first = fresh
    app = run_page(cookie_for(svc, "analyst"))  # the default range: 24 h
    charts = figures(app)
    begins = first.replace(second=first.second - first.second % 10)  # the first whole 10 s bucket

    said = f"History starts {first:%Y-%m-%d %H:%M:%S} UTC, so the charts begin at {begins:%H:%M:%S} rather than at the range's"
    assert any(c.value.startswith(said) for c in app.caption), [c.value for c in app.caption]
    line = charts["concurrency"]
    assert line["layout"]["xaxis"]["range"][0].startswith(f"{begins:%Y-%m-%dT%H:%M:%S}")
    points = [y for trace in line["data"] for y in trace["y"]]
    assert None not in points[: len(points) - 1], "a bucket per two samples: no invented breaks before the last"
    assert {trace["mode"] for trace in line["data"]} == {"lines+markers"}

    tracks = charts["tracks_by_source"]
    assert [(bar["width"], bar["offset"]) for bar in tracks["data"]] == [(10_000, 0)]
    assert tracks["layout"]["xaxis"]["range"][0].startswith(f"{begins:%Y-%m-%dT%H:%M:%S}")
    assert {s["value"] for s in tracks["layout"]["xaxis"]["tickformatstops"]} == {"%H:%M:%S", "%H:%M", "%H:%M<br>%b %-d", "%b %-d"}

    for name in ("participant_minutes", "sessions_per_day"):
        day = charts[name]
        assert [(bar["width"], bar["offset"]) for bar in day["data"]] == [(69_120_000, 8_640_000)]
        assert day["layout"]["xaxis"]["range"][0].startswith(f"{begins:%Y-%m-%d}T00:00:00")
        assert day["layout"]["xaxis"]["tickformat"] == "%b %-d"


def test_chart_labels_show_a_room_name_as_the_text_it_is(fresh) -> None:  # type: ignore[no-untyped-def]
    svc, _ = fresh
    charts = figures(run_page(cookie_for(svc, "analyst")))
    label = 'o"neil &lt;b&gt;room&lt;/b&gt; &amp;amp; ⟨U+202E⟩evil'
    assert [x for bar in charts["peak_per_room"]["data"] for x in bar["x"]] == [label]
    assert [y for bar in charts["top_rooms"]["data"] for y in bar["y"]] == [label]
