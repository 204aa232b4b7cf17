"""Errors of the REST API as `application/problem+json` (RFC 9457), each with a stable `code`
clients can branch on. Service errors map to statuses here, in one table, so every route answers
the same error the same way."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...auth.apikeys import KeyNotFound
from ...auth.policy import ActionError, Forbidden, Invalid
from ...livekit.errors import Category, GatewayError
from ...meetings.join import JoinRefused
from ...outbound.service import Conflict as ReceiverChanged
from ...outbound.service import NotFound as ReceiverNotFound
from ...meetings.views import Conflict, NotFound

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An error: `code` is stable, `detail` is for people and may change."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str = ""
    errors: list[dict[str, object]] | None = None


class ApiProblem(Exception):
    """Raised by routes and dependencies to answer with a problem."""

    def __init__(self, status: int, code: str, detail: str = "", *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or code)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
    429: "Too many requests", 500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
}  # fmt: skip
UNAUTHENTICATED = "This request needs a valid API key (Authorization: Bearer <key>) or a signed-in session."


def problem(status: int, code: str, detail: str = "", *, errors: list[dict[str, object]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=TITLES.get(status, "Error"), status=status, code=code, detail=detail, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def unauthenticated() -> ApiProblem:
    """One answer for a missing, malformed, unknown, revoked or expired credential."""
    return ApiProblem(401, "unauthenticated", UNAUTHENTICATED, headers={"WWW-Authenticate": 'Bearer realm="api"'})


def service_error(exc: ActionError) -> JSONResponse:
    """A service's typed error as the problem that says it."""
    if isinstance(exc, (NotFound, KeyNotFound, ReceiverNotFound)):  # before Forbidden: another host's meeting is "not found"
        return problem(404, "not_found", str(exc))
    if isinstance(exc, JoinRefused):
        return problem(403, "join_refused", str(exc))
    if isinstance(exc, Forbidden):
        return problem(403, "forbidden", str(exc))
    if isinstance(exc, (Conflict, ReceiverChanged)):
        return problem(409, "conflict", str(exc))
    if isinstance(exc, Invalid):
        return problem(422, "invalid", str(exc))
    return problem(409, "not_done", str(exc))


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(_request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, headers=exc.headers)

    @app.exception_handler(ActionError)
    async def _action_error(_request: Request, exc: ActionError) -> JSONResponse:
        return service_error(exc)

    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        if exc.category == Category.NOT_FOUND:
            return problem(404, "not_found", str(exc))
        if exc.category == Category.INVALID:
            return problem(422, "invalid", str(exc))
        return problem(502, "server_unavailable", f"{exc}: {exc.hint}")

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
        return problem(422, "invalid_request", "The request does not match the API description.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail) if exc.detail else "", headers=getattr(exc, "headers", None))

    app.add_middleware(LimitBody)  # inside AnswerFaults (added last, so outer), which would take its refusal for a fault
    app.add_middleware(AnswerFaults)


class AnswerFaults:
    """Answers an error no handler took as a 500 problem and ends there. (A handler for
    Exception would answer and then raise again, as Starlette's outermost middleware does, and
    uvicorn then closes the keep-alive connection under the client's next request.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:  # half an answer is out: nothing sound can follow it on this connection
                raise
            log.error("API route failed", exc_info=exc)
            answer = problem(500, "internal_error", f"The request hit an internal error ({type(exc).__name__}); it has been logged.")
            await answer(scope, receive, send)


MAX_BODY = 1 << 20  # 1 MiB: the largest body an operation takes (a meeting with 1,000 invitees) is far below


class LimitBody:
    """413 for a request body over MAX_BODY, before it is read whole: by its Content-Length, or,
    without one, as it arrives (the body is gathered here, at most MAX_BODY, and handed on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = problem(413, "too_large", f"A request body can be at most {MAX_BODY // 1024} KiB.")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY:
                await too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
