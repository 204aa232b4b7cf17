"""What each LiveKit webhook becomes in the history: kinds, ids, times, and what is left out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from livekit.protocol import agent as agent_pb
from livekit.protocol import models as models_pb
from livekit.protocol.webhook import WebhookEvent

from lib.history.events import (
    JOB_STATE,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    ROOM_FINISHED,
    ROOM_STARTED,
    TRACK_PUBLISHED,
    TRACK_UNPUBLISHED,
    WEBHOOK,
)
from lib.history.webhooks import EARLIEST, WebhookInvalid, to_events, validate

SERVER = "prod"
ROOM = models_pb.Room(sid="RM_1", name="standup", creation_time=1_700_000_000, creation_time_ms=1_700_000_000_250)
JOINED_MS = 1_700_000_010_700
ALICE = models_pb.ParticipantInfo(
    sid="PA_1", identity="alice", kind=models_pb.ParticipantInfo.STANDARD,
    joined_at=JOINED_MS // 1000, joined_at_ms=JOINED_MS,
)  # fmt: skip
MIC = models_pb.TrackInfo(sid="TR_1", type=models_pb.AUDIO, source=models_pb.MICROPHONE)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def one(event: WebhookEvent):  # type: ignore[no-untyped-def]
    events = to_events(SERVER, event)
    assert len(events) == 1, events
    e = events[0]
    assert e.server == SERVER and e.source == WEBHOOK and not e.estimated
    return e


def test_room_started_keeps_livekit_id_and_the_rooms_millisecond_creation_time():
    e = one(WebhookEvent(event="room_started", id="EV_a", created_at=1_700_000_001, room=ROOM))
    assert (e.event_id, e.kind, e.room_sid, e.room) == ("wh:EV_a", ROOM_STARTED, "RM_1", "standup")
    assert e.ts == at(1_700_000_000.25)
    assert e.participant_sid == e.track_sid == e.job_id == ""


def test_room_started_without_creation_time_uses_the_events_time():
    room = models_pb.Room(sid="RM_1", name="standup")
    assert one(WebhookEvent(event="room_started", id="EV_a", created_at=1_700_000_001, room=room)).ts == at(1_700_000_001)


def test_room_finished_is_exact_at_the_events_time():
    e = one(WebhookEvent(event="room_finished", id="EV_b", created_at=1_700_000_100, room=ROOM))
    assert (e.event_id, e.kind, e.ts) == ("wh:EV_b", ROOM_FINISHED, at(1_700_000_100))


def test_participant_joined_uses_joined_at_ms():
    e = one(WebhookEvent(event="participant_joined", id="EV_c", created_at=1_700_000_011, room=ROOM, participant=ALICE))
    assert (e.event_id, e.kind, e.ts) == ("wh:EV_c", PARTICIPANT_JOINED, at(JOINED_MS / 1000))
    assert (e.participant_sid, e.identity, e.participant_kind) == ("PA_1", "alice", "standard")


def test_participant_joined_falls_back_to_joined_at_seconds():
    p = models_pb.ParticipantInfo(sid="PA_1", identity="alice", joined_at=1_700_000_010)
    e = one(WebhookEvent(event="participant_joined", id="EV_c", created_at=1_700_000_011, room=ROOM, participant=p))
    assert e.ts == at(1_700_000_010)


def test_participant_left_is_at_the_events_time():
    e = one(WebhookEvent(event="participant_left", id="EV_d", created_at=1_700_000_050, room=ROOM, participant=ALICE))
    assert (e.event_id, e.kind, e.ts, e.participant_sid) == ("wh:EV_d", PARTICIPANT_LEFT, at(1_700_000_050), "PA_1")


def test_a_leave_in_the_same_second_as_the_join_is_never_before_the_join():
    # created_at is whole seconds: 1_700_000_010 is 0.7 s before the join at ...010.700.
    e = one(WebhookEvent(event="participant_left", id="EV_d", created_at=JOINED_MS // 1000, room=ROOM, participant=ALICE))
    assert e.ts == at(JOINED_MS / 1000)


def test_a_room_finished_in_its_first_second_is_never_before_its_start():
    e = one(WebhookEvent(event="room_finished", id="EV_b", created_at=1_700_000_000, room=ROOM))
    assert e.ts == at(1_700_000_000.25)


def test_an_aborted_connection_ends_the_participants_session():
    e = one(WebhookEvent(event="participant_connection_aborted", id="EV_e", created_at=1_700_000_020, room=ROOM, participant=ALICE))
    assert (e.event_id, e.kind, e.participant_sid) == ("wh:EV_e", PARTICIPANT_LEFT, "PA_1")


def test_agent_participant_kind_is_kept():
    agent = models_pb.ParticipantInfo(sid="PA_2", identity="agent-x", kind=models_pb.ParticipantInfo.AGENT, joined_at_ms=JOINED_MS)
    e = one(WebhookEvent(event="participant_joined", id="EV_f", created_at=1_700_000_011, room=ROOM, participant=agent))
    assert e.participant_kind == "agent"


def test_track_published_and_unpublished_carry_track_and_participant():
    for name, kind in (("track_published", TRACK_PUBLISHED), ("track_unpublished", TRACK_UNPUBLISHED)):
        e = one(WebhookEvent(event=name, id=f"EV_{name}", created_at=1_700_000_030, room=ROOM, participant=ALICE, track=MIC))
        assert (e.event_id, e.kind, e.ts) == (f"wh:EV_{name}", kind, at(1_700_000_030))
        assert (e.track_sid, e.track_source, e.participant_sid, e.identity) == ("TR_1", "microphone", "PA_1", "alice")


def test_agent_job_events_carry_job_id_and_status():
    for name, status, word in (
        ("agent_job_started", agent_pb.JS_RUNNING, "running"),
        ("agent_job_ended", agent_pb.JS_SUCCESS, "success"),
    ):
        job = agent_pb.Job(id="AJ_1", room=ROOM, state=agent_pb.JobState(status=status, participant_identity="agent-AJ_1"))
        e = one(WebhookEvent(event=name, id=f"EV_{name}", created_at=1_700_000_040, room=ROOM, job=job))
        assert (e.event_id, e.kind, e.ts) == (f"wh:EV_{name}", JOB_STATE, at(1_700_000_040))
        assert (e.job_id, e.job_status, e.identity, e.room_sid, e.room) == ("AJ_1", word, "agent-AJ_1", "RM_1", "standup")


def test_job_event_without_a_room_takes_the_jobs_room():
    job = agent_pb.Job(id="AJ_1", room=ROOM, state=agent_pb.JobState(status=agent_pb.JS_FAILED))
    e = one(WebhookEvent(event="agent_job_ended", id="EV_g", created_at=1_700_000_040, job=job))
    assert (e.room_sid, e.room, e.job_status) == ("RM_1", "standup", "failed")


def test_egress_ingress_and_unknown_events_are_not_history():
    for name in ("egress_started", "egress_updated", "egress_ended", "ingress_started", "ingress_ended", "room_metadata_changed", ""):
        assert to_events(SERVER, WebhookEvent(event=name, id="EV_x", created_at=1_700_000_000, room=ROOM)) == []


def test_the_same_delivery_twice_gives_the_same_event():
    event = WebhookEvent(event="participant_left", id="EV_d", created_at=1_700_000_050, room=ROOM, participant=ALICE)
    assert to_events(SERVER, event) == to_events(SERVER, event)


def test_an_event_without_livekits_id_gets_one_from_what_it_is_about():
    e = one(WebhookEvent(event="track_published", created_at=1_700_000_030, room=ROOM, participant=ALICE, track=MIC))
    assert e.event_id == "wh:track_published:TR_1"


# ----- validation ---------------------------------------------------------------------------

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def joined(**fields) -> WebhookEvent:  # type: ignore[no-untyped-def]
    event = WebhookEvent(event="participant_joined", id="EV_v", created_at=1_700_000_011, room=ROOM, participant=ALICE)
    for name, value in fields.items():
        target, _, attribute = name.rpartition("__")
        setattr(getattr(event, target) if target else event, attribute, value)
    return event


def refusal(event: WebhookEvent) -> str:
    with pytest.raises(WebhookInvalid) as caught:
        validate(event, NOW)
    return str(caught.value)


def test_events_livekit_sends_are_valid():
    for event in (
        WebhookEvent(event="room_started", id="EV_a", created_at=1_700_000_001, room=ROOM),
        joined(),
        WebhookEvent(event="track_published", id="EV_t", created_at=1_700_000_030, room=ROOM, participant=ALICE, track=MIC),
        WebhookEvent(event="agent_job_ended", id="EV_g", created_at=1_700_000_040, job=agent_pb.Job(id="AJ_1", room=ROOM)),
        WebhookEvent(event="participant_left", id="EV_z", room=ROOM, participant=ALICE),  # no createdAt: not set, not wrong
    ):
        validate(event, NOW)


def test_times_must_lie_between_livekits_beginning_and_an_hour_from_now():
    ahead = int((NOW + timedelta(minutes=59)).timestamp())
    validate(joined(created_at=ahead), NOW)
    validate(joined(created_at=int(EARLIEST.timestamp())), NOW)
    assert "createdAt" in refusal(joined(created_at=int((NOW + timedelta(minutes=61)).timestamp())))
    assert "createdAt" in refusal(joined(created_at=int(EARLIEST.timestamp()) - 1))
    assert "createdAt" in refusal(joined(created_at=253_402_300_800))  # 10000-01-01
    assert "createdAt" in refusal(joined(created_at=-1))
    assert "room.creationTime" in refusal(joined(room__creation_time=1))
    assert "room.creationTimeMs" in refusal(joined(room__creation_time_ms=1))
    assert "participant.joinedAt" in refusal(joined(participant__joined_at=2**62))
    assert "participant.joinedAtMs" in refusal(joined(participant__joined_at_ms=2**62))


def test_subjects_must_be_there():
    assert "room with a sid and a name" in refusal(joined(room__sid=""))
    assert "room with a sid and a name" in refusal(joined(room__name=""))
    assert "participant with a sid and an identity" in refusal(joined(participant__sid=""))
    assert "participant with a sid and an identity" in refusal(joined(participant__identity=""))
    no_track = WebhookEvent(event="track_unpublished", id="EV_t", created_at=1_700_000_030, room=ROOM, participant=ALICE,
                            track=models_pb.TrackInfo(source=models_pb.MICROPHONE))  # fmt: skip
    assert "track with a sid" in refusal(no_track)
    assert "job with an id" in refusal(WebhookEvent(event="agent_job_started", created_at=1_700_000_040, job=agent_pb.Job(room=ROOM)))
    roomless_job = WebhookEvent(event="agent_job_started", created_at=1_700_000_040, job=agent_pb.Job(id="AJ_1"))
    assert "room" in refusal(roomless_job)


def test_events_that_are_not_history_are_not_checked():
    validate(WebhookEvent(event="egress_started", id="EV_x", created_at=1), NOW)


def test_to_events_refuses_what_validate_refuses():
    with pytest.raises(WebhookInvalid):
        to_events(SERVER, joined(created_at=253_402_300_800), now=NOW)
