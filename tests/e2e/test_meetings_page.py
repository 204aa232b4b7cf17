"""The Meetings page in a real browser against the real app and livekit-server: a meeting
started from the form has its room on the server, and ending it for everyone (after the
confirmation) deletes the room."""

from __future__ import annotations

import secrets

import pytest
from livekit import api
from playwright.sync_api import Page, expect

from tests.e2e.conftest import goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def meeting_rooms(lk_api) -> set[str]:  # type: ignore[no-untyped-def]
    return {r.name for r in lk_api.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest())).rooms if r.name.startswith("meet-")}


def test_a_meeting_started_in_the_browser_has_its_room_until_it_is_ended_for_everyone(page: Page, lk_api) -> None:
    before = meeting_rooms(lk_api)
    title = f"Design review {secrets.token_hex(2)}"
    goto(page, "/meetings")
    page.get_by_role("tab", name="Start now").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Start meeting now"))
    form.get_by_role("textbox", name="Title").fill(title)
    form.get_by_role("button", name="Start meeting now").click()
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess").first).to_contain_text("is open until")
    [room] = meeting_rooms(lk_api) - before  # it exists as the page answers

    page.get_by_role("tab", name="Meetings", exact=True).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.get_by_text(room)).to_be_visible()
    screenshot(page, "meetings")
    page.get_by_role("tab", name="Change").click()
    page.get_by_role("button", name="End for everyone").click()
    wait_idle(page)
    assert room in meeting_rooms(lk_api)  # only asked so far
    page.get_by_role("button", name="Yes, end for everyone").click()
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentSuccess").first).to_contain_text("Meeting ended")
    assert room not in meeting_rooms(lk_api)
