"""Snapshot benchmark: 300 rooms created through the API, 20 real participants spread among
them; wall time of one full gateway snapshot against baselines measured alternately in the same
run, on loopback (the default) or through a proxy that adds a network's round-trip time.

    python -m bench.snapshot [--rooms 300] [--participants 20] [--rounds 15] [--rtt-ms 20]

Loopback (no --rtt-ms): the gateway as configured by default, the gateway as it was before
(32 calls in flight, every call after the one it depends on), and a plain sequential loop of
the same Server API calls (same SDK, same event loop).

--rtt-ms N: the same livekit-server behind bench/latency_proxy.py (a child process) that delays
each direction by N/2 ms. Measured alternately, round after round: the gateway by default; the
same bound without its read-ahead, and without any early read (what each step gives); the
gateway as it was before; the baseline "fire every call at once with a fresh client per
snapshot"; and in the same rounds the default and the before configuration on loopback. Then
rounds with two more servers in one gateway beside the fast one: a slow one (a second
livekit-server with as many rooms behind a 200 ms RTT proxy, both at the lowest CPU priority
so that they stand for a machine elsewhere) and a stalled one (a proxy that accepts and never
answers): the fast server's snapshot alone, and started together with each of them.

Besides wall time, the client CPU of each snapshot (the thread of the event loop it ran on) is
measured, and with --rtt-ms the CPU livekit-server and the proxy spent per round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from livekit import api

from lib.aio import LoopThread
from lib.config import ServerConfig
from lib.livekit.devserver import DevServer
from lib.livekit.gateway import LiveKitGateway

from .latency_proxy import ProxyProcess

SLOW_RTT_MS = 200.0
NOT_WORSE = 1.05  # a median this much above the one it is compared with still counts as equal (noise)


class InOrderGateway(LiveKitGateway):
    """The default bound, but every call waits for the one it depends on: ListRooms, then a
    room's participants, then its dispatches (three round trips)."""

    def _read_ahead(self, srv: Any) -> Mapping[str, bool]:
        return {}

    def _speculate(self, srv: Any, room: str) -> bool:
        return False


class BeforeGateway(InOrderGateway):
    """The gateway as configured before the latency work: in order, 32 calls in flight."""

    def __init__(self, servers: list[ServerConfig], request_timeout: float) -> None:
        super().__init__(servers, request_timeout=request_timeout, concurrency=32)


class AfterListRoomsGateway(LiveKitGateway):
    """The default without reading rooms ahead of ListRooms: two round trips."""

    def _read_ahead(self, srv: Any) -> Mapping[str, bool]:
        return {}


async def sequential_snapshot(client: api.LiveKitAPI) -> int:
    """The loopback baseline: the calls a snapshot makes, one after another, with the plain SDK."""
    calls = 1
    rooms = (await client.room.list_rooms(api.ListRoomsRequest())).rooms
    for room in rooms:
        found = await client.room.list_participants(api.ListParticipantsRequest(room=room.name))
        calls += 1
        if found.participants:
            await client.agent_dispatch.list_dispatch(room.name)
            calls += 1
    return calls


async def fire_all_snapshot(url: str, key: str, secret: str) -> int:
    """The latency baseline, as a simple dashboard does it: a fresh client (its own aiohttp
    session and connection pool) per snapshot, ListRooms, then every room's ListParticipants at
    once, each followed by ListDispatch when the room has participants; closed after."""
    client = api.LiveKitAPI(url, key, secret)
    try:
        rooms = (await client.room.list_rooms(api.ListRoomsRequest())).rooms

        async def room_calls(name: str) -> int:
            found = await client.room.list_participants(api.ListParticipantsRequest(room=name))
            if found.participants:
                await client.agent_dispatch.list_dispatch(name)
                return 2
            return 1

        return 1 + sum(await asyncio.gather(*(room_calls(r.name) for r in rooms)))
    finally:
        await client.aclose()


