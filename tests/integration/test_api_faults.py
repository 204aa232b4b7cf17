"""Faults of the REST API that schemathesis found (tests/integration/test_api_schema.py), each
pinned by a focused request against the real services and livekit-server: a live room with a
participant, ids larger than the database's integers, a body that is not JSON, times at the
ends of the calendar."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.integration.test_api import Api, api, meeting_body, problem  # noqa: F401 - `api` is the fixture

pytestmark = pytest.mark.integration


def test_the_live_rooms_answer_lists_a_participant_with_its_attributes(api: Api, participants, unique_name) -> None:  # type: ignore[no-untyped-def]
    room = unique_name("api-live")
    op = api.as_role("operator")
    assert api.client.post("/api/v1/servers/default/rooms", json={"name": room}, headers=op).status_code == 201
    participants.join(room, "attributed", attributes={"team": "blue"})
    try:
        for path in ("/api/v1/rooms", "/api/v1/servers/default/rooms"):
            answer = api.client.get(path, params={"max_age": 0}, headers=op)
            assert answer.status_code == 200, (path, answer.text)
            servers = answer.json() if isinstance(answer.json(), list) else [answer.json()]
            [listed] = [r for s in servers for r in s["rooms"] if r["room"]["name"] == room]
            assert [(p["identity"], p["attributes"]) for p in listed["participants"]] == [("attributed", {"team": "blue"})]
        changed = api.client.patch(f"/api/v1/servers/default/rooms/{room}/participants/attributed", json={"attributes": {"team": "red"}}, headers=op)
        assert changed.status_code == 200, changed.text
        assert changed.json()["attributes"] == {"team": "red"}
    finally:
        api.client.delete(f"/api/v1/servers/default/rooms/{room}", headers=op)


@pytest.mark.parametrize("too_big", [2**31, 2**63, 10**30])
def test_an_id_larger_than_the_database_stores_is_an_invalid_request(api: Api, too_big: int) -> None:
    host = api.as_role("host")
    for method, path in (
        ("GET", f"/api/v1/meetings/{too_big}"),
        ("GET", f"/api/v1/meetings/{too_big}/invitees"),
        ("GET", f"/api/v1/meetings/{too_big}/calendar.ics"),
        ("POST", f"/api/v1/meetings/{too_big}/cancel"),
        ("POST", f"/api/v1/occurrences/{too_big}/cancel"),
        ("POST", f"/api/v1/occurrences/{too_big}/end"),
        ("GET", f"/api/v1/occurrences/{too_big}/attendance"),
        ("DELETE", f"/api/v1/meetings/{too_big}/invitees/a@example.com"),
    ):
        answer = api.client.request(method, path, headers=host)
        assert answer.status_code == 422, (method, path, answer.text)
        assert problem(answer)["code"] == "invalid_request"


def test_a_meeting_version_larger_than_the_database_stores_is_an_invalid_request(api: Api) -> None:
    host = api.as_role("host")
    made = api.client.post("/api/v1/meetings", json=meeting_body("Versioned", datetime.now(timezone.utc) + timedelta(days=4)), headers=host).json()
    body = {**meeting_body("Versioned", datetime.now(timezone.utc) + timedelta(days=4)), "version": 2**63}
    answer = api.client.put(f"/api/v1/meetings/{made['id']}", json=body, headers=host)
    assert answer.status_code == 422, answer.text
    assert problem(answer)["code"] == "invalid_request"


def test_a_body_that_is_not_json_is_a_described_400_problem(api: Api) -> None:
    described = api.client.get("/api/v1/openapi.json", headers=api.as_role("admin")).json()
    with_bodies = [(path, method) for path, item in described["paths"].items() for method, op in item.items() if "requestBody" in op]
    assert with_bodies and all("400" in described["paths"][p][m]["responses"] for p, m in with_bodies), "every operation with a body says it may answer 400"
    answer = api.client.post("/api/v1/join", content=b"\xff\xfe{", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and problem(answer)["code"] == "http_error"


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_list_bounds_at_the_ends_of_the_calendar_are_answered(api: Api, when: str) -> None:
    for params in ({"since": when}, {"until": when}):
        answer = api.client.get("/api/v1/meetings", params=params, headers=api.as_role("host"))
        assert answer.status_code in (200, 422), (params, answer.text)


def test_meeting_times_at_the_ends_of_the_calendar_are_refused_not_failed(api: Api) -> None:
    for start, end, zone in (("0001-01-01T00:00:00", "0001-01-01T01:00:00", "Europe/Berlin"), ("9999-12-31T22:00:00", "9999-12-31T23:00:00", "America/New_York")):
        body: dict[str, Any] = {"title": "Edge", "server": "default", "start": start, "end": end, "time_zone": zone}
        answer = api.client.post("/api/v1/meetings", json=body, headers=api.as_role("host"))
        assert answer.status_code == 422, (body, answer.text)


def test_muting_a_track_that_is_not_there_is_not_found(api: Api, participants, unique_name) -> None:  # type: ignore[no-untyped-def]
    """livekit-server answers a mute in a missing room or of a missing participant with
    "unavailable: no response from servers" (after 3 s): that was a 502 saying the server was down."""
    room = unique_name("api-mute")
    op = api.as_role("operator")
    assert api.client.post("/api/v1/servers/default/rooms", json={"name": room}, headers=op).status_code == 201
    handle = participants.join(room, "speaker", publish_audio=True)
    [track] = participants.track_sids(handle).values()
    try:
        base = f"/api/v1/servers/default/rooms/{room}/participants"
        assert api.client.put(f"{base}/speaker/tracks/{track}/muted", json={"muted": True}, headers=op).status_code == 200
        for path in (f"{base}/speaker/tracks/TR_none/muted", f"{base}/nobody/tracks/{track}/muted", f"/api/v1/servers/default/rooms/no-such-room/participants/speaker/tracks/{track}/muted"):
            answer = api.client.put(path, json={"muted": True}, headers=op)
            assert answer.status_code == 404, (path, answer.text)
            assert problem(answer)["code"] == "not_found"
    finally:
        api.client.delete(f"/api/v1/servers/default/rooms/{room}", headers=op)


@pytest.mark.parametrize(
    "method,path",
    [
        ("DELETE", f"/api/v1/admin/api-keys/{2**40}"),
        ("POST", f"/api/v1/admin/webhooks/{2**40}/resume"),
        ("GET", f"/api/v1/admin/webhooks/deliveries?receiver_id={2**40}"),
        ("GET", f"/api/v1/history/concurrency?meeting={2**40}"),
    ],
)
def test_an_id_past_the_database_s_integers_is_a_422_not_a_500(api: Api, method: str, path: str) -> None:
    answer = api.client.request(method, path, headers=api.as_role("admin"))
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("zone,start", [("America/New_York", "9999-12-31T22:00:00"), ("Europe/Berlin", "9999-12-31T22:00:00"), ("Pacific/Kiritimati", "0001-01-01T00:30:00")])
def test_a_meeting_at_the_edge_of_the_calendar_is_refused_or_works_everywhere(api: Api, zone: str, start: str) -> None:
    body = {"title": "Edge", "server": "default", "start": start, "end": start[:-5] + "45:00", "time_zone": zone}
    made = api.client.post("/api/v1/meetings", json=body, headers=api.as_role("host"))
    assert made.status_code in (201, 422), made.text
    if made.status_code == 201:
        mid = made.json()["id"]
        assert api.client.get(f"/api/v1/meetings/{mid}/calendar.ics", headers=api.as_role("host")).status_code == 200


def test_a_body_over_the_limit_is_a_413_before_it_is_read(api: Api) -> None:
    huge = {"title": "x" * (2 << 20), "server": "default", "start": "2030-01-01T10:00:00", "end": "2030-01-01T11:00:00"}
    answer = api.client.post("/api/v1/meetings", json=huge, headers=api.as_role("host"))
    assert answer.status_code == 413 and problem(answer)["code"] == "too_large"

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"title": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    streamed = api.client.post("/api/v1/meetings", content=chunks(), headers={**api.as_role("host"), "content-type": "application/json"})
    assert streamed.status_code == 413, streamed.text


@pytest.mark.parametrize("body", [
    {"title": "a\u0000b", "server": "default", "start": "2030-01-01T10:00:00", "end": "2030-01-01T11:00:00"},
    {"title": "ok", "server": "default", "start": "2030-01-01T10:00:00", "end": "2030-01-01T11:00:00", "invitees": ["a\u0000@example.com"]},
])
def test_text_with_a_nul_is_refused_with_422(api: Api, body: dict[str, Any]) -> None:
    answer = api.client.post("/api/v1/meetings", json=body, headers=api.as_role("host"))
    assert answer.status_code == 422 and "NUL" in answer.text


def test_a_room_name_no_path_could_name_is_refused_and_a_nul_in_a_path_is_audited(api: Api) -> None:
    made = api.client.post("/api/v1/servers/default/rooms", json={"name": "has/slash"}, headers=api.as_role("operator"))
    assert made.status_code == 422
    gone = api.client.delete("/api/v1/servers/default/rooms/a%00b", headers=api.as_role("analyst"))
    assert gone.status_code == 403
    assert any(r.target.endswith("a\\0b") for r in api.svc.audit.query(result="refused", limit=50))


def test_the_audit_filter_by_user_finds_their_key_s_actions_and_a_reversed_range_is_refused(api: Api) -> None:
    admin = api.as_role("admin")
    api.client.get("/api/v1/admin/servers", headers=api.as_role("analyst"))  # refused, as "api-analyst (key ...)"
    found = api.client.get("/api/v1/admin/audit", params={"actor": "API-Analyst"}, headers=admin).json()["items"]
    assert found and all(r["actor"].startswith("api-analyst (key ") for r in found)
    reversed_range = api.client.get("/api/v1/admin/audit", params={"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, headers=admin)
    assert reversed_range.status_code == 422
    csv = api.client.get("/api/v1/admin/audit", params={"limit": 1, "format": "csv"}, headers=admin)
    assert csv.headers.get("x-next-cursor")
