"""/api/v1/admin/...: servers (their secrets written, never read back), users, the audit trail
(JSON pages or CSV) and API keys, through the same services the Settings, Users and Audit pages
use."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ...auth.apikeys import ApiKeyView
from ...auth.audit import RESULTS, AuditRecord, to_csv
from ...auth.roles import ROLES
from ...auth.users import UserInfo
from ...config import ServerConfig
from ...livekit.gateway import ConnectionResult
from . import cursors
from .deps import Caller, caller, services
from .schema import ERRORS, Id, Strict
from .problems import ApiProblem

router = APIRouter(prefix="/admin", tags=["admin"])
SERVERS = caller("manage_servers")
USERS = caller("manage_users")
AUDIT = caller("read_audit")
KEYS = caller("manage_api_keys")
Role = Literal[ROLES]  # type: ignore[valid-type]
Result = Literal[RESULTS]  # type: ignore[valid-type]


# ----- servers -------------------------------------------------------------------------------


class ServerOut(BaseModel):
    name: str
    url: str
    api_key: str = Field(description="the LiveKit API key (its secret is never returned)")
    source: Literal["environment", "settings"] = Field(description="environment: from LIVEKIT_*, read-only here")

    @classmethod
    def of(cls, c: ServerConfig) -> ServerOut:
        return cls(name=c.name, url=c.url, api_key=c.api_key, source=c.source)  # type: ignore[arg-type]


class ConnectionOut(BaseModel):
    ok: bool
    seconds: float
    rooms: int | None
    error: str | None
    hint: str | None

    @classmethod
    def of(cls, r: ConnectionResult) -> ConnectionOut:
        return cls(ok=r.ok, seconds=round(r.seconds, 3), rooms=r.rooms, error=str(r.error) if r.error else None, hint=r.error.hint if r.error else None)


class ServerSaved(BaseModel):
    server: ServerOut
    connection: ConnectionOut


class ServerIn(Strict):
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=2048)
    api_key: str = Field(min_length=1, max_length=256)
    api_secret: str = Field(min_length=1, max_length=1024, description="write-only")


class ServerUpdate(Strict):
    url: str = Field(min_length=1, max_length=2048)
    api_key: str = Field(min_length=1, max_length=256)
    api_secret: str | None = Field(None, min_length=1, max_length=1024, description="write-only; absent keeps the stored one")


@router.get("/servers", response_model=list[ServerOut], responses=ERRORS, summary="The servers the dashboard watches")
def list_servers(request: Request, _who: Caller = Depends(SERVERS)) -> list[ServerOut]:
    return [ServerOut.of(c) for c in services(request).servers.list()]


@router.post("/servers", status_code=201, response_model=ServerSaved, responses=ERRORS, summary="Add a server (saved only if it answers)")
def add_server(body: ServerIn, request: Request, who: Caller = Depends(SERVERS)) -> ServerSaved:
    saved, result = services(request).server_admin.add(who.actor, body.name, body.url, body.api_key, body.api_secret)
    return ServerSaved(server=ServerOut.of(saved), connection=ConnectionOut.of(result))


@router.put("/servers/{name}", response_model=ServerSaved, responses=ERRORS, summary="Change a stored server (saved only if it answers)")
def update_server(name: str, body: ServerUpdate, request: Request, who: Caller = Depends(SERVERS)) -> ServerSaved:
    saved, result = services(request).server_admin.update(who.actor, name, url=body.url, api_key=body.api_key, api_secret=body.api_secret)
    return ServerSaved(server=ServerOut.of(saved), connection=ConnectionOut.of(result))


@router.delete("/servers/{name}", status_code=204, responses=ERRORS, summary="Stop watching a stored server")
def remove_server(name: str, request: Request, who: Caller = Depends(SERVERS)) -> Response:
    services(request).server_admin.remove(who.actor, name)
    return Response(status_code=204)


@router.post("/servers/{name}/test", response_model=ConnectionOut, responses=ERRORS, summary="Test a server's stored details")
def test_server(name: str, request: Request, who: Caller = Depends(SERVERS)) -> ConnectionOut:
    return ConnectionOut.of(services(request).server_admin.test_saved(who.actor, name))


# ----- users ---------------------------------------------------------------------------------


class UserOut(BaseModel):
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, u: UserInfo) -> UserOut:
        return cls(username=u.username, role=u.role, disabled=u.disabled, created_at=u.created_at, last_login_at=u.last_login_at)


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200, description="write-only; stored as a bcrypt hash")
    role: Role


class UserUpdate(Strict):
    role: Role | None = None
    disabled: bool | None = None


class PasswordIn(Strict):
    password: str = Field(min_length=1, max_length=200)


@router.get("/users", response_model=list[UserOut], responses=ERRORS, summary="Every user")
def list_users(request: Request, _who: Caller = Depends(USERS)) -> list[UserOut]:
    return [UserOut.of(u) for u in services(request).users.list()]


@router.post("/users", status_code=201, response_model=UserOut, responses=ERRORS, summary="Create a user")
def create_user(body: UserIn, request: Request, who: Caller = Depends(USERS)) -> UserOut:
    return UserOut.of(services(request).users.create(who.actor, body.username, body.password, body.role))


@router.patch("/users/{username}", response_model=UserOut, responses=ERRORS, summary="Change a user's role, or disable or enable them")
def update_user(username: str, body: UserUpdate, request: Request, who: Caller = Depends(USERS)) -> UserOut:
    users = services(request).users
    if body.role is None and body.disabled is None:
        raise ApiProblem(422, "invalid", "Give role, disabled, or both.")
    user = None
    if body.role is not None:
        user = users.set_role(who.actor, username, body.role)
    if body.disabled is not None:
        user = users.set_disabled(who.actor, username, body.disabled)
    assert user is not None
    return UserOut.of(user)


@router.put("/users/{username}/password", status_code=204, responses=ERRORS, summary="Set a user's password")
def reset_password(username: str, body: PasswordIn, request: Request, who: Caller = Depends(USERS)) -> Response:
    services(request).users.reset_password(who.actor, username, body.password)
    return Response(status_code=204)


# ----- audit ---------------------------------------------------------------------------------


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    result: Result
    detail: str
    address: str

    @classmethod
    def of(cls, r: AuditRecord) -> AuditOut:
        return cls(id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target, result=r.result, detail=r.detail, address=r.address)


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


@router.get(
    "/audit", response_model=AuditPage,
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}}, "description": "audit records, newest first"}},
    summary="The audit trail, newest first (JSON pages, or CSV with format=csv)",
)  # fmt: skip
def audit(
    request: Request,
    _who: Caller = Depends(AUDIT),
    since: datetime | None = None,
    until: datetime | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    result: Result | None = None,
    text: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Literal["json", "csv"] = "json",
) -> object:
    since, until = cursors.require_offset(since, "since"), cursors.require_offset(until, "until")
    if since is not None and until is not None and until < since:
        raise ApiProblem(422, "invalid_request", "until must not be before since.")
    records = services(request).audit.query(
        since=since, until=until, actor=actor, action=action, result=result, text=text, limit=limit + 1, before=cursors.decode(cursor)
    )
    page = records[:limit]
    after = cursors.encode(page[-1].at, page[-1].id) if len(records) > limit else None
    if format == "csv":
        more = {"X-Next-Cursor": after} if after else {}  # a CSV has no room for it: the next page's cursor is a header
        return Response(to_csv(page), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": 'attachment; filename="audit.csv"', **more})
    return AuditPage(items=[AuditOut.of(r) for r in page], next_cursor=after)


# ----- API keys ------------------------------------------------------------------------------


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the key's first characters, as the audit trail names it")
    role: Role
    owner: str = Field(description="the user the key acts as")
    state: Literal["active", "expired", "revoked"]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_address: str
    revoked_at: datetime | None
    revoked_by: str

    @classmethod
    def of(cls, k: ApiKeyView) -> ApiKeyOut:
        return cls(**{**k.__dict__, "state": k.state(datetime.now(timezone.utc))})


class ApiKeyIn(Strict):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    owner: str | None = Field(None, max_length=64, description="the user it acts as; absent: the caller")
    expires_at: datetime | None = Field(None, description="with a time zone offset; absent: never")


class ApiKeyCreated(BaseModel):
    key: str = Field(description="the whole key: shown this once, stored only as a hash")
    api_key: ApiKeyOut


@router.get("/api-keys", response_model=list[ApiKeyOut], responses=ERRORS, summary="Every API key (never the keys themselves)")
def list_keys(request: Request, who: Caller = Depends(KEYS)) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(k) for k in services(request).api_keys.list(who.actor)]


@router.post(
    "/api-keys", status_code=201, response_model=ApiKeyCreated, responses=ERRORS,
    summary="Create an API key (not idempotent: a retry makes another key, as the answer holds the key)",
)  # fmt: skip
def create_key(body: ApiKeyIn, request: Request, who: Caller = Depends(KEYS)) -> ApiKeyCreated:
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise ApiProblem(422, "invalid_request", "expires_at needs a time zone offset.")
    created = services(request).api_keys.create(who.actor, body.name, body.role, owner=body.owner, expires_at=body.expires_at)
    return ApiKeyCreated(key=created.secret, api_key=ApiKeyOut.of(created.key))


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut, responses=ERRORS, summary="Revoke an API key")
def revoke_key(key_id: Id, request: Request, who: Caller = Depends(KEYS)) -> ApiKeyOut:
    return ApiKeyOut.of(services(request).api_keys.revoke(who.actor, key_id))
