"""Questions the History page asks of the history store, one function per chart, each returning
exactly the DataFrame that chart draws (and that its downloads hold).

Range bounds reach DuckDB as epoch seconds and are compared as `col >= to_timestamp(?)`, so
results do not depend on the session's time zone and DuckDB can skip row groups outside the range
by their min/max (a function of the column, like epoch(col) >= ?, would read every row). Days are
UTC days. Every value from the caller reaches DuckDB as a parameter; the only text spliced
into SQL is this module's own column names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

from .events import JOB_STATE
from .store import HistoryStore

MAX_POINTS = 500
DAY = 86400
TOP_ROOMS = 10
PRESETS = {"1 h": timedelta(hours=1), "24 h": timedelta(hours=24), "7 d": timedelta(days=7), "30 d": timedelta(days=30)}


# The least a chart spans: a history begun seconds ago is still drawn over a readable stretch.
MIN_SPAN = timedelta(minutes=1)


def bucket_seconds(start: datetime, end: datetime, max_points: int = MAX_POINTS, floor: float = 1.0) -> int:
    """The bucket width for at most about `max_points` buckets, and at least `floor` seconds:
    range / max_points rounded up to a whole second below a minute, a whole minute below an
    hour, else a whole hour."""
    raw = max((end - start).total_seconds() / max_points, floor, 1.0)
    for unit in (1, 60, 3600):
        if raw <= unit * 60 or unit == 3600:
            return int(math.ceil(raw / unit) * unit)
    raise AssertionError("unreachable")


def chart_step(start: datetime, end: datetime, collect_seconds: float) -> int:
    """The bucket for charting [start, end): `bucket_seconds`, but never under two collector
    intervals. Samples are taken every interval give or take the snapshot's own time, so buckets
    of one interval would now and then hold none, and a line would break where nothing failed."""
    return bucket_seconds(start, end, floor=2 * collect_seconds)


@dataclass(frozen=True)
class ChartSpan:
    """What the History charts cover: `start` is the range's start, or later (`raised`) when the
    history begins inside the range (`began`, None without any history); `step` is the bucket
    in seconds."""

    start: datetime
    end: datetime
    step: int
    raised: bool
    began: datetime | None = None


def chart_span(start: datetime, end: datetime, history_began: datetime | None, collect_seconds: float) -> ChartSpan:
    """Chart [start, end) from where there is data: a range that begins before the history does
    starts at the history's first bucket (at least MIN_SPAN before the end), so a few minutes of
    history fill the chart instead of a sliver at its right edge."""
    if history_began is None or history_began <= start or history_began >= end:
        # No history before this range, or none in it at all: the range as it is.
        return ChartSpan(start, end, chart_step(start, end, collect_seconds), False, history_began)
    charted = min(history_began, end - MIN_SPAN)
    step = chart_step(charted, end, collect_seconds)
    aligned = _floor(charted, timedelta(seconds=step))  # buckets on whole steps
    return ChartSpan(max(start, aligned), end, step, aligned > start, history_began)


def history_start(store: HistoryStore) -> datetime | None:
    """When the history begins: the earliest sample, event or session start it holds. Rollups
    count where they reach further back than the samples (pruned sooner), but only then: their
    buckets are whole minutes or hours, earlier than the first sample in them."""
    found = store.query(
        """SELECT (SELECT min(ts) FROM server_samples) AS samples,
                  (SELECT min(bucket) FROM server_rollup WHERE grain = 'minute') AS minutes,
                  (SELECT min(bucket) FROM server_rollup WHERE grain = 'hour') AS hours,
                  least((SELECT min(ts) FROM events), (SELECT min(started_at) FROM room_sessions),
                        (SELECT min(joined_at) FROM participant_sessions)) AS others"""
    ).iloc[0]
    first = _timestamp(found["samples"])
    for coarse, unit in ((_timestamp(found["minutes"]), timedelta(minutes=1)), (_timestamp(found["hours"]), timedelta(hours=1))):
        if coarse is not None and (first is None or coarse < _floor(first, unit)):
            first = coarse
    others = _timestamp(found["others"])
    return min((t for t in (first, others) if t is not None), default=None)


def _timestamp(value: object) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()  # type: ignore[arg-type]


def _floor(ts: datetime, unit: timedelta) -> datetime:
    seconds = unit.total_seconds()
    return datetime.fromtimestamp(math.floor(_epoch(ts) / seconds) * seconds, timezone.utc)


def _epoch(value: datetime) -> float:
    if value.tzinfo is None:  # naive times are taken as UTC, like everything stored
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


# A room filter: room names (on whichever server), or (server, room) pairs; None for every room.
Rooms = list[str] | list[tuple[str, str]] | None


def _filters(servers: list[str] | None, rooms: Rooms, server_col: str = "server", room_col: str = "room") -> tuple[str, list[object]]:
    """SQL conditions (each starting with AND) and their parameters; None means no filter, an
    empty list matches nothing."""
    sql, params = "", []
    if servers is not None:
        sql += f" AND list_contains(?::VARCHAR[], {server_col})"
        params.append(list(servers))
    if rooms and isinstance(rooms[0], tuple):
        sql += f" AND list_contains(?::STRUCT(s VARCHAR, r VARCHAR)[], {{'s': {server_col}, 'r': {room_col}}})"
        params.append([{"s": server, "r": room} for server, room in rooms])
    elif rooms is not None:
        sql += f" AND list_contains(?::VARCHAR[], {room_col})"
        params.append(list(rooms))
    return sql, params


def room_filter(rooms: list[str] | None, meeting_rooms: list[tuple[str, str]] | None) -> Rooms:
    """The rooms the charts cover: with meetings picked, their rooms (as (server, room): a
    meeting's room is the one on its server), narrowed to the `rooms` picked if any; else the
    `rooms` picked (by name, on any server), or None for all."""
    if meeting_rooms is None:
        return rooms
    return [pair for pair in dict.fromkeys(meeting_rooms) if rooms is None or pair[1] in rooms]


def servers(store: HistoryStore) -> list[str]:
    found = store.query("SELECT server FROM server_samples UNION SELECT server FROM events ORDER BY server")
    return list(found["server"])


def rooms(store: HistoryStore, servers: list[str] | None = None, within: Rooms = None) -> list[str]:
    """Names of the rooms the history knows on `servers`, among `within` (all when None)."""
    where, params = _filters(servers, within)
    found = store.query(
        f"SELECT room FROM room_samples WHERE TRUE {where} UNION SELECT room FROM room_sessions WHERE TRUE {where} ORDER BY room",
        params + params,
    )
    return list(found["room"])


def rollup_grain(step: int) -> str | None:
    """Which rollup a bucket of `step` seconds reads: none below a minute (raw samples)."""
    if step >= 3600 and step % 3600 == 0:
        return "hour"
    if step >= 60 and step % 60 == 0:
        return "minute"
    return None


def _concurrency_from_rollups(store: HistoryStore, grain: str, start: datetime, end: datetime, step: int,
                              servers: list[str] | None, rooms: Rooms) -> pd.DataFrame:
    """Like `concurrency`, from the minute or hour rollups. Without a room filter the values are
    exact (the most seen at once in the bucket). With a room filter they add up each room's
    busiest moment in the bucket, which is exact for one room and an upper bound for several."""
    unit = 3600 if grain == "hour" else 60
    t1 = _epoch(end)
    t0 = math.floor(_epoch(start) / unit) * unit  # the grid starts on a rollup boundary
    count = max(1, math.ceil((t1 - t0) / step))
    server_where, server_params = _filters(servers, None)
    if rooms is None:
        per_bucket = f"""SELECT server, floor((epoch(bucket) - ?) / ?)::BIGINT AS b, max(rooms_max) AS rooms,
                                max(participants_max) AS participants
                         FROM server_rollup WHERE grain = ? AND ok_samples > 0 AND bucket >= to_timestamp(?) AND bucket < to_timestamp(?) {server_where}
                         GROUP BY ALL"""
        params: list[object] = [t0, step, grain, t0, t1, *server_params]
    else:
        room_where, room_params = _filters(servers, rooms)
        per_bucket = f"""SELECT server, b, count(DISTINCT room) AS rooms, sum(peak) AS participants FROM (
                             SELECT server, room, floor((epoch(bucket) - ?) / ?)::BIGINT AS b, max(participants_max) AS peak
                             FROM room_rollup WHERE grain = ? AND bucket >= to_timestamp(?) AND bucket < to_timestamp(?) {room_where}
                             GROUP BY ALL) GROUP BY server, b"""
        params = [t0, step, grain, t0, t1, *room_params]
    sql = f"""
    WITH per_bucket AS ({per_bucket}),
    grid AS (
        SELECT s.server, g.b FROM (SELECT DISTINCT server FROM server_rollup
                                   WHERE grain = ? AND bucket >= to_timestamp(?) AND bucket < to_timestamp(?) {server_where}) s,
             range(?) g(b)
    )
    SELECT to_timestamp(? + grid.b * ?) AS ts, grid.server, p.rooms, p.participants
    FROM grid LEFT JOIN per_bucket p ON p.server = grid.server AND p.b = grid.b
    ORDER BY grid.server, ts
    """
    frame = store.query(sql, [*params, grain, t0, t1, *server_params, count, t0, step])
    frame["rooms"] = frame["rooms"].astype("Int64")
    frame["participants"] = frame["participants"].astype("Int64")
    return frame


def concurrency(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None, rooms: Rooms,
                step: int | None = None) -> pd.DataFrame:
    """Per server and time bucket, the most rooms and participants seen at once (columns ts,
    server, rooms, participants). Every bucket of every server with data in the range has a row;
    a bucket without a successful sample (an outage, a recorded gap, the collector not running)
    has NULL values, so a chart shows a break, never an invented zero. Buckets of a minute or
    more read the rollups, so any range reads a bounded number of rows. `step` is the bucket in
    seconds (bucket_seconds of the range when not given)."""
    step = step or bucket_seconds(start, end)
    grain = rollup_grain(step)
    if grain is not None:
        return _concurrency_from_rollups(store, grain, start, end, step, servers, rooms)
    return _concurrency_from_samples(store, start, end, step, servers, rooms)


def _concurrency_from_samples(store: HistoryStore, start: datetime, end: datetime, step: int,
                              servers: list[str] | None, rooms: Rooms) -> pd.DataFrame:
    """Like `concurrency`, from the raw samples: exact to the sample, for buckets under a minute
    (and, in the benchmark, the baseline the rollups are measured against)."""
    t0, t1 = _epoch(start), _epoch(end)
    count = max(1, math.ceil((t1 - t0) / step))
    server_where, server_params = _filters(servers, None, "s.server")
    room_where, room_params = _filters(None, rooms, "r.server", "r.room")
    sql = f"""
    WITH ticks AS (
        SELECT s.server, s.ts, epoch(s.ts) AS t FROM server_samples s
        WHERE s.ok AND s.ts >= to_timestamp(?) AND s.ts < to_timestamp(?) {server_where}
          AND NOT EXISTS (SELECT 1 FROM gaps g WHERE g.server = s.server AND s.ts >= g.started_at
                          AND (g.ended_at IS NULL OR s.ts < g.ended_at))
    ),
    per_tick AS (
        SELECT t.server, t.t, count(r.room_sid) AS rooms, coalesce(sum(r.participants), 0) AS participants
        FROM ticks t LEFT JOIN room_samples r ON r.server = t.server AND r.ts = t.ts {room_where}
        GROUP BY t.server, t.ts, t.t
    ),
    per_bucket AS (
        SELECT server, floor((t - ?) / ?)::BIGINT AS b, max(rooms) AS rooms, max(participants) AS participants
        FROM per_tick GROUP BY ALL
    ),
    grid AS (
        SELECT s.server, g.b FROM (SELECT DISTINCT server FROM server_samples s
                                   WHERE s.ts >= to_timestamp(?) AND s.ts < to_timestamp(?) {server_where}) s,
             range(?) g(b)
    )
    SELECT to_timestamp(? + grid.b * ?) AS ts, grid.server, p.rooms, p.participants
    FROM grid LEFT JOIN per_bucket p ON p.server = grid.server AND p.b = grid.b
    ORDER BY grid.server, ts
    """
    params: list[object] = [t0, t1, *server_params, *room_params, t0, step, t0, t1, *server_params, count, t0, step]
    frame = store.query(sql, params)
    frame["rooms"] = frame["rooms"].astype("Int64")
    frame["participants"] = frame["participants"].astype("Int64")
    return frame


def _session_overlap(store: HistoryStore, select: str, select_params: list[object], start: datetime, end: datetime,
                     servers: list[str] | None, rooms: Rooms, now: datetime | None) -> pd.DataFrame:
    """Run `select` over `spans`: participant sessions clipped to the range (epochs a to z), a
    session still open running until now."""
    lo, hi = _epoch(start), _epoch(end)
    current = _epoch(now or datetime.now(timezone.utc))
    where, params = _filters(servers, rooms)
    clipped = f"""
        WITH clipped AS (
            SELECT server, room, greatest(epoch(joined_at), ?) AS a,
                   least(coalesce(epoch(left_at), ?), ?, ?) AS z
            FROM participant_sessions WHERE joined_at IS NOT NULL {where}
        ), spans AS (SELECT * FROM clipped WHERE z > a)
    """
    return store.query(clipped + select, [lo, current, hi, current, *params, *select_params])


def participant_minutes_per_day(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None,
                                rooms: Rooms, now: datetime | None = None) -> pd.DataFrame:
    """Per UTC day, the minutes participants spent in rooms within the range (columns day,
    participant_minutes); a session still open counts up to now."""
    # Each span is cut at UTC midnights (most lie within one day): linear in the sessions, where
    # joining every span with every day of the range was not.
    select = f"""
        , pieces AS (SELECT a, z, unnest(range(floor(a / {DAY})::BIGINT, ceil(z / {DAY})::BIGINT)) AS d FROM spans)
        SELECT timezone('UTC', to_timestamp(d * {DAY}))::DATE AS day,
               sum(least(z, (d + 1) * {DAY}) - greatest(a, d * {DAY})) / 60.0 AS participant_minutes
        FROM pieces GROUP BY d ORDER BY d
    """
    return _session_overlap(store, select, [], start, end, servers, rooms, now)


def top_rooms(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None,
              rooms: Rooms, now: datetime | None = None) -> pd.DataFrame:
    """The rooms with the most participant-minutes in the range, at most ten (columns server,
    room, participant_minutes)."""
    select = f"""
        SELECT server, room, sum(z - a) / 60.0 AS participant_minutes
        FROM spans GROUP BY server, room
        ORDER BY participant_minutes DESC, server, room LIMIT {TOP_ROOMS}
    """
    return _session_overlap(store, select, [], start, end, servers, rooms, now)


def sessions_per_day(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None, rooms: Rooms) -> pd.DataFrame:
    """Room sessions started per UTC day in the range (columns day, sessions)."""
    where, params = _filters(servers, rooms)
    return store.query(
        f"""SELECT timezone('UTC', started_at)::DATE AS day, count(*) AS sessions FROM room_sessions
            WHERE started_at >= to_timestamp(?) AND started_at < to_timestamp(?) {where}
            GROUP BY day ORDER BY day""",
        [_epoch(start), _epoch(end), *params],
    )


# Bin edges in minutes for the duration distribution: fine where most sessions are, coarse after.
DURATION_EDGES = (0, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 480, 1440)


def duration_label(low: float, high: float | None) -> str:
    return f"{low:g}+ min" if high is None or pd.isna(high) else f"{low:g}-{high:g} min"


def session_durations(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None, rooms: Rooms) -> pd.DataFrame:
    """How long participant sessions that ended in the range lasted: a count per duration bin
    (DURATION_EDGES, the last bin open-ended) and per estimated flag (an end noticed by a
    snapshot rather than reported by a webhook). Columns: minutes (the bin's label), from_min,
    to_min, estimated, sessions; bins in order, empty bins left out."""
    where, params = _filters(servers, rooms)
    lows = list(DURATION_EDGES)
    highs = [*DURATION_EDGES[1:], None]
    frame = store.query(
        f"""WITH ended AS (
                SELECT greatest(epoch(left_at) - epoch(joined_at), 0) / 60.0 AS minutes, left_estimated AS estimated
                FROM participant_sessions
                WHERE joined_at IS NOT NULL AND left_at IS NOT NULL
                  AND left_at >= to_timestamp(?) AND left_at < to_timestamp(?) {where}
            ), bins AS (SELECT unnest(?::DOUBLE[]) AS from_min, unnest(?::DOUBLE[]) AS to_min)
            SELECT b.from_min, b.to_min, e.estimated, count(*) AS sessions
            FROM ended e JOIN bins b ON e.minutes >= b.from_min AND (b.to_min IS NULL OR e.minutes < b.to_min)
            GROUP BY ALL ORDER BY b.from_min, e.estimated""",
        [_epoch(start), _epoch(end), *params, lows, highs],
    )
    frame.insert(0, "minutes", [duration_label(lo, hi) for lo, hi in zip(frame["from_min"], frame["to_min"])])
    return frame


def peak_per_room(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None, rooms: Rooms) -> pd.DataFrame:
    """The most participants sampled at once in each room in the range (columns server, room,
    peak_participants)."""
    where, params = _filters(servers, rooms)
    if end - start <= timedelta(hours=6):  # short ranges: the raw samples, to the second
        return store.query(
            f"""SELECT server, room, max(participants) AS peak_participants FROM room_samples
                WHERE ts >= to_timestamp(?) AND ts < to_timestamp(?) {where}
                GROUP BY server, room ORDER BY peak_participants DESC, server, room""",
            [_epoch(start), _epoch(end), *params],
        )
    grain = "minute" if end - start <= timedelta(days=7) else "hour"
    return store.query(
        f"""SELECT server, room, max(participants_max) AS peak_participants FROM room_rollup
            WHERE grain = ? AND bucket >= to_timestamp(?) AND bucket < to_timestamp(?) {where}
            GROUP BY server, room ORDER BY peak_participants DESC, server, room""",
        [grain, _epoch(start), _epoch(end), *params],
    )


def _events_by(store: HistoryStore, kind: str, column: str, subject: str, start: datetime, end: datetime,
               servers: list[str] | None, rooms: Rooms, step: int | None) -> pd.DataFrame:
    """Changes of one kind per bucket. A change seen both in a webhook and between two snapshots
    is stored once per source, so what is counted is distinct `subject`s (a track, a job state),
    each at its earliest time."""
    step = step or bucket_seconds(start, end)
    t0 = _epoch(start)
    where, params = _filters(servers, rooms)
    return store.query(
        f"""WITH firsts AS (
                SELECT server, {subject} AS subject, arg_min({column}, ts) AS {column}, min(ts) AS ts
                FROM events WHERE kind = ? AND ts >= to_timestamp(?) AND ts < to_timestamp(?) {where}
                GROUP BY server, {subject})
            SELECT to_timestamp(? + floor((epoch(ts) - ?) / ?) * ?) AS ts, {column}, count(*) AS events
            FROM firsts GROUP BY ALL ORDER BY ts, {column}""",
        [kind, t0, _epoch(end), *params, t0, t0, step, step],
    )


def jobs_by_state(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None, rooms: Rooms,
                  step: int | None = None) -> pd.DataFrame:
    """Agent job state changes per time bucket and job status (columns ts, job_status, events)."""
    return _events_by(store, JOB_STATE, "job_status", "job_id || ':' || job_status", start, end, servers, rooms, step)


def tracks_by_source(store: HistoryStore, start: datetime, end: datetime, servers: list[str] | None, rooms: Rooms,
                     step: int | None = None) -> pd.DataFrame:
    """Tracks published per time bucket and track source (columns ts, track_source, events),
    from the tracks table: one row per track, at its earliest publication, however many sources
    reported it."""
    step = step or bucket_seconds(start, end)
    t0 = _epoch(start)
    where, params = _filters(servers, rooms)
    return store.query(
        f"""SELECT to_timestamp(? + floor((epoch(published_at) - ?) / ?) * ?) AS ts, source AS track_source, count(*) AS events
            FROM tracks WHERE published_at >= to_timestamp(?) AND published_at < to_timestamp(?) {where}
            GROUP BY ALL ORDER BY ts, track_source""",
        [t0, t0, step, step, t0, _epoch(end), *params],
    )


def preset_range(label: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The (start, end) of a named range ending now."""
    end = now or datetime.now(timezone.utc)
    return end - PRESETS[label], end

