"""History query benchmark: every History chart's query (and the Sessions page's), p50 and p95,
over every range, on a 90-day history written by bench/history_data.py through the store's
own write API.

The queries run in a child process that opens the file as the dashboard's server does (one
HistoryStore, a cursor per query), then writes one more collection round through it, so its peak
RSS is the store's (reading and writing), not the generator's. Streamlit's own memory is not in
it. Baseline in the same run: the concurrency chart straight from the raw samples
(how it was drawn before the rollups), for the ranges the raw samples still cover.

Targets on a 2-core machine: p50 at most 100 ms and p95 at most 300 ms for every chart over
every range.

    python -m bench.history_queries [--path FILE] [--runs 15]

With --path, an existing file is reused (made first if missing; each run adds its one
collection round to it); without it, a temporary one is generated and removed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lib.history import queries, sessions
from lib.history.events import PARTICIPANT_JOINED, WEBHOOK, HistoryEvent
from lib.history.store import HistoryStore, RoomSample

from .history_data import TICK, busy_end, generate, memory_mb

P50_TARGET_MS = 100
P95_TARGET_MS = 300
ROUND_JOINS = 20  # participants joining in the collection round written after the queries
CHARTS = {
    "concurrency": queries.concurrency,
    "participant minutes/day": queries.participant_minutes_per_day,
    "sessions/day": queries.sessions_per_day,
    "session durations": queries.session_durations,
    "peak per room": queries.peak_per_room,
    "top rooms": queries.top_rooms,
    "jobs by state": queries.jobs_by_state,
    "tracks by source": queries.tracks_by_source,
}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _time(call, runs: int) -> tuple[float, float, int]:
    frame = call()  # warm-up, and the row count
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        took.append(time.perf_counter() - started)
    p50, p95 = _percentiles(took)
    rows = len(frame[0]) + len(frame[1]) if isinstance(frame, tuple) else len(frame)
    return p50, p95, rows


def _ranges(end: datetime) -> dict[str, tuple[datetime, datetime]]:
    found = {label: (end - span, end) for label, span in queries.PRESETS.items()}
    today = datetime.combine(end.date(), datetime.min.time(), tzinfo=timezone.utc)
    found["custom 90 d"] = (today - timedelta(days=89), today + timedelta(days=1))  # whole UTC days, as the picker gives
    return found


def measure(path: Path, runs: int) -> dict[str, object]:
    """The child's side: open the store, time every query, report."""
    store = HistoryStore(path)
    opened_rss = memory_mb("VmRSS")
    last = store.query("SELECT max(ts) AS ts FROM server_samples")["ts"][0].to_pydatetime()
    end = last + timedelta(seconds=TICK)
    # The room filter of the filtered runs: the three rooms with the most sessions.
    busy = list(store.query("SELECT room FROM room_sessions GROUP BY room ORDER BY count(*) DESC, room LIMIT 3")["room"])
    results = []
    for label, (start, stop) in _ranges(end).items():
        for rooms in (None, busy):
            for name, chart in CHARTS.items():
                kwargs = {"now": end} if name in ("participant minutes/day", "top rooms") else {}
                p50, p95, rows = _time(lambda: chart(store, start, stop, None, rooms, **kwargs), runs)
                results.append({"query": name, "range": label, "rooms": "3 rooms" if rooms else "all", "p50": p50, "p95": p95, "rows": rows})
            p50, p95, rows = _time(lambda: sessions.room_sessions(store, start, stop, None, rooms), runs)
            results.append({"query": "Sessions page: list", "range": label, "rooms": "3 rooms" if rooms else "all", "p50": p50, "p95": p95, "rows": rows})
        step = queries.bucket_seconds(start, stop)
        if stop - start <= timedelta(days=7):
            p50, p95, rows = _time(lambda: queries._concurrency_from_samples(store, start, stop, step, None, None), runs)
            results.append({"query": "baseline: concurrency from raw samples", "range": label, "rooms": "all", "p50": p50, "p95": p95, "rows": rows})
    for name, call in (("filter: servers", lambda: queries.servers(store)), ("filter: rooms", lambda: queries.rooms(store)),
                       ("History page: history start", lambda: [queries.history_start(store)])):
        p50, p95, rows = _time(call, runs)
        results.append({"query": name, "range": "-", "rooms": "all", "p50": p50, "p95": p95, "rows": rows})
    busiest = store.query("SELECT server, room_sid FROM participant_sessions GROUP BY ALL ORDER BY count(*) DESC LIMIT 1")
    server, room_sid = busiest["server"][0], busiest["room_sid"][0]
    p50, p95, rows = _time(lambda: sessions.timeline(store, server, room_sid, end), runs)
    results.append({"query": "Sessions page: timeline (busiest session)", "range": "-", "rooms": "-", "p50": p50, "p95": p95, "rows": rows})
    # The server process also writes: one more collection round (a sample per active room and
    # the joins of a new meeting), so the peak includes what writing needs (the key indexes).
    active = store.query("SELECT DISTINCT room_sid, room FROM room_samples WHERE ts = (SELECT max(ts) FROM room_samples)")
    at = end + timedelta(seconds=TICK)
    round_ = [RoomSample("bench", at, sid, room, 5, 3, 0, 6) for sid, room in zip(active["room_sid"], active["room"])]
    round_ += [HistoryEvent(f"EV_round_{i}", "bench", at, WEBHOOK, PARTICIPANT_JOINED, "RM_round", "room-round", f"PA_round_{i}", f"u{i}", "standard")
               for i in range(ROUND_JOINS)]  # fmt: skip
    started = time.perf_counter()
    store.submit(round_)
    store.flush()
    write_ms = (time.perf_counter() - started) * 1000
    counts = {table: int(store.query(f"SELECT count(*) AS n FROM {table}")["n"][0]) for table in
              ("server_samples", "room_samples", "events", "room_sessions", "participant_sessions", "tracks", "server_rollup", "room_rollup", "gaps")}  # fmt: skip
    store.close()
    return {
        "rooms": busy,
        "results": results,
        "counts": counts,
        "rss_opened_mb": opened_rss,
        "rss_peak_mb": memory_mb("VmHWM"),
        "write_round": {"rows": len(round_), "ms": write_ms},
    }


