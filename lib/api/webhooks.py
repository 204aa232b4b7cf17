"""POST /webhooks/livekit: LiveKit's webhook deliveries, verified against the configured servers
and handed to the history store.

Open without a session (lib/api/signin.OPEN_PREFIXES): the signature is the authentication. A
rejected delivery writes nothing, and no answer or log line repeats the body or the token.

Answers: 200 {"stored": n} (n = 0 for an event that is not history), 200 {"stored": 0,
"duplicate": true} for an event already stored or queued, 400 {"error": ...} for a body that is
not a valid event (nothing written), 401 unsigned or forged, 413 too large, 503 starting, no
history store, or one that cannot be read.
"""

from __future__ import annotations

import logging

from livekit.protocol.webhook import WebhookEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..config import ServerConfig
from ..history.webhooks import WebhookInvalid, WebhookMalformed, WebhookRejected, to_events, verify
from ..outbound.events import LIVEKIT_EVENTS
from .signin import client_address
from .state import services_of

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # LiveKit's events are a few kB; a room with many tracks stays far below


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    """The body, refusing one over MAX_BODY_BYTES as soon as that is known (header or stream)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def livekit_webhook(request: Request) -> JSONResponse:
    svc = services_of(request)
    if svc is None:
        return _error("the dashboard is starting", 503)
    try:
        body = await _read_body(request)
    except _TooLarge:
        return _error(f"a webhook body is at most {MAX_BODY_BYTES} bytes", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _error("the body is not UTF-8 JSON", 400)

    def authenticate() -> tuple[ServerConfig, WebhookEvent]:
        # The registry reads SQL and decrypts secrets: off the event loop.
        return verify(text, request.headers.get("authorization", ""), svc.servers.list())

    try:
        server, event = await run_in_threadpool(authenticate)
    except WebhookRejected as exc:
        log.warning("webhook from %s rejected: %s", client_address(request), exc)
        return _error("the webhook signature is missing or not valid", 401)
    except WebhookMalformed as exc:
        log.warning("webhook from %s signed by a known server but malformed: %s", client_address(request), exc)
        return _error("the body is not a LiveKit webhook event", 400)

    try:
        events = to_events(server.name, event)
    except WebhookInvalid as exc:
        log.warning("webhook from %s signed by %s but not valid: %s", client_address(request), server.name, exc)
        return _error(f"the webhook event is not valid: {exc}", 400)
    if event.event in LIVEKIT_EVENTS:
        await _queue_outgoing(request, server.name, event)
    history = svc.history
    if history is None:
        return _error("the history store is not running", 503)
    if not events:
        return JSONResponse({"stored": 0})
    try:
        fresh = await run_in_threadpool(history.submit_new, events)  # reads the store: off the event loop
    except Exception:  # noqa: BLE001 - ours: logged; a 5xx makes LiveKit deliver it again
        log.exception("webhook from %s: the history store could not be read", client_address(request))
        return _error("the history store could not be read", 503)
    if not fresh:
        return JSONResponse({"stored": 0, "duplicate": True})
    return JSONResponse({"stored": len(fresh)})


async def _queue_outgoing(request: Request, server: str, event: WebhookEvent) -> None:
    """The outgoing webhook this event makes (lib/outbound/): rows in the outbox, never a request
    to a receiver. A failure is logged and leaves the answer as history makes it."""
    svc = services_of(request)
    p = event.participant
    try:
        queued = await run_in_threadpool(svc.outbox.livekit_event, server, event.event, event.id, event.room.name, event.room.sid, p.identity, p.sid)
    except Exception:  # noqa: BLE001 - ours: logged; the incoming webhook is still answered
        log.exception("webhook from %s: its outgoing webhook event could not be queued", client_address(request))
        return
    if queued is not None:
        svc.deliverer.wake()
