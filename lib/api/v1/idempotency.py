"""Idempotency-Key for the API's creates: a retried request (same caller, same key, same
request) gets the first answer again instead of creating twice; the same key with another
request is refused; two at once with one key, the second is told to retry. Answers are kept a
day (idempotent_responses)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from fastapi import Request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import JSONResponse

from ...models import IdempotentResponse, utcnow
from .deps import Caller
from .problems import ApiProblem

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
MAX_KEY = 200
IN_PROGRESS = 0


def run_once(
    sessions: sessionmaker[Session], request: Request, who: Caller, request_body: str, create: Callable[[], tuple[int, object]]
) -> JSONResponse:
    """Answer with `create()` (status, JSON-able body), once per Idempotency-Key."""
    key = request.headers.get(HEADER)
    if key is None:
        status, body = create()
        return JSONResponse(body, status_code=status)
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise ApiProblem(422, "invalid_idempotency_key", f"{HEADER} must be 1 to {MAX_KEY} printable characters.")
    fingerprint = hashlib.sha256(f"{request.method} {request.url.path}\n{request_body}".encode()).hexdigest()
    now = utcnow()
    try:
        with sessions.begin() as s:
            s.execute(delete(IdempotentResponse).where(IdempotentResponse.created_at < now - KEEP))
            s.add(IdempotentResponse(caller=who.bucket, key=key, fingerprint=fingerprint, status=IN_PROGRESS, body="", created_at=now))
    except IntegrityError:
        with sessions() as s:
            kept = s.get(IdempotentResponse, (who.bucket, key))
        if kept is None:  # expired between the two statements: the caller may simply retry
            raise ApiProblem(409, "idempotency_in_progress", "Retry the request.", headers={"Retry-After": "1"}) from None
        if kept.fingerprint != fingerprint:
            raise ApiProblem(422, "idempotency_key_reused", f"This {HEADER} was used for another request.") from None
        if kept.status == IN_PROGRESS:
            raise ApiProblem(409, "idempotency_in_progress", f"A request with this {HEADER} is still running.", headers={"Retry-After": "1"}) from None
        return JSONResponse(json.loads(kept.body), status_code=kept.status, headers={"Idempotent-Replayed": "true"})
    try:
        status, body = create()
    except BaseException:
        with sessions.begin() as s:  # not done: the same key may try again
            s.execute(delete(IdempotentResponse).where(IdempotentResponse.caller == who.bucket, IdempotentResponse.key == key))
        raise
    encoded = JSONResponse(body, status_code=status)
    with sessions.begin() as s:
        row = s.get(IdempotentResponse, (who.bucket, key))
        if row is not None:
            row.status, row.body = status, encoded.body.decode()
    return encoded
