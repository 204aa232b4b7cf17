"""The sessions page and the reads behind it, on a history store filled through its own writer:
session numbers, a session's timeline with duplicate marks merged, and the page as each role."""

from __future__ import annotations

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
from lib.history import sessions
from lib.history.events import (
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    ROOM_FINISHED,
    ROOM_STARTED,
    SNAPSHOT,
    TRACK_MUTED,
    TRACK_PUBLISHED,
    WEBHOOK,
    HistoryEvent,
)
from lib.history.store import HistoryStore
from lib.livekit.devserver import REPO_ROOT
from lib.services import Services
from lib.auth.policy import Actor

PAGE = REPO_ROOT / "pages" / "sessions.py"
SERVER = "main"
ROOM, ROOM_SID = "standup <b>team</b>", "RM_standup"
LIVE_ROOM, LIVE_SID = "still going", "RM_live"
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(n: int, kind: str, minutes: float, source: str = WEBHOOK, room: str = ROOM, room_sid: str = ROOM_SID, **fields: str) -> HistoryEvent:
    return HistoryEvent(f"{source}:{n}", SERVER, at(minutes), source, kind, room_sid, room, **fields)


def person(identity: str, kind: str = "standard") -> dict[str, str]:
    return {"participant_sid": f"PA_{identity}", "identity": identity, "participant_kind": kind}


ALICE, BOB, AGENT = person("alice"), person("bob"), person("helper-agent", "agent")
MIC = {"track_sid": "TR_alice_mic", "track_source": "microphone"}

EVENTS = [
    event(1, ROOM_STARTED, 0),
    event(2, PARTICIPANT_JOINED, 1, **ALICE),
    event(3, PARTICIPANT_JOINED, 1, **AGENT),
    event(4, PARTICIPANT_JOINED, 2, **BOB),
    # The same publish, seen by the webhook and 4 s later by a snapshot: one mark.
    event(5, TRACK_PUBLISHED, 2, **ALICE, **MIC),
    event(6, TRACK_PUBLISHED, 2 + 4 / 60, SNAPSHOT, **ALICE, **MIC),
    event(7, TRACK_MUTED, 10, **ALICE, **MIC),
    event(8, PARTICIPANT_LEFT, 20, **BOB),
    # Alice's leave was only noticed by a snapshot: an estimated end.
    event(9, PARTICIPANT_LEFT, 30, SNAPSHOT, **ALICE),
    event(10, PARTICIPANT_LEFT, 30, **AGENT),
    # The room's end was also only noticed by a snapshot.
    event(11, ROOM_FINISHED, 31, SNAPSHOT),
    # A later room nobody has left yet.
    event(12, ROOM_STARTED, 60, room=LIVE_ROOM, room_sid=LIVE_SID),
    event(13, PARTICIPANT_JOINED, 61, room=LIVE_ROOM, room_sid=LIVE_SID, **person("dana")),
]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Services]:
    """The process's services with a history store on a temporary file, filled with EVENTS."""
    env = {"DASHBOARD_DATA_DIR": str(tmp_path / "data"), "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-sessions-page"}
    services.stop()
    svc = services.start(load_settings(env, tmp_path / "none.toml"))
    svc.history = HistoryStore(tmp_path / "history.duckdb")
    svc.history.submit(list(EVENTS))
    svc.history.flush()
    assert svc.history.last_error is None
    try:
        yield svc
    finally:
        services.stop()  # closes the history store too


def cookie_for(svc: Services, role: str) -> str:
    user = svc.users.create(Actor.system("test"), f"sessions-{role}", f"{role}-password-long-enough", role)
    return svc.logins.create(user.id)[0]


def run_page(cookie: str) -> AppTest:
    app = AppTest.from_file(str(PAGE), default_timeout=30)
    app.session_state[TOKEN_STATE_KEY] = cookie
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def this_day(store: HistoryStore, **filters):  # type: ignore[no-untyped-def]
    now = datetime.now(timezone.utc)
    return sessions.room_sessions(store, now - timedelta(hours=24), now, **filters)


def test_room_sessions_count_duration_peak_people_and_estimated_end(dashboard: Services) -> None:
    found = this_day(dashboard.history)

    assert list(found["room_sid"]) == [LIVE_SID, ROOM_SID], "newest first"
    live, ended = found.iloc[0], found.iloc[1]
    assert ended["state"] == "ended" and ended["room"] == ROOM
    assert ended["duration_min"] == pytest.approx(31)
    assert ended["peak_participants"] == 3
    assert ended["participants"] == 3 and ended["agents"] == 1
    assert ended["estimated"]
    assert live["state"] == "live" and pd.isna(live["duration_min"]) and pd.isna(live["ended_at"])
    assert live["participants"] == 1 and live["agents"] == 0


