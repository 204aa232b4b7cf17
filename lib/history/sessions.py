"""Reading room sessions back out of the history store: the list of sessions in a time range and
one session's timeline (who was there when, and what they published or muted).

Every user value reaches SQL as a bound parameter; only fixed text is ever put into a query.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from .events import TRACK_MUTED, TRACK_PUBLISHED, TRACK_UNMUTED, TRACK_UNPUBLISHED, WEBHOOK
from .store import HistoryStore

MARK_KINDS = (TRACK_PUBLISHED, TRACK_UNPUBLISHED, TRACK_MUTED, TRACK_UNMUTED)
# A webhook and the snapshot that noticed the same change land seconds apart; closer than this,
# two marks of one kind for one track are the same change.
SAME_CHANGE = timedelta(seconds=10)

SESSION_COLUMNS = [
    "server", "room", "room_sid", "started_at", "ended_at", "duration_min", "peak_participants",
    "participants", "agents", "estimated", "state",
]  # fmt: skip
SPAN_COLUMNS = ["participant_sid", "identity", "kind", "joined_at", "left_at", "left_estimated", "open"]
MARK_COLUMNS = ["identity", "ts", "kind", "track_source", "track_sid", "source"]

# Casts on the parameters: DuckDB cannot infer the type of a NULL list on its own.
_CHOSEN_WHERE = """
WHERE coalesce(r.started_at, r.ended_at) <= $end::TIMESTAMPTZ
  AND (r.ended_at IS NULL OR r.ended_at >= $start::TIMESTAMPTZ)
  AND ($servers::VARCHAR[] IS NULL OR list_contains($servers::VARCHAR[], r.server))
  AND ($rooms::VARCHAR[] IS NULL OR list_contains($rooms::VARCHAR[], r.room))
  AND ($search::VARCHAR IS NULL OR contains(lower(r.room), lower($search::VARCHAR)))
"""

# Only the chosen sessions' participants are read. Peak: the larger of what the samples saw and
# the most sessions open at once. Leaves sort before joins at the same instant, so a hand-over is
# not counted as an overlap.
_ROOM_SESSIONS_SQL = f"""
WITH chosen AS (
    SELECT * FROM room_sessions r {_CHOSEN_WHERE}
    ORDER BY coalesce(r.started_at, r.ended_at) DESC, r.server, r.room_sid LIMIT $limit
), members AS (
    SELECT p.* FROM participant_sessions p SEMI JOIN chosen c ON p.server = c.server AND p.room_sid = c.room_sid
), people AS (
    SELECT server, room_sid, count(DISTINCT identity) AS participants,
           count(DISTINCT identity) FILTER (WHERE kind = 'agent') AS agents
    FROM members GROUP BY ALL
), edges AS (
    SELECT server, room_sid, joined_at AS ts, 1 AS step FROM members WHERE joined_at IS NOT NULL
    UNION ALL
    SELECT server, room_sid, left_at AS ts, -1 AS step FROM members
    WHERE joined_at IS NOT NULL AND left_at IS NOT NULL
), running AS (
    SELECT server, room_sid,
           sum(step) OVER (PARTITION BY server, room_sid ORDER BY ts, step ROWS UNBOUNDED PRECEDING) AS present
    FROM edges
), overlap AS (
    SELECT server, room_sid, max(present) AS peak FROM running GROUP BY ALL
)
SELECT r.server, r.room, r.room_sid, coalesce(r.started_at, r.ended_at) AS started_at, r.ended_at,
       CASE WHEN r.ended_at IS NULL OR r.started_at IS NULL THEN NULL
            ELSE (epoch(r.ended_at) - epoch(r.started_at)) / 60.0 END AS duration_min,
       greatest(r.peak_participants, coalesce(o.peak, 0))::INTEGER AS peak_participants,
       coalesce(p.participants, 0)::INTEGER AS participants,
       coalesce(p.agents, 0)::INTEGER AS agents,
       r.end_estimated AS estimated,
       CASE WHEN r.ended_at IS NULL THEN 'live' ELSE 'ended' END AS state
