"""Users, sign-in lockout, sessions and the audit trail on both SQL backends (SQLite and a real
PostgreSQL started by the test set-up)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from lib.auth.audit import AuditLog, to_csv
from lib.auth.sessions import SessionService
from lib.auth.users import LOCKED_OUT, LOCKOUT_FAILURES, SIGN_IN_FAILED, UserError, UserService
from lib.db import make_engine, migrate, session_factory
from lib.models import LoginSession
from lib.auth.policy import Actor


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    audit = AuditLog(sessions)
    yield UserService(sessions, audit), SessionService(sessions, b"k" * 32, timedelta(hours=1), timedelta(minutes=30)), audit, sessions
    engine.dispose()


def test_users_sign_in_and_five_failures_lock_that_name_from_that_address(store):
    users, _, audit, _ = store
    users.create(Actor.system("test"), "olga", "olga-password-1", "operator")
    assert users.sign_in("olga", "olga-password-1", "10.0.0.1").user.role == "operator"
    for _ in range(LOCKOUT_FAILURES):
        assert users.sign_in("olga", "wrong-password", "10.0.0.2").message == SIGN_IN_FAILED
    for password in ("olga-password-1", "wrong-password"):
        refused = users.sign_in("olga", password, "10.0.0.2")
        assert refused.user is None and refused.message == LOCKED_OUT
    assert users.sign_in("olga", "olga-password-1", "10.0.0.3").user is not None, "the name is not locked elsewhere"
    actions = [r.action for r in audit.query()]
    assert (actions.count("login.failed"), actions.count("login.refused"), actions.count("login")) == (LOCKOUT_FAILURES, 1, 2)
    # Two successes and the failures; refused attempts left no row. Pruning everything unlocks.
    assert users.prune_attempts(older_than=timedelta(0)) == LOCKOUT_FAILURES + 2
    assert users.sign_in("olga", "olga-password-1", "10.0.0.2").user is not None


def test_sessions_resolve_expire_when_idle_and_end_on_revoke(store):
    users, logins, _, sessions = store
    user = users.create(Actor.system("test"), "pia", "pia-password-1", "analyst")
    cookie, expires = logins.create(user.id)
    assert logins.resolve(cookie).username == "pia" and expires > datetime.now(timezone.utc)
    assert logins.resolve(cookie[:-1] + ("0" if cookie[-1] != "0" else "1")) is None  # tampered mac
    with sessions.begin() as s:
        s.execute(update(LoginSession).values(last_seen_at=datetime.now(timezone.utc) - timedelta(minutes=31)))
    assert logins.resolve(cookie) is None  # idle too long
    second, _ = logins.create(user.id)
    logins.revoke(second)
    assert logins.resolve(second) is None


def test_role_changes_guard_the_last_admin_and_disabling_signs_out(store):
    users, logins, _, _ = store
    admin = users.create(Actor.system("test"), "root-admin", "admin-password-1", "admin")
    with pytest.raises(UserError, match="last active admin"):
        users.set_role(Actor.system("test"), "root-admin", "analyst")
    with pytest.raises(UserError, match="last active admin"):
        users.set_disabled(Actor.system("test"), "root-admin", True)
    other = users.create(Actor.system("test"), "quinn", "quinn-password", "host")
    cookie, _ = logins.create(other.id)
    users.set_disabled(Actor.system("root-admin"), "quinn", True)
    assert logins.resolve(cookie) is None
    assert users.sign_in("quinn", "quinn-password", "10.1.1.1").message == SIGN_IN_FAILED
    assert admin.role == "admin"


def test_audit_filters_and_csv_export_defuse_formulas(store):
    _, _, audit, _ = store
    audit.record("olga", "room.create", "=HYPERLINK(\"http://x\")", "ok")
    audit.record("olga", "participant.remove", "default/r/bob", "failed", "not found: gone")
    audit.record("pia", "login", "pia", "ok", address="10.0.0.9")
    assert [r.action for r in audit.query(actor="olga", result="failed")] == ["participant.remove"]
    assert [r.actor for r in audit.query(text="bob")] == ["olga"]
    assert audit.actions() == ["login", "participant.remove", "room.create"]
    header, row = csv.reader(io.StringIO(to_csv(audit.query(action="room.create"))))
    assert header == ["at", "actor", "action", "target", "result", "detail", "address"]
    assert row[3] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it as text instead of running it
    assert row[0].endswith("+00:00")  # times are exported as UTC on both backends


def test_audit_text_search_takes_percent_and_underscore_as_typed(store):
    _, _, audit, _ = store
    audit.record("olga", "room.create", "default/plain-room", "ok")
    audit.record("olga", "room.create", "default/snake_room", "ok")
    audit.record("olga", "data.send", "default/r", "ok", "to everyone (100% of them)")
    audit.record("olga", "data.send", "default/r", "ok", "back\\slash")
    assert [r.target for r in audit.query(text="_")] == ["default/snake_room"]
    assert [r.detail for r in audit.query(text="%")] == ["to everyone (100% of them)"]
    assert [r.detail for r in audit.query(text="\\")] == ["back\\slash"]
    assert len(audit.query(text="ROOM")) == 2  # still regardless of case


def test_audit_filters_with_a_nul_find_what_was_stored_for_it(store):
    # A NUL is stored as \0; searched as typed, SQLite cut the pattern at the NUL (so it matched
    # every row) and PostgreSQL refuses a NUL in a parameter (a 500 from the API's filters).
    _, _, audit, _ = store
    audit.record("a\x00b", "room.create", "default/a\x00b", "refused", "bad\x00name")
    audit.record("olga", "room.create", "default/plain", "ok")
    assert [r.target for r in audit.query(text="\x00")] == ["default/a\\0b"]
    assert [r.detail for r in audit.query(text="d\x00n")] == ["bad\\0name"]
    assert [r.actor for r in audit.query(actor="A\x00B")] == ["a\\0b"]
    assert audit.query(action="room.create\x00") == []


def test_user_names_ignore_letter_case_and_passwords_are_not_only_spaces(store):
    users = store[0]
    users.create(Actor.system(), "Analyst1", "analyst-password-1", "analyst")
    with pytest.raises(UserError, match="already exists"):
        users.create(Actor.system(), "analyst1", "another-password-1", "analyst")
    assert users.sign_in("ANALYST1", "analyst-password-1", "10.2.2.2").user.username == "Analyst1"
    assert users.get("analyst1").username == "Analyst1"
    with pytest.raises(UserError, match="only spaces"):
        users.create(Actor.system(), "spaces", " " * 12, "analyst")
