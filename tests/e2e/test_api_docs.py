"""/api/docs in the real browser, on the real dashboard: Swagger UI from this machine lists
every operation of the API's description, a browser without a session is sent to sign in, and
no request leaves the dashboard."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USER, APP_TIMEOUT_MS, SCREENSHOTS, VIEWPORT, sign_in


def test_the_api_docs_list_every_operation_and_load_nothing_from_elsewhere(browser: Browser, dashboard: str) -> None:
    context = browser.new_context(viewport=VIEWPORT, base_url=dashboard)
    context.set_default_timeout(APP_TIMEOUT_MS)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    try:
        visitor = context.new_page()
        visitor.goto("/api/docs")
        expect(visitor.locator("#username")).to_be_visible()  # no session: the sign-in form first
        sign_in(visitor, ADMIN_USER, ADMIN_PASSWORD, "/auth/login?next=%2Fapi%2Fdocs")
        visitor.wait_for_url("**/api/docs")
        expect(visitor.locator(".opblock").first).to_be_visible()
        described = visitor.evaluate("() => fetch('/api/v1/openapi.json').then(r => r.json())")
        expected = sorted((m.upper(), p) for p, item in described["paths"].items() for m in item)
        shown = sorted(
            (b.locator(".opblock-summary-method").inner_text().strip(), b.locator(".opblock-summary-path").get_attribute("data-path"))
            for b in visitor.locator(".opblock").all()
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        visitor.screenshot(path=str(SCREENSHOTS / "api-docs.png"))  # not a Streamlit page: no wait for its script
    finally:
        context.close()

    assert shown == expected and len(shown) >= 25
    ours = urlsplit(dashboard).netloc
    outside = sorted({u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != ours})
    assert outside == [], outside
