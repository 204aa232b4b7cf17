from livekit.protocol import agent as agent_pb
from livekit.protocol import agent_dispatch as dispatch_pb
from livekit.protocol import models as models_pb

from lib.livekit.records import dispatch_from_proto, participant_from_proto, room_from_proto
from lib.livekit.summary import count_jobs, summarize
from lib.livekit.records import RoomSnapshot, ServerSnapshot
from datetime import datetime, timezone


def _participant(identity: str, kind=models_pb.ParticipantInfo.STANDARD, tracks=()):
    return models_pb.ParticipantInfo(
        sid="PA_" + identity,
        identity=identity,
        name=identity.title(),
        kind=kind,
        state=models_pb.ParticipantInfo.ACTIVE,
        joined_at_ms=1_700_000_000_000,
        tracks=list(tracks),
        permission=models_pb.ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_sources=[models_pb.CAMERA]),
        attributes={"role": "speaker"},
    )


def test_room_conversion_drops_the_turn_password():
    room = room_from_proto("s1", models_pb.Room(sid="RM_1", name="r", turn_password="secret-turn", creation_time_ms=1_700_000_000_500))
    assert "secret-turn" not in repr(room)
    assert room.server == "s1"
    assert room.created_at == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=timezone.utc)


def test_participant_conversion_keeps_kind_tracks_and_permissions():
    video = models_pb.TrackInfo(sid="TR_v", type=models_pb.VIDEO, source=models_pb.CAMERA, width=640, height=360, simulcast=True, mime_type="video/VP8")
    audio = models_pb.TrackInfo(sid="TR_a", type=models_pb.AUDIO, source=models_pb.MICROPHONE, muted=True, mime_type="audio/opus")
    p = participant_from_proto("s1", "r", _participant("alice", tracks=[video, audio]))
    assert (p.kind, p.state, p.room, p.server) == ("standard", "active", "r", "s1")
    assert p.permission.can_publish_sources == ("camera",)
    assert dict(p.attributes) == {"role": "speaker"}
    v, a = p.tracks
    assert (v.source, v.resolution, v.codec, v.simulcast) == ("camera", "640x360", "VP8", True)
    assert (a.source, a.muted, a.width, a.resolution) == ("microphone", True, None, "")


def test_video_without_dimensions_reports_none_not_zero():
    video = models_pb.TrackInfo(sid="TR_v", type=models_pb.VIDEO, source=models_pb.SCREEN_SHARE)
    p = participant_from_proto("s1", "r", _participant("bob", tracks=[video]))
    assert p.tracks[0].width is None and p.tracks[0].resolution == ""


def test_dispatch_conversion_reads_job_states():
    d = dispatch_pb.AgentDispatch(
        id="AD_1",
        agent_name="helper",
        room="r",
        state=dispatch_pb.AgentDispatchState(
            created_at=1_700_000_000_000_000_000,
            jobs=[agent_pb.Job(id="AJ_1", state=agent_pb.JobState(status=agent_pb.JS_RUNNING, participant_identity="agent-1"))],
        ),
    )
    out = dispatch_from_proto("s1", d)
    assert out.jobs[0].status == "running" and out.jobs[0].participant_identity == "agent-1"
    assert count_jobs([out]) == {"pending": 0, "running": 1, "success": 0, "failed": 0, "cancelled": 0}


def test_summary_counts_publishers_tracks_by_source_and_agents():
    cam = models_pb.TrackInfo(sid="TR_1", type=models_pb.VIDEO, source=models_pb.CAMERA)
    mic = models_pb.TrackInfo(sid="TR_2", type=models_pb.AUDIO, source=models_pb.MICROPHONE)
    people = (
        participant_from_proto("s1", "r", _participant("a", tracks=[cam, mic])),
        participant_from_proto("s1", "r", _participant("b")),
        participant_from_proto("s1", "r", _participant("agent-x", kind=models_pb.ParticipantInfo.AGENT, tracks=[mic])),
    )
    room = room_from_proto("s1", models_pb.Room(name="r", num_participants=3))
    snap = ServerSnapshot("s1", datetime.now(timezone.utc), 0.01, rooms=(RoomSnapshot(room, people),))
    s = summarize(snap)
    assert (s.rooms, s.participants, s.publishers, s.agents, s.tracks) == (1, 3, 2, 1, 3)
    assert s.tracks_by_source["camera"] == 1 and s.tracks_by_source["microphone"] == 2
    assert "unknown" not in s.tracks_by_source
