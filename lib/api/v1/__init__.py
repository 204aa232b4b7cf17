"""The REST API, version 1: a FastAPI app mounted at /api on the dashboard's own server
(app.py). Its OpenAPI 3.1 description is generated from the routes' typed models and says for
each operation the capability it needs (x-capability); /api/docs shows it with Swagger UI served
from this machine (frontend/node_modules, installed at set-up).

Routes call the same service methods the pages do; they check nothing and audit nothing on
their own beyond naming the capability (lib/api/v1/deps.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from ...auth.sessions import COOKIE_NAME
from .deps import Caller, RateLimiter, caller, services
from .admin import router as admin_router
from .docs import router as docs_router
from .history import router as history_router
from .hooks import router as hooks_router
from .live import router as live_router
from .meetings import join_router
from .meetings import router as meetings_router
from .problems import install
from .schema import ERRORS

VERSION = "1.0.0"
PREFIX = "/v1"
DESCRIPTION = """The LiveKit dashboard's REST API: meetings, the join token, tokens, live rooms and
their controls, the History charts' data, and administration (servers, users, audit, API keys,
outgoing webhooks).

**Authentication.** Send an API key as `Authorization: Bearer <key>` (an admin creates one with
`python -m lib.auth create-api-key NAME --role ROLE [--owner USER]`; it acts as that user with
that role). A signed-in browser
may use its session cookie instead; its state-changing requests must then send `X-CSRF-Token`
(from `GET /api/v1/session`). Each operation names the capability it needs (`x-capability`);
the key's or user's role decides.

**Errors** are `application/problem+json` (RFC 9457) with a stable `code`. **Lists** page with
`limit` and the `next_cursor` of the previous page. **Creates** take an `Idempotency-Key`
header: a retry with the same key and body gets the first answer again.
"""


class SessionOut(BaseModel):
    user: str
    role: str
    api_key: str | None = Field(description="the prefix of the key the request came with")
    csrf_token: str | None = Field(description="send as X-CSRF-Token with state-changing requests made with the session cookie")


def build_api(*, rate: float | None = None, burst: int = 60) -> FastAPI:
    """The API app; `rate` requests a second per caller on average, bursts of `burst` (None:
    as the settings say)."""
    api = FastAPI(
        title="LiveKit Dashboard API", version=VERSION, description=DESCRIPTION, docs_url=None, redoc_url=None,
        openapi_url=None,  # served by the docs router, to signed-in callers only
    )  # fmt: skip
    api.state.rate_limiter = RateLimiter(rate, burst) if rate is not None else None
    install(api)

    @api.get(PREFIX + "/session", response_model=SessionOut, responses=ERRORS, tags=["session"], summary="Who this request is")
    def session(request: Request, who: Caller = Depends(caller(None))) -> SessionOut:
        cookie_token = None
        if not who.actor.via:
            cookie_token = services(request).logins.csrf_token(request.cookies.get(COOKIE_NAME))
        return SessionOut(user=who.actor.name, role=who.actor.role, api_key=who.actor.via or None, csrf_token=cookie_token)

    for router in ROUTERS:
        api.include_router(router, prefix=PREFIX)
    api.include_router(docs_router)
    api.openapi = lambda: description(api)  # type: ignore[method-assign]
    return api


ROUTERS = (meetings_router, join_router, live_router, history_router, admin_router, hooks_router)


def operations(api: FastAPI) -> list[tuple[str, APIRoute]]:
    """(path as the description has it, route) of every operation in the description."""
    found = [(r.path_format, r) for r in api.routes if isinstance(r, APIRoute)]
    found += [(PREFIX + r.path_format, r) for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    return [(path, r) for path, r in found if r.include_in_schema]


def capability_of(route: APIRoute) -> tuple[bool, str | None]:
    """(whether the route authenticates, the capability it needs) from its dependencies."""
    for dependency in route.dependant.dependencies:
        if hasattr(dependency.call, "capability"):
            return True, dependency.call.capability  # type: ignore[union-attr]
    return False, None


def description(api: FastAPI) -> dict[str, Any]:
    """The OpenAPI 3.1 description, with the security schemes and each operation's capability."""
    if api.openapi_schema is not None:
        return api.openapi_schema
    schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes, servers=[{"url": "/api"}])
    schema.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "an API key: lkd_..."},
        "session": {"type": "apiKey", "in": "cookie", "name": "lkdash_session", "description": "a signed-in browser (plus X-CSRF-Token to change state)"},
    }
    for path, route in operations(api):
        authenticated, capability = capability_of(route)
        for method in route.methods or ():
            operation = schema["paths"][path][method.lower()]
            if authenticated:
                operation["security"] = [{"apiKey": []}, {"session": []}]
                operation["x-capability"] = capability or "any signed-in role"
            else:
                operation["security"] = []
    api.openapi_schema = schema
    return schema
