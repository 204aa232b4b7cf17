"""The meeting lifecycle the scheduler sidecar runs: an occurrence's room is created on its server
when its join window opens and deleted at its end, a room that a guest's still-valid token
re-created after the end is deleted again, and each scheduler process leaves a heartbeat the
Overview reads.

Concurrency model: any number of schedulers (and the dashboard's own actions) may act on the
same occurrence at once. LiveKit's side is idempotent (creating an existing room returns it,
deleting a missing one answers "not found"), and every status change is one conditional update,
`... WHERE id = :id AND status = :from AND version = :read`, written with its Transition row in
one transaction. Only the process whose update matched a row did the transition and writes the
audit row and the log line; the others see no row and move on. A room re-created by an
activation that lost such a race is found by the next tick's reconciliation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..auth.audit import AuditLog
from ..auth.policy import ActionError
from ..livekit.errors import Category, GatewayError
from ..livekit.gateway import LiveKitGateway
from ..models import Meeting, Occurrence, SchedulerBeat, Transition, as_utc, utcnow
from ..outbound import events as webhook_events, outbox

log = logging.getLogger(__name__)

SCHEDULED, ACTIVE, ENDED, CANCELLED = "scheduled", "active", "ended", "cancelled"
STATUSES = (SCHEDULED, ACTIVE, ENDED, CANCELLED)
ACTOR = "scheduler"

# LiveKit closes a room nobody joined after its empty timeout: a meeting's room outlives its
# end by this much, and never closes sooner than this after it is created.
EMPTY_TIMEOUT_MARGIN = 300
# The start scan reads the index up to this far ahead and applies each meeting's own early-join
# minutes to what it found, so the scan stays an index range; a longer early join opens here.
EARLY_JOIN_LIMIT = timedelta(hours=24)
# How long after an occurrence's end its room is looked for again. A join token is capped at the
# meeting's end, but LiveKit hands a connected participant a fresh token valid for at least
# 10 minutes every 5 minutes, and an end moved earlier leaves older tokens valid until the old
# end; a day covers both.
RECONCILE_WINDOW = timedelta(hours=24)
# Names per ListRooms call of the reconciliation (one call per server per tick up to this many).
RECONCILE_BATCH = 1000
# A server that does not answer is tried again after 1, 2, 4 ... seconds, at most this many.
SERVER_BACKOFF_MAX = 30.0
# Database errors stop the tick; the loop tries again after 2, 4 ... intervals, at most this.
DATABASE_BACKOFF_MAX = 60.0
# A heartbeat this many intervals old means its scheduler stopped.
FRESH_INTERVALS = 3
# Heartbeats of schedulers gone this long are deleted when a scheduler starts.
BEAT_KEEP = timedelta(days=7)
# Categories that say a server as a whole is not usable now (not a refusal of one request).
_SERVER_DOWN = {Category.UNREACHABLE, Category.TIMEOUT, Category.UNAUTHORIZED, Category.NOT_LIVEKIT, Category.SERVER}


class LifecycleError(ActionError):
    """A room could not be created or deleted; the occurrence was left as it was (and is retried).
    The message is for a person; `error` is one line naming the server and what went wrong."""

    def __init__(self, message: str, error: str = "") -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class TickReport:
    """What one tick did. `waiting`: occurrences due to start or end that were left as they
    were because their server did not answer (or refused); `errors`: one line per server."""

    activated: int = 0
    ended: int = 0
    reconciled: int = 0
    waiting: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchedulerState:
    """Whether a scheduler is running (a heartbeat fresher than three intervals that is not a
    stop), and the newest heartbeat's time, name (host:pid) and last error."""

    running: bool
    last_tick_at: datetime | None
    name: str
    last_error: str




