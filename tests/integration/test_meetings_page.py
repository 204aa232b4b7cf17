"""The Meetings page, run in-process by AppTest against a real livekit-server: a host schedules
through the form (and sees each bad address named, with what was typed kept), starts a meeting
now and its room exists, cancels with a confirmation, and hostile titles render as text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from lib import services
from lib.auth.guard import TOKEN_STATE_KEY
from lib.auth.policy import Actor
from lib.config import load_settings
from lib.livekit.devserver import REPO_ROOT, DevServer
from lib.meetings.service import MeetingDraft
from lib.models import Meeting, Occurrence
from lib.services import Services
from tests.integration.test_pages import HOSTILE, MARKDOWN_KINDS

pytestmark = pytest.mark.integration

PAGE = str(REPO_ROOT / "pages" / "meetings.py")
HOST = Actor("page-host", "host", "127.0.0.1")


@pytest.fixture
def host(livekit_server: DevServer, tmp_path: Path) -> Iterator[tuple[Services, str]]:
    env = {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
        "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-meeting-page",
    }
    services.stop()
    svc = services.start(load_settings(env, tmp_path / "none.toml"))
    svc.start_history()  # attendance is read from it
    user = svc.users.create(Actor.system("test"), HOST.name, "page-host-password", "host")
    try:
        yield svc, svc.logins.create(user.id)[0]
    finally:
        services.stop()


def run(cookie: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[TOKEN_STATE_KEY] = cookie
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def occurrences(svc: Services) -> list[Occurrence]:
    with svc.sessions() as s:
        return list(s.scalars(select(Occurrence)))


def test_a_bad_address_is_named_and_what_was_typed_stays(host: tuple[Services, str]) -> None:
    svc, cookie = host
    at = run(cookie)
    at.text_input(key="schedule_title").input("Board meeting")
    at.toggle(key="schedule_private").set_value(True)
    at.text_area(key="schedule_invitees").input("Ann <ann@example.org>, not an address, bob@example")
    at.button(key="FormSubmitter:schedule-Schedule meeting").click()
    at.run()
    [error] = [e.value for e in at.error]
    assert "'not'" in error or "not an address" in error
    assert "bob@example" in error
    assert at.text_input(key="schedule_title").value == "Board meeting"
    assert occurrences(svc) == []


def test_a_host_schedules_a_meeting_from_the_form(host: tuple[Services, str]) -> None:
    svc, cookie = host
    at = run(cookie)
    at.text_input(key="schedule_title").input("Planning")
    at.selectbox(key="schedule_zone").set_value("Europe/Berlin")
    day = (datetime.now(timezone.utc) + timedelta(days=3)).date()
    at.date_input(key="schedule_start_day").set_value(day)
    at.date_input(key="schedule_end_day").set_value(day)
    at.time_input(key="schedule_start_time").set_value(time(10, 0))
    at.time_input(key="schedule_end_time").set_value(time(11, 0))
    at.button(key="FormSubmitter:schedule-Schedule meeting").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    [o] = occurrences(svc)
    with svc.sessions() as s:
        [m] = s.scalars(select(Meeting)).all()
    assert (m.title, m.time_zone) == ("Planning", "Europe/Berlin")
    assert o.starts_at.replace(tzinfo=timezone.utc).astimezone(timezone.utc).hour in (8, 9)  # 10:00 in Berlin
    assert at.text_input(key="schedule_title_1").value == ""  # the form opened afresh after the save


def test_start_now_opens_the_room_before_the_page_returns(host: tuple[Services, str]) -> None:
    svc, cookie = host
    at = run(cookie)
    at.text_input(key="instant_title").input("Standup now")
    at.button(key="FormSubmitter:instant-Start meeting now").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    [o] = occurrences(svc)
    assert o.status == "active"
    assert o.room_name in {r.room.name for r in svc.gateway.snapshot("default").rooms}


def test_hostile_titles_and_descriptions_render_as_text_and_cancel_asks_first(host: tuple[Services, str]) -> None:
    svc, cookie = host
    start = (datetime.now(timezone.utc) + timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    description = "# not a heading\n[link](javascript:alert(1)) " + HOSTILE * 300
    meeting = svc.meetings.schedule(
        HOST, MeetingDraft(title=HOSTILE + " **bold**", description=description, server="default", start=start, end=start + timedelta(hours=1), time_zone="UTC")
    )
    at = run(cookie)
    assert at.dataframe[0].value["title"].tolist() == [HOSTILE + " **bold**"]
    assert description in [t.value for t in at.text]
    for kind in MARKDOWN_KINDS:
        for element in getattr(at, kind):
            assert "<script>" not in element.value, (kind, element.value)
    at.button(key=f"cancel_{meeting.id}").click()
    at.run()
    assert [o.status for o in occurrences(svc)] == ["scheduled"]  # asked first
    at.button(key=f"cancel_{meeting.id}_yes").click()
    at.run()
    assert [o.status for o in occurrences(svc)] == ["cancelled"]


def test_a_co_host_who_saves_an_edit_on_the_page_keeps_the_meeting(host: tuple[Services, str]) -> None:
    svc, _ = host
    cohost = svc.users.create(Actor.system("test"), "page-cohost", "page-cohost-password", "host")
    start = (datetime.now(timezone.utc) + timedelta(hours=2)).replace(tzinfo=None, second=0, microsecond=0)
    meeting = svc.meetings.schedule(
        HOST, MeetingDraft(title="Shared", server="default", start=start, end=start + timedelta(hours=1), time_zone="UTC", cohosts=("page-cohost",))
    )
    at = run(svc.logins.create(cohost.id)[0])
    form = f"edit_{meeting.id}_{meeting.version}"
    at.text_area(key=f"{form}_description").input("edited by the co-host")
    at.button(key=f"FormSubmitter:{form}-Save changes").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    shown = svc.meetings.get(Actor("page-cohost", "host"), meeting.id)
    assert shown.description == "edited by the co-host" and shown.cohosts == ("page-cohost",)


def test_the_tokens_room_picker_names_a_hosts_meeting_rooms_by_title(host: tuple[Services, str]) -> None:
    svc, cookie = host
    meeting = svc.meetings.start_instant(HOST, "Weekly planning", "default")
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "tokens.py"), default_timeout=30)
    at.session_state[TOKEN_STATE_KEY] = cookie
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [picker] = [s for s in at.selectbox if s.label == "Fill in a room"]
    assert picker.options == [f"Weekly planning · {meeting.occurrences[0].room_name}"]
