"""History ingest benchmark: rows per second through the store's write path (queue, one writer
thread, a DataFrame per table per transaction) against a plain executemany of the same rows
into the same schema, measured alternately in one run. Two kinds of rows: room samples (with
their minute and hour rollups) and events (with the sessions they fold into; the baseline
only inserts the events, so it does less work).

    python -m bench.history_ingest [--rows 50000] [--batch 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from lib.history.events import PARTICIPANT_JOINED, PARTICIPANT_LEFT, WEBHOOK, HistoryEvent
from lib.history.store import SCHEMA, HistoryStore, RoomSample

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_rows(n: int) -> list[RoomSample]:
    # 200 rooms sampled every 5 s: what a busy server's collector writes.
    return [
        RoomSample("bench", T0 + timedelta(seconds=5 * (i // 200)), f"RM_{i % 200:03d}", f"room-{i % 200:03d}", i % 40, i % 7, i % 3, i % 50)
        for i in range(n)
    ]


def make_events(n: int) -> list[HistoryEvent]:
    # n / 2 participants joining 200 rooms and leaving a minute later: every event opens or
    # closes a session.
    return [
        HistoryEvent(f"EV_{i:08d}", "bench", T0 + timedelta(seconds=i // 2 + 60 * (i % 2)), WEBHOOK,
                     PARTICIPANT_LEFT if i % 2 else PARTICIPANT_JOINED, f"RM_{i // 2 % 200:03d}", f"room-{i // 2 % 200:03d}",
                     f"PA_{i // 2:08d}", f"user-{i // 2 % 5000}", "standard")  # fmt: skip
        for i in range(n)
    ]


def through_store(path: Path, rows: list[object], batch: int, wait_each: bool = False) -> float:
    """All hand-overs at once (the writer takes whatever has queued into one transaction), or,
    with `wait_each`, one transaction per hand-over, as when the writer keeps up."""
    store = HistoryStore(path)
    try:
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            store.submit(rows[i : i + batch])
            if wait_each:
                store.flush(timeout=600)
        store.flush(timeout=600)
        return time.perf_counter() - started
    finally:
        store.close()


def through_executemany(path: Path, rows: list[object], batch: int) -> float:
    conn = duckdb.connect(str(path))
    conn.execute(SCHEMA)
    table = "room_samples" if isinstance(rows[0], RoomSample) else "events"
    names = list(type(rows[0]).__dataclass_fields__)
    values = [tuple(getattr(r, n) for n in names) for r in rows]
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    try:
        started = time.perf_counter()
        for i in range(0, len(values), batch):
            conn.executemany(sql, values[i : i + batch])
        return time.perf_counter() - started
    finally:
        conn.close()


def compare(label: str, rows: list[object], batch: int, rounds: int, tmp: Path) -> None:
    store_times, each_times, plain_times = [], [], []
    for i in range(rounds):
        store_times.append(through_store(tmp / f"store-{label}-{i}.duckdb", rows, batch))
        each_times.append(through_store(tmp / f"each-{label}-{i}.duckdb", rows, batch, wait_each=True))
        plain_times.append(through_executemany(tmp / f"plain-{label}-{i}.duckdb", rows, batch))
    plain_rate = len(rows) / statistics.median(plain_times)
    print(f"{len(rows)} {label}, {batch} per hand-over, median of {rounds} rounds")
    for name, times in (("history store, queued", store_times), ("history store, one at a time", each_times), ("plain executemany", plain_times)):
        rate = len(rows) / statistics.median(times)
        print(f"{name:30} {rate:12,.0f} rows/s   ({statistics.median(times):6.2f} s)   {rate / plain_rate:6.1f}x the baseline")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="rows handed over per call (a collection round)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        compare("room samples", make_rows(args.rows), args.batch, args.rounds, Path(tmp))
        print()
        compare("events (joins and leaves)", make_events(args.rows), args.batch, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
