"""Schemathesis over the REST API's whole OpenAPI description, in-process against real services
and the session's real livekit-server, once as each role (admin, operator, host, analyst; an API
key each): no answer is a 5xx, and every answer has a documented status, a documented content
type and a body that matches its schema.

Real objects first: a private meeting with an invitee (its id, its occurrence's id, the
invitee's address) and a room with a participant publishing audio (server, room, identity,
track sid). Generated path parameters are swapped for these in about half of the fuzzed cases,
so requests reach real meetings and rooms as well as missing ones.

Budget: a few minutes at most on 2 shared cores (about 1 minute measured for the 112 tests,
28 operations times 4 roles). Each operation gets schemathesis' examples and coverage phases
(boundary and invalid values: unicode, huge integers, NUL bytes, empty and over-long strings,
undocumented methods; a fixed set of cases per operation) and a fuzzing phase of MAX_EXAMPLES
cases, positive and negative, derandomized with a fixed seed so a run repeats the one before
it. The health checks that break on slow or heavily filtered generation are off: requests go to
a real server, and some (creating a room, ending a meeting) take tens of milliseconds. No
stateful phase: the seeded objects stand in for the links it would follow.

The description is read at collection (it depends on the routes only), one test per operation
and role: schemathesis' lazy loader (`schemathesis.pytest.from_fixture`) fails on pytest 9.2,
whose nodes no longer have the `_nodeid` it rewrites."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from lib.api.v1 import build_api
from lib.auth.roles import ROLES
from lib.livekit.devserver import DevServer
from lib.sim.participants import ParticipantPool
from tests.integration.test_api import Api, api, build_app, meeting_body  # noqa: F401 - `api` is the fixture

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 6
SEED = 20260901
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = {
    "seed": SEED,
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large", "large_base_example"],
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
    "phases": {"stateful": {"enabled": False}},
}
# Requests go to an app over the real services the `api` fixture builds.
schema = schemathesis.openapi.from_dict(build_api(rate=0).openapi(), config=schemathesis.Config.from_dict(CONFIG))
CURRENT: dict[str, str] = {}  # the running role's seeded objects, by path parameter name


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    known = {name: CURRENT[name] for name in path_parameters or () if name in CURRENT}
    return st.sampled_from([path_parameters, {**(path_parameters or {}), **known}]) if known else st.just(path_parameters)


@pytest.fixture(scope="module")
def pool(livekit_server: DevServer) -> Iterator[ParticipantPool]:
    made = ParticipantPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def app(api: Api) -> Any:
    return build_app(api.svc, rate=0)


@pytest.fixture(scope="module")
def seeds() -> dict[str, dict[str, str]]:
    return {}


@pytest.fixture
def real(api: Api, pool: ParticipantPool, seeds: dict[str, dict[str, str]], role: str) -> Iterator[dict[str, str]]:
    """The role's objects, made before its first case: each role has its own, since the
    requests of one may end or delete them."""
    if role not in seeds:
        seeds[role] = seed(api, pool, role)
    CURRENT.clear()
    CURRENT.update(seeds[role])
    yield CURRENT
    CURRENT.clear()


def seed(api: Api, pool: ParticipantPool, role: str) -> dict[str, str]:
    body = meeting_body(f"Schema seed {role}", datetime.now(timezone.utc) + timedelta(days=1), private=True, invitees=["guest@example.com"])
    made = api.client.post("/api/v1/meetings", json=body, headers=api.as_role("host"))
    assert made.status_code == 201, made.text
    meeting = made.json()
    room, identity = f"schema-seed-{role}", f"schema-guest-{role}"
    assert api.client.post("/api/v1/servers/default/rooms", json={"name": room}, headers=api.as_role("operator")).status_code == 201
    handle = pool.join(room, identity, publish_audio=True)
    [track] = pool.track_sids(handle).values()
    return {
        "meeting_id": str(meeting["id"]), "occurrence_id": str(meeting["occurrences"][0]["id"]), "email": "guest@example.com",
        "server": "default", "room": room, "identity": identity, "track_sid": track,
    }  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # `real` is made once per role on purpose
def test_every_answer_is_documented_and_no_server_error(case: schemathesis.Case, role: str, api: Api, app: Any, real: dict[str, str]) -> None:
    case.call_and_validate(headers=api.as_role(role), checks=CHECKS, app=app)
