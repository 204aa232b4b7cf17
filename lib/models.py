"""SQLAlchemy models of the operational database. The migrations in migrations/ create them."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """A time read back from the database, aware and in UTC: SQLite hands back naive datetimes
    (and stores aware ones without their offset); every time stored here is UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class StoredServer(Base):
    """A LiveKit server an admin added on the Settings page; the secret is encrypted at rest."""

    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    api_key: Mapped[str] = mapped_column(String(256), nullable=False)
    api_secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )


class User(Base):
    """A person who signs in to the dashboard. Only a bcrypt hash of the password is stored."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's random token is stored."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LoginAttempt(Base):
    """One sign-in attempt, kept to refuse further attempts after repeated failures."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    address: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, nullable=False)


class AuditEvent(Base):
    """Who did what, to what, when, and how it went."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    target: Mapped[str] = mapped_column(Text, nullable=False, default="")
    result: Mapped[str] = mapped_column(String(16), nullable=False)  # ok, failed, refused
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    address: Mapped[str] = mapped_column(String(64), nullable=False, default="")


class ChangeVersion(Base):
    """A counter raised with every change of one kind of shared setting (e.g. "servers"), so
    other processes and nodes notice the change by polling one small row."""

    __tablename__ = "change_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Meeting(Base):
    """A meeting or a recurring series: what it is, who hosts it and who may join. Each time it
    takes place is an `Occurrence` (one for a single meeting); the join link (`link_slug`) is the
    meeting's, so a series keeps one link. `link_version` is raised when the host rotates the
    link, which revokes every invite signed before. `version` guards edits (optimistic updates);
    `sequence` is the calendar's SEQUENCE, raised on every change a calendar should see."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    server: Mapped[str] = mapped_column(String(64), nullable=False)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False)
    instant: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    private: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(100), nullable=True)
    max_participants: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    early_join_minutes: Mapped[int] = mapped_column(Integer, default=5, nullable=False)
    guests_before_host: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    keep_chat: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    recurrence: Mapped[str | None] = mapped_column(Text, nullable=True)  # lib.meetings.recurrence JSON
    # Where the series' rule starts as last planned (its calendar DTSTART); a single meeting's start.
    first_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    link_slug: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    link_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    uid: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)  # the calendar UID
    sequence: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class Occurrence(Base):
    """One time a meeting takes place, with its own room and status (scheduled, active, ended,
    cancelled). `original_start` is the series' own start for this occurrence (its calendar
    RECURRENCE-ID), kept when the occurrence is moved alone. `waiting_since` and `last_error`
    say why the scheduler could not act (its server did not answer). `version` is raised by
    every change, so each transition is a conditional update that two schedulers never both win."""

    __tablename__ = "occurrences"
    # The scheduler's two scans: what is due to start, what is due to end.
    __table_args__ = (
        Index("ix_occurrences_status_starts_at", "status", "starts_at"),
        Index("ix_occurrences_status_ends_at", "status", "ends_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    original_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    moved: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    room_name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, nullable=False, default="")


class CoHost(Base):
    """A user who hosts a meeting beside its host."""

    __tablename__ = "meeting_cohosts"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Invitee(Base):
    """An email address on a private meeting's list (normalised; unique per meeting)."""

    __tablename__ = "meeting_invitees"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)


class Transition(Base):
    """One status change of an occurrence, written in the same transaction as the change: the
    record that counts how often each meeting was started and ended."""

    __tablename__ = "meeting_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("occurrences.id", ondelete="CASCADE"), nullable=False, index=True)
    from_status: Mapped[str] = mapped_column(String(16), nullable=False)
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class JoinGrant(Base):
    """A join token issued for an occurrence: who it was for (never the token). The attendance
    report reads the email given at join from here, by the participant's identity."""

    __tablename__ = "join_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("occurrences.id", ondelete="CASCADE"), nullable=False, index=True)
    identity: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    host: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class JoinAttempt(Base):
    """A join with a password or invite, kept per meeting and address to slow guessing."""

    __tablename__ = "join_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True)
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, nullable=False)


class SchedulerBeat(Base):
    """A scheduler process's heartbeat: the Overview says no scheduler runs when none is fresh."""

    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_tick_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ticks: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    last_error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    stopped: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class ApiKey(Base):
    """A key for the REST API, acting as its owner with the key's own role. Only the SHA-256 of
    the key is stored; `prefix` (the key's first characters) is what lists and the audit show."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_address: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str] = mapped_column(String(64), nullable=False, default="")


class IdempotentResponse(Base):
    """The answer given to a create carrying an Idempotency-Key, so a retry gets it again
    instead of creating twice. `fingerprint` is the SHA-256 of the method, path and body."""

    __tablename__ = "idempotent_responses"

    caller: Mapped[str] = mapped_column(String(80), primary_key=True)  # key:<id> or user:<id>
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)


class WebhookReceiver(Base):
    """A URL an admin registered for outgoing webhooks (lib/outbound/): the event types it gets
    and its signing secret, encrypted at rest. `consecutive_failures` counts failed attempts
    since its last success; at a threshold it is paused (`paused_at`, `paused_reason`) and gets
    no attempts until an admin resumes it. `version` guards edits."""

    __tablename__ = "webhook_receivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    events: Mapped[str] = mapped_column(Text, nullable=False)  # event types, comma-separated
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    paused_reason: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)


class OutboxEvent(Base):
    """An event for the receivers, written in the same transaction as the change it reports.
    `body` is the exact JSON sent (the same bytes on every retry); `source_key` makes an event
    from a redelivered LiveKit webhook a duplicate rather than a second event."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)  # the payload's "id"
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    source_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)


class WebhookDelivery(Base):
    """One event for one receiver: pending, delivering (claimed by a deliverer until
    `next_attempt_at`), delivered, failed (tried again at `next_attempt_at`) or given_up.
    `last_error` is a short description of the last failure, never a secret or the URL."""

    __tablename__ = "webhook_deliveries"
    # The deliverer's scan: what is due, by status and time.
    __table_args__ = (Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    receiver_id: Mapped[int] = mapped_column(ForeignKey("webhook_receivers.id", ondelete="CASCADE"), nullable=False, index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False, index=True)
