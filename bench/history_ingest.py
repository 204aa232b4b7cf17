"""History ingest benchmark: rows per second through the store's write path (queue, one writer
thread, a DataFrame per table per transaction) against a plain executemany of the same rows
into the same schema, measured alternately in one run.

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

from lib.history.store import SCHEMA, HistoryStore, RoomSample

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_rows(n: int) -> list[RoomSample]:
    # 200 rooms sampled every 5 s: what a busy server's collector writes.
    return [
        RoomSample("bench", T0 + timedelta(seconds=5 * (i // 200)), f"RM_{i % 200:03d}", f"room-{i % 200:03d}", i % 40, i % 7, i % 3, i % 50)
        for i in range(n)
    ]


def through_store(path: Path, rows: list[RoomSample], batch: int) -> float:
    store = HistoryStore(path)
    try:
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            store.submit(rows[i : i + batch])
        store.flush(timeout=600)
        return time.perf_counter() - started
    finally:
        store.close()


def through_executemany(path: Path, rows: list[RoomSample], batch: int) -> float:
    conn = duckdb.connect(str(path))
    conn.execute(SCHEMA)
    values = [(r.server, r.ts, r.room_sid, r.room, r.participants, r.publishers, r.agents, r.tracks) for r in rows]
    try:
        started = time.perf_counter()
        for i in range(0, len(values), batch):
            conn.executemany("INSERT INTO room_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values[i : i + batch])
        return time.perf_counter() - started
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="rows handed over per call (a collection round)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = make_rows(args.rows)
    store_times, plain_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            store_times.append(through_store(Path(tmp) / f"store-{i}.duckdb", rows, args.batch))
            plain_times.append(through_executemany(Path(tmp) / f"plain-{i}.duckdb", rows, args.batch))
    store_rate = args.rows / statistics.median(store_times)
    plain_rate = args.rows / statistics.median(plain_times)
    print(f"{args.rows} room samples, {args.batch} per hand-over, median of {args.rounds} rounds")
    print(f"history store write path   {store_rate:12,.0f} rows/s   ({statistics.median(store_times):.2f} s)")
    print(f"plain executemany          {plain_rate:12,.0f} rows/s   ({statistics.median(plain_times):.2f} s)")
    print(f"ratio: {store_rate / plain_rate:.1f}x")


if __name__ == "__main__":
    main()
