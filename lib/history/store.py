"""The history store: the only owner of data/history.duckdb.

Concurrency model (decided here and nowhere else):
- DuckDB allows one read-write process per file, so the Streamlit server process opens it and
  nothing else does.
- One writer thread owns every write. Producers (the collector, the webhook route) hand it
  batches through a queue and never wait for the disk; it drains whatever has queued, writes
  it in one transaction with bulk appends (a DataFrame per table, never executemany), and
  applies the session changes the new events imply.
- Readers (page scripts) get their own cursor per query from `read()`.
- A write that fails is logged, counted and kept in `status()` (for /healthz), never raised at
  a producer: nothing waits for the disk. Batches taken together are written one by one after a
  failure, so one bad batch loses only itself.
- The file, its WAL and DuckDB's spill directory are private to the process's user (0600,
  0700): they hold names and identities.

What is stored grows with change, not with time times participants: one row per active room per
interval (room_samples), one per server per interval (server_samples), events only when
something changed, and what is reconstructed from them: room and participant sessions and track
publications (tracks), one row each whichever sources reported them. Per-minute and per-hour
rollups of the samples (server_rollup, room_rollup) are kept when raw samples are pruned, so a
chart over any range reads a bounded number of rows. Gaps record when a server could not be
read: an outage is a gap, never a run of invented zeros. How long each group of tables is kept
is RETENTION's business; the collector asks for the pruning.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import stat
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from .events import (
    BOUND_KINDS,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    ROOM_FINISHED,
    ROOM_STARTED,
    SNAPSHOT,
    TRACK_PUBLISHED,
    TRACK_UNPUBLISHED,
    HistoryEvent,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS server_samples (
    server VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, ok BOOLEAN NOT NULL,
    rooms INTEGER, participants INTEGER, error VARCHAR);
CREATE TABLE IF NOT EXISTS room_samples (
    server VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, room_sid VARCHAR NOT NULL, room VARCHAR NOT NULL,
    participants INTEGER NOT NULL, publishers INTEGER NOT NULL, agents INTEGER NOT NULL, tracks INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gaps (
    server VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ, reason VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR PRIMARY KEY, server VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, room_sid VARCHAR NOT NULL, room VARCHAR NOT NULL, participant_sid VARCHAR,
    identity VARCHAR, participant_kind VARCHAR, track_sid VARCHAR, track_source VARCHAR,
    job_id VARCHAR, job_status VARCHAR);
CREATE TABLE IF NOT EXISTS room_sessions (
    server VARCHAR NOT NULL, room_sid VARCHAR NOT NULL, room VARCHAR NOT NULL,
    started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, end_estimated BOOLEAN NOT NULL DEFAULT FALSE,
    peak_participants INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (server, room_sid));
CREATE TABLE IF NOT EXISTS server_rollup (
    grain VARCHAR NOT NULL, server VARCHAR NOT NULL, bucket TIMESTAMPTZ NOT NULL, ok_samples INTEGER NOT NULL,
    rooms_max INTEGER NOT NULL, participants_max INTEGER NOT NULL, PRIMARY KEY (grain, server, bucket));
CREATE TABLE IF NOT EXISTS room_rollup (
    grain VARCHAR NOT NULL, server VARCHAR NOT NULL, room VARCHAR NOT NULL, bucket TIMESTAMPTZ NOT NULL,
    samples INTEGER NOT NULL, participants_max INTEGER NOT NULL, participants_sum BIGINT NOT NULL,
    PRIMARY KEY (grain, server, room, bucket));
CREATE TABLE IF NOT EXISTS tracks (
    server VARCHAR NOT NULL, track_sid VARCHAR NOT NULL, room_sid VARCHAR NOT NULL, room VARCHAR NOT NULL,
    participant_sid VARCHAR, identity VARCHAR, source VARCHAR NOT NULL, published_at TIMESTAMPTZ,
    unpublished_at TIMESTAMPTZ, unpublished_estimated BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (server, track_sid));
CREATE TABLE IF NOT EXISTS participant_sessions (
    server VARCHAR NOT NULL, participant_sid VARCHAR NOT NULL, room_sid VARCHAR NOT NULL, room VARCHAR NOT NULL,
    identity VARCHAR NOT NULL, kind VARCHAR NOT NULL, joined_at TIMESTAMPTZ, left_at TIMESTAMPTZ,
    left_estimated BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (server, participant_sid));
"""

EVENT_COLUMNS = [f for f in HistoryEvent.__dataclass_fields__]


