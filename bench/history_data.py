"""A realistic history, written through the history store's own write API (HistoryStore.submit),
for the query benchmark.

What is modelled, per the issue: one server, 200 rooms, about a million participant sessions
over 90 days, about 2,000 participants at once at the busiest moment.
- Rooms come in sizes: 60 % small (about 5 people), 30 % medium (about 13), 10 % large (about
  45). Meetings follow working hours (centred on 14:00 UTC, two hours either way) and are
  fewer at weekends; lengths are log-normal around 55 minutes. A room closes 20 s after its
  last participant leaves, as livekit-server's departure timeout does.
- People join over the first minutes and leave over the last ones; one in ten drops out and
  rejoins (a second session). Most publish a microphone, many a camera, a few share their
  screen; a third mute their microphone once. One room in five has an agent dispatched to
  every meeting (a job: pending, running, success).
- Every change arrives twice, as the default set-up records it: a webhook (LiveKit's id and
  time) and the collector's next snapshot (its own id; leaves dated by that snapshot and
  marked estimated).
- The collector's samples: one per active room per 5 s for the last 7 days (the raw samples
  retention keeps); older days get one per active room per minute. That fills exactly the
  same minute and hour rollup rows as 5 s samples would (it is the rollups that survive), in
  a twelfth of the time, and the raw samples older than 7 days are pruned day by day as the
  collector does. Two outages (20 min and 2 h) are gaps without samples.

    python -m bench.history_data PATH [--days 90] [--rooms 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from lib.history.events import (
    JOB_STATE,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    ROOM_FINISHED,
    ROOM_STARTED,
    SNAPSHOT,
    TRACK_MUTED,
    TRACK_PUBLISHED,
    TRACK_UNMUTED,
    TRACK_UNPUBLISHED,
    WEBHOOK,
    HistoryEvent,
)
from lib.history.store import GapEnd, GapStart, HistoryStore, Prune, RoomSample, ServerSample

SERVER = "bench"
DAY = 86400
TICK = 5  # the collector's interval
OLD_TICK = 60  # samples per minute for days past the raw retention
RAW_DAYS = 7
DEPARTURE = 20  # seconds an empty room lives on
SIZES = ((0.6, 5.0), (0.3, 13.0), (0.1, 45.0))  # share of rooms, mean people per meeting
WEEKDAY_MEETINGS = 5.5  # per room per weekday (and per weekend day, a quarter of that)
BUSIEST_HOUR, HOURS_SPREAD = 14.0, 2.0  # meeting starts: normal, in UTC hours
MEETING_MINUTES = 55.0  # median meeting length (log-normal)
PEOPLE = 6000


@dataclass
class Person:
    sid: str
    identity: str
    kind: str
    joined: float
    left: float
    tracks: list[tuple[str, str, float, float, list[tuple[float, float | None]]]]  # sid, source, on, off, mutes


@dataclass
class Meeting:
    room: int
    sid: str
    start: float
    end: float  # when the room closed
    people: list[Person]
    job: str | None


@dataclass
class Totals:
    meetings: int = 0
    sessions: int = 0
    events: int = 0
    room_samples: int = 0
    server_samples: int = 0


class Generator:
    def __init__(self, end: datetime, days: int, rooms: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.end = end.timestamp() // TICK * TICK
        self.start = self.end - days * DAY
        self.days = days
        self.rooms = rooms
        kinds = self.rng.choice(len(SIZES), size=rooms, p=[share for share, _ in SIZES])
        self.room_size = np.array([SIZES[k][1] for k in kinds])
        self.room_agent = self.rng.random(rooms) < 0.2
        self.room_free = np.full(rooms, -math.inf)  # when each room is next free
        self.counter = 0
        self.outages = [(self.start + 30 * DAY + 11 * 3600, 20 * 60), (self.start + 70 * DAY + 15 * 3600, 2 * 3600)]
        self.outages = [(a, a + length) for a, length in self.outages if a + length < self.end]
        self.totals = Totals()
        self.joins: list[np.ndarray] = []
        self.leaves: list[np.ndarray] = []

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter:010x}"

    # ----- planning -----------------------------------------------------------------------

    def meetings(self, day_start: float) -> list[Meeting]:
        """The meetings that start on one day, every room, in start order."""
        weekday = datetime.fromtimestamp(day_start, timezone.utc).weekday()
        rate = WEEKDAY_MEETINGS * (1.0 if weekday < 5 else 0.25)
        found: list[Meeting] = []
        for room in range(self.rooms):
            count = self.rng.poisson(rate)
            hours = np.sort(np.clip(self.rng.normal(BUSIEST_HOUR, HOURS_SPREAD, count), 0.0, 23.9))
            for hour in hours:
                start = max(day_start + hour * 3600, self.room_free[room])
                if start >= min(day_start + DAY, self.end - 60):
                    continue
                meeting = self._meeting(room, float(start))
                self.room_free[room] = meeting.end + 30
                found.append(meeting)
        found.sort(key=lambda m: m.start)
        return found

    def _meeting(self, room: int, start: float) -> Meeting:
        rng = self.rng
        length = float(np.clip(rng.lognormal(math.log(MEETING_MINUTES * 60), 0.5), 5 * 60, 4 * 3600))
        close = start + length
        count = max(2, int(rng.poisson(self.room_size[room])))
        people: list[Person] = []
        for i in range(count):
            joined = start if i == 0 else min(start + rng.exponential(120.0), close - 60)
            left = close if i == 0 else max(close - rng.exponential(180.0), joined + 30)
            identity = f"user-{rng.integers(PEOPLE):04d}"
            spans = [(joined, left)]
            if i > 0 and left - joined > 600 and rng.random() < 0.1:  # drops out and comes back
                cut = joined + rng.uniform(0.2, 0.8) * (left - joined)
                spans = [(joined, cut), (cut + rng.uniform(5, 60), left)]
            for a, b in spans:
                people.append(Person(self._id("PA"), identity, "standard", a, b, self._tracks(a, b)))
        job = None
        if self.room_agent[room]:
            job = self._id("AJ")
            people.append(Person(self._id("PA"), f"agent-{room:03d}", "agent", start + 2, close, [(self._id("TR"), "microphone", start + 3, close, [])]))
        end = max(p.left for p in people) + DEPARTURE
        return Meeting(room, self._id("RM"), start, min(end, self.end - 1), people, job)

    def _tracks(self, joined: float, left: float) -> list[tuple[str, str, float, float, list[tuple[float, float | None]]]]:
        rng = self.rng
        tracks = []
        for source, chance in (("microphone", 0.95), ("camera", 0.65)):
            if rng.random() < chance:
                mutes: list[tuple[float, float | None]] = []
                if source == "microphone" and rng.random() < 0.33 and left - joined > 60:
                    muted = rng.uniform(joined + 10, left - 10)
                    unmuted = rng.uniform(muted, left) if rng.random() < 0.6 else None
                    mutes.append((muted, unmuted))
                tracks.append((self._id("TR"), source, min(joined + rng.uniform(1, 5), left), left, mutes))
        if rng.random() < 0.08 and left - joined > 300:
            on = rng.uniform(joined, left - 120)
            tracks.append((self._id("TR"), "screen_share", on, min(on + rng.uniform(60, 1200), left), []))
        return tracks

    # ----- records ------------------------------------------------------------------------

    def _in_outage(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.outages)

    def events(self, meeting: Meeting) -> list[HistoryEvent]:
        room = f"room-{meeting.room:03d}"
        out: list[HistoryEvent] = []

        def both(kind: str, at: float, key: str, noticed_exact: bool, **fields: str) -> None:
            """The webhook, then the collector's inference at its next snapshot (none inside an
            outage: webhooks still arrive, snapshots do not); nothing after the history's end."""
            if at >= self.end:
                return
            out.append(HistoryEvent(self._id("EV"), SERVER, _utc(at), WEBHOOK, kind, meeting.sid, room, **fields))
            seen = math.ceil(at / TICK) * TICK
            if seen < self.end and not self._in_outage(seen):
                out.append(HistoryEvent(f"snap:{SERVER}:{key}", SERVER, _utc(at if noticed_exact else seen), SNAPSHOT, kind, meeting.sid, room, **fields))

        both(ROOM_STARTED, meeting.start, f"{ROOM_STARTED}:{meeting.sid}", True)
        if meeting.job:
            for status, at in (("pending", meeting.start), ("running", meeting.start + 1), ("success", meeting.end - DEPARTURE)):
                both(JOB_STATE, at, f"{JOB_STATE}:{meeting.job}:{status}", False, job_id=meeting.job, job_status=status, identity=f"agent-{meeting.room:03d}")
        for p in meeting.people:
            who = dict(participant_sid=p.sid, identity=p.identity, participant_kind=p.kind)
            both(PARTICIPANT_JOINED, p.joined, f"{PARTICIPANT_JOINED}:{p.sid}", True, **who)
            for t_sid, source, on, off, mutes in p.tracks:
                track = dict(who, track_sid=t_sid, track_source=source)
                both(TRACK_PUBLISHED, on, f"{TRACK_PUBLISHED}:{t_sid}", False, **track)
                for muted, unmuted in mutes:
                    both(TRACK_MUTED, muted, f"{TRACK_MUTED}:{t_sid}:{muted}", False, **track)
                    if unmuted is not None:
                        both(TRACK_UNMUTED, unmuted, f"{TRACK_UNMUTED}:{t_sid}:{unmuted}", False, **track)
                both(TRACK_UNPUBLISHED, off, f"{TRACK_UNPUBLISHED}:{t_sid}", False, **track)
            both(PARTICIPANT_LEFT, p.left, f"{PARTICIPANT_LEFT}:{p.sid}", False, **who)
        if meeting.end < self.end - 1:  # a room still open at the end was cut there, not finished
            both(ROOM_FINISHED, meeting.end, f"{ROOM_FINISHED}:{meeting.sid}", False)
        return out

    def samples(self, meetings: list[Meeting], day_start: float) -> list[object]:
        """The collector's room and server samples for one day."""
        step = TICK if day_start >= self.end - RAW_DAYS * DAY else OLD_TICK
        day_end = min(day_start + DAY, self.end)
        ticks = np.arange(math.ceil(day_start / step) * step, day_end, step)
        ticks = ticks[[not self._in_outage(t) for t in ticks]] if any(a < day_end and b > day_start for a, b in self.outages) else ticks
        rooms_at = np.zeros(len(ticks), dtype=np.int64)
        people_at = np.zeros(len(ticks), dtype=np.int64)
        rows: list[object] = []
        for m in meetings:
            lo, hi = np.searchsorted(ticks, [m.start, m.end])
            if hi <= lo:
                continue
            at = ticks[lo:hi]
            present = _present(at, [p.joined for p in m.people], [p.left for p in m.people])
            agents = _present(at, [p.joined for p in m.people if p.kind == "agent"], [p.left for p in m.people if p.kind == "agent"])
            tracks = [t for p in m.people for t in p.tracks]
            published = _present(at, [t[2] for t in tracks], [t[3] for t in tracks])
            publishing = [p for p in m.people if p.tracks]
            publishers = _present(at, [min(t[2] for t in p.tracks) for p in publishing], [p.left for p in publishing])
            rooms_at[lo:hi] += 1
            people_at[lo:hi] += present
            room = f"room-{m.room:03d}"
            rows.extend(
                RoomSample(SERVER, _utc(t), m.sid, room, int(n), int(pub), int(ag), int(tr))
                for t, n, pub, ag, tr in zip(at.tolist(), present.tolist(), publishers.tolist(), agents.tolist(), published.tolist())
            )
        rows.extend(ServerSample(SERVER, _utc(t), True, int(r), int(n), None) for t, r, n in zip(ticks.tolist(), rooms_at.tolist(), people_at.tolist()))
        self.totals.server_samples += len(ticks)
        self.totals.room_samples += len(rows) - len(ticks)
        return rows

    def write(self, store: HistoryStore, progress: bool = True) -> Totals:
        """Write every day, oldest first, then the gaps; pruning as the collector would."""
        started = time.perf_counter()
        carry: list[Meeting] = []  # meetings still open at midnight sample into the next day
        for day in range(self.days):
            day_start = self.start + day * DAY
            meetings = self.meetings(day_start)
            self.totals.meetings += len(meetings)
            events = [e for m in meetings for e in self.events(m)]
            sessions = [p for m in meetings for p in m.people if p.joined < self.end]  # later ones never happened
            self.totals.sessions += len(sessions)
            self.totals.events += len(events)
            self.joins.append(np.array([p.joined for p in sessions]))
            self.leaves.append(np.array([p.left for p in sessions]))
            records = self.samples(carry + meetings, day_start) + events
            carry = [m for m in meetings if m.end > day_start + DAY]
            for i in range(0, len(records), 20_000):
                store.submit(records[i : i + 20_000])
            store.submit([Prune(_utc(day_start + DAY - RAW_DAYS * DAY))])
            store.flush(timeout=1800)
            if progress:
                elapsed = time.perf_counter() - started
                print(f"\r  day {day + 1}/{self.days}: {self.totals.sessions:,} sessions, {self.totals.events:,} events, "
                      f"{self.totals.room_samples:,} room samples, {elapsed:.0f} s", end="", file=sys.stderr, flush=True)  # fmt: skip
        for a, b in self.outages:
            store.submit([GapStart(SERVER, _utc(a), "unreachable: generated outage"), GapEnd(SERVER, _utc(b))])
        store.flush(timeout=600)
        if progress:
            print(file=sys.stderr)
        return self.totals

    def peak(self) -> int:
        """The most participant sessions open at once over the whole history."""
        joins, leaves = np.concatenate(self.joins), np.concatenate(self.leaves)
        times = np.concatenate([joins, leaves])
        steps = np.concatenate([np.ones(len(joins), np.int64), -np.ones(len(leaves), np.int64)])
        order = np.lexsort((steps, times))  # leaves before joins at the same instant
        return int(np.cumsum(steps[order]).max())


