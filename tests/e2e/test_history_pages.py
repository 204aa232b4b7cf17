"""The history pages in a real browser: real participants come and go on the real livekit-server,
the dashboard's own collector records them, and History and Sessions draw what it recorded."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from livekit import api
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import update

from lib import services
from lib.auth.policy import Actor
from lib.config import load_settings
from lib.livekit.devserver import DevServer
from lib.models import Meeting
from lib.sim.participants import ParticipantPool
from tests.app_process import AppProcess
from tests.conftest import ServerApi
from tests.e2e.conftest import ADMIN_USER, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e

CHART_COUNT = 8  # the History page's charts, each with its CSV and Parquet download
NO_DATA = "No data in this range"
POLL_EVERY_S = 2.0
POLL_FOR_S = 40.0  # several of the collector's samples (every 5 s by default)


@dataclass(frozen=True)
class Traffic:
    meeting: str  # alice and bob stay, carol leaves after a few seconds
    support: str  # a caller and a dispatched agent


def readable(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(2)}"


@pytest.fixture(scope="module")
def traffic(dashboard_process: AppProcess, livekit_server: DevServer, agent_worker) -> Iterator[Traffic]:  # type: ignore[no-untyped-def]
    """Two rooms of real participants, joined once the dashboard (and its collector) runs."""
    pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    lk_api = ServerApi(livekit_server)
    traffic = Traffic(readable("weekly-sync"), readable("support-desk"))
    try:
        pool.join(traffic.meeting, "alice", name="Alice", publish_audio=True, publish_video=True)
        pool.join(traffic.meeting, "bob", name="Bob", publish_audio=True)
        carol = pool.join(traffic.meeting, "carol", name="Carol", publish_audio=True)
        pool.join(traffic.support, "caller", name="Caller", publish_audio=True)
        lk_api.call(lambda lk: lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=agent_worker.agent_name, room=traffic.support)
        ))  # fmt: skip
        time.sleep(6)  # at least one collector sample sees carol before she leaves
        pool.leave(carol)
        yield traffic
    finally:
        pool.close()
        lk_api.close()


def poll(page: Page, path: str, ready: Callable[[], bool]) -> None:
    """Open `path` again every couple of seconds until `ready()`; the collector writes in the
    background, and a page shows what was stored when it ran."""
    deadline = time.monotonic() + POLL_FOR_S
    goto(page, path)
    while not ready():
        if time.monotonic() > deadline:
            return
        page.wait_for_timeout(POLL_EVERY_S * 1000)
        goto(page, path)


def charts(page: Page) -> Locator:
    return page.get_by_test_id("stPlotlyChart")


def no_data(page: Page) -> Locator:
    return page.get_by_text(NO_DATA, exact=True)


def pick_range(page: Page, label: str) -> None:
    page.get_by_test_id("stButtonGroup").get_by_text(label, exact=True).click()
    wait_idle(page)


def test_history_page_charts_real_traffic(page: Page, traffic: Traffic) -> None:
    poll(page, "/history", lambda: charts(page).count() == CHART_COUNT and no_data(page).count() == 0)

    pick_range(page, "1 h")
    expect(charts(page)).to_have_count(CHART_COUNT)
    expect(no_data(page)).to_have_count(0)
    concurrency = page.get_by_test_id("stHeading").filter(has_text="Rooms and participants")
    expect(concurrency).to_be_visible()
    for chart in charts(page).all():
        expect(chart).to_be_visible()
    expect(page.get_by_test_id("stDownloadButton")).to_have_count(2 * CHART_COUNT)
    expect(page.get_by_text(re.compile(r"in buckets of"))).to_be_visible()
    screenshot(page, "history")


def test_sessions_page_shows_a_timeline(page: Page, traffic: Traffic) -> None:
    summary = page.get_by_text(re.compile(r"^Showing [\d,]+ sessions, [\d,]+ live\."))
    poll(page, "/sessions", lambda: summary.count() == 1)
    expect(summary).to_be_visible()

    search = page.get_by_role("textbox", name="Room name contains")
    search.fill(traffic.meeting)
    search.press("Enter")
    search.blur()
    wait_idle(page)

    expect(page.get_by_text(re.compile(r"^Showing 1 sessions, 1 live\."))).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_test_id("stHeading").filter(has_text=traffic.meeting)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Live: started "))).to_be_visible()
    gantt = charts(page)
    expect(gantt).to_have_count(1)
    for who in ("alice", "bob", "carol"):
        expect(gantt.get_by_text(who, exact=True).first).to_be_attached()
    screenshot(page, "sessions")


TRICKY_IDENTITY = 'o"neil <b>bold</b> &amp; \u202eevil'


@pytest.fixture(scope="module")
def tricky_room(dashboard_process: AppProcess, livekit_server: DevServer) -> Iterator[str]:
    """A room whose participant's identity holds a quote, a tag, an entity and a right-to-left
    override, joined once the dashboard's collector runs."""
    pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    room = readable("tricky-names")
    try:
        pool.join(room, TRICKY_IDENTITY)
        yield room
    finally:
        pool.close()