async def _plain_client(server: DevServer) -> api.LiveKitAPI:
    return api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Series:
    """Wall times and client CPU times of one measured thing, in seconds."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def line(self) -> str:
        ms = [v * 1000 for v in self.wall]
        cpu = f"   client CPU {statistics.median(self.cpu) * 1000:5.1f} ms" if self.cpu else ""
        return f"{self.label:<46} median {statistics.median(ms):6.1f} ms   p90 {percentile(ms, 0.9):6.1f} ms   min {min(ms):6.1f} ms{cpu}"


async def _measured(work: Awaitable[object]) -> tuple[float, float]:
    """Wall and this thread's CPU time of `work`, on the loop that runs it."""
    wall, cpu = time.perf_counter(), time.thread_time()
    await work
    return time.perf_counter() - wall, time.thread_time() - cpu


def measure(series: Series, loop: LoopThread, make: Callable[[], Awaitable[object]]) -> None:
    wall, cpu = loop.run(_measured(make()), 120)
    series.wall.append(wall)
    series.cpu.append(cpu)


async def _snapshot_ok(gateway: LiveKitGateway, name: str) -> None:
    snap = await gateway.asnapshot(name)
    assert snap.ok, snap.error


def measure_gateway(series: Series, gateway: LiveKitGateway, name: str = "bench") -> None:
    measure(series, gateway.loop, lambda: _snapshot_ok(gateway, name))


