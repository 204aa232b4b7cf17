"""Records to DataFrames for the live pages. Long user values are clipped here; detail views
show them whole. Names show their hidden characters (format.visible)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from ..livekit.records import AgentDispatch, Participant, RoomSnapshot
from ..livekit.summary import ServerSummary
from ..meetings.labels import MeetingLabel
from .format import clip, visible


# Column settings shared by every table that shows these frames: times read as "5 minutes ago"
# and still sort as times.
COLUMNS = {
    "created": st.column_config.DatetimeColumn("created", format="distance"),
    "joined": st.column_config.DatetimeColumn("joined", format="distance"),
    "participants": st.column_config.NumberColumn("participants"),
}


def rooms_frame(rooms: list[RoomSnapshot], meetings: Mapping[tuple[str, str], MeetingLabel] | None = None) -> pd.DataFrame:
    """One row per room; `meeting` is the title of the meeting the room belongs to (by
    MeetingService.titles_for_rooms), empty for other rooms."""
    meetings = meetings or {}
    rows = [
        {
            "room": clip(visible(r.room.name)),
            "meeting": meeting_cell(meetings.get((r.room.server, r.room.name))),
            "server": r.room.server,
            "participants": len(r.participants),
            "publishers": sum(1 for p in r.participants if p.tracks),
            "agents": sum(1 for p in r.participants if p.is_agent),
            "created": r.room.created_at,
            "metadata": clip(r.room.metadata),
        }
        for r in rooms
    ]
    columns = ["room", "meeting", "server", "participants", "publishers", "agents", "created", "metadata"]
    return pd.DataFrame(rows, columns=columns)


def meeting_cell(label: MeetingLabel | None) -> str:
    """A meeting's title for a table cell (a table shows text as text; hidden characters are
    shown and long titles clipped like names)."""
    return clip(visible(label.title)) if label else ""


def participants_frame(participants: list[Participant] | tuple[Participant, ...]) -> pd.DataFrame:
    rows = []
    for p in participants:
        perm = p.permission
        allowed = [n for n, ok in (("subscribe", perm.can_subscribe), ("publish", perm.can_publish), ("data", perm.can_publish_data)) if ok]
        if perm.can_publish and perm.can_publish_sources:
            allowed.append("sources: " + ", ".join(perm.can_publish_sources))
        if perm.hidden:
            allowed.append("hidden")
        rows.append(
            {
                "identity": clip(visible(p.identity)),
                "name": clip(visible(p.name)),
                "room": clip(visible(p.room)),
                "server": p.server,
                "kind": p.kind,
                "state": p.state,
                "joined": p.joined_at,
                "region": p.region or None,
                "tracks": len(p.tracks),
                "permissions": ", ".join(allowed),
                "attributes": clip(", ".join(f"{k}={v}" for k, v in sorted(p.attributes.items()))),
                "metadata": clip(p.metadata),
            }
        )
    columns = ["identity", "name", "room", "server", "kind", "state", "joined", "region", "tracks", "permissions", "attributes", "metadata"]
    return pd.DataFrame(rows, columns=columns)


def tracks_frame(participants: list[Participant] | tuple[Participant, ...]) -> pd.DataFrame:
    rows = [
        {
            "participant": clip(visible(p.identity)),
            "track": t.sid,
            "name": clip(visible(t.name)),
            "type": t.type,
            "source": t.source,
            "muted": t.muted,
            "simulcast": t.simulcast,
            "resolution": t.resolution or None,
            "codec": t.codec or None,
        }
        for p in participants
        for t in p.tracks
    ]
    columns = ["participant", "track", "name", "type", "source", "muted", "simulcast", "resolution", "codec"]
    return pd.DataFrame(rows, columns=columns)


# How a dispatch without an agent name is shown: LiveKit's own, for unnamed workers.
AUTOMATIC_AGENT_LABEL = "(automatic: any worker without an agent name)"


def dispatches_frame(dispatches: list[AgentDispatch] | tuple[AgentDispatch, ...]) -> pd.DataFrame:
    """One row per job (or per dispatch without one); named dispatches first."""
    rows = []
    for d in sorted(dispatches, key=lambda d: d.automatic):
        base = {
            "dispatch": d.id,
            "agent": AUTOMATIC_AGENT_LABEL if d.automatic else visible(d.agent_name),
            "kind": "automatic" if d.automatic else "named",
            "room": clip(visible(d.room)),
            "server": d.server,
            "metadata": clip(d.metadata),
        }
        if not d.jobs:
            rows.append({**base, "job": None, "status": "no job", "participant": None, "error": None})
        for j in d.jobs:
            rows.append({**base, "job": j.id, "status": j.status, "participant": visible(j.participant_identity) or None, "error": j.error or None})
    columns = ["dispatch", "agent", "kind", "room", "server", "job", "status", "participant", "metadata", "error"]
    return pd.DataFrame(rows, columns=columns)


def summary_frame(summaries: list[ServerSummary]) -> pd.DataFrame:
    rows = []
    for s in summaries:
        row = {"server": s.server, "rooms": s.rooms, "participants": s.participants, "publishers": s.publishers, "agents": s.agents, "tracks": s.tracks}
        row.update({f"tracks: {k}": v for k, v in s.tracks_by_source.items()})
        rows.append(row)
    return pd.DataFrame(rows)
