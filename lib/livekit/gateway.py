"""The LiveKit gateway: one long-lived Server API client per configured server, all on one event
loop, with snapshots, cached live views, connection tests and every control the dashboard offers.

Concurrency model (the only place it is decided):
- All clients (the SDK's aiohttp sessions for controls, the snapshot reads' own Twirp pools)
  live on one private `LoopThread`. Async methods (`asnapshot`, ...) run on that loop and are
  what the collector uses; the sync facade used by page scripts submits to it and waits with a
  timeout.
- Each server keeps its latest snapshot, its last successful one, and at most one refresh in
  flight. Any number of page sessions asking for a live view share that refresh; a page waits
  for it only up to a bound, so a slow or dead server never stalls the view of the others.
- A snapshot is bound by round trips, not by calls: it issues every call it needs at once, up
  to a per-server bound (`concurrency`) that also bounds that server's connection pool
  (HTTP/1.1 carries one call at a time per connection). Each server has its own bound and
  pool, so a slow server holds only its own. Idle connections stay open between snapshots
  (lib/livekit/twirp.py), so a steady snapshot opens none.
- Every call records the server's health: when it last answered, and since when it has failed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TypeVar

import aiohttp
from livekit import api
from livekit.protocol import agent_dispatch as dispatch_pb
from livekit.protocol import models as models_pb
from livekit.protocol import room as room_pb

from ..aio import LoopThread
from ..config import ConfigError, ServerConfig, validate_url
from .errors import Category, GatewayError, classify
from .records import (
    SOURCE_BY_NAME,
    AgentDispatch,
    Participant,
    Room,
    RoomSnapshot,
    ServerSnapshot,
    Track,
    dispatch_from_proto,
    participant_from_proto,
    room_from_proto,
    track_from_proto,
)
from .tokens import server_api_token
from .twirp import TwirpPool

log = logging.getLogger(__name__)
T = TypeVar("T")
# One room's reads: its participants, and its dispatches when they were read with them.
_Reads = tuple[
    list[models_pb.ParticipantInfo] | Exception, list[dispatch_pb.AgentDispatch] | Exception | None
]

# Failures that say something about the server as a whole (not about one room or participant).
_SERVER_DOWN = {Category.UNREACHABLE, Category.UNAUTHORIZED, Category.TIMEOUT, Category.NOT_LIVEKIT}
# Calls a snapshot may have in flight per server by default: one wave for a few hundred rooms.
DEFAULT_CONCURRENCY = 512
# What the client spends on one snapshot call (about 55 µs measured on two cores): while a call
# waits out a round trip of R seconds, about R / this many more can be sent.
_CALL_CPU = 50e-6
# The fewest calls kept in flight: the old fixed bound, which serves loopback and LAN servers well.
_MIN_IN_FLIGHT = 32
# Connections of the SDK client that carries controls and probes (snapshots have their own pool).
_CONTROL_CONNECTIONS = 16


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _allow_open_files(wanted: int) -> None:
    """Raise the process's soft limit on open files towards `wanted`, within the hard limit.

    Each server may hold `concurrency` connections, and Python keeps the soft limit it was
    started with (1024 under systemd and some container runtimes), where a Go program raises
    it to the hard limit by itself. Past the limit a connection fails as "unreachable".
    """
    try:
        import resource
    except ImportError:  # not a POSIX system: nothing to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)


async def _attempt(call: Awaitable[T]) -> T | Exception:
    """The call's result, or the exception it raised (cancellation still propagates)."""
    try:
        return await call
    except Exception as exc:  # noqa: BLE001 - the caller classifies it
        return exc


@dataclass(frozen=True)
class ServerHealth:
    server: str
    url: str
    last_ok_at: datetime | None = None
    last_error: GatewayError | None = None
    failing_since: datetime | None = None  # set from the first failure after a success
    last_snapshot_at: datetime | None = None  # last successful snapshot

    @property
    def reachable(self) -> bool | None:
        """True or False from the last call; None when nothing was asked yet."""
        if self.failing_since is not None:
            return False
        return True if self.last_ok_at else None