def test_sessions_timeline_shows_a_tricky_identity_as_the_text_it_is(page: Page, tricky_room: str) -> None:
    gantt_labels = page.locator("[data-testid='stPlotlyChart'] .yaxislayer-above .ytick text")
    summary = page.get_by_text(re.compile(r"^Showing 1 sessions"))

    def open_room() -> None:
        search = page.get_by_role("textbox", name="Room name contains")
        search.fill(tricky_room)
        search.press("Enter")
        search.blur()
        wait_idle(page)

    deadline = time.monotonic() + POLL_FOR_S
    goto(page, "/sessions")
    open_room()
    while summary.count() == 0 or gantt_labels.count() == 0:
        assert time.monotonic() < deadline, "the collector did not record the room in time"
        page.wait_for_timeout(POLL_EVERY_S * 1000)
        goto(page, "/sessions")
        open_room()

    # The SVG text plotly drew: no bold tspan, no decoded or doubled entity, the override shown.
    assert gantt_labels.all_text_contents() == ['o"neil <b>bold</b> &amp; ⟨U+202E⟩evil']
    assert page.locator("[data-testid='stPlotlyChart'] .yaxislayer-above .ytick text tspan[style*='bold']").count() == 0


def test_a_picked_session_stays_picked_when_a_newer_session_starts(page: Page, traffic: Traffic, livekit_server: DevServer) -> None:
    summary = page.get_by_text(re.compile(r"^Showing [\d,]+ sessions, [\d,]+ live\."))
    poll(page, "/sessions", lambda: summary.count() == 1)
    table = page.get_by_test_id("stDataFrame")
    box = table.bounding_box()
    assert box is not None
    headings = page.get_by_test_id("stHeading")
    before = headings.all_text_contents()

    # The row marker of the second row (Streamlit's grid: a header and rows of 35 px).
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 + 17)
    wait_idle(page)
    picked = [h for h in headings.all_text_contents() if h not in before]
    assert picked, "picking the second row shows its session"

    # A newer session starts: it is listed first, and the rows below move down by one.
    pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        pool.join(readable("newer-room"), "newcomer")
        count = int(re.search(r"Showing ([\d,]+)", summary.inner_text()).group(1).replace(",", ""))  # type: ignore[union-attr]
        deadline = time.monotonic() + POLL_FOR_S
        while int(re.search(r"Showing ([\d,]+)", summary.inner_text()).group(1).replace(",", "")) <= count:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the newer session was not recorded in time"
            page.wait_for_timeout(POLL_EVERY_S * 1000)
            page.get_by_test_id("stMain").get_by_role("heading", name="Sessions").click()
            page.keyboard.press("r")  # Streamlit's rerun key: the same session, its pick kept
            wait_idle(page)
        assert picked[0] in headings.all_text_contents(), "the pick follows the session, not its row number"
    finally:
        pool.close()


def test_a_picked_meeting_stays_picked_when_its_title_is_edited(page: Page, dashboard_process: AppProcess, livekit_server: DevServer) -> None:
    """A multiselect keeps a pick by its label, and the browser sends back the label it showed:
    a label rebuilt from the edited title would drop the pick at the second rerun."""
    built = services.build(load_settings(dashboard_process.env, Path("/nonexistent/secrets.toml")))
    try:
        title = readable("Retro")
        meeting = built.meetings.start_instant(Actor(ADMIN_USER, "admin", "127.0.0.1"), title, "default")
        occurrence = meeting.occurrences[0]
        pool = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
        try:
            pool.join(occurrence.room_name, "attendee")
            narrowed = page.get_by_text(re.compile(r"^The charts cover only the rooms of the picked meetings \(1 of them"))
            deadline = time.monotonic() + POLL_FOR_S
            while True:  # until the collector recorded the room, which the caption counts
                goto(page, "/history")
                page.get_by_role("combobox", name="Meetings", exact=True).click()
                page.get_by_role("option").filter(has_text=title).click()
                page.keyboard.press("Escape")
                wait_idle(page)
                if narrowed.count():
                    break
                assert time.monotonic() < deadline, "the meeting's room was not recorded in time"
                page.wait_for_timeout(POLL_EVERY_S * 1000)

            with built.sessions.begin() as s:
                s.execute(update(Meeting).where(Meeting.id == meeting.id).values(title=f"{title} (renamed)"))
            for _ in range(3):
                page.get_by_test_id("stMain").get_by_role("heading", name="History").click()
                page.keyboard.press("r")  # Streamlit's rerun key: the browser sends the pick back as it showed it
                wait_idle(page)
            expect(narrowed).to_be_visible()
            expect(page.get_by_test_id("stMultiSelect").filter(has_text="Meetings").get_by_text(title).first).to_be_visible()
        finally:
            pool.close()
            built.lifecycle.finish(occurrence.id)  # its room would outlive the test on the shared server
    finally:
        built.close()