def process_cpu(pid: int) -> float:
    """Seconds of CPU a process has used (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


class Setup:
    """One livekit-server with the rooms and the participants (in a child process)."""

    def __init__(self, rooms: int, participants: int) -> None:
        self.rooms, self.participants = rooms, participants
        self.server = DevServer()
        self.members: subprocess.Popen[str] | None = None

    def config(self, name: str, port: int | None = None) -> ServerConfig:
        s = self.server
        return ServerConfig(name, f"ws://127.0.0.1:{port or s.http_port}", s.api_key, s.api_secret)

    def __enter__(self) -> "Setup":
        server = self.server.start()
        gateway = LiveKitGateway([self.config("setup")], request_timeout=10.0)
        try:
            started = time.perf_counter()
            for i in range(self.rooms):
                gateway.create_room("setup", f"bench-room-{i:03d}", empty_timeout=3600, metadata=f"room {i}")
            print(f"created {self.rooms} rooms in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            rooms = [f"bench-room-{(i * self.rooms) // self.participants:03d}" for i in range(self.participants)]
            self.members = subprocess.Popen(
                [sys.executable, "-m", "bench._participants", server.ws_url, server.api_key, server.api_secret, str(self.participants), *rooms],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            if self.members.stdout.readline().strip() != "ready":
                raise SystemExit("the participants process did not start")
            print(f"joined {self.participants} real participants (in a child process) in {time.perf_counter() - started:.1f} s")
            first = gateway.snapshot("setup", timeout=60)
            people = sum(len(r.participants) for r in first.rooms)
            busy = sum(1 for r in first.rooms if r.participants)
            print(f"snapshot sees {len(first.rooms)} rooms ({busy} with participants) and {people} participants")
            print(f"one snapshot = {1 + len(first.rooms) + busy} Server API calls")
        finally:
            gateway.close()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.members is not None:
            self.members.stdin.close()
            self.members.wait(30)
        self.server.stop()


def warm(gateway: LiveKitGateway, name: str = "bench") -> None:
    for _ in range(2):  # open the connections and learn the rooms
        assert gateway.snapshot(name, timeout=60).ok


def loopback(setup: Setup, rounds: int) -> None:
    config = setup.config("bench")
    gateway = LiveKitGateway([config], request_timeout=10.0)
    before = BeforeGateway([config], request_timeout=10.0)
    client = None
    try:
        client = gateway.loop.run(_plain_client(setup.server), 10)
        warm(gateway)
        warm(before)
        now, then = Series("gateway snapshot (default)"), Series("gateway before (32 in flight, in order)")
        sequential = Series("sequential loop")
        for _ in range(rounds):
            measure_gateway(now, gateway)
            measure_gateway(then, before)
            measure(sequential, gateway.loop, lambda: sequential_snapshot(client))

        print()
        for series in (now, then, sequential):
            print(series.line())
        ratio = sequential.median / now.median
        change = now.median / then.median
        print(f"speed-up (median sequential / median snapshot): {ratio:.1f}x;  default / before: {change:.2f}")
        print(f"target: snapshot <= 500 ms and >= 5x faster than sequential; {verdict(now.median <= 0.5 and ratio >= 5)} in this run")
        print(f"target: no slower than before (within {NOT_WORSE - 1:.0%}); {verdict(change <= NOT_WORSE)} in this run")
    finally:
        if client is not None:
            gateway.loop.run(client.aclose(), 10)
        gateway.close()
        before.close()


def with_latency(setup: Setup, rounds: int, rtt_ms: float) -> None:
    server = setup.server
    fast = ProxyProcess(("127.0.0.1", server.http_port), rtt_ms / 2).start()
    remote, local = setup.config("bench", fast.port), setup.config("bench")
    gateways = {
        f"gateway (default), {rtt_ms:g} ms RTT": LiveKitGateway([remote], request_timeout=10.0),
        "  same bound, no read-ahead of ListRooms": AfterListRoomsGateway([remote], request_timeout=10.0),
        "  same bound, every call after the one before": InOrderGateway([remote], request_timeout=10.0),
        f"gateway before (32 in flight), {rtt_ms:g} ms RTT": BeforeGateway([remote], request_timeout=10.0),
    }
    on_loopback = {
        "gateway (default), loopback": LiveKitGateway([local], request_timeout=10.0),
        "gateway before (32 in flight), loopback": BeforeGateway([local], request_timeout=10.0),
    }
    fire_loop = LoopThread("bench-fire-all")
    url = f"http://127.0.0.1:{fast.port}"
    try:
        print(f"\nround trip through the proxy: {rtt_ms:g} ms (each direction {rtt_ms / 2:g} ms; a new connection costs one more)")
        default = next(iter(gateways.values()))
        cold = Series("")
        measure_gateway(cold, default)
        print(f"the default gateway's first snapshot (no connection open, no earlier snapshot): {cold.wall[0] * 1000:.0f} ms")
        for gw in (*gateways.values(), *on_loopback.values()):
            warm(gw)
        series = {label: Series(label) for label in (*gateways, "fire every call, fresh client per snapshot", *on_loopback)}
        fire = series["fire every call, fresh client per snapshot"]
        spent = {"livekit-server": 0.0, "proxy": 0.0}
        for _ in range(rounds):
            cpu_before = (process_cpu(server.pid), process_cpu(fast.process.pid))
            for label, gw in gateways.items():
                measure_gateway(series[label], gw)
            measure(fire, fire_loop, lambda: fire_all_snapshot(url, server.api_key, server.api_secret))
            spent["livekit-server"] += process_cpu(server.pid) - cpu_before[0]
            spent["proxy"] += process_cpu(fast.process.pid) - cpu_before[1]
            for label, gw in on_loopback.items():
                measure_gateway(series[label], gw)

        print()
        for s in series.values():
            print(s.line())
        per = 1000 / (rounds * (len(gateways) + 1))
        print(f"CPU per snapshot through the proxy, averaged over its {len(gateways) + 1} kinds: "
              f"livekit-server {spent['livekit-server'] * per:.0f} ms, the proxy process {spent['proxy'] * per:.0f} ms")
        now = series[f"gateway (default), {rtt_ms:g} ms RTT"]
        before = series[f"gateway before (32 in flight), {rtt_ms:g} ms RTT"]
        versus_fire, versus_before = fire.median / now.median, before.median / now.median
        loop_change = series["gateway (default), loopback"].median / series["gateway before (32 in flight), loopback"].median
        print(f"fire-all / default: {versus_fire:.2f}x;  before / default: {versus_before:.2f}x;  "
              f"loopback default / before: {loop_change:.2f}")
        print(f"target: <= 100 ms at {rtt_ms:g} ms RTT; {verdict(now.median <= 0.100)} ({now.median * 1000:.0f} ms)")
        print(f"target: >= 2.5x faster than firing every call with a fresh client; {verdict(versus_fire >= 2.5)} ({versus_fire:.2f}x)")
        print(f"target: loopback no slower than before (within {NOT_WORSE - 1:.0%}); {verdict(loop_change <= NOT_WORSE)} ({loop_change:.2f})")

        for gw in (*gateways.values(), *on_loopback.values()):
            gw.close()
        two_servers(setup, rounds, remote)
    finally:
        for gw in (*gateways.values(), *on_loopback.values()):
            gw.close()
        fire_loop.stop()
        fast.stop()


def lower_priority(pid: int) -> None:
    """Give every thread of a process we started the lowest CPU priority (nice 19), so its work
    stands for a machine elsewhere rather than competing with the measured one."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.setpriority(os.PRIO_PROCESS, int(tid), 19)


