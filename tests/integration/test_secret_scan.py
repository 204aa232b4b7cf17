"""No secret leaves the dashboard: after a realistic session (sign-ins that fail and succeed, a
sign-out, a stored second server, a room created through the Rooms page, every page rendered for
an admin), nothing the app answered, logged, audited, rendered or exported holds a LiveKit API
secret, a stored server's secret, a password or its bcrypt hash, a session token, the session key
or DASHBOARD_SECRET_KEY."""

from __future__ import annotations

import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from streamlit.testing.v1 import AppTest

from lib import services
from lib.auth.audit import to_csv
from lib.auth.guard import TOKEN_STATE_KEY
from lib.auth.sessions import COOKIE_NAME
from lib.config import REPO_ROOT, load_settings, mask_secret
from lib.livekit.devserver import DevServer
from lib.models import User
from lib.services import Services
from lib.auth.policy import Actor
from tests.app_process import AppProcess
from tests.integration.test_auth import NO_SECRETS_FILE, sign_in
from tests.integration.test_pages import rendered_strings

pytestmark = pytest.mark.integration

PAGES = REPO_ROOT / "pages"
PAGE_FILES = ("navigation", "overview", "rooms", "agents", "tokens", "settings", "users", "audit", "account")
SERVER = "default"  # the environment server's name
STORED = "stored"
# The stored server is added straight to the registry (its key is wrong on purpose, so the
# Servers page would refuse it); its failed test on that page is audited.
EXPECTED_ACTIONS = {"user.create", "server.test", "login", "login.failed", "logout", "room.create", "token.issue"}


