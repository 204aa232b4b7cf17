"""Signing in and the admin pages, in a real browser against the real app."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USER, SCREENSHOTS, goto, screenshot, sign_in


def test_a_page_without_a_session_leads_to_sign_in_and_back(anonymous_page: Page) -> None:
    page = anonymous_page
    page.goto("/agents")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2Fagents$"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "sign-in.png"))

    page.locator("#username").fill(ADMIN_USER)
    page.locator("#password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    expect(page.locator("#username")).to_have_value(ADMIN_USER)  # nothing typed is lost

    page.locator("#password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agents$"))
    expect(page.locator("[data-testid='stMain'] h1").first).to_have_text("Agents")
    cookie = next(c for c in page.context.cookies() if c["name"] == "lkdash_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > 0


def test_admin_creates_a_user_who_signs_in_with_only_their_pages(page: Page, browser, dashboard) -> None:
    goto(page, "/users")
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Create user"))
    form.get_by_label("User name").fill("analyst-ann")
    form.get_by_role("textbox", name="Initial password").fill("ann-password-123")
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("stAlertContentSuccess").get_by_text("User 'analyst-ann' created as analyst.")).to_be_visible()
    screenshot(page, "users")

    context = browser.new_context(base_url=dashboard, viewport={"width": 1400, "height": 900})
    try:
        ann = context.new_page()
        sign_in(ann, "analyst-ann", "ann-password-123")
        expect(ann.locator("[data-testid='stMain'] h1").first).to_have_text("Overview")
        nav = ann.get_by_test_id("stSidebar")
        expect(nav.get_by_role("link", name="Overview")).to_be_visible()
        expect(nav.get_by_role("link", name="Rooms")).to_have_count(0)
        # A page the role may not open, typed by hand, is refused, by the page itself.
        ann.goto("/users")
        expect(ann.locator("[data-testid='stMain']")).to_contain_text("The analyst role may not open this page.")
        expect(ann.locator("[data-testid='stMain']")).not_to_contain_text("Create a user")
    finally:
        context.close()

    goto(page, "/audit")
    expect(page.locator("[data-testid='stMain'] h1").first).to_have_text("Audit")
    screenshot(page, "audit")
