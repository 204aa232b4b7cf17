"""/api/v1/admin/webhooks...: outgoing webhook receivers and their deliveries, through the
Webhooks page's service (lib/outbound/service.py). A receiver's signing secret is in the answer
that creates it, never again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ...outbound.events import EVENT_TYPES
from ...outbound.outbox import DELIVERY_STATUSES
from ...outbound.service import DeliveryView, ReceiverView
from . import cursors
from .deps import Caller, caller, services
from .schema import ERRORS, Id, QueryId, Strict

router = APIRouter(prefix="/admin/webhooks", tags=["webhooks"])
ADMINS = caller("manage_webhooks")
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
DeliveryStatus = Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]


class ReceiverOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    state: Literal["active", "paused"]
    paused_at: datetime | None
    paused_reason: str
    consecutive_failures: int
    waiting: int = Field(description="deliveries neither delivered nor given up")
    version: int
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, r: ReceiverView) -> ReceiverOut:
        return cls(
            id=r.id, url=r.url, events=list(r.events), description=r.description, state=r.state, paused_at=r.paused_at,  # type: ignore[arg-type]
            paused_reason=r.paused_reason, consecutive_failures=r.consecutive_failures, waiting=r.waiting, version=r.version,
            created_by=r.created_by, created_at=r.created_at,
        )  # fmt: skip


class ReceiverIn(Strict):
    url: str = Field(min_length=1, max_length=2048)
    events: list[EventType] = Field(min_length=1)
    description: str = Field("", max_length=500)


class ReceiverCreated(BaseModel):
    secret: str = Field(description="the signing secret: shown this once (verify X-Dashboard-Signature with it)")
    receiver: ReceiverOut


class ReceiverUpdate(Strict):
    events: list[EventType] = Field(min_length=1)
    description: str = Field("", max_length=500)
    version: int | None = Field(None, ge=0, description="as read; a change made since is refused")


class PauseIn(Strict):
    reason: str = Field("", max_length=200)


class DeliveryOut(BaseModel):
    id: int
    receiver_id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="null once delivered or given up")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: DeliveryView) -> DeliveryOut:
        fields = {k: v for k, v in d.__dict__.items() if k != "receiver_url"}
        if d.status in ("delivered", "given_up"):
            fields["next_attempt_at"] = None
        return cls(**fields)


class TestSent(BaseModel):
    delivery_id: int


@router.get("", response_model=list[ReceiverOut], responses=ERRORS, summary="Every receiver with its state")
def receivers(request: Request, who: Caller = Depends(ADMINS)) -> list[ReceiverOut]:
    return [ReceiverOut.of(r) for r in services(request).webhooks.receivers(who.actor)]


@router.post("", status_code=201, response_model=ReceiverCreated, responses=ERRORS, summary="Register a receiver (not idempotent: the answer holds its secret)")
def add(body: ReceiverIn, request: Request, who: Caller = Depends(ADMINS)) -> ReceiverCreated:
    made = services(request).webhooks.add(who.actor, body.url, body.events, body.description)
    return ReceiverCreated(secret=made.secret, receiver=ReceiverOut.of(made.receiver))


@router.put("/{receiver_id}", response_model=ReceiverOut, responses=ERRORS, summary="Change what a receiver gets")
def update(receiver_id: Id, body: ReceiverUpdate, request: Request, who: Caller = Depends(ADMINS)) -> ReceiverOut:
    return ReceiverOut.of(services(request).webhooks.update(who.actor, receiver_id, body.events, body.description, body.version))


@router.delete("/{receiver_id}", status_code=204, responses=ERRORS, summary="Remove a receiver")
def remove(receiver_id: Id, request: Request, who: Caller = Depends(ADMINS)) -> Response:
    services(request).webhooks.remove(who.actor, receiver_id)
    return Response(status_code=204)


@router.post("/{receiver_id}/pause", response_model=ReceiverOut, responses=ERRORS, summary="Pause deliveries to a receiver")
def pause(receiver_id: Id, body: PauseIn, request: Request, who: Caller = Depends(ADMINS)) -> ReceiverOut:
    return ReceiverOut.of(services(request).webhooks.pause(who.actor, receiver_id, body.reason))


@router.post("/{receiver_id}/resume", response_model=ReceiverOut, responses=ERRORS, summary="Resume a paused receiver (its waiting deliveries are due at once)")
def resume(receiver_id: Id, request: Request, who: Caller = Depends(ADMINS)) -> ReceiverOut:
    return ReceiverOut.of(services(request).webhooks.resume(who.actor, receiver_id))


@router.post("/{receiver_id}/test", response_model=TestSent, responses=ERRORS, summary="Send a signed ping")
def test(receiver_id: Id, request: Request, who: Caller = Depends(ADMINS)) -> TestSent:
    return TestSent(delivery_id=services(request).webhooks.test(who.actor, receiver_id))


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


@router.get("/deliveries", response_model=DeliveryPage, responses=ERRORS, summary="Deliveries, newest first")
def deliveries(
    request: Request, who: Caller = Depends(ADMINS), receiver_id: QueryId | None = None, status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200, cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DeliveryPage:  # fmt: skip
    rows = services(request).webhooks.deliveries(who.actor, receiver_id=receiver_id, status=status, limit=limit + 1, before=cursors.decode(cursor))
    page = rows[:limit]
    return DeliveryPage(items=[DeliveryOut.of(d) for d in page], next_cursor=cursors.encode(page[-1].created_at, page[-1].id) if len(rows) > limit else None)