def test_room_sessions_filters_by_server_name_and_time(dashboard: Services) -> None:
    store = dashboard.history
    assert list(this_day(store, search="STANDUP")["room_sid"]) == [ROOM_SID]
    assert list(this_day(store, rooms=[LIVE_ROOM])["room_sid"]) == [LIVE_SID]
    assert this_day(store, servers=["elsewhere"]).empty
    assert this_day(store, search="'; DROP TABLE events; --").empty
    assert sessions.room_sessions(store, at(40), at(50))["room_sid"].tolist() == [], "neither session overlaps"


def test_a_listing_keeps_the_newest_sessions_and_counts_them_all(dashboard: Services) -> None:
    now = datetime.now(timezone.utc)
    newest = sessions.room_sessions(dashboard.history, now - timedelta(hours=24), now, limit=1)
    assert list(newest["room_sid"]) == [LIVE_SID]
    assert newest.iloc[0]["participants"] == 1, "people are counted for the sessions listed"
    assert sessions.count_room_sessions(dashboard.history, now - timedelta(hours=24), now) == (2, 1)
    assert sessions.count_room_sessions(dashboard.history, now - timedelta(hours=24), now, search="standup") == (1, 0)


def test_timeline_has_one_span_per_participant_and_one_mark_per_change(dashboard: Services) -> None:
    now = datetime.now(timezone.utc)
    spans, marks = sessions.timeline(dashboard.history, SERVER, ROOM_SID, now=now)

    by_identity = spans.set_index("identity")
    assert sorted(by_identity.index) == ["alice", "bob", "helper-agent"]
    assert by_identity.loc["helper-agent", "kind"] == "agent"
    assert by_identity.loc["alice", "left_estimated"] and not by_identity.loc["bob", "left_estimated"]
    assert (by_identity.loc["bob", "left_at"] - by_identity.loc["bob", "joined_at"]) == timedelta(minutes=18)
    assert not spans["open"].any()

    assert list(marks["kind"]) == [TRACK_PUBLISHED, TRACK_MUTED]
    assert list(marks["source"]) == [WEBHOOK, WEBHOOK], "the webhook's mark is the one kept"
    assert marks.iloc[0]["ts"] == at(2) and marks.iloc[0]["track_source"] == "microphone"

    [live] = sessions.timeline(dashboard.history, SERVER, LIVE_SID, now=now)[0].itertuples()
    assert live.open and live.left_at == now


def test_analyst_sees_sessions_and_a_timeline_chart(dashboard: Services) -> None:
    app = run_page(cookie_for(dashboard, "analyst"))

    assert [t.value for t in app.title] == ["Sessions"]
    assert not app.error, [e.value for e in app.error]
    [table] = [d.value for d in app.dataframe]
    assert list(table["state"]) == ["live", "ended"]
    assert set(table["room"]) == {ROOM, LIVE_ROOM}
    [chart] = app.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    names = {y for trace in figure["data"] for y in trace.get("y", [])}
    assert names == {"dana"}, "the newest session is shown until another row is chosen"
    assert any("live" in s.value.lower() for s in app.success)
    assert not [m.value for m in app.markdown if "<b>" in m.value]


def test_timeline_chart_escapes_names_and_marks_changes(dashboard: Services) -> None:
    app = run_page(cookie_for(dashboard, "analyst"))
    app.text_input(key="session_search").input("standup").run()
    assert not app.exception, [e.value for e in app.exception]

    [chart] = app.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    points = [t for t in figure["data"] if t["type"] == "scatter"]
    assert {y for t in bars for y in t["y"]} == {"alice", "bob", "helper-agent"}
    assert sorted(t["name"] for t in points) == ["muted", "published"]
    assert all(len(t["x"]) == 1 for t in points), "the duplicate publish is drawn once"
    assert any("estimated" in t["name"] for t in bars), "alice's estimated end is marked"
    assert [s.value for s in app.subheader] == [r"standup \<b\>team\</b\> · main"]


def test_host_may_not_open_the_sessions_page(dashboard: Services) -> None:
    app = run_page(cookie_for(dashboard, "host"))

    assert any("may not open" in e.value for e in app.error)
    assert not app.dataframe and not app.get("plotly_chart")


def test_without_a_history_store_the_page_says_so(dashboard: Services) -> None:
    dashboard.history.close()
    dashboard.history = None

    app = run_page(cookie_for(dashboard, "analyst"))

    assert any("not running here" in i.value for i in app.info)
    assert not app.dataframe
