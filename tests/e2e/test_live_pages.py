"""The live pages in a real browser, against a real livekit-server with real participants:
what an operator sees, and what their clicks do on the server."""

from __future__ import annotations

import re
import secrets

import pytest
from livekit import api
from playwright.sync_api import Locator, Page, expect

from lib.livekit.devserver import free_port
from lib.sim.participants import ParticipantPool
from tests.e2e.conftest import goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e

LIVE_TIMEOUT_MS = 20_000  # a few auto-refreshes of the live fragments
HOSTILE_NAME = "<img src=x onerror=alert(1)><script>alert(2)</script>"
UNICODE_TEXT = "会议室 ü 🎥"


def readable(prefix: str) -> str:
    """A short unique room name, for rooms that appear in the screenshots."""
    return f"{prefix}-{secrets.token_hex(2)}"


def metric(page: Page, label: str) -> Locator:
    """The value of the `st.metric` labelled `label`."""
    box = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    )
    return box.get_by_test_id("stMetricValue")


def selectbox(page: Page, label: str) -> Locator:
    """The input of the `st.selectbox` labelled `label`; its value is the chosen option's text."""
    return page.get_by_role("combobox", name=label, exact=True)


def room_option(room: str) -> re.Pattern[str]:
    """How the Room picker shows `room` (name, then its server)."""
    return re.compile("^" + re.escape(room) + "  ·  ")


def open_options(page: Page, label: str) -> Locator:
    """Open the dropdown of the selectbox labelled `label`; returns its options.

    A click focuses the input and the arrow key opens the list: that pair opens it every
    time, where a click on the "Open" button or a keypress after focus() alone often does not.
    """
    selectbox(page, label).click()
    page.keyboard.press("ArrowDown")
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    return options


def open_expander(page: Page, label: str) -> Locator:
    expander = page.get_by_test_id("stExpander").filter(has=page.get_by_text(label, exact=True))
    expander.get_by_text(label, exact=True).click()
    return expander


def search_rooms(page: Page, text: str) -> None:
    search = page.get_by_role("textbox", name="Search")
    search.fill(text)
    search.press("Enter")
    search.blur()
    wait_idle(page)


def server_totals(lk_api) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    rooms = lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest())).rooms
    return len(rooms), sum(len(lk_api.list_participants(r.name)) for r in rooms)


def test_overview_counts_real_participants(page: Page, participants: ParticipantPool, lk_api) -> None:
    room = readable("standup")
    for who in ("alice", "bob", "carol"):
        participants.join(room, who, publish_audio=True)
    lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
                until=lambda r: sum(1 for p in r.participants if p.tracks) == 3)  # fmt: skip

    goto(page, "/")

    # Rooms of earlier tests may close meanwhile, so the server's own answer, asked again on
    # a mismatch, is what the page must show.
    for _ in range(3):
        rooms, people = server_totals(lk_api)
        try:
            expect(metric(page, "Rooms")).to_have_text(str(rooms), timeout=LIVE_TIMEOUT_MS)
            expect(metric(page, "Participants")).to_have_text(str(people), timeout=LIVE_TIMEOUT_MS)
            break
        except AssertionError:
            continue
    assert (metric(page, "Rooms").inner_text(), metric(page, "Participants").inner_text()) == (str(rooms), str(people))
    assert people >= 3
    screenshot(page, "overview")


def test_rooms_page_lists_room_and_its_participants(page: Page, participants: ParticipantPool) -> None:
    design, support, lobby = readable("design-review"), readable("support"), readable("lobby")
    participants.join(design, "dana", name="Dana", publish_audio=True, publish_video=True)
    participants.join(design, "erik", name="Erik", publish_audio=True)
    participants.join(design, "fay", name="Fay")
    participants.join(support, "gus", name="Gus", publish_audio=True)
    participants.join(support, "hana", name="Hana", publish_audio=True)
    participants.join(lobby, "ivan", name="Ivan")

    goto(page, "/rooms")
    search_rooms(page, design)

    expect(page.get_by_text("1 room(s)", exact=True)).to_be_visible()
    expect(selectbox(page, "Room")).to_have_value(room_option(design))
    expect(metric(page, "Participants")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)
    expect(metric(page, "Publishers")).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
    expect(metric(page, "Tracks")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)
    options = open_options(page, "Participant")
    expect(options).to_have_count(3)
    assert sorted(options.all_inner_texts()) == ["dana (Dana)", "erik (Erik)", "fay (Fay)"]
    page.keyboard.press("Escape")
    expect(options).to_have_count(0)

    search_rooms(page, "")
    listed = page.get_by_text(re.compile(r"^\d+ room\(s\)$"))
    expect(listed).not_to_have_text("1 room(s)")
    assert int(listed.inner_text().split()[0]) >= 3
    screenshot(page, "rooms")


def test_room_names_with_html_render_as_text(page: Page, lk_api) -> None:
    metadata = f"{UNICODE_TEXT} " + "x" * 10_000
    lk_api.create_room(HOSTILE_NAME, metadata=metadata)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    goto(page, "/rooms")
    search_rooms(page, "onerror")

    expect(selectbox(page, "Room")).to_have_value(room_option(HOSTILE_NAME))
    shown = open_expander(page, "Room metadata")
    expect(shown.get_by_text(UNICODE_TEXT)).to_be_visible()
    wait_idle(page)
    injected = page.evaluate(
        """() => ({
            images: document.querySelectorAll('img[src="x"], img[onerror]').length,
            scripts: [...document.scripts].filter(s => s.textContent.includes('alert(')).length,
        })"""
    )
    assert injected == {"images": 0, "scripts": 0}
    assert dialogs == []


