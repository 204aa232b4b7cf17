"""Pure checks of the REST API's own pieces: the rate limiter, and that the request and answer
models carry every field of the records they stand for (a field added to a record and not to
its model would vanish from the API without an error)."""

from __future__ import annotations

import dataclasses

from lib.api.v1.admin import ApiKeyOut
from lib.api.v1.deps import MAX_BUCKETS, RateLimiter
from lib.api.v1.hooks import DeliveryOut
from lib.api.v1.live import GrantsIn, PermissionsIn
from lib.auth.apikeys import ApiKeyView
from lib.livekit.gateway import PermissionUpdate
from lib.livekit.tokens import Grants
from lib.outbound.service import DeliveryView


def names(record: type) -> set[str]:
    return {f.name for f in dataclasses.fields(record)}


def test_each_model_has_exactly_the_fields_of_its_record() -> None:
    assert set(GrantsIn.model_fields) == names(Grants)
    assert set(PermissionsIn.model_fields) == names(PermissionUpdate)
    assert set(ApiKeyOut.model_fields) == names(ApiKeyView) | {"state"}
    assert set(DeliveryOut.model_fields) == names(DeliveryView) - {"receiver_url"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_gets_its_burst_then_waits_for_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5
    assert limiter.take("b") == 0.0, "another caller has its own bucket"
    clock.now = 0.5
    assert limiter.take("a") == 0.0


def test_refilled_buckets_are_forgotten_and_a_waiting_caller_is_not() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock)
    for i in range(MAX_BUCKETS):
        limiter.take(f"join:{i}")  # one request each, at time 0
    clock.now = 10.0  # all of those have refilled
    limiter.take("busy"), limiter.take("busy")  # empty now
    limiter.take("newcomer")  # past MAX_BUCKETS: the refilled ones are dropped
    assert set(limiter._buckets) == {"busy", "newcomer"}
    assert limiter.take("busy") == 1.0, "the caller who is waiting still waits"
