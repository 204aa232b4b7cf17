"""The REST API (lib/api/v1) against the real livekit-server: every operation of its OpenAPI
description refuses a request without credentials (401, one body) and a role without the
operation's capability (403, audited); keys revoked, expired or malformed are refused alike; a
cookie session needs its CSRF token to change state; creates are idempotent per key; lists
page with a cursor; and a meeting created with an API key is started by the scheduler sidecar,
joined by an SDK participant with a token from the join endpoint, and ended through the API,
which deletes its room."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from livekit import api as lkapi
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from lib import services
from lib.api.mount import api_mount
from lib.api.state import ProvideServices
from lib.api.v1 import build_api
from lib.auth.policy import Actor
from lib.auth.roles import ROLES, may
from lib.auth.sessions import COOKIE_NAME
from lib.config import REPO_ROOT, load_settings
from lib.livekit.devserver import DevServer
from lib.models import ApiKey
from tests.app_process import base_env
from tests.integration.test_outgoing_webhooks import Receiver, recipe, wait_for

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-battery"
SYSTEM = Actor.system("test")
SECRET_KEY = "api-test-secret-key-0123456789abcdef"


@dataclass
class Api:
    svc: services.Services
    client: TestClient
    keys: dict[str, str]  # role -> a key of that role, owned by the user of that role
    env: dict[str, str]

    def as_role(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def build_app(svc: services.Services, **limits: Any) -> Starlette:
    """The API as app.py mounts it, over these services."""
    return build_app_of(svc, build_api(**limits))


def build_app_of(svc: services.Services, api: Any) -> Starlette:
    return Starlette(routes=[api_mount("/api", api)], middleware=[Middleware(ProvideServices, services=lambda: svc)])


@pytest.fixture(scope="module")
def api(livekit_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("api")
    env = {
        "LIVEKIT_URL": livekit_server.ws_url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "DASHBOARD_DATA_DIR": str(data / "data"),
        "DASHBOARD_SECRET_KEY": SECRET_KEY,
        "DASHBOARD_HISTORY_PATH": str(data / "history.duckdb"),
    }
    svc = services.build(load_settings(env, data / "none.toml"))
    svc.start_history()
    try:
        keys = {}
        for role in ROLES:
            svc.users.create(SYSTEM, f"api-{role}", PASSWORD, role)
            keys[role] = svc.api_keys.create(SYSTEM, f"{role} key", role, owner=f"api-{role}").secret
        with TestClient(build_app(svc, rate=0), base_url="http://127.0.0.1") as client:
            yield Api(svc, client, keys, env)
    finally:
        svc.close()


PLACEHOLDERS = {"{meeting_id}": "1", "{occurrence_id}": "1", "{key_id}": "1", "{chart}": "concurrency"}


def operations(client: TestClient, key: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path with its parameters filled in, operation) of every operation described."""
    described = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {key}"})
    assert described.status_code == 200
    found = []
    for path, item in described.json()["paths"].items():
        for method, operation in item.items():
            found.append((method.upper(), "/api" + re.sub(r"\{[^}]+\}", lambda m: PLACEHOLDERS.get(m.group(0), "x"), path), operation))
    return found


def problem(response) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.json()


# ----- authentication and capabilities ---------------------------------------------------------


def test_the_description_is_openapi_3_1_and_names_each_operation_s_capability(api: Api) -> None:
    described = api.client.get("/api/v1/openapi.json", headers=api.as_role("analyst")).json()
    assert described["openapi"].startswith("3.1")
    ops = operations(api.client, api.keys["analyst"])
    assert len(ops) >= 25
    for method, path, op in ops:
        assert op["security"] == [] or op.get("x-capability"), (method, path)
    public = [(m, p) for m, p, op in ops if op["security"] == []]
    assert public == [("POST", "/api/v1/join")], "the join endpoint is the only one open to anyone"


