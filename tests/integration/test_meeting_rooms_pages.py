"""Meetings across the dashboard, run in-process by AppTest against a real livekit-server with
the collector running: the Rooms page names a meeting's room by its title (in the table and the
detail), the Sessions page does the same for the room's sessions, and the History page's meeting
filter narrows every chart to that meeting's room. Which room is a meeting's is read from SQL,
never from the room's metadata; titles are shown as the text they are."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from livekit import api
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from lib import services
from lib.auth.policy import Actor
from lib.livekit.devserver import DevServer
from lib.meetings.service import MeetingDraft
from lib.meetings.views import MeetingView
from lib.models import Occurrence
from lib.services import Services
from lib.sim.participants import ParticipantPool
from lib.ui.format import visible
from tests.integration.test_history_page import figures
from tests.integration.test_pages import HOSTILE, frames_with, markdown_texts, plain, rerun_until
from tests.integration.test_secret_scan import page_as
from tests.integration.test_services import settings_for

pytestmark = pytest.mark.integration

SERVER = "default"
HOST = Actor("across-host", "host", "127.0.0.1")
PASSWORD = "across-pages-password"
# Markup, Markdown, a bidi override: a title must reach the reader as these characters.
TITLE = f"{HOSTILE} **Board** [review](http://evil.example) \u202eevil"


@pytest.fixture
def svc(livekit_server: DevServer, tmp_path: Path, lk_api) -> Iterator[Services]:  # type: ignore[no-untyped-def]
    """The process's services with the history store and a collector sampling every second."""
    services.stop()
    built = services.start(settings_for(livekit_server, tmp_path / "data", DASHBOARD_COLLECT_SECONDS="1",
                                        DASHBOARD_SECRET_KEY="test-secret-key-for-the-across-pages"))  # fmt: skip
    built.start_history()
    built.users.create(Actor.system("test"), HOST.name, PASSWORD, "host")
    try:
        yield built
    finally:
        with built.sessions() as s:  # the meetings' rooms would outlive the test on the shared server
            rooms = s.scalars(select(Occurrence.room_name)).all()
        for room in rooms:
            try:
                lk_api.call(lambda lk, room=room: lk.room.delete_room(api.DeleteRoomRequest(room=room)))
            except api.TwirpError:
                pass  # never created, or gone already
        services.stop()


def start_meeting(svc: Services, title: str) -> tuple[MeetingView, str]:
    meeting = svc.meetings.start_instant(HOST, title, SERVER)
    return meeting, meeting.occurrences[0].room_name


def cookie_for(svc: Services, role: str) -> str:
    user = svc.users.create(Actor.system("test"), f"across-{role}", PASSWORD, role)
    return svc.logins.create(user.id)[0]


def meeting_column(at: AppTest) -> dict[str, str]:
    """Room -> its meeting cell, from the page's tables that have a meeting column."""
    return {room: meeting for frame in frames_with(at, "meeting") for room, meeting in zip(frame["room"], frame["meeting"])}


def meeting_lines(at: AppTest) -> list[str]:
    return [plain(t) for t in markdown_texts(at) if t.startswith("Meeting:")]


# ----- Rooms ----------------------------------------------------------------------------------


def test_rooms_page_names_a_meetings_room_by_its_title_from_sql_not_from_metadata(svc: Services, lk_api, unique_name) -> None:
    meeting, room = start_meeting(svc, TITLE)
    # A meeting ahead whose room a guest's token created early: no metadata, still the meeting's.
    now = datetime.now(timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    ahead = svc.meetings.schedule(HOST, MeetingDraft("Planning", SERVER, now + timedelta(hours=2), now + timedelta(hours=3), "UTC"))
    early = ahead.occurrences[0].room_name
    lk_api.create_room(early)
    # A room claiming in its metadata to be a meeting's, which no occurrence in SQL names.
    spoofed = unique_name("spoofed")
    lk_api.create_room(spoofed, metadata=json.dumps({"meeting": {"id": meeting.id, "occurrence": 1, "title": "Spoofed title"}}))
    plain_room = unique_name()
    lk_api.create_room(plain_room)

    at = rerun_until(page_as("rooms", cookie_for(svc, "operator")), lambda a: {room, early, spoofed, plain_room} <= set(meeting_column(a)))
    shown = meeting_column(at)
    assert shown[room] == visible(TITLE), "the title as text, its bidi override shown"
    assert shown[early] == "Planning"
    assert shown[spoofed] == "" and shown[plain_room] == ""

    at.selectbox(key="room_pick").set_value((SERVER, room)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert meeting_lines(at) == [f"Meeting: {visible(TITLE)} (active)"]
    assert not [t for t in markdown_texts(at) if "<script>" in t], "markup in a title is escaped"

    at.selectbox(key="room_pick").set_value((SERVER, early)).run()
    assert meeting_lines(at) == ["Meeting: Planning (scheduled)"]
    at.selectbox(key="room_pick").set_value((SERVER, spoofed)).run()
    assert meeting_lines(at) == []


# ----- Sessions ---------------------------------------------------------------------------------


def test_sessions_page_names_the_session_of_a_meetings_room(svc: Services, participants: ParticipantPool) -> None:
    _, room = start_meeting(svc, TITLE)
    participants.join(room, "guest-1")

    at = page_as("sessions", cookie_for(svc, "analyst"))
    at.text_input(key="session_search").input(room).run()
    at = rerun_until(at, lambda a: room in meeting_column(a))
    assert meeting_column(at) == {room: visible(TITLE)}
    assert meeting_lines(at) == [f"Meeting: {visible(TITLE)} (active)"]
    assert not [t for t in markdown_texts(at) if "<script>" in t]


# ----- History ----------------------------------------------------------------------------------


def numbers(values: list | dict) -> list:
    """A trace's values: plotly sends numeric arrays as base64 typed arrays."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return values


def charted_rooms(at: AppTest) -> set[str]:
    """The rooms the two per-room charts draw (plotly labels, escaped like chart_label)."""
    charts = figures(at)
    peak = {x for bar in charts.get("peak_per_room", {}).get("data", []) for x in bar["x"]}
    top = {y for bar in charts.get("top_rooms", {}).get("data", []) for y in bar["y"]}
    return peak | top


def test_history_meeting_filter_narrows_the_charts_to_the_meetings_room(
    svc: Services, participants: ParticipantPool, unique_name
) -> None:
    meeting, room = start_meeting(svc, "Weekly sync")
    other = unique_name()
    participants.join(room, "in-meeting")
    participants.join(other, "elsewhere")

    at = page_as("history", cookie_for(svc, "analyst"))
    at = rerun_until(at, lambda a: {room, other} <= charted_rooms(a), timeout=30)
    picker = at.multiselect(key="history_meetings")
    assert [o for o in picker.options if o.startswith("Weekly sync · ")], picker.options

    picker.set_value([meeting.id]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert charted_rooms(at) == {room}
    assert at.multiselect(key="history_rooms").options == [room], "Rooms offers the meeting's rooms only"
    assert any(c.value.startswith("The charts cover only the rooms of the picked meetings") for c in at.caption)
    peak = max(y for trace in figures(at)["concurrency"]["data"] for y in numbers(trace["y"]) if y == y)  # NaN: a break
    assert peak == 1, "one room with one person"
    # (That the pick survives an edit of the title is a browser test: AppTest sends back the
    # pick as the newest labels show it, where a browser sends the label it showed.)
