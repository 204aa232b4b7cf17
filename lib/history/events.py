"""History events: what changed on a LiveKit server, from a webhook (exact) or from the
difference between two snapshots (inferred). Pure functions of records; the store persists them.

Event ids make duplicates harmless: a webhook keeps LiveKit's own id, and an event inferred from
snapshots gets an id built from what it is about, so the same change seen twice (a collector
restart, a replayed snapshot) is stored once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..livekit.records import AgentJob, Participant, RoomSnapshot, ServerSnapshot, Track

# Kinds, in the words LiveKit's webhooks use where there is one.
ROOM_STARTED = "room_started"
ROOM_FINISHED = "room_finished"
PARTICIPANT_JOINED = "participant_joined"
PARTICIPANT_LEFT = "participant_left"
TRACK_PUBLISHED = "track_published"
TRACK_UNPUBLISHED = "track_unpublished"
TRACK_MUTED = "track_muted"
TRACK_UNMUTED = "track_unmuted"
JOB_STATE = "agent_job_state"

WEBHOOK = "webhook"
SNAPSHOT = "snapshot"

# Ends a snapshot can only bound: it saw the thing, then saw it gone.
BOUND_KINDS = (PARTICIPANT_LEFT, ROOM_FINISHED, TRACK_UNPUBLISHED)


@dataclass(frozen=True)
class HistoryEvent:
    event_id: str
    server: str
    ts: datetime
    source: str  # "webhook" (seen) or "snapshot" (inferred between two snapshots)
    kind: str
    room_sid: str
    room: str
    participant_sid: str = ""
    identity: str = ""
    participant_kind: str = ""
    track_sid: str = ""
    track_source: str = ""
    job_id: str = ""
    job_status: str = ""

    @property
    def estimated(self) -> bool:
        """True when the time is a bound (the snapshot that noticed it), not the moment itself."""
        return self.source == SNAPSHOT and self.kind in BOUND_KINDS


def _participant_event(server: str, room: RoomSnapshot, p: Participant, kind: str, ts: datetime) -> HistoryEvent:
    return HistoryEvent(
        event_id=f"snap:{server}:{kind}:{p.sid}",
        server=server,
        ts=ts,
        source=SNAPSHOT,
        kind=kind,
        room_sid=room.room.sid,
        room=room.room.name,
        participant_sid=p.sid,
        identity=p.identity,
        participant_kind=p.kind,
    )


def _unpublished(server: str, room: RoomSnapshot, p: Participant, tracks: Iterable[Track], end: datetime) -> list[HistoryEvent]:
    """Tracks gone by `end`: unpublished, or ended with their participant leaving (as LiveKit's
    own webhooks report it)."""
    return [
        HistoryEvent(f"snap:{server}:{TRACK_UNPUBLISHED}:{t.sid}", server, end, SNAPSHOT, TRACK_UNPUBLISHED, room.room.sid,
                     room.room.name, p.sid, p.identity, p.kind, t.sid, t.source)  # fmt: skip
        for t in tracks
    ]


def _job_key(job: AgentJob) -> tuple[str, str]:
    return job.id, job.status


def diff(previous: ServerSnapshot | None, current: ServerSnapshot, ended_by: datetime | None = None) -> list[HistoryEvent]:
    """The changes between two successful snapshots of one server, in time order.

    Starts and joins carry the server's own timestamps (room creation, participant join) and
    are exact; an end or a leave is only known to have happened by `current.taken_at`, or by
    `ended_by` when the server was unreachable in between (the start of that outage).
    With no previous snapshot every room and participant present counts as started or joined.
    """
    if not current.ok:
        return []
    server, now = current.server, current.taken_at
    end = ended_by or now
    before = {r.room.sid: r for r in previous.rooms} if previous and previous.ok else {}
    after = {r.room.sid: r for r in current.rooms}
    events: list[HistoryEvent] = []

    for sid, room in after.items():
        old = before.get(sid)
        if old is None:
            events.append(HistoryEvent(f"snap:{server}:{ROOM_STARTED}:{sid}", server, room.room.created_at or now, SNAPSHOT, ROOM_STARTED, sid, room.room.name))
        old_people = {p.sid: p for p in old.participants} if old else {}
        for p in room.participants:
            was = old_people.get(p.sid)
            if was is None:
                events.append(_participant_event(server, room, p, PARTICIPANT_JOINED, p.joined_at or now))
            old_tracks = {t.sid: t for t in was.tracks} if was else {}
            for t in p.tracks:
                base = dict(server=server, source=SNAPSHOT, room_sid=sid, room=room.room.name, participant_sid=p.sid,
                            identity=p.identity, participant_kind=p.kind, track_sid=t.sid, track_source=t.source)  # fmt: skip
                prior = old_tracks.get(t.sid)
                if prior is None:
                    events.append(HistoryEvent(f"snap:{server}:{TRACK_PUBLISHED}:{t.sid}", ts=now, kind=TRACK_PUBLISHED, **base))
                    if t.muted:
                        events.append(HistoryEvent(f"snap:{server}:{TRACK_MUTED}:{t.sid}:{now.isoformat()}", ts=now, kind=TRACK_MUTED, **base))
                elif prior.muted != t.muted:
                    kind = TRACK_MUTED if t.muted else TRACK_UNMUTED
                    events.append(HistoryEvent(f"snap:{server}:{kind}:{t.sid}:{now.isoformat()}", ts=now, kind=kind, **base))
            gone = {t_sid: t for t_sid, t in old_tracks.items() if t_sid not in {t.sid for t in p.tracks}}
            events += _unpublished(server, room, p, gone.values(), end)
        for p_sid, p in old_people.items():
            if p_sid not in {p.sid for p in room.participants}:
                events += _unpublished(server, room, p, p.tracks, end)
                events.append(_participant_event(server, room, p, PARTICIPANT_LEFT, end))
        old_jobs = {_job_key(j) for d in old.dispatches for j in d.jobs} if old else set()
        for d in room.dispatches:
            for j in d.jobs:
                if _job_key(j) not in old_jobs:
                    events.append(HistoryEvent(f"snap:{server}:{JOB_STATE}:{j.id}:{j.status}", server, now, SNAPSHOT, JOB_STATE, sid,
                                               room.room.name, identity=j.participant_identity, job_id=j.id, job_status=j.status))  # fmt: skip

    for sid, room in before.items():
        if sid not in after:
            for p in room.participants:
                events += _unpublished(server, room, p, p.tracks, end)
                events.append(_participant_event(server, room, p, PARTICIPANT_LEFT, end))
            events.append(HistoryEvent(f"snap:{server}:{ROOM_FINISHED}:{sid}", server, end, SNAPSHOT, ROOM_FINISHED, sid, room.room.name))
    events.sort(key=lambda e: e.ts)
    return events
