"""REST API throughput: requests a second of GET /api/v1/rooms (the live view, max_age default)
and GET /api/v1/meetings?limit=50 (first page, and a deep page through a cursor) over a database
of 10,000 meetings, against a plain in-process call of the same service method measured in the
same run with the same number of concurrent callers.

    python -m bench.api_throughput [--meetings 10000] [--rooms 20] [--participants 10] [--seconds 3] [--rounds 3] [--clients 1,8]

The API is served by the real dashboard process, `streamlit run app.py` on 127.0.0.1 (what users
and scripts reach: Streamlit's Tornado-backed server, the st.App routes, every middleware), with
the rate limit off (DASHBOARD_API_RATE=0). Its clients are httpx clients with keep-alive, one
thread each, authenticated with an admin API key. The baseline is the same service call
(`control.snapshot`, `meetings.list` with limit 51 as the route asks) on services built in this
process over the same database and livekit-server, called by as many threads. Each round
measures every case in a new order, for `--seconds` each; the table shows medians.

livekit-server runs here with its rooms; the participants (publishing audio) live in a child
process at nice 19, as in bench/snapshot.py.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from lib import services
from lib.api.v1.cursors import decode as cursor_position
from lib.auth.policy import Actor
from lib.config import load_settings
from lib.models import Meeting, Occurrence, utcnow
from tests.app_process import AppProcess

from .snapshot import Setup

SYSTEM = Actor.system("bench")
PAGE = 50
KINDS = ("api", "new conn", "plain")


def add_meetings(svc: services.Services, host_id: int, total: int) -> None:
    """`total` single meetings over the coming year, one occurrence each, in one transaction."""
    now = utcnow()
    with svc.sessions.begin() as s:
        first = s.execute(insert(Meeting).returning(Meeting.id), [
            {"title": f"Meeting {i}", "description": "", "host_id": host_id, "server": "default", "time_zone": "UTC",
             "link_slug": f"bench-slug-{i}", "uid": f"bench-{i}@bench", "max_participants": 0, "early_join_minutes": 5,
             "first_start": now, "created_at": now, "updated_at": now}
            for i in range(total)
        ]).scalars().all()  # fmt: skip
        s.execute(insert(Occurrence), [
            {"meeting_id": mid, "starts_at": now + timedelta(days=365) * (i + 1) / (total + 1),
             "ends_at": now + timedelta(days=365) * (i + 1) / (total + 1) + timedelta(hours=1),
             "original_start": now + timedelta(days=365) * (i + 1) / (total + 1), "status": "scheduled", "room_name": f"bench-meet-{i}"}
            for i, mid in enumerate(first)
        ])  # fmt: skip


def rate(call: Callable[[], object], clients: int, seconds: float) -> tuple[float, float]:
    """(calls a second, median ms per call) of `clients` threads calling `call` for `seconds`."""
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def worker(mine: list[float]) -> None:
        try:
            while (began := time.perf_counter()) < stop:
                call()
                mine.append(time.perf_counter() - began)
        except BaseException as exc:  # noqa: BLE001 - reported after the threads end
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(latencies[i],)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    every = [v for mine in latencies for v in mine]
    return len(every) / elapsed, statistics.median(every) * 1000


class Clients:
    """One keep-alive httpx client per calling thread, all with the API key."""

    def __init__(self, base_url: str, secret: str, *, keep_alive: bool = True) -> None:
        self.base_url, self.headers = base_url, {"Authorization": f"Bearer {secret}"}
        self.limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
        self._mine = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client = getattr(self._mine, "client", None)
        if client is None:
            client = self._mine.client = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30, limits=self.limits)
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        for client in self._all:
            client.close()


def http_call(clients: Clients, path: str, params: dict[str, object]) -> Callable[[], object]:
    """A GET of `path` on the calling thread's own client; any status but 200 stops the bench."""

    def call() -> object:
        answer = clients.get().get(path, params=params)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")
        return answer.content

    return call


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_throughput")
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,8")
    args = parser.parse_args(argv)
    concurrency = [int(c) for c in args.clients.split(",")]

    with Setup(args.rooms, args.participants) as setup, tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        server = setup.server
        env = {
            "LIVEKIT_URL": server.ws_url, "LIVEKIT_API_KEY": server.api_key, "LIVEKIT_API_SECRET": server.api_secret,
            "DASHBOARD_DATA_DIR": str(Path(tmp) / "data"), "DASHBOARD_SECRET_KEY": "bench-api-throughput-secret-key-0123456789",
            "DASHBOARD_HISTORY_PATH": str(Path(tmp) / "history.duckdb"), "DASHBOARD_API_RATE": "0",
        }  # fmt: skip
        svc = services.build(load_settings(env, Path(tmp) / "none.toml"))
        app: AppProcess | None = None
        try:
            svc.users.create(SYSTEM, "bench-admin", "bench-password-123", "admin")
            user = svc.users.get("bench-admin")
            assert user is not None
            started = time.perf_counter()
            add_meetings(svc, user.id, args.meetings)
            print(f"inserted {args.meetings} meetings in {time.perf_counter() - started:.1f} s")
            secret = svc.api_keys.create(SYSTEM, "bench", "admin", owner="bench-admin").secret
            found = svc.api_keys.authenticate(secret, "127.0.0.1")
            assert found is not None
            actor = found.actor

            started = time.perf_counter()
            app = AppProcess(env, Path(tmp) / "app.log").start(timeout=120)
            print(f"dashboard (streamlit run app.py) ready at {app.url} in {time.perf_counter() - started:.1f} s")
            clients, fresh = Clients(app.url, secret), Clients(app.url, secret, keep_alive=False)

            # The deep page: the cursor the API gives half-way through the list.
            deep = max(1, args.meetings // PAGE // 2)
            with httpx.Client(base_url=app.url, headers=clients.headers, timeout=30) as client:
                cursor = None
                for _ in range(deep):
                    page = client.get("/api/v1/meetings", params={"limit": PAGE, **({"cursor": cursor} if cursor else {})}).json()
                    cursor = page["next_cursor"]
                rooms = client.get("/api/v1/rooms").json()
            seen = sum(len(s["rooms"]) for s in rooms)
            people = sum(len(r["participants"]) for s in rooms for r in s["rooms"])
            print(f"GET /api/v1/rooms lists {seen} rooms with {people} participants; deep cursor after {deep} pages")
            after = cursor_position(cursor)

            reads = {
                "GET /api/v1/rooms": ("/api/v1/rooms", {}, lambda: svc.control.snapshot(actor, max_age=1.0)),
                f"GET /api/v1/meetings?limit={PAGE}": ("/api/v1/meetings", {"limit": PAGE}, lambda: svc.meetings.list(actor, limit=PAGE + 1)),
                f"GET /api/v1/meetings?limit={PAGE}&cursor (page {deep + 1})": (
                    "/api/v1/meetings", {"limit": PAGE, "cursor": cursor}, lambda: svc.meetings.list(actor, limit=PAGE + 1, after=after),
                ),
            }
            cases: dict[str, dict[str, Callable[[], object]]] = {
                name: {"api": http_call(clients, path, params), "new conn": http_call(fresh, path, params), "plain": plain}
                for name, (path, params, plain) in reads.items()
            }
            for calls in cases.values():  # warm each: connections, caches, first compiles
                for call in calls.values():
                    call()
            results: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
            order = [(name, n, kind) for name in cases for n in concurrency for kind in KINDS]
            shuffle = random.Random(7)
            for round_no in range(args.rounds):
                shuffle.shuffle(order)
                for name, n, kind in order:
                    results.setdefault((name, n, kind), []).append(rate(cases[name][kind], n, args.seconds))
                print(f"round {round_no + 1}/{args.rounds} done")
            clients.close()
            fresh.close()

            print()
            print(f"requests/s (median of {args.rounds} rounds of {args.seconds:g} s; {args.meetings} meetings, {seen} rooms, {people} participants)")
            print("API: keep-alive client; new conn: a new connection per request; plain: the service call in this process")
            print(f"{'endpoint':<50} {'clients':>7} {'API req/s':>10} {'ms':>7} {'new conn/s':>11} {'ms':>7} {'plain/s':>9} {'ms':>7} {'API/plain':>10} {'new/plain':>10}")
            for name in cases:
                for n in concurrency:
                    rps = {k: statistics.median(r for r, _ in results[(name, n, k)]) for k in KINDS}
                    ms = {k: statistics.median(m for _, m in results[(name, n, k)]) for k in KINDS}
                    print(
                        f"{name:<50} {n:>7} {rps['api']:>10.0f} {ms['api']:>7.2f} {rps['new conn']:>11.0f} {ms['new conn']:>7.2f} "
                        f"{rps['plain']:>9.0f} {ms['plain']:>7.3f} {rps['api'] / rps['plain']:>9.3f}x {rps['new conn'] / rps['plain']:>9.3f}x"
                    )
        finally:
            if app is not None:
                app.stop()
            svc.close()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
