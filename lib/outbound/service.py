"""Webhook receivers for admins: add (the signing secret is shown once), change, remove, pause,
resume, test; the receivers with their state, and the deliveries log. Every method takes the
actor and checks `manage_webhooks` through lib/auth/policy.py; each change is one audited
action (webhook.add, .update, .remove, .pause, .resume, .test). Audit rows name a receiver by
its id and host, never the URL's path or query, and never hold the secret."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..auth.policy import Actor, Invalid, Policy
from ..models import OutboxEvent, WebhookDelivery, WebhookReceiver, as_utc, utcnow
from ..secretbox import SecretBox
from . import events, signing
from .outbox import DELIVERING, DELIVERY_STATUSES, FAILED, PENDING, enqueue, subscribed

CAPABILITY = "manage_webhooks"
MAX_URL = 2048
MAX_DESCRIPTION = 500
MAX_LISTED = 1000


class NotFound(Invalid):
    """No such receiver."""


class Conflict(Invalid):
    """Someone changed it since it was read; reload and try again."""


@dataclass(frozen=True)
class ReceiverView:
    id: int
    url: str
    events: tuple[str, ...]
    description: str
    created_by: str
    created_at: datetime
    paused_at: datetime | None
    paused_reason: str
    consecutive_failures: int
    version: int
    waiting: int  # deliveries not yet delivered nor given up

    @property
    def state(self) -> str:
        return "paused" if self.paused_at is not None else "active"


@dataclass(frozen=True)
class NewReceiver:
    """What add returns: the receiver and its signing secret, which is never shown again."""

    receiver: ReceiverView
    secret: str = field(repr=False)


@dataclass(frozen=True)
class DeliveryView:
    id: int
    receiver_id: int
    receiver_url: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    delivered_at: datetime | None


def host_of(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"


def validate_url(url: str) -> str:
    """An http:// or https:// URL with a host, no credentials and no fragment."""
    url = url.strip()
    if not url:
        raise Invalid("A receiver needs a URL.")
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise Invalid(f"A receiver's URL has no spaces and at most {MAX_URL} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise Invalid("That is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Invalid("A receiver's URL starts with http:// or https://.")
    if not parts.hostname:
        raise Invalid("A receiver's URL names a host.")
    if parts.username is not None or parts.password is not None:
        raise Invalid("A receiver's URL may not carry a user name or password (deliveries are signed instead).")
    if parts.fragment:
        raise Invalid("A receiver's URL has no #fragment (it is never sent).")
    return url


def validate_events(chosen: Iterable[str]) -> tuple[str, ...]:
    picked = set(chosen)
    unknown = picked - set(events.EVENT_TYPES)
    if unknown:
        raise Invalid(f"Unknown event type(s): {', '.join(sorted(unknown))}. Known: {', '.join(events.EVENT_TYPES)}.")
    if not picked:
        raise Invalid("Pick at least one event type.")
    return tuple(t for t in events.EVENT_TYPES if t in picked)


def _description(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise Invalid(f"A description can be at most {MAX_DESCRIPTION} characters.")
    return text


class WebhookService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: Policy,
        box: SecretBox,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._policy = policy
        self._box = box
        self._clock = clock
        self._on_queued = on_queued  # wakes this process's deliverer

    def permits(self, actor: Actor) -> bool:
        return self._policy.permits(actor, CAPABILITY)

    # ----- changes ---------------------------------------------------------------------------

    def add(self, actor: Actor, url: str, event_types: Iterable[str], description: str = "") -> NewReceiver:
        with self._policy.act(actor, CAPABILITY, "webhook.add", f"webhook {host_of(url)}") as outcome:
            url = validate_url(url)
            chosen = validate_events(event_types)
            text = _description(description)
            secret = signing.new_secret()
            with self._sessions.begin() as s:
                row = WebhookReceiver(
                    url=url, events=",".join(chosen), secret_encrypted=self._box.encrypt(secret), description=text,
                    created_by=actor.name[:64], created_at=self._clock(),
                )  # fmt: skip
                s.add(row)
                s.flush()
                receiver_id = row.id
            outcome.detail = f"receiver {receiver_id} at {host_of(url)} for {', '.join(chosen)}"
        return NewReceiver(self.get(actor, receiver_id), secret)

    def update(self, actor: Actor, receiver_id: int, event_types: Iterable[str], description: str, version: int | None = None) -> ReceiverView:
        """Change what a receiver gets and its description (as read at `version`, if given)."""
        with self._policy.act(actor, CAPABILITY, "webhook.update", f"webhook {receiver_id}") as outcome:
            chosen = validate_events(event_types)
            text = _description(description)
            with self._sessions.begin() as s:
                row = self._receiver(s, receiver_id)
                if version is not None and row.version != version:
                    raise Conflict("Someone changed this receiver since you opened it: reload it and try again.")
                changed = s.execute(
                    update(WebhookReceiver)
                    .where(WebhookReceiver.id == receiver_id, WebhookReceiver.version == row.version)
                    .values(events=",".join(chosen), description=text, version=WebhookReceiver.version + 1)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if not changed:
                    raise Conflict("This receiver changed meanwhile: reload it and try again.")
            outcome.detail = f"events {', '.join(chosen)}"
        return self.get(actor, receiver_id)

    def remove(self, actor: Actor, receiver_id: int) -> None:
        """Forget a receiver, its secret and its deliveries."""
        with self._policy.act(actor, CAPABILITY, "webhook.remove", f"webhook {receiver_id}") as outcome:
            with self._sessions.begin() as s:
                row = self._receiver(s, receiver_id)
                outcome.detail = f"at {host_of(row.url)}"
                s.execute(delete(WebhookDelivery).where(WebhookDelivery.receiver_id == receiver_id))
                s.execute(delete(WebhookReceiver).where(WebhookReceiver.id == receiver_id))

    def pause(self, actor: Actor, receiver_id: int, reason: str = "") -> ReceiverView:
        """No attempts until resumed; events keep being queued for it meanwhile."""
        with self._policy.act(actor, CAPABILITY, "webhook.pause", f"webhook {receiver_id}") as outcome:
            why = (reason.strip() or f"paused by {actor.name}")[:MAX_DESCRIPTION]
            with self._sessions.begin() as s:
                row = self._receiver(s, receiver_id)
                if row.paused_at is not None:
                    raise Invalid("This receiver is paused already.")
                s.execute(
                    update(WebhookReceiver)
                    .where(WebhookReceiver.id == receiver_id, WebhookReceiver.paused_at.is_(None))
                    .values(paused_at=self._clock(), paused_reason=why, version=WebhookReceiver.version + 1)
                    .execution_options(synchronize_session=False)
                )
            outcome.detail = why
        return self.get(actor, receiver_id)

    def resume(self, actor: Actor, receiver_id: int) -> ReceiverView:
        """Attempts again, at once for every delivery still waiting; its failure count restarts."""
        with self._policy.act(actor, CAPABILITY, "webhook.resume", f"webhook {receiver_id}") as outcome:
            now = self._clock()
            with self._sessions.begin() as s:
                row = self._receiver(s, receiver_id)
                if row.paused_at is None:
                    raise Invalid("This receiver is not paused.")
                s.execute(
                    update(WebhookReceiver)
                    .where(WebhookReceiver.id == receiver_id)
                    .values(paused_at=None, paused_reason="", consecutive_failures=0, version=WebhookReceiver.version + 1)
                    .execution_options(synchronize_session=False)
                )
                requeued = s.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.receiver_id == receiver_id, WebhookDelivery.status.in_((PENDING, FAILED)))
                    .values(next_attempt_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
            outcome.detail = f"{requeued} waiting deliveries re-queued"
        self._on_queued()
        return self.get(actor, receiver_id)

    def test(self, actor: Actor, receiver_id: int) -> int:
        """Queue a `ping` event for one receiver; returns its delivery's id (see `deliveries`)."""
        with self._policy.act(actor, CAPABILITY, "webhook.test", f"webhook {receiver_id}") as outcome:
            with self._sessions.begin() as s:
                row = self._receiver(s, receiver_id)
                if row.paused_at is not None:
                    raise Invalid("This receiver is paused: resume it to test it.")
                event_id = enqueue(s, events.PING, events.ping_data(receiver_id, actor.name), self._clock(), receiver_id=receiver_id)
                delivery_id = s.scalar(select(WebhookDelivery.id).where(WebhookDelivery.event_id == event_id))
            outcome.detail = f"delivery {delivery_id}"
        self._on_queued()
        return int(delivery_id)  # type: ignore[arg-type]

    @staticmethod
    def _receiver(s: Session, receiver_id: int) -> WebhookReceiver:
        row = s.get(WebhookReceiver, receiver_id)
        if row is None:
            raise NotFound(f"There is no webhook receiver {receiver_id}.")
        return row

    # ----- reading ---------------------------------------------------------------------------

    def get(self, actor: Actor, receiver_id: int) -> ReceiverView:
        self._policy.require(actor, CAPABILITY, "webhook.read", f"webhook {receiver_id}")
        with self._sessions() as s:
            views = self._views(s, WebhookReceiver.id == receiver_id)
        if not views:
            raise NotFound(f"There is no webhook receiver {receiver_id}.")
        return views[0]

    def receivers(self, actor: Actor) -> list[ReceiverView]:
        self._policy.require(actor, CAPABILITY, "webhook.read", "webhooks")
        with self._sessions() as s:
            return self._views(s)

    @staticmethod
    def _views(s: Session, *where: object) -> list[ReceiverView]:
        waiting = dict(
            s.execute(
                select(WebhookDelivery.receiver_id, func.count())
                .where(WebhookDelivery.status.in_((PENDING, FAILED, DELIVERING)))
                .group_by(WebhookDelivery.receiver_id)
            ).all()
        )
        rows = s.scalars(select(WebhookReceiver).where(*where).order_by(WebhookReceiver.id)).all()  # type: ignore[arg-type]
        return [
            ReceiverView(
                r.id, r.url, subscribed(r.events), r.description, r.created_by, as_utc(r.created_at),
                as_utc(r.paused_at) if r.paused_at else None, r.paused_reason, r.consecutive_failures, r.version, waiting.get(r.id, 0),
            )  # fmt: skip
            for r in rows
        ]

    def deliveries(
        self, actor: Actor, *, receiver_id: int | None = None, status: str | None = None, limit: int = 200, before: tuple[datetime, int] | None = None
    ) -> list[DeliveryView]:
        """The newest deliveries first, optionally of one receiver and in one status; `before`
        (a delivery's creation time and id) pages on to older ones."""
        self._policy.require(actor, CAPABILITY, "webhook.read", "webhook deliveries")
        if status is not None and status not in DELIVERY_STATUSES:
            raise Invalid(f"A delivery's status is one of {', '.join(DELIVERY_STATUSES)}.")
        query = (
            select(WebhookDelivery, OutboxEvent.uid, OutboxEvent.type, WebhookReceiver.url)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .join(WebhookReceiver, WebhookReceiver.id == WebhookDelivery.receiver_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(max(1, min(limit, MAX_LISTED)))
        )
        if receiver_id is not None:
            query = query.where(WebhookDelivery.receiver_id == receiver_id)
        if before is not None:
            at, did = before
            query = query.where((WebhookDelivery.created_at < at) | ((WebhookDelivery.created_at == at) & (WebhookDelivery.id < did)))
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        with self._sessions() as s:
            return [
                DeliveryView(
                    d.id, d.receiver_id, url, uid, event_type, d.status, d.attempts, as_utc(d.created_at), as_utc(d.next_attempt_at),
                    as_utc(d.last_attempt_at) if d.last_attempt_at else None, d.last_status_code, d.last_error,
                    as_utc(d.delivered_at) if d.delivered_at else None,
                )  # fmt: skip
                for d, uid, event_type, url in s.execute(query).all()
            ]