def report(path: Path, measured: dict[str, object], generated: dict[str, float] | None) -> None:
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    if generated:
        print(f"generated in {generated['seconds']:.0f} s: {generated['meetings']:,.0f} room sessions, {generated['sessions']:,.0f} participant "
              f"sessions, {generated['events']:,.0f} events, {generated['room_samples_written']:,.0f} room samples written, "
              f"peak {generated['peak_concurrent']:,.0f} participants at once; the writing process's peak RSS "
              f"{generated['rss_peak_mb']:,.0f} MiB (the store and the generator's own records)")  # fmt: skip
    counts = measured["counts"]
    print(f"filtered runs: rooms {', '.join(measured['rooms'])} (the three with the most sessions)")
    print("rows kept: " + ", ".join(f"{table} {n:,}" for table, n in counts.items()))
    print(f"DuckDB file: {size / 2**20:,.0f} MiB;  store process RSS: {measured['rss_opened_mb']:,.0f} MiB after opening, "
          f"{measured['rss_peak_mb']:,.0f} MiB peak over every query below and one more collection round written "
          f"({measured['write_round']['rows']} rows in {measured['write_round']['ms']:.0f} ms)")  # fmt: skip
    print()
    print(f"{'query':42} {'range':11} {'rooms':8} {'p50 ms':>8} {'p95 ms':>8} {'rows':>8}")
    misses = 0
    for r in measured["results"]:
        charted = r["query"] in CHARTS
        miss = charted and (r["p50"] > P50_TARGET_MS or r["p95"] > P95_TARGET_MS)
        misses += miss
        flag = "  over target" if miss else ""
        print(f"{r['query']:42} {r['range']:11} {r['rooms']:8} {r['p50']:8.1f} {r['p95']:8.1f} {r['rows']:8,}{flag}")
    charted = [r for r in measured["results"] if r["query"] in CHARTS]
    print()
    print(f"History charts: {len(charted)} chart x range x filter cases, worst p50 {max(r['p50'] for r in charted):.1f} ms, "
          f"worst p95 {max(r['p95'] for r in charted):.1f} ms; targets p50 <= {P50_TARGET_MS} ms, p95 <= {P95_TARGET_MS} ms: "
          + ("all met" if not misses else f"{misses} over"))  # fmt: skip
    baseline = {r["range"]: r for r in measured["results"] if r["query"].startswith("baseline")}
    for r in charted:
        if r["query"] == "concurrency" and r["rooms"] == "all" and r["range"] in baseline and queries.PRESETS.get(r["range"], timedelta(0)) > timedelta(hours=6):
            b = baseline[r["range"]]
            print(f"concurrency over {r['range']}: rollups {r['p50']:.1f} ms vs raw samples {b['p50']:.1f} ms (p50), {b['p50'] / r['p50']:.1f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, help="a history file to reuse (generated first if missing)")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per query, after one warm-up")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.runs)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or Path(tmp) / "history.duckdb"
        generated = None
        if not path.exists():
            print(f"generating {args.days} days of history into {path} ...", file=sys.stderr)
            generated = generate(path, busy_end(datetime.now(timezone.utc)), days=args.days)
        child = subprocess.run(
            [sys.executable, "-m", "bench.history_queries", "--measure", str(path), "--runs", str(args.runs)],
            check=True, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )  # fmt: skip
        report(path, json.loads(child.stdout.strip().splitlines()[-1]), generated)


if __name__ == "__main__":
    main()
