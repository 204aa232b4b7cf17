"""The service layer against a real livekit-server: every action refuses a role without its
capability by itself (whatever page or route asked), audits the refusal and does nothing; the
roles that have it act and are audited; the composition builds a sidecar's part without
migrating, generating keys or creating users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from livekit import api

from lib import services
from lib.auth.policy import Actor, Invalid, Refused
from lib.config import ConfigError, load_settings
from lib.db import DatabaseError, make_engine
from lib.livekit.devserver import DevServer, free_port
from lib.livekit.errors import GatewayError
from lib.livekit.gateway import PermissionUpdate
from lib.livekit.tokens import Grants, TokenRequest
from lib.services import Services
from lib.sim.participants import ParticipantPool
from lib.tokens import TokenService

pytestmark = pytest.mark.integration

SERVER = "default"
NO_SECRETS = Path("/nonexistent/secrets.toml")


def settings_for(livekit_server: DevServer, data: Path, **extra: str):  # type: ignore[no-untyped-def]
    env = {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(data),
        **extra,
    }
    return load_settings(env, NO_SECRETS)


@pytest.fixture
def svc(livekit_server: DevServer, tmp_path: Path) -> Iterator[Services]:
    built = services.build(settings_for(livekit_server, tmp_path / "data"))
    try:
        yield built
    finally:
        built.close()


@dataclass(frozen=True)
class Action:
    name: str  # the audit row's action
    capability: str
    call: Callable[[Services, Actor], object]
    done: Callable[[Services], bool]  # whether it took effect, read back from the system


def _rooms(svc: Services, name: str) -> list[str]:
    return [r.room.name for r in svc.gateway.snapshot(SERVER).rooms if r.room.name == name]


def actions(room: str, identity: str, track: str) -> list[Action]:
    """Every state-changing service method, with a check of its effect. `room` exists and holds
    `identity` publishing `track`; the new room, user and server names are not taken."""
    new_room = f"{room}-new"
    return [
        Action("room.create", "control", lambda s, a: s.control.create_room(a, SERVER, new_room), lambda s: bool(_rooms(s, new_room))),
        Action("room.metadata", "control", lambda s, a: s.control.update_room_metadata(a, SERVER, room, "changed"),
               lambda s: s.gateway.snapshot(SERVER).room(room).room.metadata == "changed"),
        Action("track.mute", "control", lambda s, a: s.control.mute_track(a, SERVER, room, identity, track, True),
               lambda s: any(t.muted for p in s.gateway.snapshot(SERVER).room(room).participants for t in p.tracks)),
        Action("participant.update", "control", lambda s, a: s.control.update_participant(a, SERVER, room, identity, metadata="changed"),
               lambda s: s.gateway.snapshot(SERVER).room(room).participants[0].metadata == "changed"),
        Action("participant.permissions", "control",
               lambda s, a: s.control.update_permissions(a, SERVER, room, identity, PermissionUpdate(can_publish_data=False)),
               lambda s: not s.gateway.snapshot(SERVER).room(room).participants[0].permission.can_publish_data),
        Action("data.send", "control", lambda s, a: s.control.send_data(a, SERVER, room, b"hi", to=[identity]), lambda s: False),
        Action("dispatch.create", "control", lambda s, a: s.control.create_dispatch(a, SERVER, room, "nobody-registered"),
               lambda s: any(d.agent_name == "nobody-registered" for d in s.gateway.snapshot(SERVER).room(room).dispatches)),
        Action("participant.remove", "control", lambda s, a: s.control.remove_participant(a, SERVER, room, identity),
               lambda s: not s.gateway.snapshot(SERVER).room(room).participants),
        Action("room.delete", "control", lambda s, a: s.control.end_room(a, SERVER, room), lambda s: not _rooms(s, room)),
        Action("token.issue", "issue_tokens", lambda s, a: s.tokens.issue(a, SERVER, TokenRequest(room, "guest")), lambda s: False),
        Action("server.test", "manage_servers", lambda s, a: s.server_admin.test_saved(a, SERVER), lambda s: False),
        Action("server.add", "manage_servers", lambda s, a: s.server_admin.add(a, "second", f"ws://127.0.0.1:{free_port()}", "k", "s" * 32),
               lambda s: s.servers.get("second") is not None),
        Action("user.create", "manage_users", lambda s, a: s.users.create(a, "newcomer", "newcomer-password", "analyst"),
               lambda s: s.users.get("newcomer") is not None),
        Action("user.role", "manage_users", lambda s, a: s.users.set_role(a, "target", "operator"), lambda s: s.users.get("target").role == "operator"),
        Action("user.disable", "manage_users", lambda s, a: s.users.set_disabled(a, "target", True), lambda s: s.users.get("target").disabled),
        Action("user.password", "manage_users", lambda s, a: s.users.reset_password(a, "target", "another-password"),
               lambda s: s.users.check_password("target", "another-password")),
    ]  # fmt: skip


LACKING = {
    "control": ("analyst", "host"),
    "manage_servers": ("operator", "analyst", "host"),
    "manage_users": ("operator", "analyst", "host"),
    "issue_tokens": ("analyst",),
}


@pytest.fixture
def stage(svc: Services, participants: ParticipantPool, lk_api, unique_name) -> tuple[str, str]:
    """A room with "member" publishing one audio track, and a user "target": (room, track sid)."""
    room = unique_name()
    member = participants.join(room, "member", publish_audio=True)
    lk_api.poll(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room)), until=lambda r: any(p.tracks for p in r.participants))
    [track] = participants.track_sids(member).values()
    svc.users.create(Actor.system(), "target", "target-password", "analyst")
    return room, track


@pytest.mark.parametrize("role", ["operator", "analyst", "host"])
def test_a_role_without_the_capability_is_refused_by_the_service_audited_and_nothing_is_done(
    svc: Services, stage: tuple[str, str], role: str
) -> None:
    room, track = stage
    actor = Actor(f"{role}-person", role, "10.1.2.3")

    checked = 0
    for action in actions(room, "member", track):
        if role not in LACKING[action.capability]:
            continue
        with pytest.raises(Refused):
            action.call(svc, actor)
        checked += 1
        assert not action.done(svc), f"{action.name} took effect though it was refused"
        [row] = svc.audit.query(actor=actor.name, action=action.name)
        assert (row.result, row.address) == ("refused", "10.1.2.3"), action.name
        assert action.capability in row.detail

    assert checked == sum(1 for a in actions(room, "member", track) if role in LACKING[a.capability])
    assert checked >= 6
    assert _rooms(svc, room), "the room is untouched"


def test_a_role_with_the_capability_acts_and_each_action_is_audited_ok(svc: Services, stage: tuple[str, str], lk_api) -> None:
    room, track = stage
    admin = Actor("root", "admin", "10.9.9.9")

    for action in actions(room, "member", track):
        if action.name == "server.add":
            continue  # needs a second reachable server: tested on the Servers page
        action.call(svc, admin)
        if action.name not in ("data.send", "server.test", "token.issue"):
            assert lk_api.poll(lambda lk: lk.room.list_rooms(api.ListRoomsRequest()), until=lambda _r: action.done(svc)) is not None
            assert action.done(svc), action.name
        [row] = svc.audit.query(actor="root", action=action.name)
        assert (row.result, row.address) == ("ok", "10.9.9.9"), (action.name, row.detail)
    lk_api.call(lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=f"{room}-new")))


def test_a_failed_action_is_audited_with_the_servers_reason(svc: Services, unique_name) -> None:
    operator = Actor("olga", "operator", "10.0.0.1")
    with pytest.raises(Exception, match="not found|does not exist"):
        svc.control.remove_participant(operator, SERVER, unique_name(), "nobody")
    [row] = svc.audit.query(actor="olga", action="participant.remove")
    assert row.result == "failed" and row.detail


# ----- tokens -------------------------------------------------------------------------------


def test_operators_and_admins_issue_tokens_for_any_room_and_the_audit_row_never_holds_the_token(
    svc: Services, livekit_server: DevServer, unique_name
) -> None:
    room = unique_name()  # not created: joining with the token will create it
    request = TokenRequest(room, "guest-1", ttl=timedelta(minutes=30), grants=Grants(room_admin=True, hidden=True),
                           dispatch_agent="helper", metadata="private note")  # fmt: skip

    issued = {role: svc.tokens.issue(Actor(f"{role}-person", role, "10.4.4.4"), SERVER, request) for role in ("operator", "admin")}

    for role, token in issued.items():
        claims = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret).verify(token.jwt)
        assert (claims.identity, claims.video.room, claims.video.room_admin) == ("guest-1", room, True), "signed with the server's own secret"
        [row] = svc.audit.query(actor=f"{role}-person", action="token.issue")
        assert (row.result, row.target, row.address) == ("ok", f"{SERVER}/{room}", "10.4.4.4")
        assert row.detail == "identity guest-1; grants join, publish, subscribe, data, hidden, admin; ttl 30 min; dispatch helper"
    with svc.engine.connect() as connection:
        every_cell = repr([tuple(r) for r in connection.exec_driver_sql("SELECT * FROM audit_events").all()])
    for token in issued.values():
        header, payload, signature = token.jwt.split(".")
        assert payload not in every_cell and signature not in every_cell
    assert livekit_server.api_secret not in every_cell and "private note" not in every_cell


def test_a_host_issues_tokens_only_for_rooms_of_meetings_they_host_and_each_refusal_is_audited(svc: Services) -> None:
    ends = datetime.now(timezone.utc) + timedelta(hours=2)
    hosted = {"hana": {(SERVER, "hana-meeting"): ends, ("elsewhere", "hana-far"): ends}}
    tokens = TokenService(svc.gateway, svc.policy, hosted_rooms=lambda actor: hosted.get(actor.name, {}))
    hana, hugo = Actor("hana", "host", "10.5.5.5"), Actor("hugo", "host", "10.6.6.6")

    assert tokens.issue(hana, SERVER, TokenRequest("hana-meeting", "guest")).room == "hana-meeting"
    refusals = [(hana, SERVER, "someone-elses-room"), (hana, "elsewhere", "hana-meeting"), (hugo, SERVER, "hana-meeting")]
    for actor, server, room in refusals:
        with pytest.raises(Refused, match=r"^A host may issue tokens only for rooms of meetings they host\.$"):
            tokens.issue(actor, server, TokenRequest(room, "guest"))
    with pytest.raises(Refused, match="only for rooms of meetings they host"):
        svc.tokens.issue(hana, SERVER, TokenRequest("hana-meeting", "guest"))  # hana hosts no meeting in the database

    rows = svc.audit.query(action="token.issue")
    assert [(r.actor, r.target, r.result) for r in reversed(rows)] == [
        ("hana", f"{SERVER}/hana-meeting", "ok"),
        ("hana", f"{SERVER}/someone-elses-room", "refused"),
        ("hana", "elsewhere/hana-meeting", "refused"),
        ("hugo", f"{SERVER}/hana-meeting", "refused"),
        ("hana", f"{SERVER}/hana-meeting", "refused"),
    ]
    assert all("only for rooms of meetings they host" in r.detail for r in rows if r.result == "refused")


def test_a_token_request_that_breaks_a_rule_or_names_no_server_fails_audited_and_nothing_is_signed(svc: Services) -> None:
    operator = Actor("olga", "operator", "10.0.0.1")

    with pytest.raises(Invalid, match="from 1 minute to 24 hours"):
        svc.tokens.issue(operator, SERVER, TokenRequest("r", "guest", ttl=timedelta(hours=25)))
    with pytest.raises(GatewayError, match="no server named 'nowhere'"):
        svc.tokens.issue(operator, "nowhere", TokenRequest("r", "guest"))

    with pytest.raises(Invalid, match="identity is 5,000 characters"):
        svc.tokens.issue(operator, SERVER, TokenRequest("r", "i" * 5000))

    rows = svc.audit.query(actor="olga", action="token.issue")
    assert [(r.target, r.result) for r in reversed(rows)] == [(f"{SERVER}/r", "failed"), ("nowhere/r", "failed"), (f"{SERVER}/r", "failed")]
    assert "from 1 minute to 24 hours" in rows[2].detail and "no server named" in rows[1].detail
    assert rows[0].detail.startswith(f"identity {'i' * 256}…; grants"), "an identity too long to issue is cut in the audit row"


def test_the_rooms_offered_to_a_token_form_are_the_live_ones_for_operators_and_only_their_own_for_hosts(
    svc: Services, participants: ParticipantPool, lk_api, unique_name
) -> None:
    live_room = unique_name()
    participants.join(live_room, "someone")
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    tokens = TokenService(svc.gateway, svc.policy, hosted_rooms=lambda actor: {(SERVER, "b-meeting"): later, (SERVER, "a-meeting"): later, ("other", "x"): later})
    operator = Actor("olga", "operator")

    offered = lk_api.poll(lambda lk: lk.room.list_rooms(api.ListRoomsRequest()), until=lambda _r: live_room in tokens.suggested_rooms(operator, SERVER))
    assert offered is not None and live_room in tokens.suggested_rooms(operator, SERVER)
    assert tokens.suggested_rooms(Actor("hana", "host"), SERVER) == ["a-meeting", "b-meeting"], "no one else's room names"
    assert tokens.suggested_rooms(Actor("ann", "analyst"), SERVER) == []
    assert svc.tokens.suggested_rooms(Actor("hana", "host"), SERVER) == []


def test_every_role_may_change_its_own_password_and_only_with_the_current_one(svc: Services) -> None:
    for role in ("admin", "operator", "host", "analyst"):
        svc.users.create(Actor.system(), f"own-{role}", "first-password", role)
        me = Actor(f"own-{role}", role, "10.0.0.2")
        with pytest.raises(Exception, match="current password is wrong"):
            svc.users.change_own_password(me, "not-the-password", "second-password")
        svc.users.change_own_password(me, "first-password", "second-password")
        assert svc.users.check_password(f"own-{role}", "second-password")
        assert [r.result for r in svc.audit.query(actor=me.name, action="account.password")] == ["ok", "failed"]


# ----- composition --------------------------------------------------------------------------


def test_the_sidecars_part_neither_migrates_nor_makes_keys_nor_users(livekit_server: DevServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = settings_for(livekit_server, data, DASHBOARD_ADMIN_PASSWORD="would-be-admin-password")
    data.mkdir()

    with pytest.raises(DatabaseError, match="not .*migrat|start the dashboard first"):
        services.build_core(settings)
    assert not (data / "secret.key").exists(), "no key was generated"

    services.build(settings).close()  # the server process: migrates, makes the keys and the admin
    core = services.build_core(settings)
    try:
        assert core.gateway.server_names() == [SERVER]
        assert not hasattr(core, "users") and not hasattr(core, "history")
        assert core.gateway.snapshot(SERVER).ok
    finally:
        core.close()

    (data / "secret.key").unlink()
    with pytest.raises(ConfigError, match="DASHBOARD_SECRET_KEY"):
        services.build_core(settings)


def test_postgresql_without_both_shared_keys_refuses_to_start(livekit_server: DevServer, postgres_server: str, tmp_path: Path) -> None:
    for given in ({}, {"DASHBOARD_SECRET_KEY": "x" * 40}, {"DASHBOARD_SESSION_SECRET": "y" * 40}):
        settings = settings_for(livekit_server, tmp_path / "data", DASHBOARD_DATABASE_URL=postgres_server, **given)
        with pytest.raises(ConfigError) as refused:
            services.build(settings)
        message = str(refused.value)
        assert "DASHBOARD_SECRET_KEY" in message and "DASHBOARD_SESSION_SECRET" in message and "\n" not in message
    assert not (tmp_path / "data" / "secret.key").exists()
    engine = make_engine(postgres_server)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM pg_tables WHERE tablename = 'users'").scalar() == 0, "nothing migrated"
    finally:
        engine.dispose()


def test_a_connection_test_that_does_not_connect_is_audited_as_failed(svc: Services) -> None:
    admin = Actor("root", "admin", "10.9.9.9")
    result = svc.server_admin.test(admin, "nowhere", f"ws://127.0.0.1:{free_port()}", "key", "s" * 32)

    assert not result.ok
    [row] = svc.audit.query(action="server.test")
    assert row.result == "failed" and "unreachable" in row.detail


def test_a_hosts_token_lives_no_longer_than_the_meeting(svc: Services) -> None:
    ends = datetime.now(timezone.utc) + timedelta(minutes=20)
    tokens = TokenService(svc.gateway, svc.policy, hosted_rooms=lambda actor: {(SERVER, "hana-meeting"): ends})
    hana, operator = Actor("hana", "host"), Actor("olga", "operator")
    issued = tokens.issue(hana, SERVER, TokenRequest("hana-meeting", "guest", ttl=timedelta(hours=6)))
    assert issued.expires_at <= ends + timedelta(seconds=1)
    assert tokens.issue(operator, SERVER, TokenRequest("hana-meeting", "guest", ttl=timedelta(hours=6))).expires_at > ends + timedelta(hours=5)
    [row] = [r for r in svc.audit.query(action="token.issue") if r.actor == "hana"]
    assert "cut to the meeting's end" in row.detail