@dataclass(frozen=True)
class _Due:
    """An occurrence as read, with what the lifecycle needs of its meeting."""

    id: int
    version: int
    status: str
    starts_at: datetime
    ends_at: datetime
    room_name: str
    started_at: datetime | None
    waiting_since: datetime | None
    last_error: str
    meeting_id: int
    title: str
    server: str
    max_participants: int
    early_join_minutes: int

    @classmethod
    def of(cls, row: Sequence[object]) -> _Due:
        due = cls(*row)  # type: ignore[arg-type]
        return cls(
            **{
                **due.__dict__,
                "starts_at": as_utc(due.starts_at),
                "ends_at": as_utc(due.ends_at),
                "started_at": due.started_at and as_utc(due.started_at),
                "waiting_since": due.waiting_since and as_utc(due.waiting_since),
            }
        )

    @property
    def target(self) -> str:
        return f"{self.server}/{self.room_name}"

    @property
    def opens_at(self) -> datetime:
        return self.starts_at - timedelta(minutes=self.early_join_minutes)

    def describe(self) -> str:
        # repr: a title's quotes and line breaks escaped, so a title cannot forge a log line.
        return f"meeting {self.meeting_id} {self.title!r}"


_COLUMNS = (
    Occurrence.id, Occurrence.version, Occurrence.status, Occurrence.starts_at, Occurrence.ends_at,
    Occurrence.room_name, Occurrence.started_at, Occurrence.waiting_since, Occurrence.last_error,
    Meeting.id, Meeting.title, Meeting.server, Meeting.max_participants, Meeting.early_join_minutes,
)  # fmt: skip


def _occurrences() -> Select:
    return select(*_COLUMNS).join(Meeting, Meeting.id == Occurrence.meeting_id)


# The tick's three scans, each one range of an index on (status, time): a tick over many
# meetings far in the future reads only what is due. Each filters on one time column only, so
# the planner has one index to choose.
def due_to_start(now: datetime) -> Select:
    """Scheduled occurrences starting within EARLY_JOIN_LIMIT (ix_occurrences_status_starts_at)."""
    return _occurrences().where(Occurrence.status == SCHEDULED, Occurrence.starts_at <= as_utc(now) + EARLY_JOIN_LIMIT).order_by(Occurrence.starts_at)


def due_to_end(now: datetime) -> Select:
    """Scheduled or active occurrences whose end passed (ix_occurrences_status_ends_at)."""
    return _occurrences().where(Occurrence.status.in_((SCHEDULED, ACTIVE)), Occurrence.ends_at <= as_utc(now)).order_by(Occurrence.ends_at)


def recently_over(now: datetime) -> Select:
    """Ended or cancelled occurrences whose rooms may come back (ix_occurrences_status_ends_at)."""
    return _occurrences().where(Occurrence.status.in_((ENDED, CANCELLED)), Occurrence.ends_at >= as_utc(now) - RECONCILE_WINDOW)


class OutageLog:
    """Logs an outage once when it starts and once when it ends ("recovered after N s"), and
    says when to try again: after 1, 2, 4 ... seconds, up to `backoff_max`."""

    def __init__(self, clock: Callable[[], datetime], backoff_max: float) -> None:
        self._clock = clock
        self._backoff_max = backoff_max
        self._lock = threading.Lock()  # the dashboard's page threads may share one Lifecycle
        self._since: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, datetime] = {}
        self._errors: dict[str, str] = {}

    def failed(self, what: str, error: str, *, exc_info: BaseException | None = None) -> None:
        now = self._clock()
        with self._lock:
            starts = what not in self._since
            self._since.setdefault(what, now)
            failures = self._failures[what] = self._failures.get(what, 0) + 1
            self._retry_at[what] = now + timedelta(seconds=min(2.0 ** (failures - 1), self._backoff_max))
            self._errors[what] = error
        if starts:
            log.warning("%s: %s; retrying with back-off", what, error, exc_info=exc_info)

    def ok(self, what: str) -> None:
        with self._lock:
            since = self._since.pop(what, None)
            self._failures.pop(what, None)
            self._retry_at.pop(what, None)
            self._errors.pop(what, None)
        if since is not None:
            log.info("%s: recovered after %.0f s", what, (self._clock() - since).total_seconds())

    def ready(self, what: str) -> bool:
        """Whether to try `what` now: it is not failing, or its back-off has passed."""
        retry_at = self._retry_at.get(what)
        return retry_at is None or self._clock() >= retry_at

    def error(self, what: str) -> str:
        return self._errors.get(what, "")

    def failures(self, what: str) -> int:
        return self._failures.get(what, 0)


