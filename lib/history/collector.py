"""The collector: every N seconds, a snapshot of each configured server into the history store.

It runs on the gateway's event loop (started by the server lifespan, not by a page), one task per
server, supervised so servers added or removed on the Servers page are followed. Per snapshot
it writes one server sample, one sample per active room, and the events that differ from the
previous snapshot. A server that cannot be read opens a gap (written once) and is retried at
twice the interval until it answers; then the gap is closed and what ended meanwhile is dated
to when the outage began (the latest it can have happened), marked estimated.

A per-server task that crashes (a bug, a store that cannot be read) is logged with its traceback
and started again at the supervisor's next round; `status()` counts the restarts for /healthz.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..livekit.errors import Category, GatewayError
from ..livekit.gateway import LiveKitGateway
from ..livekit.records import ServerSnapshot
from .events import PARTICIPANT_LEFT, ROOM_FINISHED, SNAPSHOT, TRACK_UNPUBLISHED, HistoryEvent, diff
from .store import GapEnd, GapStart, HistoryStore, Prune, RoomSample, ServerSample

PRUNE_EVERY = 3600.0  # seconds

log = logging.getLogger(__name__)


def _supervisor_ended(future: concurrent.futures.Future[None]) -> None:
    """The supervisor only ends by being cancelled; anything else stops all collection."""
    if not future.cancelled() and future.exception() is not None:
        log.error("history: the collector's supervisor crashed; nothing is collected until a restart", exc_info=future.exception())


def samples(snapshot: ServerSnapshot) -> list[object]:
    """One row for the server and one per room that exists: what a chart of concurrency needs."""
    if not snapshot.ok:
        return [ServerSample(snapshot.server, snapshot.taken_at, False, None, None, snapshot.error.category.value)]
    rows: list[object] = [
        ServerSample(snapshot.server, snapshot.taken_at, True, len(snapshot.rooms), len(snapshot.participants), None)
    ]
    for r in snapshot.rooms:
        rows.append(
            RoomSample(
                snapshot.server,
                snapshot.taken_at,
                r.room.sid,
                r.room.name,
                len(r.participants),
                sum(1 for p in r.participants if p.tracks),
                sum(1 for p in r.participants if p.is_agent),
                sum(len(p.tracks) for p in r.participants),
            )
        )
    return rows


def close_missing(store: HistoryStore, snapshot: ServerSnapshot, ended_by: datetime) -> list[HistoryEvent]:
    """At the collector's first look (start-up), sessions the store still has open that are not
    on the server any more ended while nobody was looking: close them, estimated."""
    present_rooms = {r.room.sid for r in snapshot.rooms}
    present_people = {p.sid for p in snapshot.participants}
    server = snapshot.server
    events: list[HistoryEvent] = []
    people = store.query(
        "SELECT participant_sid, room_sid, room, identity, kind FROM participant_sessions WHERE server = ? AND left_at IS NULL",
        [server],
    )
    for row in people.itertuples():
        if row.participant_sid not in present_people:
            events.append(HistoryEvent(f"snap:{server}:{PARTICIPANT_LEFT}:{row.participant_sid}", server, ended_by, SNAPSHOT,
                                       PARTICIPANT_LEFT, row.room_sid, row.room, row.participant_sid, row.identity, row.kind))  # fmt: skip
    present_tracks = {t.sid for p in snapshot.participants for t in p.tracks}
    tracks = store.query(
        "SELECT track_sid, room_sid, room, participant_sid, identity, source FROM tracks WHERE server = ? AND unpublished_at IS NULL",
        [server],
    )
    for row in tracks.itertuples():
        if row.track_sid not in present_tracks:
            events.append(HistoryEvent(f"snap:{server}:{TRACK_UNPUBLISHED}:{row.track_sid}", server, ended_by, SNAPSHOT, TRACK_UNPUBLISHED,
                                       row.room_sid, row.room, row.participant_sid or "", row.identity or "", "", row.track_sid, row.source))  # fmt: skip
    rooms = store.query("SELECT room_sid, room FROM room_sessions WHERE server = ? AND ended_at IS NULL", [server])
    for row in rooms.itertuples():
        if row.room_sid not in present_rooms:
            events.append(HistoryEvent(f"snap:{server}:{ROOM_FINISHED}:{row.room_sid}", server, ended_by, SNAPSHOT, ROOM_FINISHED, row.room_sid, row.room))
    return events


def servers_with_open_sessions(store: HistoryStore) -> list[str]:
    found = store.query(
        "SELECT server FROM room_sessions WHERE ended_at IS NULL UNION "
        "SELECT server FROM participant_sessions WHERE left_at IS NULL UNION "
        "SELECT server FROM tracks WHERE unpublished_at IS NULL"
    )
    return sorted(found["server"])


def last_seen(store: HistoryStore, server: str) -> datetime | None:
    """When the server last answered a snapshot, from an earlier run of the collector."""
    found = store.query("SELECT max(ts) AS ts FROM server_samples WHERE server = ? AND ok", [server])
    value = found["ts"].iloc[0] if len(found) else None
    return None if value is None or value != value else value.to_pydatetime()  # NaT != NaT


@dataclass(frozen=True)
class CollectorStatus:
    """`restarts` counts per-server tasks started again after a crash since the collector was
    made; `last_crash` is the exception's type and text (it may name a server's address: for
    the log and the process, not for /healthz); `running` is whether the supervisor runs."""

    restarts: int
    last_crash_at: datetime | None
    last_crash: str | None
    running: bool


CRASH_TEXT_LIMIT = 500


class Collector:
    def __init__(
        self,
        gateway: LiveKitGateway,
        store: HistoryStore,
        interval: float = 5.0,
        sample_days: float = 7.0,
        retention_days: dict[str, float] | None = None,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self.interval = interval
        # Days kept per retention group (lib.history.store.RETENTION); 0 or absent keeps forever.
        self.retention_days = {"samples": sample_days} | (retention_days or {})
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._supervisor: concurrent.futures.Future[None] | None = None
        self._restarts = 0
        self._last_crash_at: datetime | None = None
        self._last_crash: str | None = None

    def start(self) -> None:
        self._supervisor = self._gateway.loop.submit(self._supervise())
        self._supervisor.add_done_callback(_supervisor_ended)

    def status(self) -> CollectorStatus:
        supervisor = self._supervisor
        running = supervisor is not None and not supervisor.done()
        return CollectorStatus(self._restarts, self._last_crash_at, self._last_crash, running)

    def stop(self) -> None:
        if self._supervisor is not None:
            self._gateway.loop.loop.call_soon_threadsafe(self._cancel_all)
            self._supervisor = None

    def _cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        for task in asyncio.all_tasks():
            if task.get_name() == "history-supervisor":
                task.cancel()

    def prunes(self, now: datetime) -> list[Prune]:
        return [Prune(now - timedelta(days=days), what) for what, days in self.retention_days.items() if days > 0]

    async def _close_unwatched(self, wanted: set[str]) -> None:
        """Sessions still open for servers nobody watches any more (removed on the Servers page,
        now or while the dashboard was down) would stay "live" forever: end them, estimated, at
        the last time each server answered. A store that cannot be read is logged and left:
        the next removal (or start) tries again."""
        try:
            await self._end_unwatched(wanted)
        except Exception:  # noqa: BLE001 - collecting goes on; the sessions stay open meanwhile
            log.exception("history: could not end the sessions of servers no longer watched")

    async def _end_unwatched(self, wanted: set[str]) -> None:
        for server in await asyncio.to_thread(servers_with_open_sessions, self._store):
            if server in wanted:
                continue
            seen = await asyncio.to_thread(last_seen, self._store, server) or datetime.now(timezone.utc)
            events = await asyncio.to_thread(close_missing, self._store, ServerSnapshot(server, seen, 0.0), seen)
            if events:
                log.info("history: %s is no longer watched; its %d open session(s) and track(s) ended", server, len(events))
                self._store.submit(events)

    async def _supervise(self) -> None:
        asyncio.current_task().set_name("history-supervisor")  # type: ignore[union-attr]
        pruned = 0.0
        await self._close_unwatched(set(self._gateway.server_names()))
        while True:
            if time.monotonic() - pruned >= PRUNE_EVERY:
                self._store.submit(self.prunes(datetime.now(timezone.utc)))
                pruned = time.monotonic()
            wanted = set(self._gateway.server_names())
            removed = False
            for name in list(self._tasks):
                if name not in wanted or self._tasks[name].done():
                    task = self._tasks.pop(name)
                    task.cancel()
                    removed = removed or name not in wanted
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        self._crashed(name, task.exception(), restart=name in wanted)  # type: ignore[arg-type]
            if removed:
                await self._close_unwatched(wanted)
            for name in wanted - set(self._tasks):
                self._tasks[name] = asyncio.create_task(self._collect(name), name=f"history-{name}")
            await asyncio.sleep(self.interval)

    def _crashed(self, server: str, exc: BaseException, restart: bool) -> None:
        self._last_crash_at = datetime.now(timezone.utc)
        self._last_crash = f"{type(exc).__name__}: {exc}"[:CRASH_TEXT_LIMIT]
        if restart:
            self._restarts += 1
        then = "starting it again" if restart else "the server is gone, so it stays stopped"
        log.error("history: collecting %s crashed; %s", server, then, exc_info=exc)

    async def _collect(self, server: str) -> None:
        previous: ServerSnapshot | None = None
        gap_since: datetime | None = None
        first = True
        while True:
            started = time.monotonic()
            try:
                snapshot = await self._gateway.asnapshot(server)
            except GatewayError as exc:
                if exc.category is Category.NOT_FOUND:
                    return  # the server was removed; the supervisor stops following it
                raise
            items: list[object] = samples(snapshot)
            if snapshot.ok:
                if gap_since is not None:
                    items.append(GapEnd(server, snapshot.taken_at))
                if first:
                    seen = await asyncio.to_thread(last_seen, self._store, server)
                    items += await asyncio.to_thread(close_missing, self._store, snapshot, seen or snapshot.taken_at)
                items += diff(previous, snapshot, ended_by=gap_since)
                previous, gap_since, first = snapshot, None, False
                delay = self.interval
            else:
                if gap_since is None:
                    gap_since = snapshot.taken_at
                    items.append(GapStart(server, snapshot.taken_at, snapshot.error.category.value))
                    log.warning("history: %s does not answer (%s); recording a gap", server, snapshot.error.category.value)
                delay = self.interval * 2  # back off, but stay within two intervals of a recovery
            self._store.submit(items)
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
