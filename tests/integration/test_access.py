"""Who may open what: every page for every role and for no session (AppTest, in-process), the
navigation each role is offered, the custom routes over real HTTP (`streamlit run app.py` in a
subprocess), and the `requires()` guard of custom routes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from lib import services
from lib.api.state import ProvideServices
from lib.auth.guard import TOKEN_STATE_KEY
from lib.auth.roles import CAPABILITY_ROLES, PAGE_ROLES, ROLES, may_open
from lib.api.signin import requires
from lib.auth.sessions import COOKIE_NAME
from lib.config import REPO_ROOT, load_settings
from lib.livekit.devserver import DevServer
from lib.auth.policy import Actor
from tests.app_process import AppProcess
from tests.integration.test_auth import NO_SECRETS_FILE, page_request, sent_to_sign_in

pytestmark = pytest.mark.integration

PAGES = REPO_ROOT / "pages"
PAGE_IDS = (
    "overview", "rooms", "agents", "history", "sessions", "meetings", "tokens", "settings", "users", "webhooks", "audit", "api_keys", "account",
)  # fmt: skip
TITLES = {
    "overview": "Overview", "rooms": "Rooms", "agents": "Agents", "history": "History", "sessions": "Sessions",
    "meetings": "Meetings", "tokens": "Tokens", "settings": "Servers", "users": "Users", "webhooks": "Webhooks", "audit": "Audit",
    "api_keys": "API keys", "account": "Account",
}  # fmt: skip
# Written out by hand so that a wrong edit of PAGE_ROLES fails here, not only moves the matrix.
EXPECTED_PAGES = {
    "admin": set(PAGE_IDS),
    "operator": {"overview", "rooms", "agents", "history", "sessions", "tokens", "account"},
    "analyst": {"overview", "history", "sessions", "account"},
    "host": {"meetings", "tokens", "account"},
}
DEFAULT_TITLE = {"admin": "Overview", "operator": "Overview", "analyst": "Overview", "host": "Meetings"}
NOBODY = "no session"
SESSIONS = (*ROLES, NOBODY)
NOT_SIGNED_IN = "Your session has ended or you are not signed in."
PASSWORD = "access-password-" + secrets.token_urlsafe(8)


@pytest.fixture(scope="module")
def app(livekit_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    data = tmp_path_factory.mktemp("access")
    env = {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(data / "data"),
        "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(32),
    }
    with AppProcess(env, data / "app.log").start() as process:
        yield process


@pytest.fixture(scope="module")
def cookies(app: AppProcess) -> Iterator[dict[str, str | None]]:
    """A signed session cookie per role (None for no session), valid in this process (AppTest)
    and in the app's, which share the database and the session key."""
    services.stop()
    svc = services.start(load_settings(app.env, NO_SECRETS_FILE))
    by_session: dict[str, str | None] = {NOBODY: None}
    for role in ROLES:
        user = svc.users.create(Actor.system("test"), f"{role}-user", PASSWORD, role)
        by_session[role] = svc.logins.create(user.id)[0]
    try:
        yield by_session
    finally:
        services.stop()


def run_page(name: str, cookie: str | None) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=30)
    if cookie is not None:
        at.session_state[TOKEN_STATE_KEY] = cookie
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rendered(block: Block) -> list[tuple[str, str]]:
    """Every element (not container) in `block`: its type, and its text for messages."""
    return [
        (node.type, node.value if node.type in ("title", "error", "warning", "info") else "")
        for node in block
        if not isinstance(node, Block)
    ]


# ----- the matrix ---------------------------------------------------------------------------


def test_page_roles_grant_each_role_exactly_the_documented_pages() -> None:
    granted = {role: {page for page, roles in PAGE_ROLES.items() if role in roles} for role in ROLES}

    assert granted == EXPECTED_PAGES
    assert set(PAGE_ROLES) == set(PAGE_IDS) == {p.stem for p in PAGES.glob("*.py")} - {"navigation", "signin"}


def test_only_admins_and_operators_may_control_rooms() -> None:
    assert CAPABILITY_ROLES["control"] == {"admin", "operator"}


def test_admins_operators_and_hosts_issue_tokens_and_only_admins_and_operators_for_any_room() -> None:
    assert CAPABILITY_ROLES["issue_tokens"] == {"admin", "operator", "host"}
    assert CAPABILITY_ROLES["issue_tokens_any_room"] == {"admin", "operator"}


@pytest.mark.parametrize("page", PAGE_IDS)
@pytest.mark.parametrize("session", SESSIONS)
def test_each_page_opens_for_the_roles_allowed_and_refuses_everyone_else(cookies: dict[str, str | None], session: str, page: str) -> None:
    at = run_page(page, cookies[session])
    shown = rendered(at.main)

    if session == NOBODY:
        assert shown == [("warning", NOT_SIGNED_IN), ("markdown", "")]
    elif may_open(session, page):
        assert [t.value for t in at.title] == [TITLES[page]]
        assert not [m for kind, m in shown if "may not open" in m or m == NOT_SIGNED_IN]
    else:
        assert shown == [("error", f"The {session} role may not open this page.")], "nothing of the page itself"
    if session == NOBODY or not may_open(session, page):
        assert not at.dataframe and not at.metric and not at.title
        assert rendered(at.sidebar) == []