@dataclass(frozen=True)
class RoomSample:
    server: str
    ts: datetime
    room_sid: str
    room: str
    participants: int
    publishers: int
    agents: int
    tracks: int


@dataclass(frozen=True)
class ServerSample:
    server: str
    ts: datetime
    ok: bool
    rooms: int | None
    participants: int | None
    error: str | None


@dataclass(frozen=True)
class GapStart:
    server: str
    started_at: datetime
    reason: str


@dataclass(frozen=True)
class GapEnd:
    server: str
    ended_at: datetime


# What each retention prunes: (table, the time that ages a row, an extra condition). Session-like
# rows go only once they have ended; gaps are a few rows and always kept.
RETENTION: dict[str, tuple[tuple[str, str, str], ...]] = {
    "samples": (("room_samples", "ts", "TRUE"), ("server_samples", "ts", "TRUE")),
    "minute_rollups": (("server_rollup", "bucket", "grain = 'minute'"), ("room_rollup", "bucket", "grain = 'minute'")),
    "hour_rollups": (("server_rollup", "bucket", "grain = 'hour'"), ("room_rollup", "bucket", "grain = 'hour'")),
    "events": (("events", "ts", "TRUE"),),
    "sessions": (
        ("room_sessions", "ended_at", "ended_at IS NOT NULL"),
        ("participant_sessions", "left_at", "left_at IS NOT NULL"),
        ("tracks", "unpublished_at", "unpublished_at IS NOT NULL"),
    ),
}


@dataclass(frozen=True)
class Prune:
    """Drop the rows of one retention group (a RETENTION key) older than `before`."""

    before: datetime
    what: str = "samples"

    def __post_init__(self) -> None:
        if self.what not in RETENTION:
            raise ValueError(f"no retention group {self.what!r}")


@dataclass(frozen=True)
class WriterStatus:
    """How the writer is doing. `failed_batches` counts submitted batches it could not write
    since the store opened; `failing` is whether the most recent write failed; `queued` is how
    many batches are submitted and not yet written. `last_failure` is the exception's type and
    text, which may quote a value of the batch (DuckDB's conversion errors do): for the log and
    the process, not for anyone who can reach /healthz."""

    failed_batches: int
    last_failure_at: datetime | None
    last_failure: str | None
    failing: bool
    queued: int


FAILURE_TEXT_LIMIT = 500
_STOP = object()
# How long close() waits for reads in flight before it closes the file under them.
CLOSE_WAIT = 30.0


class HistoryStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        on_disk = str(path) != ":memory:"
        if on_disk:
            _private_file(self.path)
        self._conn = duckdb.connect(str(path))
        # Buckets (date_trunc) follow the session's time zone: UTC, whatever the host's is.
        self._conn.execute("SET TimeZone = 'UTC'")
        self._wal = Path(f"{self.path}.wal") if on_disk else None
        if on_disk:
            _private_dir(Path(f"{self.path}.tmp"))  # DuckDB's default temp_directory for spills
        self._keep_wal_private()
        self._upgrade()
        self._keep_wal_private()
        self._queue: queue.Queue[object] = queue.Queue()
        self._readers = 0  # reads in flight; close() waits for them
        self._closing = False
        self._readers_done = threading.Condition()
        self._idle = threading.Condition()
        self._pending = 0
        self._queued_ids: Counter[str] = Counter()  # event ids submitted and not yet written
        self._submitting_new = threading.Lock()
        self._failed: Exception | None = None
        self._failed_batches = 0
        self._last_failure_at: datetime | None = None
        self._last_failure: str | None = None
        self._failing = False
        self._writer = threading.Thread(target=self._write_loop, name="history-writer", daemon=True)
        self._writer.start()

    def _keep_wal_private(self) -> None:
        """DuckDB creates its WAL with the process's umask (0644 as a rule) at the first write
        after a checkpoint, and deletes it at the next checkpoint. It reuses a WAL that exists,
        so one created here, empty and 0600, before the next write keeps every write private.
        Called before each write by the writer, the only thread that writes."""
        if self._wal is None:
            return
        try:
            fd = os.open(self._wal, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        except FileExistsError:
            if stat.S_IMODE(os.stat(self._wal).st_mode) & 0o077:
                os.chmod(self._wal, 0o600)

    def _upgrade(self) -> None:
        """Create missing tables; a table added after a file was first written is filled from
        the events it already holds."""
        had_tracks = bool(self._conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tracks'").fetchone()[0])  # type: ignore[index]  # fmt: skip
        self._conn.execute(SCHEMA)
        if not had_tracks:
            events = self._conn.sql(
                "SELECT * FROM events WHERE kind IN (?, ?)", params=[TRACK_PUBLISHED, TRACK_UNPUBLISHED]
            ).to_arrow_table().to_pandas()
            if len(events):
                events["estimated"] = (events["source"] == SNAPSHOT) & events["kind"].isin(BOUND_KINDS)
                cursor = self._conn.cursor()
                cursor.begin()
                self._apply_sessions(cursor, events)
                cursor.commit()
                log.info("history store: %d track events folded into the new tracks table", len(events))

    # ----- producers -----------------------------------------------------------------------

    def submit(self, items: list[object]) -> None:
        """Queue records (RoomSample, ServerSample, HistoryEvent, GapStart, GapEnd) for the
        writer; returns at once."""
        if not items:
            return
        with self._idle:
            self._pending += 1
            self._queued_ids.update(item.event_id for item in items if isinstance(item, HistoryEvent))
        self._queue.put(items)

    def submit_new(self, events: list[HistoryEvent]) -> list[HistoryEvent]:
        """Queue those of `events` whose ids are neither stored nor queued, and return them: a
        redelivered webhook is known as one even before the writer has caught up. Reads the
        store (one primary-key lookup per id), so not for the event loop."""
        with self._submitting_new:  # two deliveries of one event: the second sees the first queued
            # Queued first, then stored: the writer forgets an id only after committing it, so
            # an id that left the queue between the two looks is found in the table.
            with self._idle:
                fresh = [e for e in {e.event_id: e for e in events}.values() if e.event_id not in self._queued_ids]
            stored = self._stored_event_ids([e.event_id for e in fresh])
            fresh = [e for e in fresh if e.event_id not in stored]
            self.submit(list(fresh))
        return fresh

    def _stored_event_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self.read() as cursor:
            for event_id in ids:  # equality on the key: an index lookup, not a scan of the events
                if cursor.execute("SELECT 1 FROM events WHERE event_id = ?", [event_id]).fetchone():
                    found.add(event_id)
        return found

    def status(self) -> WriterStatus:
        with self._idle:
            return WriterStatus(self._failed_batches, self._last_failure_at, self._last_failure, self._failing, self._pending)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything submitted so far is written (tests, shutdown)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError("the history writer did not catch up")

    def close(self) -> None:
        """Stop the writer (writing what was queued), wait for reads in flight (the collector's
        run in worker threads that cancelling its tasks does not stop), then close the file."""
        with self._readers_done:
            self._closing = True
        self._queue.put(_STOP)
        self._writer.join(30)
        with self._readers_done:
            self._readers_done.wait_for(lambda: self._readers == 0, timeout=CLOSE_WAIT)
        self._conn.close()
        if self._wal is not None:
            try:
                os.rmdir(f"{self.path}.tmp")  # made at open for DuckDB's spills; kept if it holds any
            except OSError:
                pass

    # ----- readers -------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one reader; DuckDB cursors on one connection may be used
        from different threads at once."""
        with self._readers_done:
            if self._closing:
                raise RuntimeError("the history store is closed")
            self._readers += 1
        try:
            cursor = self._conn.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            with self._readers_done:
                self._readers -= 1
                self._readers_done.notify_all()

    def query(self, sql: str, params: list[object] | None = None) -> pd.DataFrame:
        # Through Arrow: DuckDB's own .df() trips a pandas 3 deprecation on every call.
        with self.read() as cursor:
            return cursor.sql(sql, params=params or None).to_arrow_table().to_pandas()

    # ----- the writer ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        cursor = self._conn.cursor()
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batches = [first]
            while True:  # take whatever else is already queued: one transaction for all of it
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batches.append(more)
            try:
                self._write_batches(cursor, batches)  # type: ignore[arg-type]
            finally:
                ids = Counter(item.event_id for batch in batches for item in batch if isinstance(item, HistoryEvent))  # type: ignore[union-attr]
                with self._idle:
                    self._pending -= len(batches)
                    self._queued_ids.subtract(ids)
                    for event_id in ids:
                        if self._queued_ids[event_id] <= 0:
                            del self._queued_ids[event_id]
                    self._idle.notify_all()

    def _write_batches(self, cursor: duckdb.DuckDBPyConnection, batches: list[list[object]]) -> None:
        """All of `batches` in one transaction; after a failure, each on its own."""
        try:
            self._write_and_record(cursor, [item for batch in batches for item in batch])
            return
        except Exception as exc:  # noqa: BLE001 - counted below; the thread lives on for the next batch
            if len(batches) == 1:
                self._failed_write(exc)
                return
            log.warning("history write of %d batches together failed (%s); writing them one by one", len(batches), type(exc).__name__)
        for batch in batches:
            try:
                self._write_and_record(cursor, batch)
            except Exception as exc:  # noqa: BLE001 - as above
                self._failed_write(exc)

    def _write_and_record(self, cursor: duckdb.DuckDBPyConnection, items: list[object]) -> None:
        self._keep_wal_private()
        self._write(cursor, items)
        with self._idle:
            self._failing = False

    def _failed_write(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"[:FAILURE_TEXT_LIMIT]
        with self._idle:
            first = not self._failing
            self._failed_batches += 1
            self._last_failure_at = datetime.now(timezone.utc)
            self._last_failure = text
            self._failing = True
            self._failed = exc
        if first:  # the traceback once per run of failures; a broken file fails every batch
            log.error("history write failed; the batch is lost", exc_info=exc)
        else:
            log.error("history write failed again; the batch is lost: %s", text)

    def _write(self, cursor: duckdb.DuckDBPyConnection, items: list[object]) -> None:
        by_type: dict[type, list[object]] = {}
        for item in items:
            by_type.setdefault(type(item), []).append(item)
        cursor.begin()
        try:
            server_samples = _frame(by_type.get(ServerSample, []))
            room_samples = _frame(by_type.get(RoomSample, []))
            _insert(cursor, "server_samples", server_samples)
            _insert(cursor, "room_samples", room_samples)
            self._roll_up(cursor, server_samples, room_samples)
            for gap in by_type.get(GapStart, []):
                cursor.execute("INSERT INTO gaps VALUES (?, ?, NULL, ?)", [gap.server, gap.started_at, gap.reason])
            for end in by_type.get(GapEnd, []):
                cursor.execute("UPDATE gaps SET ended_at = ? WHERE server = ? AND ended_at IS NULL", [end.ended_at, end.server])
            for prune in by_type.get(Prune, []):
                for table, column, condition in RETENTION[prune.what]:  # type: ignore[attr-defined]
                    cursor.execute(f"DELETE FROM {table} WHERE {condition} AND {column} < ?", [prune.before])  # type: ignore[attr-defined]
            new_events = self._insert_events(cursor, by_type.get(HistoryEvent, []))
            self._apply_sessions(cursor, new_events)
            if room_samples is not None:
                self._raise_peaks(cursor, room_samples)
            cursor.commit()
        except Exception:
            cursor.rollback()
            raise

    @staticmethod
    def _roll_up(cursor: duckdb.DuckDBPyConnection, servers: pd.DataFrame | None, rooms: pd.DataFrame | None) -> None:
        """Fold new samples into the minute and hour rollups. Server rows keep the most rooms and
        participants seen at once (the samples' own totals), so "most at once" stays exact."""
        for grain in ("minute", "hour"):
            if servers is not None:
                _run(
                    cursor,
                    "INSERT INTO server_rollup SELECT ?, server, date_trunc(?, ts), count(*), max(coalesce(rooms, 0)), "
                    "max(coalesce(participants, 0)) FROM batch WHERE ok GROUP BY ALL "
                    "ON CONFLICT (grain, server, bucket) DO UPDATE SET "
                    "ok_samples = server_rollup.ok_samples + excluded.ok_samples, "
                    "rooms_max = greatest(server_rollup.rooms_max, excluded.rooms_max), "
                    "participants_max = greatest(server_rollup.participants_max, excluded.participants_max)",
                    servers,
                    [grain, grain],
                )
            if rooms is not None:
                _run(
                    cursor,
                    "INSERT INTO room_rollup SELECT ?, server, room, date_trunc(?, ts), count(*), max(participants), sum(participants) "
                    "FROM batch GROUP BY ALL ON CONFLICT (grain, server, room, bucket) DO UPDATE SET "
                    "samples = room_rollup.samples + excluded.samples, "
                    "participants_max = greatest(room_rollup.participants_max, excluded.participants_max), "
                    "participants_sum = room_rollup.participants_sum + excluded.participants_sum",
                    rooms,
                    [grain, grain],
                )

    @staticmethod
    def _insert_events(cursor: duckdb.DuckDBPyConnection, events: list[object]) -> pd.DataFrame | None:
        """Store events not seen before (by id) and return just those, with their `estimated`
        flag; None when there are none."""
        if not events:
            return None
        unique = list({e.event_id: e for e in events}.values())  # type: ignore[attr-defined]
        frame = _frame(unique)
        fresh = _run(
            cursor, "INSERT INTO events BY NAME SELECT * FROM batch ON CONFLICT DO NOTHING RETURNING event_id", frame
        )
        if not fresh:
            return None
        frame = frame[frame["event_id"].isin({row[0] for row in fresh})].copy()
        frame["estimated"] = (frame["source"] == SNAPSHOT) & frame["kind"].isin(BOUND_KINDS)
        return frame

    @staticmethod
    def _apply_sessions(cursor: duckdb.DuckDBPyConnection, frame: pd.DataFrame | None) -> None:
        """Fold new events into room and participant sessions, one statement per kind for the
        whole batch. Order and duplicates do not matter: a start or join keeps the earliest
        time, an exact end replaces an estimated one (within the batch too), and an end that
        arrives before its start still makes a session."""
        if frame is None:
            return
        frame["participant_kind"] = frame["participant_kind"].replace("", "standard")
        by_kind = {kind: rows for kind, rows in frame.groupby("kind")}

        def run(sql: str, rows: pd.DataFrame) -> None:
            _run(cursor, sql, rows)

        # The best end per session: exact before estimated, then the earliest.
        best_end = "arg_min(ts, (estimated, ts))"
        if ROOM_STARTED in by_kind:
            run(
                "INSERT INTO room_sessions (server, room_sid, room, started_at) "
                "SELECT server, room_sid, any_value(room), min(ts) FROM batch GROUP BY server, room_sid "
                "ON CONFLICT (server, room_sid) DO UPDATE SET started_at = "
                "CASE WHEN room_sessions.started_at IS NULL THEN excluded.started_at "
                "ELSE least(room_sessions.started_at, excluded.started_at) END",
                by_kind[ROOM_STARTED],
            )
        if PARTICIPANT_JOINED in by_kind:
            joins = by_kind[PARTICIPANT_JOINED]
            run(
                "INSERT INTO participant_sessions (server, participant_sid, room_sid, room, identity, kind, joined_at) "
                "SELECT server, participant_sid, any_value(room_sid), any_value(room), any_value(identity), "
                "any_value(participant_kind), min(ts) FROM batch GROUP BY server, participant_sid "
                "ON CONFLICT (server, participant_sid) DO UPDATE SET joined_at = "
                "CASE WHEN participant_sessions.joined_at IS NULL THEN excluded.joined_at "
                "ELSE least(participant_sessions.joined_at, excluded.joined_at) END",
                joins,
            )
            # A participant in a room means the room exists, even if its start was missed.
            run(
                "INSERT INTO room_sessions (server, room_sid, room, started_at) "
                "SELECT server, room_sid, any_value(room), min(ts) FROM batch GROUP BY server, room_sid "
                "ON CONFLICT (server, room_sid) DO NOTHING",
                joins,
            )
        if ROOM_FINISHED in by_kind:
            run(
                "INSERT INTO room_sessions (server, room_sid, room, ended_at, end_estimated) "
                f"SELECT server, room_sid, any_value(room), {best_end}, bool_and(estimated) FROM batch GROUP BY server, room_sid "
                "ON CONFLICT (server, room_sid) DO UPDATE SET "
                "ended_at = CASE WHEN room_sessions.ended_at IS NULL OR room_sessions.end_estimated THEN excluded.ended_at ELSE room_sessions.ended_at END, "
                "end_estimated = CASE WHEN room_sessions.ended_at IS NULL OR room_sessions.end_estimated THEN excluded.end_estimated ELSE room_sessions.end_estimated END",
                by_kind[ROOM_FINISHED],
            )
        if TRACK_PUBLISHED in by_kind:
            run(
                "INSERT INTO tracks (server, track_sid, room_sid, room, participant_sid, identity, source, published_at) "
                "SELECT server, track_sid, any_value(room_sid), any_value(room), any_value(participant_sid), any_value(identity), "
                "any_value(track_source), min(ts) FROM batch GROUP BY server, track_sid "
                "ON CONFLICT (server, track_sid) DO UPDATE SET published_at = "
                "CASE WHEN tracks.published_at IS NULL THEN excluded.published_at ELSE least(tracks.published_at, excluded.published_at) END",
                by_kind[TRACK_PUBLISHED],
            )
        if TRACK_UNPUBLISHED in by_kind:
            run(
                "INSERT INTO tracks (server, track_sid, room_sid, room, participant_sid, identity, source, unpublished_at, unpublished_estimated) "
                "SELECT server, track_sid, any_value(room_sid), any_value(room), any_value(participant_sid), any_value(identity), "
                f"any_value(track_source), {best_end}, bool_and(estimated) FROM batch GROUP BY server, track_sid "
                "ON CONFLICT (server, track_sid) DO UPDATE SET "
                "unpublished_at = CASE WHEN tracks.unpublished_at IS NULL OR tracks.unpublished_estimated THEN excluded.unpublished_at ELSE tracks.unpublished_at END, "
                "unpublished_estimated = CASE WHEN tracks.unpublished_at IS NULL OR tracks.unpublished_estimated THEN excluded.unpublished_estimated ELSE tracks.unpublished_estimated END",
                by_kind[TRACK_UNPUBLISHED],
            )
        if PARTICIPANT_LEFT in by_kind:
            run(
                "INSERT INTO participant_sessions (server, participant_sid, room_sid, room, identity, kind, left_at, left_estimated) "
                "SELECT server, participant_sid, any_value(room_sid), any_value(room), any_value(identity), "
                f"any_value(participant_kind), {best_end}, bool_and(estimated) FROM batch GROUP BY server, participant_sid "
                "ON CONFLICT (server, participant_sid) DO UPDATE SET "
                "left_at = CASE WHEN participant_sessions.left_at IS NULL OR participant_sessions.left_estimated THEN excluded.left_at ELSE participant_sessions.left_at END, "
                "left_estimated = CASE WHEN participant_sessions.left_at IS NULL OR participant_sessions.left_estimated THEN excluded.left_estimated ELSE participant_sessions.left_estimated END",
                by_kind[PARTICIPANT_LEFT],
            )

    @staticmethod
    def _raise_peaks(cursor: duckdb.DuckDBPyConnection, samples: pd.DataFrame) -> None:
        _run(
            cursor,
            "UPDATE room_sessions SET peak_participants = greatest(room_sessions.peak_participants, p.peak) "
            "FROM (SELECT server, room_sid, max(participants) AS peak FROM batch GROUP BY ALL) p "
            "WHERE room_sessions.server = p.server AND room_sessions.room_sid = p.room_sid",
            samples,
        )

    @property
    def last_error(self) -> Exception | None:
        return self._failed


def _private_dir(path: Path) -> None:
    """Make `path` a directory only its owner can enter: created so, or tightened if it is ours
    (a name of the store's own, beside its file)."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if path.is_dir() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o700)


def _private_file(path: Path) -> None:
    """The history file, 0600 from its first byte: created by DuckDB inside a fresh 0700
    directory and moved into place (no moment in which another user could open it), or
    tightened if it exists. Missing parent directories are created 0700; existing ones are the
    operator's and left as they are."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
        wal = Path(f"{path}.wal")  # left by a crash; replayed at open
        if wal.exists() and stat.S_IMODE(wal.stat().st_mode) & 0o077:
            wal.chmod(0o600)
        return
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        duckdb.connect(str(staging / path.name)).close()
        (staging / path.name).chmod(0o600)
        os.rename(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _frame(rows: list[object]) -> pd.DataFrame | None:
    """Records of one dataclass as a DataFrame, built column by column (dataclasses.asdict deep-
    copies every field and cost most of the write path's time); None for no records."""
    if not rows:
        return None
    names = [f.name for f in fields(rows[0])]  # type: ignore[arg-type]
    return pd.DataFrame({name: [getattr(row, name) for row in rows] for name in names})


def _run(cursor: duckdb.DuckDBPyConnection, sql: str, frame: pd.DataFrame, params: list[object] | None = None) -> list[tuple]:
    """Execute `sql` with `frame` visible to it as the table `batch`; the rows it returns."""
    cursor.register("batch", frame)
    try:
        rows = cursor.execute(sql, params).fetchall()
    except Exception:
        # In the aborted transaction unregistering fails too, and its error would hide the real
        # one; the next register of "batch" replaces the view anyway.
        with suppress(duckdb.Error):
            cursor.unregister("batch")
        raise
    cursor.unregister("batch")
    return rows


def _insert(cursor: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame | None) -> None:
    if frame is not None:
        _run(cursor, f"INSERT INTO {table} BY NAME SELECT * FROM batch", frame)