def _server_key(server: str) -> str:
    return f"LiveKit server {server}"


def _webhook_data(due: _Due, to_status: str, actor: str) -> dict[str, object]:
    occurrence = webhook_events.OccurrenceRef(due.id, due.room_name, due.starts_at, due.ends_at)
    return webhook_events.meeting_data(due.meeting_id, due.title, due.server, occurrence, to_status, actor)


class Lifecycle:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: LiveKitGateway,
        audit: AuditLog,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._gateway = gateway
        self._audit = audit
        self.clock = clock
        self.outages = OutageLog(clock, SERVER_BACKOFF_MAX)

    # ----- one occurrence -------------------------------------------------------------------

    def activate(self, occurrence_id: int, actor: str = ACTOR) -> bool:
        """Create the occurrence's room on its meeting's server (with the meeting's limit, an
        empty timeout past its end and the meeting in its metadata) and mark it active. True
        only when this call made the transition; False when it is not scheduled (any more).
        LifecycleError when the server did not answer or refused: it stays scheduled, with
        `waiting_since` and `last_error` saying why."""
        due = self._load(occurrence_id)
        if due is None or due.status != SCHEDULED:
            return False
        return self._activate(due, actor)

    def finish(self, occurrence_id: int, to_status: str = ENDED, actor: str = ACTOR, *, mark_anyway: bool = False) -> bool:
        """Delete the occurrence's room (which disconnects everyone in it), then mark it
        `to_status` ("ended" or "cancelled"). True only when this call made the transition.
        LifecycleError when the server did not answer: the status is left unchanged, so it is
        never marked over while its room may still be there; with `mark_anyway` (a host's
        cancel: nobody may join any more) it is marked all the same, and the reconciliation
        deletes the room once the server answers."""
        if to_status not in (ENDED, CANCELLED):
            raise ValueError(f"an occurrence finishes as ended or cancelled, not {to_status!r}")
        due = self._load(occurrence_id)
        if due is None or due.status not in (SCHEDULED, ACTIVE):
            return False
        return self._finish(due, to_status, actor, mark_anyway)

    def _load(self, occurrence_id: int) -> _Due | None:
        with self._sessions() as session:
            row = session.execute(_occurrences().where(Occurrence.id == occurrence_id)).one_or_none()
        return None if row is None else _Due.of(row)

    def _activate(self, due: _Due, actor: str) -> bool:
        now = self.clock()
        until_end = (due.ends_at - now).total_seconds()
        # Both timeouts: LiveKit closes a room everyone left after its departure timeout (20 s
        # by default), which would end a meeting's room while the meeting is under way.
        keep_open = max(EMPTY_TIMEOUT_MARGIN, int(until_end) + EMPTY_TIMEOUT_MARGIN)
        metadata = json.dumps({"meeting": {"id": due.meeting_id, "occurrence": due.id, "title": due.title}})
        try:
            self._gateway.create_room(
                due.server,
                due.room_name,
                empty_timeout=keep_open,
                departure_timeout=keep_open,
                max_participants=due.max_participants,
                metadata=metadata,
            )
        except GatewayError as exc:
            raise self._failed(due, exc, now, f"{due.describe()} stays scheduled and starts when it answers") from None
        self.outages.ok(_server_key(due.server))
        if not self._transition(due, ACTIVE, actor, now, started_at=now, waiting_since=None, last_error=""):
            return False
        log.info("%s started on %s", due.describe(), due.target)
        self._audit.record(actor, "meeting.start", due.target, "ok", self._detail(due, ACTIVE))
        return True

    def _finish(self, due: _Due, to_status: str, actor: str, mark_anyway: bool = False) -> bool:
        now = self.clock()
        # A room of ours exists only once the join window opened (a token is issued only then,
        # and the scheduler creates the room only then): before, there is nothing to delete,
        # so cancelling a later meeting does not need its server. A room made anyway is found
        # by the reconciliation, which looks at cancelled occurrences too.
        if due.started_at is not None or now >= due.opens_at:
            try:
                self._gateway.delete_room(due.server, due.room_name)
            except GatewayError as exc:
                if exc.category is not Category.NOT_FOUND or due.server not in self._gateway.server_names():
                    if not mark_anyway:
                        raise self._failed(due, exc, now, f"the room is not deleted yet, so {due.describe()} is not marked {to_status}; retried") from None
                    log.warning("%s: its room on %s is deleted when the server answers (%s)", due.describe(), due.target, exc.category.value)
                else:
                    self.outages.ok(_server_key(due.server))
            else:
                self.outages.ok(_server_key(due.server))
        if not self._transition(due, to_status, actor, now, ended_at=now, waiting_since=None, last_error=""):
            return False
        log.info("%s %s on %s", due.describe(), to_status, due.target)
        self._audit.record(actor, "meeting.end", due.target, "ok", self._detail(due, to_status))
        return True

    def _failed(self, due: _Due, exc: GatewayError, now: datetime, consequence: str) -> LifecycleError:
        """Record why the scheduler could not act on `due` and build the error to raise. The
        occurrence's last_error and the server's outage carry the same short text, so a retry
        that fails the same way writes nothing."""
        configured = due.server in self._gateway.server_names()
        error = f"{exc.category.value} ({exc.detail})" if configured else "not configured"
        if not configured:
            message = f"No server named {due.server} is configured; {consequence}."
        elif exc.category in _SERVER_DOWN:
            message = f"The server {due.server} did not answer ({exc.category.value}); {consequence}."
        else:
            message = f"The server {due.server} refused ({exc.detail}); {consequence}."
        down = not configured or exc.category in _SERVER_DOWN
        if down:
            self.outages.failed(_server_key(due.server), error)
        if self._mark_waiting(due, error, now) and not down:
            log.warning("%s on %s: %s", due.describe(), due.target, error)
        return LifecycleError(message, f"{due.server}: {error}")

    def _mark_waiting(self, due: _Due, error: str, now: datetime) -> bool:
        """Set `waiting_since` (keeping the first time) and `last_error`, unless they say so
        already: each write raises the version, which a host's open edit form would lose to."""
        if due.waiting_since is not None and due.last_error == error:
            return False
        with self._sessions.begin() as session:
            result = session.execute(
                update(Occurrence)
                .where(Occurrence.id == due.id, Occurrence.status == due.status, Occurrence.version == due.version)
                .values(waiting_since=func.coalesce(Occurrence.waiting_since, now), last_error=error[:2000], version=Occurrence.version + 1)
                .execution_options(synchronize_session=False)
            )
        return result.rowcount == 1

    def _transition(self, due: _Due, to_status: str, actor: str, now: datetime, **values: object) -> bool:
        """The conditional update from what was read, with its Transition row in the same
        transaction. The UPDATE comes first so that on SQLite the transaction takes the write
        lock at once (waiting its turn) rather than failing to upgrade a read."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(Occurrence)
                .where(Occurrence.id == due.id, Occurrence.status == due.status, Occurrence.version == due.version)
                .values(status=to_status, version=Occurrence.version + 1, **values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                return False
            session.add(Transition(occurrence_id=due.id, from_status=due.status, to_status=to_status, actor=actor[:64], at=now))
            # Outgoing webhooks: queued with the change, so the event exists exactly when it does.
            outbox.enqueue(session, webhook_events.MEETING_TRANSITIONS[to_status], _webhook_data(due, to_status, actor), now)
        return True

    @staticmethod
    def _detail(due: _Due, to_status: str) -> str:
        return f"{due.describe()}, occurrence {due.id}: {due.status} -> {to_status}"

    # ----- the tick -------------------------------------------------------------------------

    def tick(self, stop: threading.Event | None = None) -> TickReport:
        """Start what is due, end what is over, delete rooms of ended meetings that came back.
        A server that does not answer is skipped (its occurrences stay as they are) and tried
        again after a back-off; the others go on. Database errors propagate (the loop backs
        off). `stop` ends the tick between occurrences."""
        now = self.clock()
        with self._sessions() as session:
            starting = [_Due.of(r) for r in session.execute(due_to_start(now))]
            ending = [_Due.of(r) for r in session.execute(due_to_end(now))]
        activated = ended = reconciled = waiting = 0
        errors: dict[str, str] = {}

        for due in starting:
            if stop is not None and stop.is_set():
                break
            if due.ends_at <= now or now < due.opens_at:
                continue  # over (the end scan has it), or its window has not opened
            if not self._may_try(due, now, errors):
                waiting += 1
                continue
            try:
                activated += self._activate(due, ACTOR)
            except LifecycleError as exc:
                waiting += 1
                errors[due.server] = exc.error

        for due in ending:
            if stop is not None and stop.is_set():
                break
            if not self._may_try(due, now, errors):
                waiting += 1
                continue
            try:
                ended += self._finish(due, ENDED, ACTOR)
            except LifecycleError as exc:
                waiting += 1
                errors[due.server] = exc.error

        if stop is None or not stop.is_set():
            reconciled = self._reconcile(now, errors)
        return TickReport(activated, ended, reconciled, waiting, tuple(errors.values()))

    def _may_try(self, due: _Due, now: datetime, errors: dict[str, str]) -> bool:
        """False while `due`'s server is backing off: it is left waiting, and says so once."""
        key = _server_key(due.server)
        if self.outages.ready(key):
            return True
        error = self.outages.error(key)
        errors[due.server] = f"{due.server}: {error}"
        self._mark_waiting(due, error, now)
        return False

    def _reconcile(self, now: datetime, errors: dict[str, str]) -> int:
        """Delete the rooms of recently ended or cancelled occurrences that exist again (a guest
        reconnecting with a still-valid token re-creates a room on a server with auto_create):
        one ListRooms per server, naming only those rooms."""
        with self._sessions() as session:
            over = [_Due.of(r) for r in session.execute(recently_over(now))]
        by_server: dict[str, dict[str, _Due]] = {}
        for due in over:
            by_server.setdefault(due.server, {})[due.room_name] = due
        deleted = 0
        for server, rooms in by_server.items():
            key = _server_key(server)
            if server not in self._gateway.server_names() or not self.outages.ready(key):
                continue
            names = list(rooms)
            try:
                listed = [r for i in range(0, len(names), RECONCILE_BATCH) for r in self._gateway.list_rooms(server, names[i : i + RECONCILE_BATCH])]
            except GatewayError as exc:
                error = f"{exc.category.value} ({exc.detail})"
                if exc.category in _SERVER_DOWN:
                    self.outages.failed(key, error)
                errors[server] = f"{server}: {error}"
                continue
            self.outages.ok(key)
            for room in listed:
                due = rooms.get(room.name)
                if due is not None and self._delete_again(due):
                    deleted += 1
        return deleted

    def _delete_again(self, due: _Due) -> bool:
        try:
            self._gateway.delete_room(due.server, due.room_name)
        except GatewayError as exc:
            if exc.category is not Category.NOT_FOUND:  # not found: another scheduler was first
                log.warning("%s (%s): could not delete its room %s again: %s", due.describe(), due.status, due.target, exc)
            return False
        log.info("%s (%s): its room %s was there again; deleted", due.describe(), due.status, due.target)
        self._audit.record(ACTOR, "meeting.room_deleted_again", due.target, "ok", f"{due.describe()}, occurrence {due.id} is {due.status}")
        return True

    # ----- heartbeat ------------------------------------------------------------------------

    def beat(self, name: str, started_at: datetime, ticks: int, last_error: str, stopped: bool = False) -> None:
        """Write this scheduler's heartbeat (one row per `name`, host:pid). The first beat also
        deletes heartbeats of schedulers gone for a week."""
        now = self.clock()
        values = {"started_at": started_at, "last_tick_at": now, "ticks": ticks, "last_error": last_error[:2000], "stopped": stopped}
        with self._sessions.begin() as session:
            # Update first, insert when there was no row: only this process writes its own name.
            result = session.execute(update(SchedulerBeat).where(SchedulerBeat.name == name).values(**values))
            if result.rowcount == 0:
                session.add(SchedulerBeat(name=name, **values))
                session.execute(delete(SchedulerBeat).where(SchedulerBeat.name != name, SchedulerBeat.last_tick_at < now - BEAT_KEEP))


