"""The audit trail: every sign-in, control action, token issued and settings change, with who,
when, what, target and result. Never holds a secret: callers pass names, not credentials."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import AuditEvent
from ..spreadsheet import safe_cell

RESULTS = ("ok", "failed", "refused")


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    actor: str
    action: str
    target: str
    result: str
    detail: str
    address: str
    id: int = 0


def _text(value: str, limit: int) -> str:
    """What is kept of a value: at most `limit` characters, NUL shown as \\0 (PostgreSQL keeps no
    NUL in text, and a name typed with one must not make its refusal go unrecorded)."""
    return value.replace("\x00", "\\0")[:limit]


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, actor: str, action: str, target: str = "", result: str = "ok", detail: str = "", address: str = "") -> None:
        if result not in RESULTS:
            raise ValueError(f"result must be one of {RESULTS}")
        with self._sessions.begin() as session:
            session.add(
                AuditEvent(
                    actor=_text(actor, 64), action=_text(action, 64), target=_text(target, 2000), result=result,
                    detail=_text(detail, 4000), address=_text(address, 64),
                )
            )

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        result: str | None = None,
        text: str | None = None,
        limit: int = 5000,
        before: tuple[datetime, int] | None = None,
    ) -> list[AuditRecord]:
        """Newest first; `before` (a record's time and id) pages on to the older ones."""
        # Filters are matched against values as stored (NUL as \0): PostgreSQL refuses a NUL in
        # a parameter, and SQLite ends the pattern at it.
        actor, action, text = (None if v is None else v.replace("\x00", "\\0") for v in (actor, action, text))
        stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
        if before is not None:
            at, rid = before
            stmt = stmt.where((AuditEvent.at < at) | ((AuditEvent.at == at) & (AuditEvent.id < rid)))
        if since:
            stmt = stmt.where(AuditEvent.at >= since)
        if until:
            stmt = stmt.where(AuditEvent.at <= until)
        if actor:
            # A user's own actions and those of their API keys ("alice (key lkd_...)"), in any case.
            name = actor.lower()
            keyed = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " (key %"
            stmt = stmt.where((func.lower(AuditEvent.actor) == name) | func.lower(AuditEvent.actor).like(keyed, escape="\\"))
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if result:
            stmt = stmt.where(AuditEvent.result == result)
        if text:
            # The text is looked for as typed: % and _ are not wildcards here.
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(AuditEvent.target.ilike(like, escape="\\") | AuditEvent.detail.ilike(like, escape="\\"))
        with self._sessions() as session:
            rows = session.scalars(stmt).all()
        # SQLite hands back naive datetimes; every time stored here is UTC.
        return [
            AuditRecord(r.at if r.at.tzinfo else r.at.replace(tzinfo=timezone.utc), r.actor, r.action, r.target, r.result, r.detail, r.address, r.id)
            for r in rows
        ]

    def actions(self) -> list[str]:
        with self._sessions() as session:
            return sorted(session.scalars(select(AuditEvent.action).distinct()).all())


def to_csv(records: list[AuditRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "actor", "action", "target", "result", "detail", "address"])
    for r in records:
        cells = [r.at.isoformat(), r.actor, r.action, r.target, r.result, r.detail, r.address]
        writer.writerow([safe_cell(c) for c in cells])
    return out.getvalue()