def two_servers(setup: Setup, rounds: int, fast: ServerConfig) -> None:
    """The fast server beside a slow one (its own livekit-server with as many rooms, behind a
    200 ms RTT proxy, both at nice 19: on a real network its CPU is not this machine's) and
    beside a stalled one (a proxy that accepts and never answers)."""
    other = DevServer().start()
    lower_priority(other.pid)
    slow = ProxyProcess(("127.0.0.1", other.http_port), SLOW_RTT_MS / 2).start()
    lower_priority(slow.process.pid)
    stalled = ProxyProcess(("127.0.0.1", other.http_port), 0, stall=True).start()
    slow_config = ServerConfig("slow", f"ws://127.0.0.1:{slow.port}", other.api_key, other.api_secret)
    stalled_config = ServerConfig("stalled", f"ws://127.0.0.1:{stalled.port}", other.api_key, other.api_secret)
    gateway = LiveKitGateway([fast, slow_config, stalled_config], request_timeout=4.0)

    async def fast_alone_or_beside(beside: str | None) -> tuple[float, float]:
        """The fast server's snapshot, timed to its own end; the other one (if any) was started
        just before it and is awaited (or, stalled, cancelled) afterwards."""
        other = asyncio.ensure_future(gateway.asnapshot(beside)) if beside else None
        await asyncio.sleep(0)  # let the other server's calls go out first
        started, cpu = time.perf_counter(), time.thread_time()
        snap = await gateway.asnapshot(fast.name)
        wall, used = time.perf_counter() - started, time.thread_time() - cpu
        assert snap.ok, snap.error
        if other is not None:
            if beside == "stalled":
                other.cancel()  # it would end in a timeout after the request timeout
            await asyncio.gather(other, return_exceptions=True)
        return wall, used

    try:
        for i in range(setup.rooms):
            gateway.create_room("slow", f"slow-room-{i:03d}", empty_timeout=3600)
        warm(gateway, fast.name)
        warm(gateway, "slow")
        alone = Series("fast server alone")
        with_slow = Series(f"fast server, started with the {SLOW_RTT_MS:g} ms RTT one")
        with_stalled = Series("fast server, started with the stalled one")
        for _ in range(rounds):
            for series, beside in ((alone, None), (with_slow, "slow"), (with_stalled, "stalled")):
                wall, cpu = gateway.loop.run(fast_alone_or_beside(beside), 60)
                series.wall.append(wall)
                series.cpu.append(cpu)
        print()
        print(f"two servers in one gateway: the fast one above, beside a second livekit-server with {setup.rooms} rooms "
              f"behind a {SLOW_RTT_MS:g} ms RTT proxy (both at nice 19), or a proxy that never answers")
        for series in (alone, with_slow, with_stalled):
            print(series.line())
        slow_ratio, stall_ratio = with_slow.median / alone.median, with_stalled.median / alone.median
        print(f"beside slow / alone: {slow_ratio:.2f};  beside stalled / alone: {stall_ratio:.2f}")
        print(f"target: the fast server is not held back (within 10%); "
              f"{verdict(slow_ratio <= 1.10 and stall_ratio <= 1.10)} in this run")
    finally:
        gateway.close()
        slow.stop()
        stalled.stop()
        other.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=300)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="measure through a proxy adding this round-trip time")
    args = parser.parse_args(argv)

    with Setup(args.rooms, args.participants) as setup:
        if args.rtt_ms > 0:
            with_latency(setup, args.rounds, args.rtt_ms)
        else:
            loopback(setup, args.rounds)


if __name__ == "__main__":
    main()
