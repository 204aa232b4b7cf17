"""Outgoing webhooks' pure parts: the signature and its check (ours and the README's recipe),
the back-off schedule, and the payloads."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest

from lib.outbound import events, signing
from lib.outbound.retry import RetryPolicy
from lib.outbound.service import validate_events, validate_url
from lib.auth.policy import Invalid

REPO = Path(__file__).resolve().parents[2]
SECRET = signing.new_secret()
BODY = b'{"id":"evt_1","type":"meeting.started","data":{}}'


def recipe() -> ModuleType:
    """docs/webhook_verify.py, as a receiver copies it from the README."""
    module = ModuleType("webhook_verify")
    exec(compile((REPO / "docs" / "webhook_verify.py").read_text(), "webhook_verify.py", "exec"), module.__dict__)
    return module


def test_the_readme_shows_the_recipe_file_verbatim() -> None:
    readme = (REPO / "README.md").read_text()
    assert (REPO / "docs" / "webhook_verify.py").read_text().strip() in readme


def test_the_recipe_uses_the_standard_library_only() -> None:
    source = (REPO / "docs" / "webhook_verify.py").read_text()
    imported = set(re.findall(r"^(?:import|from) (\w+)", source, re.M))
    assert imported == {"hashlib", "hmac", "time"}


@pytest.mark.parametrize("check", ["ours", "recipe"])
def test_a_good_signature_verifies(check: str) -> None:
    now = int(time.time())
    header = signing.header(SECRET, now, BODY)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    verify = signing.verify if check == "ours" else recipe().verify
    assert verify(SECRET, header, BODY)


@pytest.mark.parametrize("check", ["ours", "recipe"])
def test_a_tampered_body_a_wrong_secret_or_an_old_time_does_not_verify(check: str) -> None:
    verify = signing.verify if check == "ours" else recipe().verify
    now = int(time.time())
    header = signing.header(SECRET, now, BODY)
    assert not verify(SECRET, header, BODY.replace(b"started", b"ended"))
    assert not verify(signing.new_secret(), header, BODY)
    assert not verify(SECRET, signing.header(SECRET, now - 301, BODY), BODY)
    assert not verify(SECRET, signing.header(SECRET, now + 301, BODY), BODY)
    assert verify(SECRET, signing.header(SECRET, now - 200, BODY), BODY)
    # The time is signed: moving it voids the signature.
    assert not verify(SECRET, header.replace(f"t={now}", f"t={now + 1}"), BODY)
    for broken in ("", "v1=abc", f"t={now}", f"t=x,v1={'0' * 64}", f"t={now},t={now},v1={header.split('v1=')[1]}"):
        assert not verify(SECRET, broken, BODY), broken


def test_verify_accepts_any_of_several_v1_values_and_uses_the_time_given() -> None:
    header = signing.header(SECRET, 1_000_000, BODY)
    assert not signing.verify(SECRET, header, BODY)
    assert signing.verify(SECRET, header, BODY, now=1_000_100)
    assert signing.verify(SECRET, f"t=1000000,v1={'0' * 64},{header.split(',')[1]}", BODY, now=1_000_000)


def test_the_default_back_off_grows_and_gives_up_after_eight_attempts() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(n) for n in range(1, 8)]
    assert delays == [10, 30, 120, 600, 1800, 3600, 3600]
    assert policy.delay(20) == 3600
    assert [policy.gives_up(n) for n in (1, 7, 8, 9)] == [False, False, True, True]
    assert not policy.pauses(9) and policy.pauses(10)


def test_a_short_schedule_for_tests_and_bad_ones_are_refused() -> None:
    policy = RetryPolicy(backoff=(0.01, 0.02), max_attempts=3, pause_after=2)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.01, 0.02, 0.02]
    for bad in ({"backoff": ()}, {"backoff": (-1,)}, {"max_attempts": 0}, {"pause_after": 0}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_a_meeting_event_body_names_the_meeting_and_occurrence_in_utc() -> None:
    start = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    ref = events.OccurrenceRef(7, "meet-abc", start, start + timedelta(hours=1))
    data = events.meeting_data(3, "Budget", "default", ref, "active", "scheduler")
    created = datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=timezone.utc)
    payload = json.loads(events.body("evt_x", events.MEETING_STARTED, created, data))
    assert payload == {
        "id": "evt_x", "type": "meeting.started", "created_at": "2026-03-01T08:30:00.123Z",
        "data": {
            "meeting_id": 3, "title": "Budget", "server": "default", "occurrence_id": 7, "room": "meet-abc",
            "starts_at": "2026-03-01T08:30:00.000Z", "ends_at": "2026-03-01T09:30:00.000Z", "status": "active", "actor": "scheduler",
        },
    }  # fmt: skip


def test_a_scheduled_series_lists_every_occurrence_and_a_room_event_its_meeting() -> None:
    t = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    refs = [events.OccurrenceRef(i, f"meet-{i}", t + timedelta(days=i), t + timedelta(days=i, hours=1)) for i in (1, 2)]
    data = events.scheduled_data(5, "Stand-up", "edge", refs, False, "hana")
    assert data["occurrence_id"] == 1 and [o["occurrence_id"] for o in data["occurrences"]] == [1, 2]  # type: ignore[index, union-attr]
    room = events.room_data("edge", "meet-1", "RM_1", events.MeetingRef(5, 1, "Stand-up"), "guest-ab12", "PA_1")
    assert room == {
        "server": "edge", "room": "meet-1", "room_sid": "RM_1",
        "meeting": {"meeting_id": 5, "occurrence_id": 1, "title": "Stand-up"},
        "participant": {"identity": "guest-ab12", "sid": "PA_1"},
    }  # fmt: skip
    assert events.room_data("edge", "lobby", "RM_2", None)["meeting"] is None


def test_payloads_never_carry_a_secret_field() -> None:
    t = datetime(2026, 3, 1, tzinfo=timezone.utc)
    ref = events.OccurrenceRef(1, "r", t, t)
    for data in (events.meeting_data(1, "t", "s", ref, "ended", "a"), events.scheduled_data(1, "t", "s", [ref], True, "a"),
                 events.room_data("s", "r", "RM", None, "i", "PA"), events.ping_data(1, "a")):  # fmt: skip
        text = json.dumps(data).lower()
        assert not any(word in text for word in ("token", "password", "secret", "hash"))


def test_receiver_urls_and_event_choices_are_checked() -> None:
    assert validate_url(" https://hooks.example.com/in?x=1 ") == "https://hooks.example.com/in?x=1"
    assert validate_url("http://127.0.0.1:9000/") == "http://127.0.0.1:9000/"
    for bad in ("", "ftp://example.com", "https://", "https://user:pw@example.com/", "https://example.com/#x", "https://exa mple.com", "http://h:port/"):
        with pytest.raises(Invalid):
            validate_url(bad)
    assert validate_events(["room.finished", "meeting.started"]) == ("meeting.started", "room.finished")
    with pytest.raises(Invalid):
        validate_events([])
    with pytest.raises(Invalid):
        validate_events(["ping"])
