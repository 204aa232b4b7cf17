"""The background sender of outgoing webhooks: claims due deliveries, POSTs them (lib/outbound/
sender.py) and records how each went, with back-off, giving up and pausing (lib/outbound/retry.py).

Concurrency model: any number of deliverers (the dashboard's server process, a scheduler) may
run against one database. A delivery is claimed by one conditional UPDATE on its status, due
time and attempt count, which raises the attempt count and leases it (`delivering` until
`next_attempt_at`): two processes never send the same attempt, and a process that dies mid-send
leaves a lease that expires and is claimed again. No transaction is open while a request is in
flight, so a receiver that hangs holds one worker thread and nothing else: emitters only insert
rows and never wait for this. Each process sends at most one delivery per receiver at a time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..auth.audit import AuditLog
from ..models import OutboxEvent, WebhookDelivery, WebhookReceiver, utcnow
from ..secretbox import SecretBox, SecretBoxError
from . import signing
from .outbox import DELIVERED, DELIVERING, FAILED, GIVEN_UP, PENDING
from .retry import RetryPolicy
from .sender import Answer, Post

log = logging.getLogger(__name__)

DUE = (PENDING, FAILED, DELIVERING)  # a delivering row is due again once its lease ran out
LEASE_MARGIN = 30.0  # seconds a claim outlives the request's timeout
BATCH = 100
KEEP = timedelta(days=30)  # finished deliveries (and events left without any) are deleted after this
PRUNE_SECONDS = 3600.0


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    receiver_id: int
    attempts: int  # as claimed: this attempt's number


def _host(url: str) -> str:
    """What logs say of a receiver: its host, never the path or query (which may hold a token)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "?"