@dataclass(frozen=True)
class LiveView:
    """What a page shows for one server: the newest snapshot (possibly an error one), whether a
    fresher one is still being fetched, the server's health, and the newest snapshot that
    succeeded, however old, so a page can keep showing it while the server does not answer."""

    server: str
    snapshot: ServerSnapshot | None  # the newest attempt; None before the first one ended
    refreshing: bool
    health: ServerHealth
    last_good: ServerSnapshot | None = None  # None if the server never answered a snapshot

    @property
    def current(self) -> ServerSnapshot | None:
        """The newest attempt when it succeeded, else None."""
        return self.snapshot if self.snapshot is not None and self.snapshot.ok else None

    @property
    def stale(self) -> bool:
        """The newest attempt failed, and `last_good` is older data to show in its place."""
        return self.current is None and self.snapshot is not None and self.last_good is not None


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    seconds: float
    rooms: int | None = None
    error: GatewayError | None = None


@dataclass(frozen=True)
class PermissionUpdate:
    """A participant's new permissions; the server replaces all of them at once."""

    can_subscribe: bool = True
    can_publish: bool = True
    can_publish_data: bool = True
    can_publish_sources: tuple[str, ...] = ()  # empty: every source
    can_update_metadata: bool = False
    hidden: bool = False

    def to_proto(self) -> models_pb.ParticipantPermission:
        unknown = [s for s in self.can_publish_sources if s not in SOURCE_BY_NAME]
        if unknown:
            raise GatewayError(Category.INVALID, f"unknown track source(s): {', '.join(unknown)}")
        return models_pb.ParticipantPermission(
            can_subscribe=self.can_subscribe,
            can_publish=self.can_publish,
            can_publish_data=self.can_publish_data,
            can_publish_sources=[SOURCE_BY_NAME[s] for s in self.can_publish_sources],
            can_update_metadata=self.can_update_metadata,
            hidden=self.hidden,
        )


class _SnapshotReader:
    """The three read calls a snapshot makes, over the gateway's own Twirp pool (lib/livekit/
    twirp.py says why not aiohttp), with bearer tokens cached per room.

    The SDK signs a new JWT for every request; at hundreds of calls per snapshot that signing
    was over half of the client's CPU, so snapshot reads reuse a token for part of its life.
    """

    TOKEN_TTL = timedelta(minutes=10)
    REUSE_FOR = 300.0  # seconds; a cached token always has at least 5 minutes left
    MAX_TOKENS = 5000

    def __init__(self, config: ServerConfig, timeout: float) -> None:
        self._config = config
        self._pool = TwirpPool(config.http_url, timeout=timeout, connect_timeout=min(timeout, 3.0))
        self._tokens: dict[str, tuple[float, bytes]] = {}

    def _header(self, room: str | None) -> bytes:
        key = "\0list" if room is None else room
        now = time.monotonic()
        cached = self._tokens.get(key)
        if cached and cached[0] > now:
            return cached[1]
        if len(self._tokens) >= self.MAX_TOKENS:
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] > now}
        token = server_api_token(self._config.api_key, self._config.api_secret, room=room or "", ttl=self.TOKEN_TTL)
        header = f"Authorization: Bearer {token}\r\n".encode("ascii")
        self._tokens[key] = (now + self.REUSE_FOR, header)
        return header

    async def list_rooms(self) -> list[models_pb.Room]:
        body = await self._pool.call("livekit.RoomService/ListRooms", self._header(None), b"")
        return list(room_pb.ListRoomsResponse.FromString(body).rooms)

    async def list_participants(self, room: str) -> list[models_pb.ParticipantInfo]:
        request = room_pb.ListParticipantsRequest(room=room).SerializeToString()
        body = await self._pool.call("livekit.RoomService/ListParticipants", self._header(room), request)
        return list(room_pb.ListParticipantsResponse.FromString(body).participants)

    async def list_dispatch(self, room: str) -> list[dispatch_pb.AgentDispatch]:
        request = dispatch_pb.ListAgentDispatchRequest(room=room).SerializeToString()
        body = await self._pool.call("livekit.AgentDispatchService/ListDispatch", self._header(room), request)
        return list(dispatch_pb.ListAgentDispatchResponse.FromString(body).agent_dispatches)

    def take_fastest(self) -> float | None:
        return self._pool.take_fastest()

    def trim(self, keep: int) -> None:
        self._pool.trim(keep)

    async def close(self) -> None:
        await self._pool.close()