def scheduler_state(sessions: sessionmaker[Session], now: datetime, interval: float) -> SchedulerState:
    """What the Overview says about the schedulers: running when some heartbeat that is not a
    stop is younger than three intervals; otherwise the newest heartbeat, if any."""
    with sessions() as session:
        beats = session.scalars(select(SchedulerBeat).order_by(SchedulerBeat.last_tick_at.desc()).limit(50)).all()
    fresh_after = as_utc(now) - timedelta(seconds=FRESH_INTERVALS * interval)
    running = [b for b in beats if not b.stopped and as_utc(b.last_tick_at) >= fresh_after]
    newest = running[0] if running else (beats[0] if beats else None)
    if newest is None:
        return SchedulerState(False, None, "", "")
    return SchedulerState(bool(running), as_utc(newest.last_tick_at), newest.name, newest.last_error)


NO_SCHEDULER = (
    "No scheduler is running: scheduled meetings will not start. "
    "Start it with `python scheduler.py` (make run starts it)."
)


# ----- the sidecar's loop -------------------------------------------------------------------


def _database_error(exc: Exception) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def next_tick_in(interval: float, failures: int, elapsed: float) -> float:
    """Seconds until the next tick: the rest of the interval after a good tick (ticks keep their
    pace), 2, 4, 8 ... intervals after one to `failures` failed ticks in a row, at most a minute."""
    if failures:
        return min(interval * 2.0**failures, DATABASE_BACKOFF_MAX)
    return max(interval - elapsed, 0.0)


