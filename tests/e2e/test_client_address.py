"""The address the audit trail records for a person in a real browser, for the sign-in form (HTTP)
and for a control used on a page (the page script runs over Streamlit's websocket): the
browser's own address unless the dashboard trusts the proxy that forwarded it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from lib import services
from lib.auth.audit import AuditRecord
from lib.config import load_settings
from lib.livekit.devserver import DevServer
from tests.app_process import AppProcess
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USER, APP_TIMEOUT_MS, VIEWPORT, dashboard_env, goto, sign_in, wait_idle

pytestmark = pytest.mark.e2e

FORWARDED = "198.51.100.40"


def start_dashboard(livekit_server: DevServer, data_dir: Path, trusted_proxies: str) -> AppProcess:
    env = dashboard_env(livekit_server, data_dir, DASHBOARD_TRUSTED_PROXIES=trusted_proxies)
    return AppProcess(env, data_dir / "dashboard.log").start()


@pytest.fixture(scope="module", params=["", "127.0.0.1"], ids=["no trusted proxy", "trusted proxy on 127.0.0.1"])
def dashboard_process(request: pytest.FixtureRequest, livekit_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """Named like conftest's fixture so a failure report carries this dashboard's log."""
    with start_dashboard(livekit_server, tmp_path_factory.mktemp("addresses"), request.param) as app:
        yield app


def create_room_through_a_proxy(browser: Browser, app: AppProcess, room: str) -> None:
    """Sign in and create `room` on the Rooms page, every request (the websocket's too)
    carrying X-Forwarded-For as a reverse proxy would add it."""
    context = browser.new_context(viewport=VIEWPORT, base_url=app.url, extra_http_headers={"X-Forwarded-For": FORWARDED})
    context.set_default_timeout(APP_TIMEOUT_MS)
    try:
        page = context.new_page()
        sign_in(page, ADMIN_USER, ADMIN_PASSWORD)
        expect(page.locator("[data-testid='stMain'] h1").first).to_be_visible()
        goto(page, "/rooms")
        expander = page.get_by_test_id("stExpander").filter(has=page.get_by_text("Create a room", exact=True))
        expander.get_by_text("Create a room", exact=True).click()
        form = expander.get_by_test_id("stForm")
        form.get_by_label("Room name").fill(room)
        form.get_by_role("button", name="Create room").click()
        wait_idle(page)
        expect(page.get_by_test_id("stAlertContentSuccess").get_by_text(f"Create room '{room}' on default: done.")).to_be_visible()
    finally:
        context.close()


def audit_rows(app: AppProcess) -> list[AuditRecord]:
    built = services.build(load_settings(app.env, Path("/nonexistent/secrets.toml")))
    try:
        return built.audit.query()
    finally:
        built.close()


def test_the_audit_trail_records_the_browser_address_the_dashboard_may_believe(browser: Browser, dashboard_process: AppProcess, unique_name) -> None:
    app = dashboard_process
    room = unique_name("proxied")
    expected = FORWARDED if app.env["DASHBOARD_TRUSTED_PROXIES"] else "127.0.0.1"

    create_room_through_a_proxy(browser, app, room)

    rows = audit_rows(app)
    [login] = [r for r in rows if r.action == "login"]
    [created] = [r for r in rows if r.action == "room.create" and r.target.endswith(f"/{room}")]
    assert (login.address, created.address) == (expected, expected)