class Deliverer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        box: SecretBox,
        *,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 10.0,
        poll_seconds: float = 1.0,
        workers: int = 4,
        clock: Callable[[], datetime] = utcnow,
        audit: AuditLog | None = None,
    ) -> None:
        """`audit`: where a receiver paused for its failures is recorded (as an admin's pause is)."""
        self._sessions = sessions
        self._audit = audit
        self._box = box
        self.retry = retry
        self._timeout = timeout
        self._poll = poll_seconds
        self._workers = workers
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._busy: set[int] = set()  # receivers with a delivery in flight from this process
        self._posts: dict[int, Post] = {}
        self._threads: list[threading.Thread] = []

    # ----- running ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        self._threads = [threading.Thread(target=self._loop, name="webhook-deliverer", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"webhook-sender-{i}", daemon=True) for i in range(self._workers)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming, abort requests in flight (their claims are released, uncounted) and
        wait for the threads. Safe to call when not started."""
        if not self._threads:
            return
        self._stop.set()
        self._wake.set()
        with self._lock:
            posts = list(self._posts.values())
        for post in posts:
            post.abort()
        for _ in range(self._workers):
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        pruned_at = -PRUNE_SECONDS
        failing = False
        while not self._stop.is_set():
            try:
                self.claim_due()
                now_mono = time.monotonic()
                if now_mono - pruned_at >= PRUNE_SECONDS:
                    pruned_at = now_mono
                    self.prune()
                if failing:
                    log.info("webhook deliverer: the database answers again")
                failing = False
            except SQLAlchemyError as exc:
                if not failing:
                    log.warning("webhook deliverer: the database failed (%s); retrying", type(exc).__name__)
                failing = True
            except Exception:  # noqa: BLE001 - a fault of ours must not end the thread
                log.exception("webhook deliverer: unexpected error; retrying")
            self._wake.wait(self._poll)
            self._wake.clear()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self.send(job)
            except Exception:  # noqa: BLE001 - logged; the lease lets the delivery be tried again
                log.exception("webhook delivery %s: unexpected error", job.delivery_id)
            finally:
                with self._lock:
                    self._busy.discard(job.receiver_id)
                    self._posts.pop(job.delivery_id, None)
                self._wake.set()

    # ----- claiming ---------------------------------------------------------------------------

    def _due(self, now: datetime) -> list[tuple[int, int, int]]:
        """(delivery, receiver, attempts) of what is due, oldest first, at most one per receiver."""
        with self._sessions() as session:
            rows = session.execute(
                select(WebhookDelivery.id, WebhookDelivery.receiver_id, WebhookDelivery.attempts)
                .join(WebhookReceiver, WebhookReceiver.id == WebhookDelivery.receiver_id)
                .where(WebhookDelivery.status.in_(DUE), WebhookDelivery.next_attempt_at <= now, WebhookReceiver.paused_at.is_(None))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(BATCH)
            ).all()
        first: dict[int, tuple[int, int, int]] = {}
        for delivery_id, receiver_id, attempts in rows:
            first.setdefault(receiver_id, (delivery_id, receiver_id, attempts))
        return list(first.values())

    def claim_due(self) -> int:
        """Claim what is due (one per receiver not already busy here) and hand it to the
        workers; returns how many were claimed."""
        now = self._clock()
        claimed = 0
        for delivery_id, receiver_id, attempts in self._due(now):
            if self._stop.is_set():
                break
            with self._lock:
                if receiver_id in self._busy:
                    continue
                self._busy.add(receiver_id)
            job = self.claim(delivery_id, receiver_id, attempts, now)
            if job is None:
                with self._lock:
                    self._busy.discard(receiver_id)
                continue
            self._jobs.put(job)
            claimed += 1
        return claimed

    def deliver_due(self) -> int:
        """Claim and send what is due now (one per receiver), in the calling thread, without
        the background threads: for tests that step a clock, and one-shot tools. Returns how
        many attempts were made."""
        now = self._clock()
        sent = 0
        for delivery_id, receiver_id, attempts in self._due(now):
            job = self.claim(delivery_id, receiver_id, attempts, now)
            if job is not None:
                self.send(job)
                sent += 1
        return sent

    def claim(self, delivery_id: int, receiver_id: int, attempts: int, now: datetime) -> _Job | None:
        """The conditional UPDATE that makes this process the one sending this attempt."""
        lease = now + timedelta(seconds=self._timeout * 2 + LEASE_MARGIN)
        active = select(WebhookReceiver.id).where(WebhookReceiver.paused_at.is_(None))
        with self._sessions.begin() as session:
            result = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempts, WebhookDelivery.status.in_(DUE),
                    WebhookDelivery.next_attempt_at <= now, WebhookDelivery.receiver_id.in_(active),
                )
                .values(status=DELIVERING, attempts=WebhookDelivery.attempts + 1, last_attempt_at=now, next_attempt_at=lease)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
        return _Job(delivery_id, receiver_id, attempts + 1) if result.rowcount == 1 else None

    # ----- sending ----------------------------------------------------------------------------

    def send(self, job: _Job) -> Answer | None:
        """Send one claimed attempt and record how it went. None when the delivery or its
        receiver is gone meanwhile."""
        with self._sessions() as session:
            row = session.execute(
                select(OutboxEvent.uid, OutboxEvent.type, OutboxEvent.body, WebhookReceiver.url, WebhookReceiver.secret_encrypted)
                .join(WebhookDelivery, WebhookDelivery.event_id == OutboxEvent.id)
                .join(WebhookReceiver, WebhookReceiver.id == WebhookDelivery.receiver_id)
                .where(WebhookDelivery.id == job.delivery_id)
            ).first()
        if row is None:
            return None
        uid, event_type, text, url, encrypted = row
        body = text.encode()
        try:
            secret = self._box.decrypt(encrypted)
        except SecretBoxError:
            answer = Answer(None, "the signing secret cannot be decrypted (DASHBOARD_SECRET_KEY changed): remove the receiver and add it again")
        else:
            headers = {
                signing.SIGNATURE_HEADER: signing.header(secret, int(self._clock().timestamp()), body),
                signing.EVENT_HEADER: event_type,
                signing.DELIVERY_HEADER: str(job.delivery_id),
                "X-Dashboard-Event-Id": uid,
            }
            post = Post(url, body, headers, self._timeout)
            with self._lock:
                self._posts[job.delivery_id] = post
            if self._stop.is_set():
                post.abort()
            answer = post.send()
        if self._stop.is_set() and not answer.ok:
            self._release(job)
            return answer
        self._record(job, answer, _host(url))
        return answer

    def _release(self, job: _Job) -> None:
        """An attempt cut short by stopping: due again at once, not counted against anyone."""
        with self._sessions.begin() as session:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.status == DELIVERING, WebhookDelivery.attempts == job.attempts)
                .values(status=FAILED if job.attempts > 1 else PENDING, attempts=job.attempts - 1, next_attempt_at=self._clock())
                .execution_options(synchronize_session=False)
            )

    def _record(self, job: _Job, answer: Answer, host: str) -> None:
        now = self._clock()
        mine = (WebhookDelivery.id == job.delivery_id, WebhookDelivery.status == DELIVERING, WebhookDelivery.attempts == job.attempts)
        with self._sessions.begin() as session:
            if answer.ok:
                done = session.execute(
                    update(WebhookDelivery).where(*mine)
                    .values(status=DELIVERED, delivered_at=now, last_status_code=answer.status_code, last_error="")
                    .execution_options(synchronize_session=False)
                ).rowcount  # fmt: skip
                if done:
                    session.execute(
                        update(WebhookReceiver)
                        .where(WebhookReceiver.id == job.receiver_id, WebhookReceiver.consecutive_failures != 0)
                        .values(consecutive_failures=0)
                        .execution_options(synchronize_session=False)
                    )
                return
            given_up = self.retry.gives_up(job.attempts)
            values: dict[str, object] = {"status": GIVEN_UP if given_up else FAILED, "last_status_code": answer.status_code, "last_error": answer.error}
            if not given_up:
                values["next_attempt_at"] = now + timedelta(seconds=self.retry.delay(job.attempts))
            done = session.execute(update(WebhookDelivery).where(*mine).values(**values).execution_options(synchronize_session=False)).rowcount
            if not done:
                return  # its lease ran out and another deliverer took it over, or it was removed
            session.execute(
                update(WebhookReceiver)
                .where(WebhookReceiver.id == job.receiver_id)
                .values(consecutive_failures=WebhookReceiver.consecutive_failures + 1)
                .execution_options(synchronize_session=False)
            )
            failures = session.scalar(select(WebhookReceiver.consecutive_failures).where(WebhookReceiver.id == job.receiver_id)) or 0
            paused = False
            if self.retry.pauses(failures):
                reason = f"{failures} failed attempts in a row; the last: {answer.error}"[:500]
                paused = bool(
                    session.execute(
                        update(WebhookReceiver)
                        .where(WebhookReceiver.id == job.receiver_id, WebhookReceiver.paused_at.is_(None))
                        .values(paused_at=now, paused_reason=reason, version=WebhookReceiver.version + 1)
                        .execution_options(synchronize_session=False)
                    ).rowcount
                )
        outcome = "given up" if given_up else f"retried in {self.retry.delay(job.attempts):g} s"
        log.info("webhook delivery %s to %s, attempt %s: %s; %s", job.delivery_id, host, job.attempts, answer.error, outcome)
        if paused:
            log.warning("webhook receiver %s (%s) paused after %s failed attempts in a row: %s", job.receiver_id, host, failures, answer.error)
            if self._audit is not None:
                detail = f"paused by itself: {failures} failed attempts in a row; the last: {answer.error}"
                self._audit.record("dashboard", "webhook.pause", f"webhook {job.receiver_id} at {host}", "ok", detail)

    # ----- housekeeping -----------------------------------------------------------------------

    def prune(self) -> None:
        """Delete deliveries finished more than KEEP ago, then events left without deliveries."""
        cutoff = self._clock() - KEEP
        with self._sessions.begin() as session:
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.status.in_((DELIVERED, GIVEN_UP)), WebhookDelivery.created_at < cutoff))
            session.execute(
                delete(OutboxEvent).where(OutboxEvent.created_at < cutoff, ~select(WebhookDelivery.id).where(WebhookDelivery.event_id == OutboxEvent.id).exists())
            )
