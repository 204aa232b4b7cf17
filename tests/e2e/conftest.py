"""Browser tests: the real dashboard (`streamlit run app.py`) against the session's real
livekit-server, driven by Debian's chromium through Playwright's sync API.

Waiting is done by asking the app, never by sleeping: Streamlit marks its root element with
`data-test-connection-state` and `data-test-script-state` (the same hooks Streamlit's own e2e
suite waits on), and the live pages' text is awaited with `expect(...)`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from lib.livekit.devserver import REPO_ROOT, DevServer
from tests.app_process import AppProcess

E2E_DIR = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
VIEWPORT = {"width": 1400, "height": 900}
# Test runs write their screenshots where git ignores them; `make screenshots` copies a passing
# run's into docs/screenshots/, which the README shows, on purpose.
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
# Streamlit's first run of a page imports pandas and friends; later waits are much shorter.
APP_TIMEOUT_MS = 30_000
RERUN_SETTLE_MS = 300


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """On failure, attach the tail of the dashboard's log to the report."""
    report = yield
    app = getattr(item, "funcargs", {}).get("dashboard_process")
    if report.failed and isinstance(app, AppProcess):
        report.sections.append(("dashboard log (tail)", app.log_tail()))
    return report


ADMIN_USER = "admin"
ADMIN_PASSWORD = "e2e-admin-" + secrets.token_urlsafe(12)


def dashboard_env(livekit_server: DevServer, data_dir: Path, **extra: str) -> dict[str, str]:
    """The settings of a dashboard watching `livekit_server`, signed in to as ADMIN_USER."""
    return {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(data_dir),
        "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(32),
        "DASHBOARD_ADMIN_USERNAME": ADMIN_USER,
        "DASHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **extra,
    }


@pytest.fixture(scope="module")
def dashboard_process(livekit_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    data_dir = tmp_path_factory.mktemp("dashboard")
    app = AppProcess(dashboard_env(livekit_server, data_dir), data_dir / "dashboard.log").start()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def dashboard(dashboard_process: AppProcess) -> str:
    """The base URL of a running dashboard that watches the session's livekit-server."""
    return dashboard_process.url


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def anonymous_page(browser: Browser, dashboard: str) -> Iterator[Page]:
    """A fresh browser context (own cookies, own Streamlit session) with `dashboard` as base URL."""
    context = browser.new_context(viewport=VIEWPORT, base_url=dashboard)
    context.set_default_timeout(APP_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Page, username: str, password: str, path: str = "/") -> None:
    """Through the real sign-in form, as a person would."""
    page.goto(path)
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def page(anonymous_page: Page) -> Page:
    """A browser signed in as the admin the dashboard was started with."""
    sign_in(anonymous_page, ADMIN_USER, ADMIN_PASSWORD)
    expect(anonymous_page.locator("[data-testid='stMain'] h1").first).to_be_visible(timeout=APP_TIMEOUT_MS)
    return anonymous_page


def wait_idle(page: Page, timeout_ms: int = APP_TIMEOUT_MS) -> None:
    """Wait until the app is connected, its script has finished, and nothing shows as loading.

    The rerun a click or keypress causes is reported a moment after the event; without the
    short settle first, the page reads "notRunning" from before that rerun, and the next
    step acts on elements the rerun is about to replace (a selected tab snaps back).
    """
    page.wait_for_timeout(RERUN_SETTLE_MS)
    app = page.locator("[data-testid='stApp']")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout_ms)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout_ms)
    expect(page.locator("[data-testid='stSkeleton']")).to_have_count(0, timeout=timeout_ms)


def goto(page: Page, path: str) -> None:
    """Open a page of the dashboard (`/`, `/rooms`, ...) and wait until it has rendered."""
    page.goto(path)
    expect(page.locator("[data-testid='stMain'] h1").first).to_be_visible(timeout=APP_TIMEOUT_MS)
    wait_idle(page)


def screenshot(page: Page, name: str) -> Path:
    """Write `<SCREENSHOTS>/<name>.png` of the whole page once the app is idle.

    Streamlit scrolls inside its main element, not the document, so `full_page=True` alone
    stops at the viewport; the viewport grows to the content's height for the shot.
    """
    wait_idle(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 0")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
    try:
        wait_idle(page)
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)
    return path
