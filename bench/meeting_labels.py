"""Meeting titles beside rooms: `titles_for_rooms` (a query per 500 room names) for a Rooms page
refresh of 1,000 and 10,000 rooms, half of them meetings' rooms, against a database of 10,000
meetings on SQLite; the baseline is a lookup per room, as a page asking room by room would do,
measured alternately in the same run.

    python -m bench.meeting_labels [--meetings 10000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from lib.db import make_engine, migrate, session_factory
from lib.meetings.labels import titles_for_rooms
from lib.models import Meeting, Occurrence, User, utcnow

SERVER = "bench"


def populate(sessions: sessionmaker[Session], total: int) -> None:
    now = utcnow()
    with sessions.begin() as s:
        s.execute(insert(User), [{"id": 1, "username": "host", "password_hash": "-", "role": "host", "disabled": False, "created_at": now}])
        s.execute(insert(Meeting), [
            {"id": i + 1, "title": f"Meeting {i}", "description": "", "host_id": 1, "server": SERVER, "time_zone": "UTC",
             "first_start": now, "link_slug": f"slug-{i}", "uid": f"uid-{i}@bench", "created_at": now, "updated_at": now}
            for i in range(total)
        ])  # fmt: skip
        s.execute(insert(Occurrence), [
            {"meeting_id": i + 1, "starts_at": now, "ends_at": now + timedelta(hours=1), "original_start": now,
             "status": "active", "room_name": f"meet-{i:06d}"}
            for i in range(total)
        ])  # fmt: skip


def one_by_one(s: Session, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The baseline: a query per room."""
    found = {}
    for server, room in pairs:
        row = s.execute(
            select(Meeting.title).join(Occurrence, Occurrence.meeting_id == Meeting.id).where(Occurrence.room_name == room, Meeting.server == server)
        ).first()
        if row:
            found[(server, room)] = row[0]
    return found


def timed(sessions: sessionmaker[Session], lookup: Callable[[Session, list[tuple[str, str]]], dict], pairs: list[tuple[str, str]]) -> tuple[float, int]:
    with sessions() as s:
        began = time.perf_counter()
        found = lookup(s, pairs)
        return time.perf_counter() - began, len(found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meetings", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'labels.sqlite'}")
        try:
            migrate(engine)
            sessions = session_factory(engine)
            populate(sessions, args.meetings)
            for rooms in (1_000, 10_000):
                # Every other room is a meeting's; the others are rooms of no meeting.
                pairs = [(SERVER, f"meet-{i:06d}" if i % 2 == 0 else f"lobby-{i}") for i in range(rooms)]
                times: dict[str, list[float]] = {"chunked": [], "per room": []}
                counts = {}
                lookups = {"chunked": titles_for_rooms, "per room": one_by_one}
                for round_ in range(args.rounds):
                    order = list(lookups.items())
                    for name, lookup in order if round_ % 2 else reversed(order):  # neither always first
                        took, counts[name] = timed(sessions, lookup, pairs)
                        times[name].append(took)
                assert counts["chunked"] == counts["per room"], counts
                print(f"{rooms:,} rooms ({counts['chunked']:,} of them meetings'), {args.meetings:,} meetings on SQLite, median of {args.rounds}")
                for name, values in times.items():
                    print(f"  {name:<9} {statistics.median(values) * 1000:8.2f} ms")
                print(f"  per room against chunked: {statistics.median(times['per room']) / statistics.median(times['chunked']):.1f}x")
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