def test_operator_creates_and_ends_a_room_from_the_browser(page: Page, lk_api, unique_name) -> None:
    name = unique_name("town-hall")
    goto(page, "/rooms")

    form = open_expander(page, "Create a room").get_by_test_id("stForm")
    form.get_by_label("Room name").fill(name)
    form.get_by_label("Metadata").fill('{"agenda": "quarterly numbers"}')
    form.get_by_role("button", name="Create room").click()
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess").get_by_text(f"Create room '{name}' on default: done.")).to_be_visible()
    listed = lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[name]))).rooms
    assert [(r.name, r.metadata) for r in listed] == [(name, '{"agenda": "quarterly numbers"}')]

    # Same session, right after the "done" banner: the keyed Controls tabs keep their choice
    # through the reruns that show and then drop the banner.
    open_options(page, "Room")
    page.keyboard.type(name)
    page.get_by_role("option").filter(has_text=name).click()
    wait_idle(page)
    expect(selectbox(page, "Room")).to_have_value(room_option(name))

    page.get_by_role("tab", name="Room", exact=True).click()
    page.get_by_role("button", name="End room", exact=True).click()
    wait_idle(page)
    expect(page.get_by_text(f"End room '{name}' on default and disconnect its 0 participant(s)?")).to_be_visible()
    expect(page.get_by_role("button", name="No, go back", exact=True)).to_be_visible()
    page.get_by_role("button", name="Yes, end room", exact=True).click()
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess").get_by_text(f"End room '{name}': done.")).to_be_visible()

    remaining = lk_api.poll(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[name])),
                            until=lambda r: not r.rooms)  # fmt: skip
    assert list(remaining.rooms) == []


def test_settings_names_a_wrong_secret_within_five_seconds(page: Page, livekit_server) -> None:
    goto(page, "/servers")
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Test and save"))
    form.get_by_label("Name").fill("staging")
    form.get_by_label("URL").fill(livekit_server.ws_url)
    form.get_by_label("API key").fill(livekit_server.api_key)
    form.get_by_label("API secret").fill("not-the-secret-" + "x" * 24)
    form.get_by_role("button", name="Test", exact=True).click()
    expect(page.get_by_text(re.compile("^staging: unauthorized"))).to_be_visible(timeout=5000)

    form.get_by_label("URL").fill(f"ws://127.0.0.1:{free_port()}")  # free again: nothing listens
    form.get_by_role("button", name="Test", exact=True).click()
    expect(page.get_by_text(re.compile("^staging: unreachable"))).to_be_visible(timeout=5000)
    screenshot(page, "settings")


def test_agents_page_shows_a_dispatched_agent_job(page: Page, agent_worker, participants: ParticipantPool, lk_api) -> None:
    room = readable("support-line")
    participants.join(room, "caller", name="Caller", publish_audio=True)
    lk_api.call(lambda lk: lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent_worker.agent_name, room=room, metadata='{"lang": "en"}')
    ))  # fmt: skip
    joined = lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)),
                         until=lambda r: any(p.kind == api.ParticipantInfo.Kind.AGENT for p in r.participants))  # fmt: skip
    assert any(p.kind == api.ParticipantInfo.Kind.AGENT for p in joined.participants)

    goto(page, "/agents")
    expect(metric(page, "Jobs running")).not_to_have_text("0", timeout=LIVE_TIMEOUT_MS)
    expect(metric(page, "Dispatches")).not_to_have_text("0")
    expect(page.get_by_text("No agent is in any room.")).to_have_count(0)
    screenshot(page, "agents")


def test_the_room_picker_appears_by_itself_when_a_room_to_pick_appears(page: Page, lk_api) -> None:
    name = readable("arrives-later")
    goto(page, "/rooms")
    search = page.get_by_role("textbox", name="Search")
    search.fill(name)
    search.press("Enter")
    wait_idle(page)
    expect(page.get_by_text("No room to show.")).to_be_visible()

    lk_api.create_room(name)  # the page only refreshes its list by itself; nobody touches it
    expect(selectbox(page, "Room")).to_have_value(room_option(name), timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_text("No room to show.")).to_have_count(0)


def test_a_track_muted_elsewhere_shows_muted_in_the_controls_by_itself(page: Page, participants: ParticipantPool) -> None:
    room = readable("mutes")
    speaker = participants.join(room, "speaker", publish_audio=True)
    goto(page, "/rooms")
    search_rooms(page, room)
    expect(selectbox(page, "Room")).to_have_value(room_option(room))
    state = page.get_by_text(re.compile(r"^microphone · audio · TR_\w+ · (live|muted)$"))
    expect(state).to_have_text(re.compile("live$"), timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Mute", exact=True)).to_be_visible()

    participants.set_muted(speaker, "audio", True)  # the speaker mutes themselves: nothing is clicked here
    expect(state).to_have_text(re.compile("muted$"), timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Unmute", exact=True)).to_be_visible()
