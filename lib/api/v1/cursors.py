"""The opaque cursors of the API's lists: a row's place in its order (a time and an id), which
the next page starts after. Opaque to clients, checked when they come back."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone

from .problems import ApiProblem


def encode(at: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), row_id]).encode()).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, int] | None:
    """(time, id) of a cursor this API gave; 422 invalid_cursor for anything else."""
    if cursor is None:
        return None
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(at)
        if not isinstance(row_id, int) or isinstance(row_id, bool) or when.tzinfo is None:
            raise ValueError(cursor)
        return when.astimezone(timezone.utc), row_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        raise ApiProblem(422, "invalid_cursor", "The cursor is not one this API gave.") from None


def require_offset(value: datetime | None, name: str) -> datetime | None:
    """A query's time must say its offset: a bare time would be read in nobody knows which zone."""
    if value is not None and value.tzinfo is None:
        raise ApiProblem(422, "invalid_request", f"{name} needs a time zone offset (e.g. 2026-12-01T09:00:00Z).")
    return value
