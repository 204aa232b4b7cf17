"""Signing in over real HTTP (`streamlit run app.py` in a subprocess, driven with httpx): the
session cookie, one answer for every failure, CSRF, lockout per user name and address and per
address, the client address behind trusted proxies or not, sign-out, tampered and stale cookies,
password rules, the first admin and the create-user command.

Every request comes from its own loopback address (127.0.0.x) where lockout counts matter, so
the failures one test makes never lock another test out."""

from __future__ import annotations

import hashlib
import html
import itertools
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select, update
from streamlit.testing.v1 import AppTest

from lib import services
from lib.auth.guard import TOKEN_STATE_KEY
from lib.api.signin import CSRF_COOKIE
from lib.auth.sessions import COOKIE_NAME, SessionService
from lib.auth.users import ADDRESS_LOCKOUT_FAILURES, LOCKED_OUT, LOCKOUT_FAILURES, LOCKOUT_WINDOW, SIGN_IN_FAILED, UserError, UserService
from lib.config import REPO_ROOT, load_settings
from lib.models import AuditEvent, LoginAttempt, LoginSession, User
from lib.services import Services
from lib.auth.policy import Actor
from tests.app_process import AppProcess, base_env

PAGES = REPO_ROOT / "pages"
NO_SECRETS_FILE = Path("/nonexistent/secrets.toml")  # settings come from the environment only
ADMIN_PASSWORD = "auth-admin-" + secrets.token_urlsafe(12)
PASSWORD = "right-password-" + secrets.token_urlsafe(8)
NOT_SIGNED_IN = "Your session has ended or you are not signed in."
FORM_EXPIRED = "The form expired. Please sign in again."
# Users the tests sign in as (besides the first admin), each used by one behaviour only.
USERS = {
    "wrong-pw-user": "operator", "locked-user": "operator", "compared-user": "host", "address-victim": "analyst",
    "viewer": "analyst", "disabled-user": "analyst", "ended-user": "operator", "framed-user": "analyst", "flooded-user": "operator",
}  # fmt: skip
_addresses = (f"127.0.0.{n}" for n in itertools.count(10))


def fresh_address() -> str:
    """A loopback address no request of this module has come from yet."""
    return next(_addresses)


def sign_in(client: httpx.Client, username: str, password: str, next_path: str = "/") -> httpx.Response:
    """Fetch the form (and its CSRF cookie) and submit it, as a browser does."""
    form = client.get("/auth/login", params={"next": next_path})
    assert form.status_code == 200, form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    return client.post("/auth/login", data={"csrf": csrf.group(1), "username": username, "password": password, "next": next_path})


def sign_in_from(app: AppProcess, address: str, username: str, password: str) -> httpx.Response:
    with app.client(address) as client:
        return sign_in(client, username, password)


def error_message(response: httpx.Response) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text)
    return html.unescape(found.group(1)) if found else ""