def test_every_operation_answers_401_with_one_body_without_credentials(api: Api) -> None:
    bodies = set()
    for method, path, op in operations(api.client, api.keys["admin"]):
        if op["security"] == []:
            continue
        response = api.client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        bodies.add(response.text)
    assert len(bodies) == 1


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_403_to_a_role_without_its_capability_and_audits_it(api: Api, role: str) -> None:
    refused = 0
    for method, path, op in operations(api.client, api.keys[role]):
        capability = op.get("x-capability")
        if op["security"] == [] or capability == "any signed-in role" or may(role, capability):
            continue
        response = api.client.request(method, path, json={}, headers=api.as_role(role))
        assert response.status_code == 403, (role, method, path, response.text)
        assert problem(response)["code"] == "forbidden"
        refused += 1
    audited = [r for r in api.svc.audit.query(result="refused", limit=5000) if r.actor == f"api-{role} (key {api.keys[role][:12]})"]
    if role == "admin":
        assert refused == 0
    else:
        assert refused > 0 and len(audited) >= refused


def test_revoked_expired_malformed_and_unknown_keys_get_the_same_401(api: Api) -> None:
    revoked = api.svc.api_keys.create(SYSTEM, "to revoke", "operator", owner="api-operator")
    api.svc.api_keys.revoke(SYSTEM, revoked.key.id)
    expired = api.svc.api_keys.create(SYSTEM, "to expire", "operator", owner="api-operator", expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    with api.svc.sessions.begin() as s:
        s.get(ApiKey, expired.key.id).expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
    good = api.keys["operator"]
    unknown = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    answers = [
        api.client.get("/api/v1/rooms", headers={"Authorization": value})
        for value in (f"Bearer {revoked.secret}", f"Bearer {expired.secret}", "Bearer lkd_nope", f"Bearer {unknown}", f"Basic {good}", "Bearer ")
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1
    assert api.client.get("/api/v1/rooms", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_a_key_records_its_last_use_and_its_requests_are_audited_with_its_prefix(api: Api) -> None:
    created = api.svc.api_keys.create(SYSTEM, "audited", "operator", owner="api-operator")
    assert created.key.last_used_at is None
    room = "api-audit-" + created.key.prefix[-8:]
    made = api.client.post("/api/v1/servers/default/rooms", json={"name": room}, headers={"Authorization": f"Bearer {created.secret}"})
    assert made.status_code == 201, made.text
    api.client.delete(f"/api/v1/servers/default/rooms/{room}", headers={"Authorization": f"Bearer {created.secret}"})
    seen = api.svc.api_keys.get(SYSTEM, created.key.id)
    assert seen.last_used_at is not None and seen.last_used_address
    actions = {r.action for r in api.svc.audit.query(actor=f"api-operator (key {created.key.prefix})")}
    assert {"room.create", "room.delete"} <= actions
    assert created.secret not in repr(seen)


def test_a_cookie_session_needs_the_csrf_token_to_change_state(api: Api) -> None:
    user = api.svc.users.get("api-operator")
    assert user is not None
    cookie, _ = api.svc.logins.create(user.id)
    client = TestClient(build_app(api.svc, rate=0), base_url="http://127.0.0.1", cookies={COOKIE_NAME: cookie})
    with client:
        who = client.get("/api/v1/session").json()
        assert (who["user"], who["role"], who["api_key"]) == ("api-operator", "operator", None) and who["csrf_token"]
        assert client.get("/api/v1/rooms").status_code == 200, "reading needs no token"
        room = "api-csrf-" + cookie[:6].lower().replace("_", "x").replace("-", "x")
        refused = client.post("/api/v1/servers/default/rooms", json={"name": room})
        assert refused.status_code == 403 and problem(refused)["code"] == "csrf_required"
        wrong = client.post("/api/v1/servers/default/rooms", json={"name": room}, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        made = client.post("/api/v1/servers/default/rooms", json={"name": room}, headers={"X-CSRF-Token": who["csrf_token"]})
        assert made.status_code == 201, made.text
        assert client.delete(f"/api/v1/servers/default/rooms/{room}", headers={"X-CSRF-Token": who["csrf_token"]}).status_code == 204


def test_a_caller_past_its_rate_gets_429_with_retry_after(api: Api) -> None:
    with TestClient(build_app(api.svc, rate=0.01, burst=2), base_url="http://127.0.0.1") as client:
        answers = [client.get("/api/v1/session", headers=api.as_role("analyst")) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["retry-after"]) >= 1 and problem(answers[2])["code"] == "rate_limited"


# ----- meetings ------------------------------------------------------------------------------


def meeting_body(title: str, start: datetime, minutes: int = 30, **extra: Any) -> dict[str, Any]:
    local = start.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0)
    return {"title": title, "server": "default", "start": local.isoformat(), "end": (local + timedelta(minutes=minutes)).isoformat(), "time_zone": "UTC", **extra}


def test_a_retried_create_with_the_same_idempotency_key_creates_once(api: Api) -> None:
    body = meeting_body("Idempotent", datetime.now(timezone.utc) + timedelta(days=3))
    headers = {**api.as_role("host"), "Idempotency-Key": "create-once-1"}
    first = api.client.post("/api/v1/meetings", json=body, headers=headers)
    again = api.client.post("/api/v1/meetings", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"] and again.headers["idempotent-replayed"] == "true"
    titled = [r for r in api.client.get("/api/v1/meetings", params={"limit": 200}, headers=api.as_role("host")).json()["items"] if r["title"] == "Idempotent"]
    assert len(titled) == 1
    other = api.client.post("/api/v1/meetings", json={**body, "title": "Another"}, headers=headers)
    assert other.status_code == 422 and problem(other)["code"] == "idempotency_key_reused"


def test_the_meetings_list_pages_with_a_cursor_over_every_occurrence_once(api: Api) -> None:
    start = datetime.now(timezone.utc) + timedelta(days=10)
    for i in range(5):
        assert api.client.post("/api/v1/meetings", json=meeting_body(f"Paged {i}", start + timedelta(hours=i)), headers=api.as_role("host")).status_code == 201
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2, "since": start.isoformat()}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get("/api/v1/meetings", params=params, headers=api.as_role("host")).json()
        seen += [item["occurrence"]["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 5 and pages >= 3
    bad = api.client.get("/api/v1/meetings", params={"cursor": "not-a-cursor"}, headers=api.as_role("host"))
    assert bad.status_code == 422 and problem(bad)["code"] == "invalid_cursor"


def test_another_host_s_meeting_is_not_found(api: Api) -> None:
    made = api.client.post("/api/v1/meetings", json=meeting_body("Mine", datetime.now(timezone.utc) + timedelta(days=2)), headers=api.as_role("host")).json()
    api.svc.users.create(SYSTEM, "api-host-2", PASSWORD, "host")
    other = api.svc.api_keys.create(SYSTEM, "host 2", "host", owner="api-host-2").secret
    answer = api.client.get(f"/api/v1/meetings/{made['id']}", headers={"Authorization": f"Bearer {other}"})
    assert answer.status_code == 404 and problem(answer)["code"] == "not_found"
    assert api.client.get(f"/api/v1/meetings/{made['id']}", headers=api.as_role("admin")).status_code == 200


def test_replacing_a_meeting_without_invitees_keeps_its_list(api: Api) -> None:
    host = api.as_role("host")
    start = datetime.now(timezone.utc) + timedelta(days=4)
    made = api.client.post("/api/v1/meetings", json=meeting_body("Kept list", start, private=True, invitees=["kept@example.com"]), headers=host)
    assert made.status_code == 201, made.text
    body = {**meeting_body("Kept list, renamed", start, private=True), "version": made.json()["version"]}
    replaced = api.client.put(f"/api/v1/meetings/{made.json()['id']}", json=body, headers=host)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["title"] == "Kept list, renamed" and replaced.json()["invitees"] == ["kept@example.com"]


def test_bad_input_is_a_422_problem_and_nothing_is_created(api: Api) -> None:
    before = len(api.client.get("/api/v1/meetings", params={"limit": 200}, headers=api.as_role("admin")).json()["items"])
    for body in (
        {"title": "x"},
        meeting_body("", datetime.now(timezone.utc)),
        {**meeting_body("Offset", datetime.now(timezone.utc)), "start": "2026-12-01T10:00:00+02:00"},
        meeting_body("Backwards", datetime.now(timezone.utc) + timedelta(days=1), minutes=-30),
        meeting_body("Nowhere", datetime.now(timezone.utc) + timedelta(days=1), server="no-such-server"),
        {**meeting_body("Extra", datetime.now(timezone.utc)), "surprise": 1},
    ):
        answer = api.client.post("/api/v1/meetings", json=body, headers=api.as_role("host"))
        assert answer.status_code == 422, (body, answer.text)
        assert problem(answer)["code"] in ("invalid", "invalid_request")
    after = len(api.client.get("/api/v1/meetings", params={"limit": 200}, headers=api.as_role("admin")).json()["items"])
    assert after == before


def test_a_meeting_made_with_an_api_key_is_started_by_the_sidecar_joined_and_ended_through_the_api(api: Api, lk_api, participants) -> None:  # type: ignore[no-untyped-def]
    host = api.as_role("host")
    receiver = Receiver()
    registered = api.client.post(
        "/api/v1/admin/webhooks", json={"url": receiver.url, "events": ["meeting.started", "meeting.ended"]}, headers=api.as_role("admin")
    )
    assert registered.status_code == 201, registered.text
    signing_secret = registered.json()["secret"]
    made = api.client.post("/api/v1/meetings", json=meeting_body("API meeting", datetime.now(timezone.utc) - timedelta(seconds=5), password="letmein"), headers=host)
    assert made.status_code == 201, made.text
    meeting = made.json()
    occurrence = meeting["occurrences"][0]
    assert meeting["join_url"] and "letmein" not in made.text

    env = {**base_env(), **api.env}
    done = subprocess.run([sys.executable, "scheduler.py", "--once"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    rooms = lk_api.call(lambda lk: lk.room.list_rooms(lkapi.ListRoomsRequest(names=[occurrence["room"]])))
    assert [r.name for r in rooms.rooms] == [occurrence["room"]], "the sidecar created the room"
    assert api.client.get(f"/api/v1/meetings/{meeting['id']}", headers=host).json()["status"] == "active"

    slug = meeting["join_url"].split("m=", 1)[1]
    wrong = api.client.post("/api/v1/join", json={"link": slug, "name": "Guest", "password": "nope"})
    assert wrong.status_code == 403 and problem(wrong)["code"] == "join_refused"
    ticket = api.client.post("/api/v1/join", json={"link": slug, "name": "Guest", "password": "letmein"})
    assert ticket.status_code == 200, ticket.text
    joined = ticket.json()
    assert joined["room"] == occurrence["room"]
    guest = participants.join(joined["room"], joined["identity"], token=joined["token"])
    assert guest.identity == joined["identity"]

    ended = api.client.post(f"/api/v1/occurrences/{occurrence['id']}/end", headers=host)
    assert ended.status_code == 200, ended.text
    assert ended.json()["occurrences"][0]["status"] == "ended"
    rooms = lk_api.call(lambda lk: lk.room.list_rooms(lkapi.ListRoomsRequest(names=[occurrence["room"]])))
    assert list(rooms.rooms) == [], "ending through the API deleted the room"
    assert participants.wait_disconnected(guest, timeout=15)

    def mine() -> list[dict[str, Any]]:
        return [r.event for r in receiver.received if r.event["data"].get("occurrence_id") == occurrence["id"]]  # type: ignore[union-attr]

    try:
        assert wait_for(lambda: {e["type"] for e in mine()} == {"meeting.started", "meeting.ended"}, timeout=30), [r.event for r in receiver.received]
        verify = recipe().verify
        assert all(verify(signing_secret, r.headers["x-dashboard-signature"], r.body) for r in receiver.received)
        assert not verify("whsec_not-the-secret", receiver.received[0].headers["x-dashboard-signature"], receiver.received[0].body)
    finally:
        receiver.close()
        api.client.delete(f"/api/v1/admin/webhooks/{registered.json()['receiver']['id']}", headers=api.as_role("admin"))


def test_an_unexpected_error_is_a_500_problem_and_the_connection_stays_usable(api: Api) -> None:
    # Starlette's handler for Exception answers and then raises again, and uvicorn then closes
    # the keep-alive connection: a client's next request on it failed with a reset.
    app = build_api(rate=0)

    @app.get("/v1/broken")
    def broken() -> None:
        raise RuntimeError("a fault")

    with TestClient(build_app_of(api.svc, app), base_url="http://127.0.0.1") as client:  # raises what the app lets escape
        for _ in range(2):
            answer = client.get("/api/v1/broken")
            assert answer.status_code == 500
            assert problem(answer)["code"] == "internal_error" and "a fault" not in answer.text


# ----- rooms and tokens ------------------------------------------------------------------------


def test_an_operator_key_creates_lists_and_ends_a_room_on_the_server(api: Api, lk_api, unique_name) -> None:  # type: ignore[no-untyped-def]
    room = unique_name("api-room")
    op = api.as_role("operator")
    made = api.client.post("/api/v1/servers/default/rooms", json={"name": room, "metadata": "{\"by\": \"api\"}"}, headers=op)
    assert made.status_code == 201, made.text
    assert made.json()["name"] == room
    live = api.client.get("/api/v1/servers/default/rooms", params={"max_age": 0}, headers=op).json()
    assert room in [r["room"]["name"] for r in live["rooms"]]
    listed = lk_api.call(lambda lk: lk.room.list_rooms(lkapi.ListRoomsRequest(names=[room])))
    assert listed.rooms[0].metadata == '{"by": "api"}'
    assert api.client.delete(f"/api/v1/servers/default/rooms/{room}", headers=op).status_code == 204
    assert list(lk_api.call(lambda lk: lk.room.list_rooms(lkapi.ListRoomsRequest(names=[room]))).rooms) == []
    missing = api.client.get("/api/v1/servers/nowhere/rooms", headers=op)
    assert missing.status_code == 404 and problem(missing)["code"] == "not_found"


def test_the_live_view_lists_a_room_s_participants_and_a_changed_participant_comes_back(api: Api, participants, unique_name) -> None:  # type: ignore[no-untyped-def]
    # A participant's attributes are a read-only mapping in the records: the answers must still
    # serialize them (a room with anyone in it was a 500, and so was every participant change).
    room = unique_name("api-people")
    op = api.as_role("operator")
    assert api.client.post("/api/v1/servers/default/rooms", json={"name": room}, headers=op).status_code == 201
    participants.join(room, "listed")
    changed = api.client.patch(f"/api/v1/servers/default/rooms/{room}/participants/listed", json={"attributes": {"desk": "4"}}, headers=op)
    assert changed.status_code == 200, changed.text
    assert changed.json()["attributes"] == {"desk": "4"}
    allowed = api.client.put(f"/api/v1/servers/default/rooms/{room}/participants/listed/permissions", json={"can_publish": False}, headers=op)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["permission"]["can_publish"] is False
    for path in ("/api/v1/servers/default/rooms", "/api/v1/rooms"):
        live = api.client.get(path, params={"max_age": 0}, headers=op)
        assert live.status_code == 200, live.text
        servers = live.json() if isinstance(live.json(), list) else [live.json()]
        shown = [r for s in servers for r in s["rooms"] if r["room"]["name"] == room]
        assert [(p["identity"], p["attributes"]) for p in shown[0]["participants"]] == [("listed", {"desk": "4"})]
    assert api.client.delete(f"/api/v1/servers/default/rooms/{room}", headers=op).status_code == 204


def test_a_host_key_gets_tokens_only_for_its_meetings_rooms(api: Api) -> None:
    refused = api.client.post("/api/v1/tokens", json={"server": "default", "room": "someone-elses", "identity": "me"}, headers=api.as_role("host"))
    assert refused.status_code == 403
    issued = api.client.post("/api/v1/tokens", json={"server": "default", "room": "any-room", "identity": "ops", "ttl_seconds": 600}, headers=api.as_role("operator"))
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["claims"]["video"]["room"] == "any-room" and body["token"].count(".") == 2


def test_no_answer_of_the_api_holds_the_livekit_secret_or_a_key_s_hash(api: Api, livekit_server: DevServer) -> None:
    secret = livekit_server.api_secret
    with api.svc.sessions() as s:
        hashes = [k.secret_hash for k in s.query(ApiKey).all()]
    answers = [api.client.get(path, headers=api.as_role("admin")) for path in ("/api/v1/openapi.json", "/api/v1/rooms", "/api/v1/meetings", "/api/v1/session")]
    answers.append(api.client.post("/api/v1/tokens", json={"server": "default", "room": "r", "identity": "i"}, headers=api.as_role("admin")))
    for answer in answers:
        assert secret not in answer.text
        assert not any(h in answer.text for h in hashes)


def test_the_create_api_key_command_prints_a_working_key_once_and_stores_only_its_hash(api: Api, tmp_path: Path) -> None:
    env = {**base_env(), "DASHBOARD_DATA_DIR": str(tmp_path / "data")}

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lib.auth", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)

    nobody = command("create-api-key", "ci", "--role", "operator")
    assert nobody.returncode == 1 and "no admin" in nobody.stderr
    assert command("first-admin", "root").returncode == 0
    made = command("create-api-key", "ci", "--role", "operator", "--expires-days", "30")
    assert made.returncode == 0, made.stderr
    [key] = re.findall(r"lkd_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", made.stdout)
    assert "acts as root" in made.stdout and "role operator" in made.stdout
    built = services.build(load_settings({"DASHBOARD_DATA_DIR": str(tmp_path / "data")}, tmp_path / "none.toml"))
    try:
        [view] = built.api_keys.list(SYSTEM)
        assert (view.name, view.role, view.owner, view.prefix) == ("ci", "operator", "root", key[:12])
        assert view.expires_at is not None
        with built.sessions() as s:
            stored = s.query(ApiKey).one()
        assert key not in (stored.secret_hash, stored.prefix) and stored.secret_hash == hashlib.sha256(key.encode()).hexdigest()
        caller = built.api_keys.authenticate(key, "127.0.0.1")
        assert caller is not None and (caller.actor.name, caller.actor.role) == ("root", "operator")
    finally:
        built.close()


# ----- history -------------------------------------------------------------------------------


def test_a_history_chart_comes_as_json_csv_and_parquet_with_the_same_rows(api: Api, participants, lk_api, unique_name) -> None:  # type: ignore[no-untyped-def]
    import io

    import pandas as pd

    room = unique_name("api-history")
    lk_api.create_room(room)
    participants.join(room, "charted")
    since = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    params: dict[str, Any] = {"since": since, "room": room}
    analyst = api.as_role("analyst")

    def charted() -> dict[str, Any]:
        return api.client.get("/api/v1/history/concurrency", params=params, headers=analyst).json()

    deadline = datetime.now(timezone.utc) + timedelta(seconds=30)
    body = charted()
    while not any((r.get("participants") or 0) >= 1 for r in body["rows"]) and datetime.now(timezone.utc) < deadline:
        participants.run(__import__("asyncio").sleep(1))
        body = charted()
    assert body["chart"] == "concurrency" and body["step_seconds"] >= 1
    assert any((r.get("participants") or 0) >= 1 for r in body["rows"]), body
    assert {"ts", "server", "rooms", "participants"} <= set(body["columns"])

    as_csv = api.client.get("/api/v1/history/concurrency", params={**params, "until": body["end"], "since": body["start"], "format": "csv"}, headers=analyst)
    as_parquet = api.client.get("/api/v1/history/concurrency", params={**params, "until": body["end"], "since": body["start"], "format": "parquet"}, headers=analyst)
    assert as_csv.headers["content-type"].startswith("text/csv") and as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    from_csv, from_parquet = pd.read_csv(io.StringIO(as_csv.text)), pd.read_parquet(io.BytesIO(as_parquet.content))
    assert list(from_csv.columns) == list(from_parquet.columns) == body["columns"]
    assert len(from_csv) == len(from_parquet) >= 1

    for bad in ({"since": "2026-12-01T10:00:00"}, {"since": body["end"], "until": body["start"]}, {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}):
        answer = api.client.get("/api/v1/history/concurrency", params=bad, headers=analyst)
        assert answer.status_code == 422, (bad, answer.text)
    unknown = api.client.get("/api/v1/history/no-such-chart", headers=analyst)
    assert unknown.status_code == 422


def test_every_history_chart_answers_for_a_meeting_filter(api: Api) -> None:
    from lib.history.reports import CHARTS

    for name in CHARTS:
        answer = api.client.get(f"/api/v1/history/{name}", params={"meeting": [999_999]}, headers=api.as_role("operator"))
        assert answer.status_code == 200, (name, answer.text)
        rows = answer.json()["rows"]
        if name == "concurrency":  # a row per bucket of each server sampled: none of that meeting's rooms was in it
            assert all(not r["participants"] and not r["rooms"] for r in rows), rows
        else:
            assert rows == [], "a meeting that does not exist narrows to nothing, not to everything"


# ----- administration ------------------------------------------------------------------------


def test_admin_servers_never_return_a_secret_and_a_server_that_does_not_answer_is_not_saved(api: Api, livekit_server: DevServer) -> None:
    admin = api.as_role("admin")
    listed = api.client.get("/api/v1/admin/servers", headers=admin)
    assert listed.status_code == 200 and [s["name"] for s in listed.json()] == ["default"]
    assert "api_secret" not in listed.text and livekit_server.api_secret not in listed.text
    refused = api.client.post("/api/v1/admin/servers", json={"name": "ghost", "url": "http://127.0.0.1:9", "api_key": "k", "api_secret": "s" * 32}, headers=admin)
    assert refused.status_code in (409, 422), refused.text
    assert [s["name"] for s in api.client.get("/api/v1/admin/servers", headers=admin).json()] == ["default"]
    tested = api.client.post("/api/v1/admin/servers/default/test", headers=admin)
    assert tested.status_code == 200 and tested.json()["ok"] is True


def test_admin_users_are_created_changed_and_their_passwords_never_echoed(api: Api) -> None:
    admin = api.as_role("admin")
    made = api.client.post("/api/v1/admin/users", json={"username": "api-made", "password": "made-password-123", "role": "analyst"}, headers=admin)
    assert made.status_code == 201 and made.json()["role"] == "analyst" and "made-password-123" not in made.text
    short = api.client.post("/api/v1/admin/users", json={"username": "api-short", "password": "short", "role": "analyst"}, headers=admin)
    assert short.status_code == 422 and api.svc.users.get("api-short") is None
    changed = api.client.patch("/api/v1/admin/users/api-made", json={"role": "operator", "disabled": True}, headers=admin)
    assert changed.status_code == 200 and (changed.json()["role"], changed.json()["disabled"]) == ("operator", True)
    assert api.client.put("/api/v1/admin/users/api-made/password", json={"password": "another-password-456"}, headers=admin).status_code == 204
    assert api.svc.users.check_password("api-made", "another-password-456")
    missing = api.client.patch("/api/v1/admin/users/nobody-here", json={"disabled": True}, headers=admin)
    assert missing.status_code in (404, 422)


def test_the_audit_trail_pages_with_a_cursor_and_comes_as_csv(api: Api) -> None:
    admin = api.as_role("admin")
    for _ in range(3):
        api.client.get("/api/v1/admin/servers", headers=api.as_role("analyst"))  # refused, audited
    seen, cursor = [], None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": 7, "result": "refused"}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get("/api/v1/admin/audit", params=params, headers=admin).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 3 and seen == sorted(seen, reverse=True)
    as_csv = api.client.get("/api/v1/admin/audit", params={"result": "refused", "limit": 5000, "format": "csv"}, headers=admin)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert len(as_csv.text.strip().splitlines()) == len(seen) + 1


def test_an_api_key_made_through_the_api_works_until_revoked(api: Api) -> None:
    admin = api.as_role("admin")
    made = api.client.post("/api/v1/admin/api-keys", json={"name": "bot", "role": "analyst", "owner": "api-analyst"}, headers=admin)
    assert made.status_code == 201, made.text
    key, view = made.json()["key"], made.json()["api_key"]
    assert view["prefix"] == key[:12] and view["state"] == "active"
    listed = api.client.get("/api/v1/admin/api-keys", headers=admin)
    assert key not in listed.text and view["prefix"] in listed.text
    assert api.client.get("/api/v1/session", headers={"Authorization": f"Bearer {key}"}).json()["api_key"] == view["prefix"]
    revoked = api.client.delete(f"/api/v1/admin/api-keys/{view['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert api.client.get("/api/v1/session", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert api.client.delete("/api/v1/admin/api-keys/999999", headers=admin).status_code == 404
    past = api.client.post("/api/v1/admin/api-keys", json={"name": "old", "role": "analyst", "expires_at": "2020-01-01T00:00:00Z"}, headers=admin)
    assert past.status_code == 422


def test_webhook_receivers_through_the_api_show_their_secret_once_and_their_deliveries(api: Api) -> None:
    admin = api.as_role("admin")
    receiver = Receiver()
    try:
        made = api.client.post("/api/v1/admin/webhooks", json={"url": receiver.url, "events": ["room.started"], "description": "ops"}, headers=admin)
        assert made.status_code == 201, made.text
        secret, rid = made.json()["secret"], made.json()["receiver"]["id"]
        listed = api.client.get("/api/v1/admin/webhooks", headers=admin)
        assert rid in [r["id"] for r in listed.json()] and secret not in listed.text
        assert api.client.post(f"/api/v1/admin/webhooks/{rid}/pause", json={"reason": "maintenance"}, headers=admin).json()["state"] == "paused"
        assert api.client.post(f"/api/v1/admin/webhooks/{rid}/resume", headers=admin).json()["state"] == "active"
        sent = api.client.post(f"/api/v1/admin/webhooks/{rid}/test", headers=admin).json()["delivery_id"]
        assert wait_for(lambda: any(r.event["type"] == "ping" for r in receiver.received))
        assert recipe().verify(secret, receiver.received[-1].headers["x-dashboard-signature"], receiver.received[-1].body)
        def listed() -> list[dict[str, Any]]:
            return api.client.get("/api/v1/admin/webhooks/deliveries", params={"receiver_id": rid}, headers=admin).json()["items"]

        assert wait_for(lambda: any(d["id"] == sent and d["status"] == "delivered" for d in listed())), listed()
        assert all(d["receiver_id"] == rid for d in listed())
        assert [d["next_attempt_at"] for d in listed() if d["status"] == "delivered"] == [None]
        for _ in range(2):
            api.client.post(f"/api/v1/admin/webhooks/{rid}/test", headers=admin)
        first = api.client.get("/api/v1/admin/webhooks/deliveries", params={"receiver_id": rid, "limit": 2}, headers=admin).json()
        rest = api.client.get("/api/v1/admin/webhooks/deliveries", params={"receiver_id": rid, "limit": 2, "cursor": first["next_cursor"]}, headers=admin).json()
        assert len(first["items"]) == 2 and first["next_cursor"] and [d["id"] for d in rest["items"]] == [sent]
        changed = api.client.put(f"/api/v1/admin/webhooks/{rid}", json={"events": ["room.started", "room.finished"]}, headers=admin)
        assert changed.status_code == 200 and changed.json()["events"] == ["room.started", "room.finished"]
        for bad in ({"url": "ftp://x", "events": ["room.started"]}, {"url": receiver.url, "events": ["nope"]}, {"url": receiver.url, "events": []}):
            assert api.client.post("/api/v1/admin/webhooks", json=bad, headers=admin).status_code == 422, bad
        assert api.client.delete(f"/api/v1/admin/webhooks/{rid}", headers=admin).status_code == 204
        assert api.client.post(f"/api/v1/admin/webhooks/{rid}/pause", json={}, headers=admin).status_code == 404
    finally:
        receiver.close()
