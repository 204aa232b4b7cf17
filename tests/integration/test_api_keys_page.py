"""The API keys page (AppTest over real services): a key created there is shown once and works
against the API, the list shows its prefix and never the key, and Revoke asks first, then the
key is refused."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from lib.auth.policy import Actor
from lib.services import Services
from tests.integration.test_api import build_app
from tests.integration.test_pages import dashboard, run_page  # noqa: F401 - fixture

KEY = re.compile(r"lkd_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def shown_keys(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [k for c in at.code for k in KEY.findall(c.value)]


def test_a_key_made_on_the_page_is_shown_once_works_and_is_refused_once_revoked(dashboard: Services) -> None:  # noqa: F811 - fixture
    at = run_page("api_keys")
    form = "create_key"
    at.text_input(key=f"{form}_name").input("booking")
    at.selectbox(key=f"{form}_role").select("host")
    at.button(key=f"FormSubmitter:{form}-Create key").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [key] = shown_keys(at)
    assert any("created" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["prefix"]) == [key[:12]] and list(table["role"]) == ["host"] and list(table["acts as"]) == ["page-admin"]
    assert key not in table.to_csv()

    at.run()
    assert shown_keys(at) == [], "shown once"

    with TestClient(build_app(dashboard, rate=0), base_url="http://127.0.0.1") as client:
        assert client.get("/api/v1/session", headers={"Authorization": f"Bearer {key}"}).json()["role"] == "host"
        [made] = dashboard.api_keys.list(Actor.system())
        at.button(key=f"revoke_{made.id}").click().run()
        assert client.get("/api/v1/session", headers={"Authorization": f"Bearer {key}"}).status_code == 200, "not before Yes"
        at.button(key=f"revoke_{made.id}_yes").click().run()
        assert client.get("/api/v1/session", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert any("revoked" in s.value for s in at.success)
    assert list(at.dataframe[0].value["state"]) == ["revoked"]