def set_cookies(response: httpx.Response) -> dict[str, Morsel[str]]:
    cookies: dict[str, Morsel[str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        cookies.update(jar)
    return cookies


def page_request(app: AppProcess, path: str, cookie: str | None) -> httpx.Response:
    """A browser's request for a page, with `cookie` as the session cookie (sent as raw bytes,
    so a tampered value may hold any character)."""
    headers = [(b"accept", b"text/html")]
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE_NAME}={cookie}".encode()))
    with app.client() as client:
        return client.get(path, headers=headers)


def sent_to_sign_in(response: httpx.Response, path: str) -> bool:
    return response.status_code == 303 and response.headers["location"] == f"/auth/login?next={quote(path, safe='')}"


def account_page(cookie: str) -> AppTest:
    """The account page run in this process with `cookie` in the AppTest seam for cookies."""
    at = AppTest.from_file(str(PAGES / "account.py"), default_timeout=30)
    at.session_state[TOKEN_STATE_KEY] = cookie
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The dashboard started for the first time with DASHBOARD_ADMIN_PASSWORD."""
    data = tmp_path_factory.mktemp("auth")
    env = {
        "DASHBOARD_DATA_DIR": str(data / "data"),
        "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(32),
        "DASHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    with AppProcess(env, data / "app.log").start() as process:
        yield process


@pytest.fixture(scope="module")
def svc(app: AppProcess) -> Iterator[Services]:
    """This process's services over the app's database and keys, with the test users."""
    services.stop()
    built = services.start(load_settings(app.env, NO_SECRETS_FILE))
    for username, role in USERS.items():
        built.users.create(Actor.system("test"), username, PASSWORD, role)
    try:
        yield built
    finally:
        services.stop()


def user_id(svc: Services, username: str) -> int:
    user = svc.users.get(username)
    assert user is not None
    return user.id


# ----- signing in ---------------------------------------------------------------------------


def test_sign_in_sets_an_http_only_lax_session_cookie_for_the_whole_site(app: AppProcess) -> None:
    with app.client() as client:
        response = sign_in(client, "admin", ADMIN_PASSWORD, "/rooms")

        assert response.status_code == 303 and response.headers["location"] == "/rooms"
        session = set_cookies(response)[COOKIE_NAME]
        assert session["httponly"] is True
        assert session["samesite"].lower() == "lax"
        assert session["path"] == "/"
        assert int(session["max-age"]) == 12 * 3600  # DASHBOARD_SESSION_HOURS' default
        assert set_cookies(response)[CSRF_COOKIE]["max-age"] == "0", "the form's CSRF cookie is cleared"
        assert client.get("/rooms", headers={"accept": "text/html"}).status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_sends_the_browser_to_another_site(app: AppProcess, target: str) -> None:
    with app.client() as client:
        response = sign_in(client, "admin", ADMIN_PASSWORD, target)

    assert response.status_code == 303 and response.headers["location"] == "/"


def test_wrong_password_and_unknown_user_get_the_same_answer(app: AppProcess, svc: Services) -> None:
    address = fresh_address()
    wrong_password = sign_in_from(app, address, "wrong-pw-user", "not-the-password")
    unknown_user = sign_in_from(app, address, "nobody-" + secrets.token_hex(4), PASSWORD)

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert error_message(wrong_password) == error_message(unknown_user) == SIGN_IN_FAILED
    assert COOKIE_NAME not in set_cookies(wrong_password) and COOKIE_NAME not in set_cookies(unknown_user)


@pytest.mark.parametrize("forgery", ["missing", "different", "no cookie", "non-ascii"])
def test_sign_in_without_the_matching_csrf_token_is_refused(app: AppProcess, forgery: str) -> None:
    with app.client() as client:
        form = client.get("/auth/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        fields = {"username": "admin", "password": ADMIN_PASSWORD, "next": "/"}
        if forgery == "different":
            fields["csrf"] = secrets.token_urlsafe(24)
        elif forgery == "no cookie":
            client.cookies.clear()
            fields["csrf"] = token
        elif forgery == "non-ascii":
            fields["csrf"] = token[:-1] + "é"
        response = client.post("/auth/login", data=fields)

    assert response.status_code == 400
    assert error_message(response) == FORM_EXPIRED
    assert COOKIE_NAME not in set_cookies(response)


# ----- lockout ------------------------------------------------------------------------------


def lock_pair(app: AppProcess, address: str, username: str) -> None:
    """Five wrong passwords for `username` from `address`: that pair is locked."""
    for _ in range(LOCKOUT_FAILURES):
        response = sign_in_from(app, address, username, "wrong-password-123")
        assert error_message(response) == SIGN_IN_FAILED


def attempts(svc: Services, address: str) -> int:
    with svc.sessions() as session:
        return session.scalar(select(func.count(LoginAttempt.id)).where(LoginAttempt.address == address)) or 0


def refusals(svc: Services, address: str) -> list[AuditEvent]:
    with svc.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "login.refused", AuditEvent.address == address)).all())


def test_five_failures_lock_that_user_name_from_that_address_even_with_the_right_password(app: AppProcess, svc: Services) -> None:
    address = fresh_address()
    lock_pair(app, address, "locked-user")

    right = sign_in_from(app, address, "locked-user", PASSWORD)

    assert right.status_code == 401 and error_message(right) == LOCKED_OUT
    assert COOKIE_NAME not in set_cookies(right)
    assert [r.result for r in svc.audit.query(action="login.refused", actor="locked-user")] == ["refused"]


def test_five_wrong_passwords_for_admin_from_one_address_do_not_stop_admin_elsewhere(app: AppProcess) -> None:
    lock_pair(app, "127.0.0.2", "admin")
    assert error_message(sign_in_from(app, "127.0.0.2", "admin", ADMIN_PASSWORD)) == LOCKED_OUT

    assert sign_in_from(app, "127.0.0.3", "admin", ADMIN_PASSWORD).status_code == 303


def test_a_locked_user_name_gets_the_same_answer_whether_or_not_it_exists(app: AppProcess, svc: Services) -> None:
    ghost = "ghost-" + secrets.token_hex(4)
    assert svc.users.get(ghost) is None
    address = fresh_address()
    lock_pair(app, address, ghost)
    lock_pair(app, address, "compared-user")

    existing = sign_in_from(app, address, "compared-user", PASSWORD)
    missing = sign_in_from(app, address, ghost, PASSWORD)

    assert existing.status_code == missing.status_code == 401
    assert error_message(existing) == error_message(missing) == LOCKED_OUT


def test_an_address_spraying_many_user_names_is_stopped_for_every_user_name(app: AppProcess, svc: Services) -> None:
    address = fresh_address()
    for n in range(ADDRESS_LOCKOUT_FAILURES):
        assert error_message(sign_in_from(app, address, f"guess-{n}-{secrets.token_hex(3)}", "guessed-password")) == SIGN_IN_FAILED

    from_there = [sign_in_from(app, address, name, PASSWORD) for name in ("address-victim", "spray-" + secrets.token_hex(3))]
    from_elsewhere = sign_in_from(app, fresh_address(), "address-victim", PASSWORD)

    assert [(r.status_code, error_message(r)) for r in from_there] == [(401, LOCKED_OUT)] * 2
    assert from_elsewhere.status_code == 303, "the user name itself is not locked"
    assert len(refusals(svc, address)) == 1, "one audit row for the address's lockout, whatever names it tries"


def test_a_flood_while_locked_out_adds_no_attempt_rows_and_one_audit_row(app: AppProcess, svc: Services) -> None:
    address = fresh_address()
    lock_pair(app, address, "flooded-user")
    before = attempts(svc, address)

    with app.client(address) as client:
        answers = {error_message(sign_in(client, "flooded-user", PASSWORD if n % 2 else "wrong-password-123")) for n in range(50)}

    assert answers == {LOCKED_OUT}
    assert attempts(svc, address) == before == LOCKOUT_FAILURES
    [refused] = refusals(svc, address)
    assert (refused.actor, refused.target, refused.result) == ("flooded-user", "flooded-user", "refused")


def test_sign_in_prunes_attempts_older_than_the_lockout_window(svc: Services) -> None:
    now = datetime.now(timezone.utc)
    address = fresh_address()
    ages = {"old-1": LOCKOUT_WINDOW + timedelta(minutes=1), "old-2": timedelta(days=3), "recent": timedelta(minutes=1)}
    with svc.sessions.begin() as session:
        session.add_all(LoginAttempt(username=name, address=address, at=now - age, succeeded=False) for name, age in ages.items())

    # A service that has not pruned yet, as after a start; it prunes on its first sign-in.
    UserService(svc.sessions, svc.audit).sign_in("wrong-pw-user", "not-the-password", fresh_address())

    with svc.sessions() as session:
        left = session.scalars(select(LoginAttempt.username).where(LoginAttempt.address == address)).all()
    assert left == ["recent"]


# ----- the client address -------------------------------------------------------------------


def test_a_local_client_cannot_choose_its_address_with_x_forwarded_for(app: AppProcess, svc: Services) -> None:
    """No trusted proxies are set: X-Forwarded-For from 127.0.0.1 (which uvicorn alone would
    believe) neither names the address in the audit trail nor picks the lockout bucket."""
    framed = fresh_address()
    with app.client("127.0.0.1") as client:
        client.headers["x-forwarded-for"] = framed
        for _ in range(LOCKOUT_FAILURES):
            assert error_message(sign_in(client, "framed-user", "wrong-password-123")) == SIGN_IN_FAILED
        client.headers["x-forwarded-for"] = fresh_address()
        locked = sign_in(client, "framed-user", PASSWORD)

    assert {r.address for r in svc.audit.query(actor="framed-user", action="login.failed")} == {"127.0.0.1"}
    assert error_message(locked) == LOCKED_OUT, "the failures counted against the real address"
    assert sign_in_from(app, framed, "framed-user", PASSWORD).status_code == 303, "and not against the address it claimed"


def test_a_bad_trusted_proxies_setting_stops_start_up_with_a_line_naming_it(tmp_path: Path) -> None:
    env = {"DASHBOARD_DATA_DIR": str(tmp_path / "data"), "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/33"}
    with pytest.raises(RuntimeError, match="the dashboard exited") as failed:
        AppProcess(env, tmp_path / "app.log").start()

    [line] = [line for line in str(failed.value).splitlines() if "cannot start the dashboard" in line]
    assert "DASHBOARD_TRUSTED_PROXIES" in line and "10.0.0.0/33" in line


TRUSTED_PROXIES = "127.0.0.1, 127.0.0.2/32"


@pytest.fixture(scope="module")
def proxied_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppProcess, Services]]:
    """The dashboard behind reverse proxies on 127.0.0.1 and 127.0.0.2, and services over its database."""
    data = tmp_path_factory.mktemp("proxied")
    env = {
        "DASHBOARD_DATA_DIR": str(data / "data"),
        "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(32),
        "DASHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "DASHBOARD_TRUSTED_PROXIES": TRUSTED_PROXIES,
    }
    with AppProcess(env, data / "app.log").start() as process:
        built = services.build(load_settings(process.env, NO_SECRETS_FILE))
        try:
            yield process, built
        finally:
            built.close()


def failed_from(proxied_app: tuple[AppProcess, Services], peer: str, forwarded_for: str) -> str:
    """The address the audit trail records for a failed sign-in from `peer` sending `forwarded_for`."""
    app, built = proxied_app
    name = "nobody-" + secrets.token_hex(4)
    with app.client(peer) as client:
        client.headers["x-forwarded-for"] = forwarded_for
        assert error_message(sign_in(client, name, "wrong-password-123")) == SIGN_IN_FAILED
    [failed] = built.audit.query(actor=name, action="login.failed")
    return failed.address


def test_behind_a_trusted_proxy_the_forwarded_address_is_recorded(proxied_app: tuple[AppProcess, Services]) -> None:
    assert failed_from(proxied_app, "127.0.0.1", "198.51.100.7") == "198.51.100.7"
    assert failed_from(proxied_app, "127.0.0.2", "198.51.100.7") == "198.51.100.7"


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client(proxied_app: tuple[AppProcess, Services]) -> None:
    assert failed_from(proxied_app, "127.0.0.1", "203.0.113.1, 198.51.100.8, 127.0.0.2") == "198.51.100.8"


def test_a_client_that_is_not_a_trusted_proxy_is_recorded_as_itself(proxied_app: tuple[AppProcess, Services]) -> None:
    assert failed_from(proxied_app, "127.0.0.3", "198.51.100.9") == "127.0.0.3"


def test_behind_a_trusted_proxy_the_lockout_counts_the_forwarded_address(proxied_app: tuple[AppProcess, Services]) -> None:
    app, _ = proxied_app

    def admin_from(forwarded_for: str, password: str) -> httpx.Response:
        with app.client("127.0.0.1") as client:
            client.headers["x-forwarded-for"] = forwarded_for
            return sign_in(client, "admin", password)

    for _ in range(LOCKOUT_FAILURES):
        assert error_message(admin_from("198.51.100.20", "wrong-password-123")) == SIGN_IN_FAILED

    assert error_message(admin_from("198.51.100.20", ADMIN_PASSWORD)) == LOCKED_OUT
    assert admin_from("198.51.100.21", ADMIN_PASSWORD).status_code == 303


# ----- sign-out and stale or tampered cookies -----------------------------------------------


def test_sign_out_clears_the_cookie_and_the_old_value_stops_working(app: AppProcess, svc: Services) -> None:
    with app.client() as client:
        assert sign_in(client, "viewer", PASSWORD).status_code == 303
        cookie = client.cookies[COOKIE_NAME]
        assert page_request(app, "/rooms", cookie).status_code == 200

        # A bare POST (what another site could send) does not sign out.
        forged = client.post("/auth/logout")
        assert forged.status_code == 303 and forged.headers["location"] == "/auth/logout"
        assert svc.logins.resolve(cookie) is not None

        confirm = client.get("/auth/logout")
        assert confirm.status_code == 200 and "Sign out?" in confirm.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
        response = client.post("/auth/logout", data={"csrf": csrf})

        assert response.status_code == 303 and response.headers["location"] == "/auth/login"
        cleared = set_cookies(response)[COOKIE_NAME]
        assert cleared.value == "" and cleared["max-age"] == "0" and cleared["path"] == "/"
        assert COOKIE_NAME not in client.cookies
    assert sent_to_sign_in(page_request(app, "/rooms", cookie), "/rooms")
    assert svc.logins.resolve(cookie) is None


def flip(text: str, index: int) -> str:
    """`text` with the character at `index` replaced by another of the same alphabet."""
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def token_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.rsplit(".", 1)[0].encode()).hexdigest()


def set_session_times(svc: Services, cookie: str, **times: datetime) -> None:
    with svc.sessions.begin() as session:
        session.execute(update(LoginSession).where(LoginSession.token_hash == token_hash(cookie)).values(**times))


def cookie_with_token_changed(svc: Services) -> str:
    token, mac = svc.logins.create(user_id(svc, "viewer"))[0].rsplit(".", 1)
    return f"{flip(token, 5)}.{mac}"


def cookie_with_mac_changed(svc: Services) -> str:
    cookie = svc.logins.create(user_id(svc, "viewer"))[0]
    return flip(cookie, len(cookie) - 1)


def cookie_with_non_ascii_mac(svc: Services) -> str:
    return svc.logins.create(user_id(svc, "viewer"))[0][:-1] + "é"


def cookie_signed_with_another_key(svc: Services) -> str:
    # Its session row exists in this database; only the signature is foreign.
    other = SessionService(svc.sessions, b"another installation's session key", svc.logins.lifetime, svc.logins.idle)
    return other.create(user_id(svc, "viewer"))[0]


def cookie_past_its_lifetime(svc: Services) -> str:
    cookie = svc.logins.create(user_id(svc, "viewer"))[0]
    set_session_times(svc, cookie, expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    return cookie


def cookie_idle_too_long(svc: Services) -> str:
    cookie = svc.logins.create(user_id(svc, "viewer"))[0]
    set_session_times(svc, cookie, last_seen_at=datetime.now(timezone.utc) - svc.logins.idle - timedelta(minutes=1))
    return cookie


def cookie_of_a_disabled_user(svc: Services) -> str:
    # Flagged straight in the database, so the session row is still there.
    cookie = svc.logins.create(user_id(svc, "disabled-user"))[0]
    with svc.sessions.begin() as session:
        session.execute(update(User).where(User.username == "disabled-user").values(disabled=True))
    return cookie


def cookie_revoked(svc: Services) -> str:
    cookie = svc.logins.create(user_id(svc, "viewer"))[0]
    svc.logins.revoke(cookie)
    return cookie


def cookie_without_signature(svc: Services) -> str:
    return svc.logins.create(user_id(svc, "viewer"))[0].rsplit(".", 1)[0]


def cookie_too_long(svc: Services) -> str:
    return "A" * 300 + "." + "0" * 64


TAMPERED: dict[str, Callable[[Services], str]] = {
    "token changed": cookie_with_token_changed,
    "mac changed": cookie_with_mac_changed,
    "non-ascii mac": cookie_with_non_ascii_mac,
    "signed with another key": cookie_signed_with_another_key,
    "past its lifetime": cookie_past_its_lifetime,
    "idle too long": cookie_idle_too_long,
    "disabled user": cookie_of_a_disabled_user,
    "revoked": cookie_revoked,
    "no signature": cookie_without_signature,
    "too long": cookie_too_long,
}


def test_an_untouched_session_cookie_is_accepted_over_http_and_by_pages(app: AppProcess, svc: Services) -> None:
    """The control for the tampering cases below: the same kind of cookie, left alone, works."""
    cookie = svc.logins.create(user_id(svc, "viewer"))[0]

    assert page_request(app, "/rooms", cookie).status_code == 200
    assert [t.value for t in account_page(cookie).title] == ["Account"]
    assert svc.logins.resolve(cookie) is not None


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_or_stale_cookie_counts_as_no_session(app: AppProcess, svc: Services, case: str) -> None:
    cookie = TAMPERED[case](svc)

    response = page_request(app, "/rooms", cookie)
    at = account_page(cookie)

    assert sent_to_sign_in(response, "/rooms"), (response.status_code, response.headers, response.text[:500])
    assert [w.value for w in at.warning] == [NOT_SIGNED_IN] and not at.title
    assert svc.logins.resolve(cookie) is None


def test_disabling_a_user_ends_their_sessions_and_sign_in_fails_as_usual(app: AppProcess, svc: Services) -> None:
    with app.client() as client:
        assert sign_in(client, "ended-user", PASSWORD).status_code == 303
        browser_cookie = client.cookies[COOKIE_NAME]
    other_cookie = svc.logins.create(user_id(svc, "ended-user"))[0]
    assert page_request(app, "/rooms", browser_cookie).status_code == 200

    svc.users.set_disabled(Actor.system("admin"), "ended-user", True)

    with svc.sessions() as session:
        left = session.scalar(select(func.count()).select_from(LoginSession).where(LoginSession.user_id == user_id(svc, "ended-user")))
    assert left == 0
    assert sent_to_sign_in(page_request(app, "/rooms", browser_cookie), "/rooms")
    assert svc.logins.resolve(other_cookie) is None
    again = sign_in_from(app, fresh_address(), "ended-user", PASSWORD)
    assert again.status_code == 401 and error_message(again) == SIGN_IN_FAILED


# ----- users and passwords ------------------------------------------------------------------


def test_the_last_admin_can_be_neither_disabled_nor_demoted(svc: Services) -> None:
    with pytest.raises(UserError, match="last active admin"):
        svc.users.set_disabled(Actor.system("admin"), "admin", True)
    with pytest.raises(UserError, match="last active admin"):
        svc.users.set_role(Actor.system("admin"), "admin", "operator")

    admin = svc.users.get("admin")
    assert admin is not None and admin.role == "admin" and not admin.disabled


def test_an_admin_with_another_active_admin_beside_them_can_be_disabled(svc: Services) -> None:
    svc.users.create(Actor.system("test"), "second-admin", PASSWORD, "admin")

    assert svc.users.set_disabled(Actor.system("admin"), "second-admin", True).disabled
    with pytest.raises(UserError, match="last active admin"):
        svc.users.set_role(Actor.system("admin"), "admin", "host")


@pytest.mark.parametrize(
    "password, message",
    [("x" * 9, "at least 10 characters"), ("é" * 36 + "x", "at most 72 bytes (UTF-8); this one is 73")],
    ids=["9 characters", "73 bytes"],
)
def test_a_password_breaking_the_rules_is_refused_with_a_clear_message(svc: Services, password: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        svc.users.create(Actor.system("test"), "rule-breaker", password, "analyst")
    assert svc.users.get("rule-breaker") is None


def test_a_72_byte_password_is_accepted_and_signs_in(app: AppProcess, svc: Services) -> None:
    password = "é" * 36
    assert len(password.encode()) == 72
    svc.users.create(Actor.system("test"), "long-password", password, "analyst")

    assert sign_in_from(app, fresh_address(), "long-password", password).status_code == 303


def test_every_stored_password_is_a_bcrypt_hash_of_cost_12(svc: Services) -> None:
    with svc.sessions() as session:
        hashes = session.scalars(select(User.password_hash)).all()

    assert len(hashes) >= len(USERS) + 1
    assert all(h.startswith("$2b$12$") for h in hashes), hashes


# ----- the first admin ----------------------------------------------------------------------


def test_the_admin_password_setting_creates_the_first_admin_on_the_first_start_only(app: AppProcess, svc: Services) -> None:
    [created] = [r for r in svc.audit.query(action="user.create") if r.target == "admin"]
    assert created.actor == "system" and created.detail == "role admin (first admin)"

    again = services.build(
        load_settings({**app.env, "DASHBOARD_ADMIN_USERNAME": "another-admin", "DASHBOARD_ADMIN_PASSWORD": "another-admin-password"}, NO_SECRETS_FILE)
    )
    try:
        assert again.users.get("another-admin") is None
        assert again.users.check_password("admin", ADMIN_PASSWORD)
        assert not again.users.check_password("admin", "another-admin-password")
    finally:
        again.close()


def test_without_users_the_sign_in_page_says_how_to_create_the_first_admin(tmp_path: Path) -> None:
    with AppProcess({"DASHBOARD_DATA_DIR": str(tmp_path / "data")}, tmp_path / "app.log").start() as empty, empty.client() as client:
        response = client.get("/auth/login")

    assert response.status_code == 503
    assert "No users yet" in response.text
    assert "DASHBOARD_ADMIN_PASSWORD" in response.text and "python -m lib.auth create-user" in response.text
    assert 'name="password"' not in response.text


def create_user_command(data_dir: Path, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lib.auth", "create-user", "cli-operator", "--role", "operator", "--password-stdin"],
        cwd=REPO_ROOT, env={**base_env(), "DASHBOARD_DATA_DIR": str(data_dir)}, input=password + "\n",
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_create_user_command_refuses_a_short_password_and_creates_a_valid_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    short, good = "too-short", "cli-operator-" + secrets.token_urlsafe(8)

    refused = create_user_command(data_dir, short)
    created = create_user_command(data_dir, good)

    assert refused.returncode == 1, refused
    assert "at least 10 characters" in refused.stderr
    assert created.returncode == 0, created
    assert created.stdout.strip() == "created operator 'cli-operator'"
    assert short not in refused.stdout + refused.stderr and good not in created.stdout + created.stderr
    built = services.build(load_settings({"DASHBOARD_DATA_DIR": str(data_dir)}, NO_SECRETS_FILE))
    try:
        [user] = built.users.list()
        assert (user.username, user.role) == ("cli-operator", "operator")
        assert built.users.check_password("cli-operator", good)
    finally:
        built.close()
