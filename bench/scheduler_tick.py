"""Scheduler tick benchmark: one `Lifecycle.tick()` over 10,000 meetings on SQLite (most far in
the future, a year of ended ones behind, a few due), against the same tick over 100 meetings
with the same due ones, measured alternately in one run; then the tick's three index scans
against the naive way (read every occurrence with its meeting, filter in Python).

    python -m bench.scheduler_tick [--meetings 10000] [--small 100] [--due 5] [--rounds 15]

Rounds alternate which database goes first. Each tick first puts the due occurrences back to
scheduled, so every such tick does the same
work: the scans, `--due` activations (a CreateRoom each, answered with the existing room, a
transition and an audit row each) and the reconciliation's one ListRooms for the occurrences
that ended in the last hour, against a real livekit-server on loopback. The tick after it has
nothing to start or end (the steady state: most ticks), and is measured too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, update
from sqlalchemy.orm import Session, sessionmaker

from lib.auth.audit import AuditLog
from lib.config import ServerConfig
from lib.db import make_engine, migrate, session_factory
from lib.livekit.devserver import DevServer
from lib.livekit.gateway import LiveKitGateway
from lib.meetings import lifecycle as lc
from lib.models import Meeting, Occurrence, User, utcnow

RECENT = 5  # occurrences that ended in the last hour: the reconciliation's ListRooms


def populate(engine: Engine, total: int, due: int) -> list[int]:
    """`total` single meetings: `due` starting now, RECENT ended within the hour, a fifth of the
    rest ended over the past year (before yesterday), the others over the coming year. The due
    occurrences' ids."""
    now = utcnow()
    rest = total - due - RECENT
    past = rest // 5
    spans: list[tuple[timedelta, str]] = [(timedelta(seconds=-30), "scheduled")] * due
    spans += [(timedelta(minutes=-90 + i), "ended") for i in range(RECENT)]
    # Older than the reconciliation looks back, so both databases' ListRooms names RECENT rooms.
    spans += [(-timedelta(days=2) - timedelta(days=363) * i / max(past, 1), "ended") for i in range(past)]
    spans += [(timedelta(days=365) * (i + 1) / (rest - past + 1), "scheduled") for i in range(rest - past)]
    with engine.begin() as connection:
        connection.execute(insert(User), [{"id": 1, "username": "host", "password_hash": "-", "role": "host", "disabled": False, "created_at": now}])
        connection.execute(
            insert(Meeting),
            [
                {"id": i + 1, "title": f"Meeting {i}", "description": "", "host_id": 1, "server": "bench", "time_zone": "UTC",
                 "link_slug": f"slug-{i}", "uid": f"uid-{i}@bench", "max_participants": 10, "early_join_minutes": 5, "first_start": now,
                 "created_at": now, "updated_at": now}  # fmt: skip
                for i in range(total)
            ],
        )
        connection.execute(
            insert(Occurrence),
            [
                {"id": i + 1, "meeting_id": i + 1, "starts_at": now + offset, "ends_at": now + offset + timedelta(minutes=60),
                 "original_start": now + offset, "status": status, "room_name": f"bench-{total}-{i}", "version": 1}  # fmt: skip
                for i, (offset, status) in enumerate(spans)
            ],
        )
    return list(range(1, due + 1))


def reschedule(sessions: sessionmaker[Session], ids: list[int]) -> None:
    with sessions.begin() as session:
        session.execute(update(Occurrence).where(Occurrence.id.in_(ids)).values(status="scheduled", version=Occurrence.version + 1))


def timed_tick(lifecycle: lc.Lifecycle, sessions: sessionmaker[Session], due: list[int]) -> float:
    """One tick that starts `due` (none: the steady state, nothing to start or end)."""
    reschedule(sessions, due)
    started = time.perf_counter()
    report = lifecycle.tick()
    elapsed = time.perf_counter() - started
    assert report.activated == len(due) and report.ended == 0 and not report.errors, report
    return elapsed


def indexed_scans(sessions: sessionmaker[Session]) -> int:
    now = utcnow()
    with sessions() as session:
        return sum(len(session.execute(scan(now)).all()) for scan in (lc.due_to_start, lc.due_to_end, lc.recently_over))


def naive_scan(sessions: sessionmaker[Session]) -> int:
    """Every occurrence with its meeting, the same conditions applied in Python."""
    now = utcnow()
    with sessions() as session:
        rows = [lc._Due.of(r) for r in session.execute(lc._occurrences())]
    starting = [d for d in rows if d.status == lc.SCHEDULED and d.opens_at <= now < d.ends_at]
    ending = [d for d in rows if d.status in (lc.SCHEDULED, lc.ACTIVE) and d.ends_at <= now]
    over = [d for d in rows if d.status in (lc.ENDED, lc.CANCELLED) and d.ends_at >= now - lc.RECONCILE_WINDOW]
    return len(starting) + len(ending) + len(over)


def median_ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:8.2f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100, help="meetings in the baseline database")
    parser.add_argument("--due", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    server = DevServer().start()
    gateway = LiveKitGateway([ServerConfig("bench", server.ws_url, server.api_key, server.api_secret)])
    engines: list[Engine] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            worlds = {}
            for total in (args.meetings, args.small):
                engine = make_engine(f"sqlite:///{Path(tmp) / f'{total}.sqlite'}")
                engines.append(engine)
                migrate(engine)
                due = populate(engine, total, args.due)
                sessions = session_factory(engine)
                lifecycle = lc.Lifecycle(sessions, gateway, AuditLog(sessions))
                timed_tick(lifecycle, sessions, due)  # creates the rooms; warms caches
                worlds[total] = (lifecycle, sessions, due)

            ticks: dict[tuple[int, bool], list[float]] = {(total, busy): [] for total in worlds for busy in (True, False)}
            for round_ in range(args.rounds):
                order = list(worlds.items())
                for total, (lifecycle, sessions, due) in order if round_ % 2 else reversed(order):  # neither always first
                    ticks[total, True].append(timed_tick(lifecycle, sessions, due))
                    ticks[total, False].append(timed_tick(lifecycle, sessions, []))
            for busy, what in ((False, "nothing due (most ticks)"), (True, f"{args.due} due to start")):
                print(f"one tick, {what}, {RECENT} ended in the last hour; SQLite, median of {args.rounds}")
                for total in worlds:
                    print(f"  {total:>6,} meetings   {median_ms(ticks[total, busy])}")
                ratio = statistics.median(ticks[args.meetings, busy]) / statistics.median(ticks[args.small, busy])
                print(f"  {args.meetings:,} against {args.small:,}: {ratio:.2f}x")
            print()
            print(f"the tick's three scans at {args.meetings:,} meetings, median of {args.rounds * 2}")
            _, sessions, _ = worlds[args.meetings]
            scans: dict[str, list[float]] = {"indexed": [], "naive": []}
            found = {}
            for _ in range(args.rounds * 2):
                for kind, scan in (("indexed", indexed_scans), ("naive", naive_scan)):
                    started = time.perf_counter()
                    found[kind] = scan(sessions)
                    scans[kind].append(time.perf_counter() - started)
            assert found["indexed"] >= found["naive"], found
            for kind in scans:
                print(f"  {kind:<8} {median_ms(scans[kind])}   ({found[kind]} rows due or recent)")
            print(f"  naive against indexed: {statistics.median(scans['naive']) / statistics.median(scans['indexed']):.1f}x")
    finally:
        for engine in engines:
            engine.dispose()
        gateway.close()
        server.stop()


if __name__ == "__main__":
    main()