class LogRecords(logging.Handler):
    """Every log line this process writes while the session runs, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Trail:
    """What the session left behind, by where it was found; `forbidden` names each secret."""

    forbidden: dict[str, str] = field(default_factory=dict)
    http: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    pages: dict[str, list[str]] = field(default_factory=dict)
    audit_rows: list[dict[str, object]] = field(default_factory=list)  # every column of every row
    audit_csv: str = ""
    database: str = ""
    healthz: list[dict] = field(default_factory=list)
    issued_token: str = ""  # shown on the Tokens page once revealed, and nowhere else


def recorder(trail: Trail):  # type: ignore[no-untyped-def]
    """An httpx response hook keeping each answer's status, headers (but the Set-Cookie that
    must carry the token) and body."""

    def record(response: httpx.Response) -> None:
        response.read()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items() if k.lower() != "set-cookie")
        trail.http.append(f"{response.request.method} {response.request.url} -> {response.status_code}\n{headers}\n\n{response.text}")

    return record


def page_as(name: str, cookie: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=30)
    at.session_state[TOKEN_STATE_KEY] = cookie
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def stored_server_refused(body: dict) -> bool:
    return any(s["name"] == STORED and s["error"] for s in body.get("servers", []))


def browse(app: AppProcess, trail: Trail, admin_password: str, operator_password: str) -> dict[str, str]:
    """Sign-ins that fail and succeed, pages, health and a sign-out over HTTP; the session
    cookies handed out, by who got them."""
    cookies: dict[str, str] = {}
    html = {"accept": "text/html"}
    with app.client() as browser:
        browser.event_hooks["response"] = [recorder(trail)]
        deadline = time.monotonic() + 20
        while not trail.healthz or not stored_server_refused(trail.healthz[-1]):
            assert time.monotonic() < deadline, trail.healthz
            trail.healthz.append(browser.get("/healthz").json())
        assert browser.get("/rooms", headers=html).status_code == 303
        assert sign_in(browser, "admin", "a-wrong-guess-of-the-password").status_code == 401
        assert sign_in(browser, "no-such-user", admin_password).status_code == 401
        assert sign_in(browser, "admin", admin_password, "/servers").status_code == 303
        cookies["admin"] = browser.cookies[COOKIE_NAME]
        for path in ("/", "/rooms", "/servers", "/users", "/audit", "/api-keys", "/account"):
            assert browser.get(path, headers=html).status_code == 200
        # The REST API's reads of everything that holds a server (the API's answers are scanned too).
        for path in ("/api/v1/admin/servers", "/api/v1/rooms", f"/api/v1/servers/{STORED}/rooms", "/api/v1/openapi.json", "/api/v1/session", "/api/docs"):
            assert browser.get(path).status_code in (200, 502), path  # 502: the stored server is one that refuses
        csrf_token = browser.get("/api/v1/session").json()["csrf_token"]
        assert browser.post("/api/v1/admin/servers/default/test", headers={"X-CSRF-Token": csrf_token}).status_code == 200
        assert browser.get("/auth/login").status_code == 303
        browser.get("/healthz")
    with app.client("127.0.0.2") as other:
        other.event_hooks["response"] = [recorder(trail)]
        assert sign_in(other, "operator-1", operator_password).status_code == 303
        cookies["operator"] = other.cookies[COOKIE_NAME]
        confirm = other.get("/auth/logout")
        csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
        assert other.post("/auth/logout", data={"csrf": csrf}).status_code == 303
        stale = other.get("/rooms", headers={**html, "cookie": f"{COOKIE_NAME}={cookies['operator']}"})
        assert stale.status_code == 303
    return cookies


def use_pages(svc: Services, trail: Trail, admin_cookie: str) -> None:
    """As the admin: create a room through the Rooms page, test the stored server's connection
    on the Servers page, and render every page."""
    room = f"scan-room-{secrets.token_hex(4)}"
    rooms = page_as("rooms", admin_cookie)
    next(t for t in rooms.text_input if t.label == "Room name").input(room)
    rooms.button(key="FormSubmitter:create_room-Create room").click().run()
    assert not rooms.exception and any("done" in s.value for s in rooms.success), [e.value for e in rooms.error]
    trail.pages["rooms after creating a room"] = list(rendered_strings(rooms))
    tokens = page_as("tokens", admin_cookie)
    tokens.text_input(key="token_room").input(room).run()
    tokens.text_input(key="issue_token_identity").input("scan-guest")
    tokens.button(key="FormSubmitter:issue_token-Issue token").click().run()
    tokens.toggle(key="token_reveal").set_value(True).run()
    assert not tokens.exception and len(tokens.code) == 1, [e.value for e in tokens.error]
    trail.issued_token = tokens.code[0].value
    trail.pages["tokens after issuing and revealing a token"] = list(rendered_strings(tokens))
    try:
        settings = page_as("settings", admin_cookie)
        settings.selectbox(key="test_pick").set_value(STORED).run()
        settings.button(key="test_saved").click().run()
        assert any("unauthorized" in e.value for e in settings.error), [e.value for e in settings.error]
        trail.pages["servers after a failed connection test"] = list(rendered_strings(settings))
        for name in PAGE_FILES:
            trail.pages[name] = list(rendered_strings(page_as(name, admin_cookie)))
    finally:
        svc.gateway.delete_room(SERVER, room)


@pytest.fixture(scope="module")
def trail(livekit_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    data = tmp_path_factory.mktemp("scan")
    secret_key, stored_secret = secrets.token_urlsafe(32), "stored-" + secrets.token_urlsafe(32)
    admin_password, operator_password = "scan-admin-" + secrets.token_urlsafe(12), "scan-operator-" + secrets.token_urlsafe(12)
    app = AppProcess(
        {
            "LIVEKIT_URL": livekit_server.ws_url,
            "LIVEKIT_API_KEY": livekit_server.api_key,
            "LIVEKIT_API_SECRET": livekit_server.api_secret,
            "DASHBOARD_DATA_DIR": str(data / "data"),
            "DASHBOARD_SECRET_KEY": secret_key,
            "DASHBOARD_ADMIN_PASSWORD": admin_password,
        },
        data / "app.log",
    )
    result = Trail()
    records = LogRecords()
    root = logging.getLogger()
    root_level = root.level
    root.addHandler(records)
    root.setLevel(logging.INFO)
    services.stop()
    try:
        # This process starts first (creating the admin), so the app finds the stored server.
        svc = services.start(load_settings(app.env, NO_SECRETS_FILE))
        svc.servers.add(STORED, livekit_server.ws_url, "stored-key", stored_secret)
        svc.users.create(Actor.system("admin"), "operator-1", operator_password, "operator")
        app.start()
        try:
            cookies = browse(app, result, admin_password, operator_password)
            use_pages(svc, result, cookies["admin"])
        finally:
            app.stop()
        with svc.engine.connect() as connection:
            result.audit_rows = [dict(row._mapping) for row in connection.execute(text("SELECT * FROM audit_events"))]
        result.audit_csv = to_csv(svc.audit.query())
        with svc.sessions() as session:
            hashes = dict(session.execute(select(User.username, User.password_hash)).all())
        with sqlite3.connect(data / "data" / "dashboard.sqlite") as db:
            result.database = "\n".join(db.iterdump())
        db.close()
        result.logs = {"app's stdout and stderr": app.log(), "this process's log": "\n".join(records.lines)}
        result.forbidden = {
            "the LiveKit API secret": livekit_server.api_secret,
            "the stored server's secret": stored_secret,
            "DASHBOARD_SECRET_KEY": secret_key,
            "the session key": (data / "data" / "session.key").read_text().strip(),
            "the admin's password": admin_password,
            "the operator's password": operator_password,
            **{f"the bcrypt hash of {name}": hashed for name, hashed in hashes.items()},
            **{f"the {who}'s session token": cookie.rsplit(".", 1)[0] for who, cookie in cookies.items()},
        }
        yield result
    finally:
        services.stop()
        root.removeHandler(records)
        root.setLevel(root_level)


def leaks(found: Mapping[str, str], forbidden: Mapping[str, str]) -> list[tuple[str, str]]:
    """(where, which secret) for every secret that occurs in a text."""
    assert all(len(secret) >= 16 for secret in forbidden.values()), "short values would match by chance"
    return [(where, name) for where, text_ in found.items() for name, secret in forbidden.items() if secret in text_]


def test_the_session_did_what_a_real_one_does(trail: Trail) -> None:
    """The scans below mean something only if there was something to scan."""
    actions = {row["action"] for row in trail.audit_rows}
    assert EXPECTED_ACTIONS <= actions, actions
    assert [r["result"] for r in trail.audit_rows if r["action"] == "room.create"] == ["ok"]
    assert trail.forbidden["the bcrypt hash of admin"] in trail.database, "the dump holds the tables' contents"
    assert len(trail.http) >= 20 and trail.logs["app's stdout and stderr"]
    assert set(trail.pages) >= set(PAGE_FILES)
    assert any(mask_secret(trail.forbidden["the stored server's secret"]) in s for s in trail.pages["settings"])
    assert {"the admin's session token", "the operator's session token", "the bcrypt hash of admin"} <= set(trail.forbidden)


def test_no_http_answer_reveals_a_secret(trail: Trail) -> None:
    assert leaks({answer.split("\n", 1)[0]: answer for answer in trail.http}, trail.forbidden) == []


def test_no_log_line_reveals_a_secret(trail: Trail) -> None:
    assert leaks(trail.logs, trail.forbidden) == []


def test_the_audit_trail_reveals_no_secret_in_any_column(trail: Trail) -> None:
    assert leaks({f"audit row {row['id']}": repr(row) for row in trail.audit_rows}, trail.forbidden) == []


def test_the_audit_csv_export_reveals_no_secret(trail: Trail) -> None:
    assert trail.audit_csv.count("\n") > len(EXPECTED_ACTIONS)
    assert leaks({"audit.csv": trail.audit_csv}, trail.forbidden) == []


def test_no_page_an_admin_sees_reveals_a_secret(trail: Trail) -> None:
    assert leaks({page: "\n".join(strings) for page, strings in trail.pages.items()}, trail.forbidden) == []


def test_an_issued_livekit_token_is_in_no_log_audit_row_database_or_http_answer(trail: Trail) -> None:
    assert trail.issued_token.count(".") == 2 and any(trail.issued_token in s for s in trail.pages["tokens after issuing and revealing a token"])
    # Its signature is the part that makes it a credential; the claims it carries are shown on purpose.
    signature = {"the issued token's signature": trail.issued_token.rsplit(".", 1)[1]}
    places = {
        **trail.logs,
        **{f"audit row {row['id']}": repr(row) for row in trail.audit_rows},
        "audit.csv": trail.audit_csv,
        "dashboard.sqlite": trail.database,
        **{answer.split("\n", 1)[0]: answer for answer in trail.http},
    }
    assert leaks(places, signature) == []


def test_the_database_holds_no_password_session_token_or_plain_secret(trail: Trail) -> None:
    # The users table holds the bcrypt hashes by design; everything else must be absent.
    not_hashes = {name: value for name, value in trail.forbidden.items() if not name.startswith("the bcrypt hash")}
    assert leaks({"dashboard.sqlite": trail.database}, not_hashes) == []
