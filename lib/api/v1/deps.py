"""Who calls the REST API and whether they may: an API key (`Authorization: Bearer <key>`) or
a signed-in browser's session cookie, whose state-changing requests must also carry the
session's CSRF token (`X-CSRF-Token`, from GET /api/v1/session). Every route names the
capability it needs with `caller(capability)`; the role table (lib/auth/roles.py) decides, and a
refusal is audited by the policy, as the services' own checks are. Per-caller rate limits answer
429 with Retry-After."""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request

from ...auth.policy import Actor
from ...auth.sessions import COOKIE_NAME
from ..state import services_of
from .problems import ApiProblem, unauthenticated

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the actor services act for, and the bucket its rate limit and
    idempotency keys belong to (`key:<id>` or `user:<name>`)."""

    actor: Actor
    bucket: str


class RateLimiter:
    """A token bucket per caller: `rate` requests a second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, bucket: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            if len(self._buckets) > MAX_BUCKETS:  # callers (join: every address) come and go
                self._forget_full(now)
            tokens, at = self._buckets.get(bucket, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[bucket] = (tokens - 1, now)
                return 0.0
            self._buckets[bucket] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting them changes no answer."""
        self._buckets = {b: (t, at) for b, (t, at) in self._buckets.items() if t + (now - at) * self.rate < self.burst}


def limiter(request: Request) -> RateLimiter:
    """The app's limiter: as build_api was told, else from the settings (DASHBOARD_API_RATE,
    DASHBOARD_API_BURST) of the services the first request finds."""
    state = request.app.state
    if getattr(state, "rate_limiter", None) is None:
        settings = services(request).settings
        state.rate_limiter = RateLimiter(settings.api_rate, int(settings.api_burst))
    return state.rate_limiter


def services(request: Request):  # type: ignore[no-untyped-def]
    svc = services_of(request)
    if svc is None:
        raise ApiProblem(503, "starting", "The dashboard is still starting; try again in a moment.", headers={"Retry-After": "2"})
    return svc


def address(request: Request) -> str:
    return request.client.host if request.client else ""


def authenticate(request: Request) -> Caller:
    """The caller behind the request's credentials; 401 (one answer for every reason) without
    valid ones."""
    svc = services(request)
    where = address(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthenticated()
        found = svc.api_keys.authenticate(value.strip(), where)
        if found is None:
            raise unauthenticated()
        return Caller(found.actor, f"key:{found.key_id}")
    cookie = request.cookies.get(COOKIE_NAME)
    user = svc.logins.resolve(cookie) if cookie else None
    if user is None:
        raise unauthenticated()
    if request.method not in SAFE_METHODS:
        expected = svc.logins.csrf_token(cookie)
        sent = request.headers.get(CSRF_HEADER, "")
        if expected is None or not secrets.compare_digest(sent.encode(), expected.encode()):
            raise ApiProblem(403, "csrf_required", "A request made with a session cookie must send X-CSRF-Token (GET /api/v1/session gives it).")
    return Caller(Actor(user.username, user.role, where), f"user:{user.username.lower()}")


def caller(capability: str | None) -> Callable[..., Caller]:
    """A dependency: the authenticated caller, refused (403, audited) unless its role has
    `capability`; None for routes every signed-in role may use. The capability is also written
    into the OpenAPI description (x-capability) by the app."""

    def dependency(request: Request, who: Caller = Depends(authenticate)) -> Caller:
        wait = limiter(request).take(who.bucket)
        if wait > 0:
            raise ApiProblem(429, "rate_limited", "Too many requests from this caller; slow down.", headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if capability is not None:
            svc = services(request)
            if not svc.policy.permits(who.actor, capability):
                svc.policy.require(who.actor, capability, "api.request", f"{request.method} {request.url.path}"[:200])
        return who

    dependency.capability = capability  # type: ignore[attr-defined]
    return dependency
