"""The Webhooks page through Streamlit's AppTest, against a real livekit-server: an admin adds a
receiver with the event checkboxes and sees its secret once, pauses it through the
confirmation, sees why in the list, resumes and removes it; other roles may not open it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib import services
from lib.auth.guard import TOKEN_STATE_KEY
from lib.auth.policy import Actor
from lib.config import load_settings
from lib.livekit.devserver import REPO_ROOT, DevServer
from lib.services import Services
from tests.integration.test_pages import HOSTILE, MARKDOWN_KINDS

pytestmark = pytest.mark.integration

PAGE = str(REPO_ROOT / "pages" / "webhooks.py")


@pytest.fixture
def dashboard(livekit_server: DevServer, tmp_path: Path) -> Iterator[Services]:
    env = {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(tmp_path / "data"),
        "DASHBOARD_SECRET_KEY": "test-secret-key-for-the-webhooks-page",
    }
    services.stop()
    svc = services.start(load_settings(env, tmp_path / "none.toml"))
    try:
        yield svc
    finally:
        services.stop()


def run(svc: Services, role: str = "admin") -> AppTest:
    user = svc.users.create(Actor.system("test"), f"page-{role}", "page-user-password", role)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state[TOKEN_STATE_KEY] = svc.logins.create(user.id)[0]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    [found] = [b for b in at.button if b.label == label]
    return found


def test_an_admin_adds_a_receiver_sees_its_secret_once_pauses_resumes_and_removes_it(dashboard: Services) -> None:
    at = run(dashboard)
    assert any("No receiver yet" in i.value for i in at.info)
    [url] = [t for t in at.text_input if t.label == "URL"]
    url.input("https://hooks.example.com/in")
    [description] = [t for t in at.text_input if t.label == "Description"]
    description.input(HOSTILE)
    for box in at.checkbox:
        if box.label in ("meeting.started", "room.finished"):
            box.check()
    button(at, "Add receiver").click().run()
    assert not at.exception

    [receiver] = dashboard.webhooks.receivers(Actor.system())
    assert (receiver.url, receiver.events, receiver.description) == ("https://hooks.example.com/in", ("meeting.started", "room.finished"), HOSTILE)
    [code] = at.code
    assert code.value.startswith("whsec_")
    assert any("added" in s.value for s in at.success)
    at.run()
    assert not at.code, "the secret is shown once"

    button(at, "Pause").click().run()
    button(at, "Yes, pause").click().run()
    assert dashboard.webhooks.get(Actor.system(), receiver.id).state == "paused"
    [table] = [d.value for d in at.dataframe if "state" in d.value.columns]
    assert table.state[0].startswith("paused since ") and "because paused by page-admin" in table.state[0]
    for element in (e for kind in MARKDOWN_KINDS for e in getattr(at, kind)):
        assert HOSTILE not in element.value, "a description is text, never markup"

    button(at, "Resume").click().run()
    button(at, "Yes, resume").click().run()
    assert dashboard.webhooks.get(Actor.system(), receiver.id).state == "active"
    button(at, "Remove").click().run()
    button(at, "Yes, remove").click().run()
    assert dashboard.webhooks.receivers(Actor.system()) == []
    actions = [r.action for r in dashboard.audit.query(actor="page-admin")]
    assert {"webhook.add", "webhook.pause", "webhook.resume", "webhook.remove"} <= set(actions)


def test_a_bad_url_is_refused_on_the_form_and_nothing_is_added(dashboard: Services) -> None:
    at = run(dashboard)
    [url] = [t for t in at.text_input if t.label == "URL"]
    url.input("ftp://hooks.example.com/")
    at.checkbox[0].check()
    button(at, "Add receiver").click().run()
    assert any("URL starts with http" in e.value for e in at.error), [e.value for e in at.error]
    assert dashboard.webhooks.receivers(Actor.system()) == []


@pytest.mark.parametrize("role", ["operator", "host", "analyst"])
def test_other_roles_may_not_open_the_page(dashboard: Services, role: str) -> None:
    at = run(dashboard, role)
    assert any("may not open this page" in e.value for e in at.error)
    assert not at.text_input
