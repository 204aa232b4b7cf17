"""The Tokens page in a real browser against the real app: a live room picked from the server
fills the form, the issued token stays hidden until revealed, and revealed it comes with a copy
button."""

from __future__ import annotations

import secrets

import pytest
from livekit import api
from playwright.sync_api import Page, expect

from lib.sim.participants import ParticipantPool
from tests.e2e.conftest import goto, screenshot, wait_idle
from tests.e2e.test_live_pages import open_options

pytestmark = pytest.mark.e2e


def test_a_token_issued_in_the_browser_is_hidden_until_revealed_and_then_copyable(page: Page, participants: ParticipantPool, lk_api) -> None:
    room = f"standup-{secrets.token_hex(2)}"
    participants.join(room, "someone")
    lk_api.poll(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[room])), until=lambda r: r.rooms)
    picker = page.get_by_role("combobox", name="Fill in a room", exact=True)
    for _ in range(20):  # the picker offers the rooms as the page's last run found them
        goto(page, "/tokens")
        if picker.is_enabled() and open_options(page, "Fill in a room").filter(has_text=room).count():
            break

    page.get_by_role("option").filter(has_text=room).click()
    wait_idle(page)
    expect(page.get_by_role("textbox", name="Room", exact=True)).to_have_value(room)
    form = page.get_by_test_id("stForm")
    form.get_by_role("textbox", name="Identity").fill("browser-guest")
    form.get_by_role("textbox", name="Attributes (one key=value per line)").fill("role=speaker")
    form.get_by_text("Room admin", exact=True).click()
    form.get_by_role("button", name="Issue token").click()
    wait_idle(page)

    expect(page.get_by_test_id("stJson")).to_contain_text("browser-guest")
    expect(page.get_by_test_id("stCode")).to_have_count(0)
    page.get_by_text("Reveal token", exact=True).click()
    wait_idle(page)
    code = page.get_by_test_id("stCode")
    expect(code).to_contain_text("eyJ")
    code.hover()
    expect(code.get_by_role("button")).to_have_count(1)  # the copy button
    screenshot(page, "tokens")