FROM chosen r
LEFT JOIN people p USING (server, room_sid)
LEFT JOIN overlap o USING (server, room_sid)
ORDER BY coalesce(r.started_at, r.ended_at) DESC, r.server, r.room_sid
"""
_COUNT_SQL = f"SELECT count(*) AS n, count(*) FILTER (WHERE r.ended_at IS NULL) AS live FROM room_sessions r {_CHOSEN_WHERE}"

# The most sessions one listing returns: a table beyond this is not read by anyone, and every
# row costs its participants' history.
LIST_LIMIT = 1000


def _params(start: datetime, end: datetime, servers: list[str] | None, rooms: list[str] | None, search: str | None) -> dict[str, object]:
    return {
        "start": start,
        "end": end,
        "servers": list(servers) if servers else None,
        "rooms": list(rooms) if rooms else None,
        "search": search or None,
    }


def room_sessions(
    store: HistoryStore,
    start: datetime,
    end: datetime,
    servers: list[str] | None = None,
    rooms: list[str] | None = None,
    search: str | None = None,
    limit: int = LIST_LIMIT,
) -> pd.DataFrame:
    """The newest `limit` room sessions that overlap [start, end], newest first. `servers` and
    `rooms` keep exact names; `search` keeps rooms whose name contains it (any case). Open
    sessions have no duration and the state 'live'."""
    params = _params(start, end, servers, rooms, search) | {"limit": limit}
    frame = _query_named(store, _ROOM_SESSIONS_SQL, params)
    return frame[SESSION_COLUMNS]


def count_room_sessions(
    store: HistoryStore,
    start: datetime,
    end: datetime,
    servers: list[str] | None = None,
    rooms: list[str] | None = None,
    search: str | None = None,
) -> tuple[int, int]:
    """How many room sessions `room_sessions` would list without a limit, and how many are live."""
    found = _query_named(store, _COUNT_SQL, _params(start, end, servers, rooms, search))
    return int(found["n"].iloc[0]), int(found["live"].iloc[0])


def servers(store: HistoryStore) -> list[str]:
    """Every server that has a recorded room session."""
    return list(store.query("SELECT DISTINCT server FROM room_sessions ORDER BY server")["server"])


def timeline(
    store: HistoryStore, server: str, room_sid: str, now: datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One room session's participant spans and track marks.

    Spans still open end at `now` and are flagged `open`. Marks of the same change recorded by
    both the webhook and a snapshot are kept once, the webhook's."""
    now = now or datetime.now(timezone.utc)
    spans = store.query(
        "SELECT p.participant_sid, p.identity, p.kind, "
        "coalesce(p.joined_at, r.started_at, p.left_at) AS joined_at, "
        "coalesce(p.left_at, ?) AS left_at, p.left_estimated, p.left_at IS NULL AS open "
        "FROM participant_sessions p LEFT JOIN room_sessions r USING (server, room_sid) "
        "WHERE p.server = ? AND p.room_sid = ? ORDER BY joined_at, p.identity",
        [now, server, room_sid],
    )
    marks = store.query(
        "SELECT identity, ts, kind, track_source, track_sid, source FROM events "
        "WHERE server = ? AND room_sid = ? AND list_contains(?::VARCHAR[], kind) ORDER BY ts",
        [server, room_sid, list(MARK_KINDS)],
    )
    return spans[SPAN_COLUMNS], dedupe_marks(marks)[MARK_COLUMNS]


ROOM_SPAN_COLUMNS = ["room_sid", "identity", "kind", "joined_at", "left_at", "left_estimated", "open"]


def room_participant_spans(store: HistoryStore, server: str, room: str, now: datetime | None = None) -> pd.DataFrame:
    """Every participant span in every session of the rooms named `room` on `server` (a room
    deleted and created again is a new session of the same name). Spans still open end at
    `now` and are flagged `open`."""
    now = now or datetime.now(timezone.utc)
    spans = store.query(
        "SELECT p.room_sid, p.identity, p.kind, coalesce(p.joined_at, r.started_at, p.left_at) AS joined_at, "
        "coalesce(p.left_at, ?) AS left_at, p.left_estimated, p.left_at IS NULL AS open "
        "FROM participant_sessions p LEFT JOIN room_sessions r USING (server, room_sid) "
        "WHERE p.server = ? AND p.room = ? ORDER BY joined_at, p.identity",
        [now, server, room],
    )
    return spans[ROOM_SPAN_COLUMNS]


def dedupe_marks(marks: pd.DataFrame) -> pd.DataFrame:
    """One mark per change: marks of one kind, identity and track within SAME_CHANGE of the first
    of their run are one change, shown at the webhook's time when a webhook saw it."""
    if marks.empty:
        return marks.reset_index(drop=True)
    kept: list[int] = []
    ordered = marks.sort_values("ts", kind="stable")
    for _, group in ordered.groupby(["identity", "kind", "track_sid"], sort=False, dropna=False):
        run: list[int] = []
        run_start = None
        for index, ts in group["ts"].items():
            if run and ts - run_start > SAME_CHANGE:
                kept.append(_pick(ordered, run))
                run = []
            if not run:
                run_start = ts
            run.append(index)
        kept.append(_pick(ordered, run))
    return ordered.loc[kept].sort_values("ts", kind="stable").reset_index(drop=True)


def _pick(marks: pd.DataFrame, run: list[int]) -> int:
    webhooks = [i for i in run if marks.at[i, "source"] == WEBHOOK]
    return (webhooks or run)[0]


def _query_named(store: HistoryStore, sql: str, params: dict[str, object]) -> pd.DataFrame:
    with store.read() as cursor:
        return cursor.sql(sql, params=params).to_arrow_table().to_pandas()