@dataclass
class _Server:
    config: ServerConfig
    session: aiohttp.ClientSession
    client: api.LiveKitAPI
    reader: _SnapshotReader
    health: ServerHealth
    sem: asyncio.Semaphore  # bounds calls in flight; resized between snapshots (_bound)
    latest: ServerSnapshot | None = None  # the newest attempt
    last_good: ServerSnapshot | None = None
    seen: Mapping[str, bool] = field(default_factory=dict)  # `last_good`'s rooms: had participants
    dirty: bool = False  # a control changed something since `latest`
    inflight: asyncio.Task[ServerSnapshot] | None = None
    latency: float | None = None  # the quickest call of the last snapshot, in seconds
    snapshots_running: int = 0

    def keep(self, snapshot: ServerSnapshot) -> None:
        self.latest, self.dirty = snapshot, False
        if snapshot.ok:
            self.last_good = snapshot
            self.seen = {r.room.name: bool(r.participants) for r in snapshot.rooms}

    def view(self, refreshing: bool) -> LiveView:
        return LiveView(self.config.name, self.latest, refreshing, self.health, self.last_good)


class LiveKitGateway:
    def __init__(
        self,
        servers: Iterable[ServerConfig] = (),
        *,
        request_timeout: float = 4.0,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        """`concurrency`: the most Server API calls a snapshot has in flight per server, which is
        also about how many connections the gateway keeps open to each server."""
        self._timeout = request_timeout
        self._concurrency = concurrency
        self._loop = LoopThread("livekit-gateway")
        self._servers: dict[str, _Server] = {}
        self._closed = False
        self.set_servers(list(servers))

    # ----- lifecycle -----------------------------------------------------------------------

    @property
    def loop(self) -> LoopThread:
        return self._loop

    @property
    def request_timeout(self) -> float:
        return self._timeout

    def _session(self) -> aiohttp.ClientSession:
        # Runs on the gateway loop: an aiohttp session binds to the loop it is created on.
        timeout = aiohttp.ClientTimeout(total=self._timeout, sock_connect=min(self._timeout, 3.0))
        connector = aiohttp.TCPConnector(limit=_CONTROL_CONNECTIONS)
        return aiohttp.ClientSession(timeout=timeout, connector=connector)

    @staticmethod
    def _client(config: ServerConfig, session: aiohttp.ClientSession) -> api.LiveKitAPI:
        return api.LiveKitAPI(config.http_url, config.api_key, config.api_secret, session=session, failover=False)

    def _reader(self, config: ServerConfig) -> _SnapshotReader:
        # Runs on the gateway loop, like _session (the benchmark swaps in the reads of before).
        return _SnapshotReader(config, self._timeout)

    def set_servers(self, configs: list[ServerConfig]) -> None:
        """Make the gateway watch exactly these servers, keeping clients whose config is unchanged."""
        # Room for every server's connections (and a test connection) beside what the rest of
        # the process has open.
        _allow_open_files(1024 + self._concurrency * (len(configs) + 1))
        self._loop.run(self._aset_servers(configs), timeout=30)

    async def _aset_servers(self, configs: list[ServerConfig]) -> None:
        wanted = {c.name: c for c in configs}
        for name in list(self._servers):
            current = self._servers[name]
            if name not in wanted or wanted[name] != current.config:
                del self._servers[name]
                if current.inflight and not current.inflight.done():
                    current.inflight.cancel()
                await current.reader.close()
                await current.session.close()
        for name, config in wanted.items():
            if name not in self._servers:
                session = self._session()
                self._servers[name] = _Server(
                    config=config,
                    session=session,
                    client=self._client(config, session),
                    reader=self._reader(config),
                    health=ServerHealth(name, config.url),
                    sem=asyncio.Semaphore(self._concurrency),
                )

    def server_names(self) -> list[str]:
        return list(self._servers)

    def server_config(self, name: str) -> ServerConfig:
        """How to reach a watched server, its key and secret included: for signing tokens for
        it (lib/livekit/tokens.py). GatewayError (not found) for a server not watched."""
        return self._server(name).config

    def close(self) -> None:
        """Close every client session, then stop the loop. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run(self._aset_servers([]), timeout=15)
        finally:
            self._loop.stop()

    # ----- health --------------------------------------------------------------------------

    def _server(self, name: str) -> _Server:
        try:
            return self._servers[name]
        except KeyError:
            raise GatewayError(Category.NOT_FOUND, f"no server named '{name}' is configured") from None

    @staticmethod
    def _record_ok(srv: _Server, snapshot: bool = False) -> None:
        now = _now()
        srv.health = replace(
            srv.health,
            last_ok_at=now,
            failing_since=None,
            last_error=None,
            last_snapshot_at=now if snapshot else srv.health.last_snapshot_at,
        )

    @staticmethod
    def _record_error(srv: _Server, error: GatewayError) -> None:
        if error.category not in _SERVER_DOWN:
            # The server answered; it just refused this one request.
            srv.health = replace(srv.health, last_ok_at=_now())
            return
        srv.health = replace(srv.health, last_error=error, failing_since=srv.health.failing_since or _now())

    def health(self) -> dict[str, ServerHealth]:
        return {name: srv.health for name, srv in self._servers.items()}

    # ----- snapshots -----------------------------------------------------------------------

    @staticmethod
    async def _bounded(srv: _Server, call: Callable[[str], Awaitable[T]], room: str) -> T:
        async with srv.sem:
            return await call(room)

    # A snapshot's calls form a chain: ListRooms, then each room's ListParticipants, then
    # ListDispatch for the rooms with participants, so done in order it is three round trips
    # deep. The last good snapshot predicts most of the chain: its rooms are read beside
    # ListRooms (`_read_ahead`), with their dispatches when they had participants
    # (`_speculate`), which makes a steady snapshot one round trip. A room new since then costs
    # two (it is read once ListRooms names it, dispatches at once); a room that gained its first
    # participant costs its dispatch read after that. A read of a room that turns out closed or
    # empty is dropped. In a steady state no call is made that the chain would not have made.
    # A server that answers within the time it takes to send 32 calls (a local one) gains nothing
    # from this and is read in order, 32 calls at a time, as before (measured: a little CPU).

    def _bound(self, srv: _Server) -> int:
        """How many calls the next snapshot of `srv` keeps in flight: enough to cover the round
        trip its quickest call took last time (round trip / client CPU per call, Little's law),
        between 32 and `concurrency`. More would not be faster: calls beyond what covers the
        round trip only queue, and on a server answering in a millisecond they cost client and
        server CPU (measured on loopback). Unknown yet: `concurrency`."""
        if srv.latency is None:
            return self._concurrency
        wanted = math.ceil(srv.latency / _CALL_CPU)
        return max(min(_MIN_IN_FLIGHT, self._concurrency), min(wanted, self._concurrency))

    @staticmethod
    def _local(srv: _Server) -> bool:
        """The server's round trip is shorter than sending the fewest calls kept in flight."""
        return srv.latency is not None and srv.latency < _MIN_IN_FLIGHT * _CALL_CPU

    def _read_ahead(self, srv: _Server) -> Mapping[str, bool]:
        """Rooms to read without waiting for ListRooms: name -> whether to read dispatches too."""
        return {} if self._local(srv) else srv.seen

    def _speculate(self, srv: _Server, room: str) -> bool:
        """Whether to read the dispatches of a room ListRooms named beside its participants:
        yes unless the last good snapshot saw it empty (a new room most likely has someone)."""
        return not self._local(srv) and srv.seen.get(room, True)

    async def _read_room(self, srv: _Server, room: str, with_dispatches: bool) -> _Reads:
        """A room's participants, and its dispatches when it has any: read beside the
        participants if `with_dispatches`, else after them."""
        reader = srv.reader
        early = asyncio.ensure_future(self._bounded(srv, reader.list_dispatch, room)) if with_dispatches else None
        try:
            found = await _attempt(self._bounded(srv, reader.list_participants, room))
            if early is not None:
                return found, await _attempt(early)
        except asyncio.CancelledError:
            if early is not None:
                early.cancel()
            raise
        if isinstance(found, list) and found:
            return found, await _attempt(self._bounded(srv, reader.list_dispatch, room))
        return found, None

    @staticmethod
    def _room_from(srv: _Server, room: Room, reads: _Reads) -> RoomSnapshot | None:
        name = srv.config.name
        found, dispatches = reads
        if isinstance(found, Exception):
            error = classify(found, name)
            if error.category is Category.NOT_FOUND:
                return None  # the room closed between ListRooms and this call
            raise error from None
        participants = tuple(participant_from_proto(name, room.name, p) for p in found)
        if not participants:
            # ListRooms' own participant count lags (livekit-server 1.13 reports 0 for busy
            # rooms), so "non-empty" is decided by the participants just listed. An early
            # dispatch read of an empty room is dropped: dispatches are shown for rooms with
            # participants only (every room carries LiveKit's automatic dispatch).
            return RoomSnapshot(room)
        if isinstance(dispatches, Exception):
            error = classify(dispatches, name)
            if error.category in _SERVER_DOWN:
                raise error from None
            return RoomSnapshot(room, participants, (), error)
        return RoomSnapshot(room, participants, tuple(dispatch_from_proto(name, d) for d in dispatches or ()))

    async def _take_snapshot(self, srv: _Server) -> ServerSnapshot:
        if srv.snapshots_running == 0:  # no call holds the old bound
            srv.sem = asyncio.Semaphore(self._bound(srv))
        srv.snapshots_running += 1
        try:
            snapshot = await self._snapshot_calls(srv)
        finally:
            srv.snapshots_running -= 1
        srv.latency = srv.reader.take_fastest() or srv.latency
        if srv.snapshots_running == 0:
            # A snapshot at a wider bound (the first one, or a slower spell) opened connections
            # the next one will not use; keep those it will.
            srv.reader.trim(self._bound(srv) + _MIN_IN_FLIGHT)
        return snapshot

    async def _snapshot_calls(self, srv: _Server) -> ServerSnapshot:
        name = srv.config.name
        taken_at, started = _now(), time.perf_counter()
        ahead = {room: asyncio.ensure_future(self._read_room(srv, room, busy)) for room, busy in self._read_ahead(srv).items()}
        reads: list[tuple[Room, asyncio.Future[_Reads], bool]] = []
        try:
            async with srv.sem:
                listed = await srv.reader.list_rooms()
            for proto in listed:
                room = room_from_proto(name, proto)
                task = ahead.pop(room.name, None)
                if task is None:
                    reads.append((room, asyncio.ensure_future(self._read_room(srv, room.name, self._speculate(srv, room.name))), False))
                else:
                    reads.append((room, task, True))
            pending = [t for _, t, _ in reads if not t.done()]
            if pending:
                await asyncio.wait(pending)  # one wake-up, not one per room
            per_room = []
            for room, task, read_ahead in reads:
                result = task.result()
                if read_ahead and isinstance(result[0], Exception) and classify(result[0]).category is Category.NOT_FOUND:
                    # Read just before ListRooms saw it (re)created: read it again.
                    result = await self._read_room(srv, room.name, self._speculate(srv, room.name))
                per_room.append(self._room_from(srv, room, result))
        except BaseException as exc:
            for task in (*ahead.values(), *(t for _, t, _ in reads)):
                task.cancel()
            if not isinstance(exc, Exception):
                raise  # cancelled
            error = classify(exc, name)
            self._record_error(srv, error)
            return ServerSnapshot(name, taken_at, time.perf_counter() - started, error=error)
        finally:
            # Reads of rooms that closed since the last snapshot (or cancelled above) end here,
            # so no call of this snapshot outlives it.
            leftover = [*ahead.values(), *(t for _, t, _ in reads if not t.done())]
            if leftover:
                await asyncio.gather(*leftover, return_exceptions=True)
        self._record_ok(srv, snapshot=True)
        found = tuple(sorted((r for r in per_room if r is not None), key=lambda r: r.room.name))
        return ServerSnapshot(name, taken_at, time.perf_counter() - started, rooms=found)

    async def asnapshot(self, server: str) -> ServerSnapshot:
        """A fresh snapshot of one server: ListRooms, then ListParticipants for every room and
        ListDispatch for every non-empty room, concurrently within the concurrency bound."""
        srv = self._server(server)
        snapshot = await self._take_snapshot(srv)
        srv.keep(snapshot)
        return snapshot

    def snapshot(self, server: str, timeout: float | None = None) -> ServerSnapshot:
        return self._loop.run(self.asnapshot(server), timeout or self._timeout * 4)

    async def _alive(self, max_age: float, wait: float) -> list[LiveView]:
        pending: list[asyncio.Task[ServerSnapshot]] = []
        now = _now()
        # Quickest servers first, each refresh given two loop turns to set up and send its
        # calls before the next one starts: a slower server's set-up then never delays the
        # calls of one that answers sooner; what it still costs them is the CPU of sending its
        # own calls (a stalled one, nothing).
        for srv in sorted(self._servers.values(), key=lambda s: math.inf if s.latency is None else s.latency):
            fresh = (
                srv.latest is not None
                and not srv.dirty
                and (now - srv.latest.taken_at).total_seconds() <= max_age
            )
            if fresh:
                continue
            if srv.inflight is None or srv.inflight.done():
                srv.inflight = asyncio.create_task(self._refresh(srv))
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            # A server already failing is refreshed without being waited for: a page would
            # otherwise spend `wait` on it at every run while it hangs. It is shown as it last
            # was (or as still answering) until the refresh in the background succeeds.
            if srv.health.failing_since is None:
                pending.append(srv.inflight)
        if pending:
            await asyncio.wait(pending, timeout=wait)
        return [srv.view(refreshing=srv.inflight is not None and not srv.inflight.done()) for srv in self._servers.values()]

    async def _refresh(self, srv: _Server) -> ServerSnapshot:
        snapshot = await self._take_snapshot(srv)
        srv.keep(snapshot)
        return snapshot

    def live(self, max_age: float = 1.0, wait: float = 3.0) -> list[LiveView]:
        """The newest view of every server, refreshing those older than `max_age` seconds and
        waiting at most `wait` seconds for them; a server still answering is shown `refreshing`."""
        try:
            return self._loop.run(self._alive(max_age, wait), wait + 5)
        except TimeoutError:
            # The loop itself is overloaded: show what is cached rather than fail the page.
            return [srv.view(refreshing=True) for srv in list(self._servers.values())]

    # ----- connection test -----------------------------------------------------------------

    async def _atest(self, config: ServerConfig) -> ConnectionResult:
        started = time.perf_counter()
        reader = _SnapshotReader(config, self._timeout)
        try:
            rooms = await reader.list_rooms()
            return ConnectionResult(True, time.perf_counter() - started, rooms=len(rooms))
        except Exception as exc:  # noqa: BLE001
            return ConnectionResult(False, time.perf_counter() - started, error=classify(exc, config.name))
        finally:
            await reader.close()

    def test_connection(self, config: ServerConfig) -> ConnectionResult:
        """Try a server (configured or not) with a throwaway client; never raises."""
        try:
            validate_url(config.url)
        except ConfigError as exc:
            # Nothing was sent: say what a LiveKit URL looks like rather than what failed.
            error = GatewayError(Category.INVALID, str(exc), config.name, hint="the URL was not tried; correct it and test again")
            return ConnectionResult(False, 0.0, error=error)
        try:
            return self._loop.run(self._atest(config), self._timeout + 2)
        except TimeoutError:
            return ConnectionResult(False, self._timeout + 2, error=GatewayError(Category.TIMEOUT, "no answer in time", config.name))

    # ----- controls ------------------------------------------------------------------------

    def _call(self, server: str, op: Callable[[api.LiveKitAPI], Awaitable[T]]) -> T:
        """Run one control on `server`, classify its failure, and mark the cached view out of date."""
        srv = self._server(server)

        async def run() -> T:
            try:
                # SDK calls send timeout=None to aiohttp (no timeout), so bound them here.
                result = await asyncio.wait_for(op(srv.client), self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                error = classify(exc, server)
                self._record_error(srv, error)
                raise error from None
            self._record_ok(srv)
            srv.dirty = True
            return result

        try:
            return self._loop.run(run(), self._timeout + 2)
        except TimeoutError:
            raise GatewayError(Category.TIMEOUT, "no answer in time", server) from None

    def create_room(
        self,
        server: str,
        name: str,
        *,
        empty_timeout: int = 0,
        departure_timeout: int = 0,
        max_participants: int = 0,
        metadata: str = "",
    ) -> Room:
        """Create a room; zero for a timeout or limit means the server's default."""
        if not name.strip():
            raise GatewayError(Category.INVALID, "a room needs a name", server)
        request = api.CreateRoomRequest(
            name=name,
            empty_timeout=empty_timeout,
            departure_timeout=departure_timeout,
            max_participants=max_participants,
            metadata=metadata,
        )
        created = self._call(server, lambda c: c.room.create_room(request))
        return room_from_proto(server, created)

    def find_room(self, server: str, name: str) -> Room | None:
        """The room of that name on the server, or None."""
        listed = self._call(server, lambda c: c.room.list_rooms(api.ListRoomsRequest(names=[name])))
        return next((room_from_proto(server, r) for r in listed.rooms if r.name == name), None)

    def list_rooms(self, server: str, names: Iterable[str] = ()) -> list[Room]:
        """The server's rooms, or only those of `names` that exist: one ListRooms call, without
        the per-room reads of a snapshot."""
        request = api.ListRoomsRequest(names=list(names))
        listed = self._call(server, lambda c: c.room.list_rooms(request))
        return [room_from_proto(server, r) for r in listed.rooms]

    def delete_room(self, server: str, room: str) -> None:
        self._call(server, lambda c: c.room.delete_room(api.DeleteRoomRequest(room=room)))

    def update_room_metadata(self, server: str, room: str, metadata: str) -> Room:
        request = api.UpdateRoomMetadataRequest(room=room, metadata=metadata)
        return room_from_proto(server, self._call(server, lambda c: c.room.update_room_metadata(request)))

    def mute_track(self, server: str, room: str, identity: str, track_sid: str, muted: bool) -> Track:
        # livekit-server answers a mute in a missing room or of a missing participant with
        # "unavailable: no response from servers" after 3 s, and one of a missing track with an
        # empty track: ask for the participant first (a track just published may not be listed
        # yet, so the track is judged by the answer), so each is a quick NOT_FOUND.
        who = api.RoomParticipantIdentity(room=room, identity=identity)
        self._call(server, lambda c: c.room.get_participant(who))
        request = api.MuteRoomTrackRequest(room=room, identity=identity, track_sid=track_sid, muted=muted)
        response = self._call(server, lambda c: c.room.mute_published_track(request))
        if not response.track.sid:
            raise GatewayError(Category.NOT_FOUND, f"{identity} in {room} has no track {track_sid}", server)
        return track_from_proto(response.track)

    def remove_participant(self, server: str, room: str, identity: str) -> None:
        request = api.RoomParticipantIdentity(room=room, identity=identity)
        self._call(server, lambda c: c.room.remove_participant(request))

    def update_participant(
        self,
        server: str,
        room: str,
        identity: str,
        *,
        name: str | None = None,
        metadata: str | None = None,
        attributes: Mapping[str, str] | None = None,
        permission: PermissionUpdate | None = None,
    ) -> Participant:
        """Change what is given and leave the rest. An attribute set to "" is deleted."""
        request = api.UpdateParticipantRequest(room=room, identity=identity)
        if name is not None:
            request.name = name
        if metadata is not None:
            request.metadata = metadata
        if attributes:
            request.attributes.update(dict(attributes))
        if permission is not None:
            request.permission.CopyFrom(permission.to_proto())
        info = self._call(server, lambda c: c.room.update_participant(request))
        return participant_from_proto(server, room, info)

    def send_data(
        self,
        server: str,
        room: str,
        payload: bytes,
        *,
        topic: str = "",
        destination_identities: Iterable[str] = (),
        reliable: bool = True,
    ) -> None:
        kind = models_pb.DataPacket.RELIABLE if reliable else models_pb.DataPacket.LOSSY
        request = api.SendDataRequest(
            room=room,
            data=payload,
            kind=kind,
            topic=topic or None,
            destination_identities=list(destination_identities),
        )
        self._call(server, lambda c: c.room.send_data(request))

    def create_dispatch(self, server: str, room: str, agent_name: str, metadata: str = "") -> AgentDispatch:
        request = api.CreateAgentDispatchRequest(agent_name=agent_name, room=room, metadata=metadata)
        return dispatch_from_proto(server, self._call(server, lambda c: c.agent_dispatch.create_dispatch(request)))

    def delete_dispatch(self, server: str, room: str, dispatch_id: str) -> AgentDispatch:
        deleted = self._call(server, lambda c: c.agent_dispatch.delete_dispatch(dispatch_id, room))
        return dispatch_from_proto(server, deleted)

    # ----- readiness -----------------------------------------------------------------------

    async def _aprobe(self, timeout: float) -> dict[str, ServerHealth]:
        async def probe(srv: _Server) -> None:
            try:
                # Asking for one unlikely name keeps the probe cheap on a busy server.
                await asyncio.wait_for(
                    srv.client.room.list_rooms(api.ListRoomsRequest(names=["--dashboard-probe--"])), timeout
                )
            except Exception as exc:  # noqa: BLE001
                self._record_error(srv, classify(exc, srv.config.name))
            else:
                self._record_ok(srv)

        await asyncio.gather(*(probe(s) for s in self._servers.values()))
        return self.health()

    async def probe(self, timeout: float = 2.0) -> dict[str, ServerHealth]:
        """Check every server with one cheap call; awaitable from any event loop."""
        return await asyncio.wrap_future(self._loop.submit(self._aprobe(timeout)))
