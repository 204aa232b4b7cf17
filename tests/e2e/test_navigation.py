"""Page URLs and what the browser fetches, in a real browser against the real app: a role's start
page has a URL of its own, a page the role may not open says so, and every request the pages
make goes to the dashboard itself (nothing from a font host or a CDN, the page icon included)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Request, expect

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USER, APP_TIMEOUT_MS, VIEWPORT, goto, sign_in, wait_idle

ADMIN_PAGES = ("/overview", "/rooms", "/agents", "/history", "/sessions", "/tokens", "/servers", "/users", "/webhooks", "/audit", "/api-keys", "/account")
TITLES = {"/overview": "Overview", "/rooms": "Rooms", "/agents": "Agents", "/history": "History", "/sessions": "Sessions",
          "/tokens": "Tokens", "/servers": "Servers", "/users": "Users", "/webhooks": "Webhooks", "/audit": "Audit", "/api-keys": "API keys",
          "/account": "Account"}  # fmt: skip


def title(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("[data-testid='stMain'] h1").first


def test_every_page_opens_by_its_typed_url_including_the_start_page(page: Page) -> None:
    for path in ADMIN_PAGES:
        goto(page, path)
        expect(title(page)).to_have_text(TITLES[path])
        expect(page.get_by_text("Page not found")).to_have_count(0)
    goto(page, "/")
    expect(title(page)).to_have_text("Overview")


def test_every_request_stays_on_the_dashboard(browser: Browser, dashboard: str) -> None:
    context = browser.new_context(viewport=VIEWPORT, base_url=dashboard)
    context.set_default_timeout(APP_TIMEOUT_MS)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    failed: list[Request] = []
    context.on("requestfailed", lambda request: failed.append(request))
    try:
        visitor = context.new_page()
        sign_in(visitor, ADMIN_USER, ADMIN_PASSWORD)
        expect(title(visitor)).to_be_visible()
        for path in ADMIN_PAGES:
            goto(visitor, path)
        wait_idle(visitor)
        icon = visitor.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
    finally:
        context.close()

    ours = urlsplit(dashboard).netloc
    outside = sorted({u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != ours})
    assert outside == [], outside
    assert icon and all(urlsplit(h).netloc == ours for h in icon), icon
    assert not [r.url for r in failed if urlsplit(r.url).netloc != ours]


def test_a_page_the_role_may_not_open_says_so(browser: Browser, dashboard: str, page: Page) -> None:
    goto(page, "/users")
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Create user"))
    form.get_by_label("User name").fill("analyst-hana")
    form.get_by_role("textbox", name="Initial password").fill("hana-password-123")
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("stAlertContentSuccess").get_by_text("User 'analyst-hana' created as analyst.")).to_be_visible()

    context = browser.new_context(viewport=VIEWPORT, base_url=dashboard)
    context.set_default_timeout(APP_TIMEOUT_MS)
    try:
        hana = context.new_page()
        sign_in(hana, "analyst-hana", "hana-password-123", "/overview")
        expect(title(hana)).to_have_text("Overview")
        for path in ("/rooms", "/servers", "/audit"):
            hana.goto(path)
            expect(hana.locator("[data-testid='stMain']")).to_contain_text("The analyst role may not open this page.")
            expect(hana.get_by_text("Page not found")).to_have_count(0)
    finally:
        context.close()