def run(lifecycle: Lifecycle, interval: float, stop: threading.Event, name: str, *, once: bool = False) -> TickReport | None:
    """Tick every `interval` seconds until `stop` is set (or once), writing the heartbeat after
    each tick and a last one marked stopped at the end. A tick that raises (the database is
    down, or a fault of ours) is logged once per outage and retried after 2, 4 ... intervals, at
    most a minute. Returns the last tick's report (None when none completed)."""
    outages = OutageLog(lifecycle.clock, DATABASE_BACKOFF_MAX)
    started_at = lifecycle.clock()
    ticks, last_error, report = 0, "", None
    try:
        lifecycle.beat(name, started_at, ticks, last_error)
    except SQLAlchemyError as exc:
        outages.failed("database", _database_error(exc))
    while not stop.is_set():
        began = time.monotonic()
        try:
            report = lifecycle.tick(stop)
            ticks += 1
            last_error = "; ".join(report.errors)
            lifecycle.beat(name, started_at, ticks, last_error)
        except SQLAlchemyError as exc:
            last_error = _database_error(exc)
            outages.failed("database", last_error)
        except Exception as exc:  # noqa: BLE001 - a fault of ours must not end the sidecar
            last_error = f"{type(exc).__name__}: {exc}"
            outages.failed("scheduler tick", last_error, exc_info=exc)
        else:
            outages.ok("database")
            outages.ok("scheduler tick")
        if once:
            break
        failures = max(outages.failures("database"), outages.failures("scheduler tick"))
        stop.wait(next_tick_in(interval, failures, time.monotonic() - began))
    try:
        lifecycle.beat(name, started_at, ticks, last_error, stopped=True)
    except SQLAlchemyError as exc:
        log.warning("could not write the scheduler's last heartbeat: %s", _database_error(exc))
    return report