def offered_pages(at: AppTest) -> set[str]:
    """The page files the navigation registered: AppTest switches only to those."""
    offered = set()
    for page in PAGE_IDS:
        try:
            at.switch_page(f"{page}.py")
        except ValueError:
            continue
        offered.add(page)
    return offered


def linked_pages(at: AppTest) -> set[str]:
    """The pages the sidebar links to."""
    by_title = {title: page for page, title in TITLES.items()}
    return {by_title[link.value] for link in at.sidebar.page_link}


@pytest.mark.parametrize("role", ROLES)
def test_navigation_links_a_role_exactly_its_pages_and_each_renders(cookies: dict[str, str | None], role: str) -> None:
    at = run_page("navigation", cookies[role])

    assert [t.value for t in at.title] == [DEFAULT_TITLE[role]]
    assert f"Signed in as {role}-user ({role})" in [c.value for c in at.sidebar.caption]
    assert linked_pages(at) == {p for p in PAGE_IDS if may_open(role, p)} == EXPECTED_PAGES[role]
    for page in sorted(EXPECTED_PAGES[role]):
        at.switch_page(f"{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert [t.value for t in at.title] == [TITLES[page]], page
        assert not [e.value for e in at.error if "may not open" in e.value], page


@pytest.mark.parametrize("role", ROLES)
def test_every_page_has_its_url_and_one_the_role_may_not_open_says_so(cookies: dict[str, str | None], role: str) -> None:
    # Registered for everyone signed in: a typed /users is the page's own refusal, never
    # Streamlit's "Page not found", and a role's start page has a URL of its own too.
    at = run_page("navigation", cookies[role])

    assert offered_pages(at) == set(PAGE_IDS)
    for page in sorted(set(PAGE_IDS) - EXPECTED_PAGES[role]):
        at.switch_page(f"{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert [e.value for e in at.error] == [f"The {role} role may not open this page."], page
        assert not at.title and not at.dataframe


def test_navigation_without_a_session_offers_only_the_sign_in_page(cookies: dict[str, str | None]) -> None:
    at = run_page("navigation", None)

    assert rendered(at.main) == [("title", "LiveKit Dashboard"), ("info", "Sign in to continue."), ("markdown", "")]
    assert offered_pages(at) == set()
    assert not at.sidebar.caption


# ----- custom routes over HTTP --------------------------------------------------------------


@pytest.mark.parametrize("session", SESSIONS)
def test_health_is_open_to_everyone(app: AppProcess, cookies: dict[str, str | None], session: str) -> None:
    response = page_request(app, "/healthz", cookies[session])

    assert response.status_code == 200
    assert response.json()["ready"] is True


@pytest.mark.parametrize("session", SESSIONS)
def test_the_sign_in_form_is_open_and_skipped_when_signed_in(app: AppProcess, cookies: dict[str, str | None], session: str) -> None:
    response = page_request(app, "/auth/login?next=%2Frooms", cookies[session])

    if session == NOBODY:
        assert response.status_code == 200 and 'name="password"' in response.text
    else:
        assert response.status_code == 303 and response.headers["location"] == "/rooms"


@pytest.mark.parametrize("path", ["/", "/rooms", "/audit", "/account", "/rooms?server=default"])
def test_a_page_url_without_a_session_redirects_to_sign_in_and_back(app: AppProcess, path: str) -> None:
    response = page_request(app, path, None)

    assert sent_to_sign_in(response, path), (response.status_code, response.headers)


@pytest.mark.parametrize("path", ["/", "/rooms", "/audit", "/tokens", "/account"])
@pytest.mark.parametrize("role", ROLES)
def test_a_page_url_with_a_session_is_served(app: AppProcess, cookies: dict[str, str | None], role: str, path: str) -> None:
    # Served to every role: the page script decides (above) whether the role may see it.
    response = page_request(app, path, cookies[role])

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


# ----- requires() on a custom route ---------------------------------------------------------


@requires("control")
async def end_everything(request: Request) -> Response:
    return PlainTextResponse(f"done by {request.state.user.username}")


# Routes find the services where the app's middleware puts them, as app.py does.
CONTROL_APP = Starlette(
    routes=[Route("/control", end_everything, methods=["POST"])],
    middleware=[Middleware(ProvideServices, services=services.current)],
)


@pytest.mark.parametrize(
    "session, status",
    [(NOBODY, 401), ("forged", 401), ("host", 403), ("analyst", 403), ("operator", 200), ("admin", 200)],
)
def test_requires_answers_401_without_session_403_without_capability_and_runs_the_route_otherwise(
    cookies: dict[str, str | None], session: str, status: int
) -> None:
    cookie = "forged." + "0" * 64 if session == "forged" else cookies[session]
    client = TestClient(CONTROL_APP, cookies={COOKIE_NAME: cookie} if cookie else None)

    response = client.post("/control")

    assert response.status_code == status, response.text
    if status == 200:
        assert response.text == f"done by {session}-user"
    elif status == 403:
        assert response.json() == {"error": f"the {session} role may not do this"}
    else:
        assert response.json() == {"error": "sign in first"}