def _present(at: np.ndarray, starts: list[float], ends: list[float]) -> np.ndarray:
    """How many of the [start, end) spans hold each time in `at`."""
    if not starts:
        return np.zeros(len(at), dtype=np.int64)
    return np.searchsorted(np.sort(starts), at, "right") - np.searchsorted(np.sort(ends), at, "right")


def memory_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident set, MiB. Not getrusage: its
    ru_maxrss carries a forking parent's peak over into the child."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def busy_end(now: datetime) -> datetime:
    """Where a generated history ends: the latest weekday 15:00 UTC before `now`, the busiest
    hour, so the short ranges (1 h, 24 h) that end there hold the most data, not a quiet night."""
    end = now.astimezone(timezone.utc).replace(hour=15, minute=0, second=0, microsecond=0)
    while end > now or end.weekday() >= 5:
        end -= timedelta(days=1)
    return end


def generate(path: Path, end: datetime, days: int = 90, rooms: int = 200, seed: int = 7, progress: bool = True) -> dict[str, float]:
    generator = Generator(end, days, rooms, seed)
    store = HistoryStore(path)
    started = time.perf_counter()
    try:
        totals = generator.write(store, progress)
    finally:
        store.close()
    return {
        "seconds": time.perf_counter() - started,
        "meetings": totals.meetings,
        "sessions": totals.sessions,
        "events": totals.events,
        "room_samples_written": totals.room_samples,
        "server_samples_written": totals.server_samples,
        "peak_concurrent": generator.peak(),
        "rss_peak_mb": memory_mb(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.path.exists():
        parser.error(f"{args.path} exists; the generator writes a new file")
    result = generate(args.path, busy_end(datetime.now(timezone.utc)), args.days, args.rooms, args.seed)
    for key, value in result.items():
        print(f"{key:24} {value:,.0f}")


if __name__ == "__main__":
    main()
