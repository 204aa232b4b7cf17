"""Snapshot benchmark: 300 rooms created through the API, 20 real participants spread among
them; wall time of one full gateway snapshot against a plain sequential loop of the same Server
API calls (same SDK client, same event loop), measured alternately in one run.

    python -m bench.snapshot [--rooms 300] [--participants 20] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

from livekit import api

from lib.config import ServerConfig
from lib.livekit.devserver import DevServer
from lib.livekit.gateway import LiveKitGateway


async def sequential_snapshot(client: api.LiveKitAPI) -> int:
    """The baseline: the same calls a snapshot makes, one after another, with the plain SDK."""
    calls = 1
    rooms = (await client.room.list_rooms(api.ListRoomsRequest())).rooms
    for room in rooms:
        found = await client.room.list_participants(api.ListParticipantsRequest(room=room.name))
        calls += 1
        if found.participants:
            await client.agent_dispatch.list_dispatch(room.name)
            calls += 1
    return calls


async def _plain_client(server: DevServer) -> api.LiveKitAPI:
    return api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{name:<22} median {statistics.median(ms):7.1f} ms   p90 {percentile(ms, 0.9):7.1f} ms   min {min(ms):7.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=300)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    with DevServer() as server:
        config = ServerConfig("bench", server.ws_url, server.api_key, server.api_secret)
        gateway = LiveKitGateway([config], request_timeout=10.0)
        members: subprocess.Popen[str] | None = None
        client = None
        try:
            started = time.perf_counter()
            for i in range(args.rooms):
                gateway.create_room("bench", f"bench-room-{i:03d}", empty_timeout=3600, metadata=f"room {i}")
            print(f"created {args.rooms} rooms in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            rooms = [f"bench-room-{(i * args.rooms) // args.participants:03d}" for i in range(args.participants)]
            members = subprocess.Popen(
                [sys.executable, "-m", "bench._participants", server.ws_url, server.api_key, server.api_secret, str(args.participants), *rooms],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            if members.stdout.readline().strip() != "ready":
                raise SystemExit("the participants process did not start")
            print(f"joined {args.participants} real participants (in a child process) in {time.perf_counter() - started:.1f} s")

            first = gateway.snapshot("bench", timeout=60)
            people = sum(len(r.participants) for r in first.rooms)
            print(f"snapshot sees {len(first.rooms)} rooms and {people} participants")
            # The baseline: a plain SDK client on the gateway's own loop, as a script would do it.
            client = gateway.loop.run(_plain_client(server), 10)
            calls = gateway.loop.run(sequential_snapshot(client), 120)
            print(f"one snapshot = {calls} Server API calls")

            gathered, sequential = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                snap = gateway.snapshot("bench", timeout=60)
                gathered.append(time.perf_counter() - t0)
                assert snap.ok, snap.error
                t0 = time.perf_counter()
                gateway.loop.run(sequential_snapshot(client), 120)
                sequential.append(time.perf_counter() - t0)

            print()
            print(describe("gateway snapshot", gathered))
            print(describe("sequential loop", sequential))
            ratio = statistics.median(sequential) / statistics.median(gathered)
            print(f"speed-up (median sequential / median snapshot): {ratio:.1f}x")
            print(f"target: snapshot <= 500 ms and >= 5x faster; "
                  f"{'met' if statistics.median(gathered) <= 0.5 and ratio >= 5 else 'NOT met'} in this run")
        finally:
            if members is not None:
                members.stdin.close()
                members.wait(30)
            if client is not None:
                gateway.loop.run(client.aclose(), 10)
            gateway.close()


if __name__ == "__main__":
    main()
