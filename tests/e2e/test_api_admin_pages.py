"""The API keys and Webhooks pages in the real browser: an admin creates a key and sees it once,
registers a receiver and sees its signing secret once; both are then on the server side as
the pages said (the key authenticates against the API)."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import goto, screenshot, wait_idle

KEY = re.compile(r"lkd_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def test_a_key_made_in_the_browser_is_shown_once_and_authenticates(page: Page, dashboard: str) -> None:
    goto(page, "/api-keys")
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Create key"))
    form.get_by_role("textbox", name="Name").fill("booking system")
    form.get_by_role("button", name="Create key").click()
    wait_idle(page)
    code = page.get_by_test_id("stCode")
    expect(code).to_contain_text("lkd_")
    [key] = KEY.findall(code.inner_text())
    screenshot(page, "api-keys")
    answer = httpx.get(f"{dashboard}/api/v1/session", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200 and answer.json()["role"] == "operator"
    goto(page, "/api-keys")
    expect(page.get_by_test_id("stCode")).to_have_count(0)


def test_a_receiver_registered_in_the_browser_shows_its_secret_once(page: Page) -> None:
    goto(page, "/webhooks")
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Add receiver"))
    form.get_by_role("textbox", name="URL").fill("http://127.0.0.1:9/hooks/livekit")
    form.get_by_role("textbox", name="Description").fill("chat bot")
    form.get_by_text("meeting.started").click()
    form.get_by_role("button", name="Add receiver").click()
    wait_idle(page)
    expect(page.get_by_text("whsec_").first).to_be_visible()
    screenshot(page, "webhooks")
    goto(page, "/webhooks")
    expect(page.get_by_text("whsec_")).to_have_count(0)
    expect(page.locator("[data-testid^='glide-cell']", has_text="chat bot").first).to_be_attached()  # a cell of the receivers' grid
