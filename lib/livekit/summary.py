"""Counts derived from snapshots for the live pages. Pure functions of snapshot records."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .records import AgentDispatch, Participant, ServerSnapshot

TRACK_SOURCE_ORDER = ("camera", "microphone", "screen_share", "screen_share_audio", "unknown")
JOB_STATUS_ORDER = ("pending", "running", "success", "failed", "cancelled")


@dataclass(frozen=True)
class ServerSummary:
    server: str
    rooms: int
    participants: int
    publishers: int
    agents: int
    tracks: int
    tracks_by_source: dict[str, int] = field(default_factory=dict)
    participants_by_kind: dict[str, int] = field(default_factory=dict)
    jobs_by_status: dict[str, int] = field(default_factory=dict)


def summarize(snapshot: ServerSnapshot) -> ServerSummary:
    participants = snapshot.participants
    sources: Counter[str] = Counter(t.source for p in participants for t in p.tracks)
    kinds: Counter[str] = Counter(p.kind for p in participants)
    return ServerSummary(
        server=snapshot.server,
        rooms=len(snapshot.rooms),
        participants=len(participants),
        publishers=sum(1 for p in participants if p.tracks),
        agents=kinds.get("agent", 0),
        tracks=sum(sources.values()),
        tracks_by_source={s: sources.get(s, 0) for s in TRACK_SOURCE_ORDER if sources.get(s) or s != "unknown"},
        participants_by_kind=dict(sorted(kinds.items())),
        jobs_by_status=count_jobs(snapshot.dispatches),
    )


@dataclass(frozen=True)
class DispatchCounts:
    named: int  # dispatches of a named agent: the ones an operator or a room's config asked for
    automatic: int  # LiveKit's automatic dispatches (AgentDispatch.automatic)
    automatic_with_jobs: int  # automatic ones a worker without an agent name took
    automatic_only_rooms: int  # rooms whose only dispatch is the automatic one, without a job


def count_dispatches(dispatches: tuple[AgentDispatch, ...] | list[AgentDispatch]) -> DispatchCounts:
    named_rooms = {(d.server, d.room) for d in dispatches if not d.automatic}
    automatic = [d for d in dispatches if d.automatic]
    idle_rooms = {(d.server, d.room) for d in automatic if not d.jobs}
    busy_rooms = {(d.server, d.room) for d in automatic if d.jobs}
    return DispatchCounts(
        named=sum(1 for d in dispatches if not d.automatic),
        automatic=len(automatic),
        automatic_with_jobs=sum(1 for d in automatic if d.jobs),
        automatic_only_rooms=len(idle_rooms - named_rooms - busy_rooms),
    )


def agent_dispatches(dispatches: tuple[AgentDispatch, ...] | list[AgentDispatch]) -> list[AgentDispatch]:
    """The dispatches that sent, or asked for, an agent: every named one, and an automatic one
    only when a worker took it. The automatic dispatch of every other room is left out."""
    return [d for d in dispatches if not d.automatic or d.jobs]


def count_jobs(dispatches: tuple[AgentDispatch, ...] | list[AgentDispatch]) -> dict[str, int]:
    statuses: Counter[str] = Counter(j.status for d in dispatches for j in d.jobs)
    return {s: statuses.get(s, 0) for s in JOB_STATUS_ORDER}


def agent_participants(snapshot: ServerSnapshot) -> list[Participant]:
    return [p for p in snapshot.participants if p.is_agent]
