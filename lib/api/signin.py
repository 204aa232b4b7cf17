"""HTTP side of signing in: the sign-in form and sign-out at /auth/..., the session cookie they
set and clear, the middleware that sends browsers without a session to the sign-in form, and
the check custom routes use.

The form is plain HTML served by st.App, because only an HTTP response can set an HttpOnly
cookie; Streamlit pages then read the cookie from st.context.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth.roles import may
from ..auth.sessions import COOKIE_NAME, CurrentUser
from .state import services_of

CSRF_COOKIE = "lkdash_csrf"
# Paths a browser may fetch without a session: Streamlit's own machinery and assets, health,
# webhooks (verified by signature), the sign-in pages, and APIs that check the session themselves.
OPEN_PREFIXES = ("/_stcore", "/static", "/media", "/component", "/auth/", "/healthz", "/webhooks/", "/api/", "/favicon")


def client_address(request: Request) -> str:
    """The client's address as ClientAddressMiddleware resolved it (X-Forwarded-For only from
    DASHBOARD_TRUSTED_PROXIES); without that middleware, the TCP peer."""
    return request.client.host if request.client else "unknown"


def safe_next(target: str | None) -> str:
    """Only same-site paths: never '//host' or 'https://…', which would send users elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def current_user(request: Request) -> CurrentUser | None:
    svc = services_of(request)
    return svc.logins.resolve(request.cookies.get(COOKIE_NAME)) if svc else None


def _page(body: str, status: int = 200, csrf: str | None = None) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · LiveKit Dashboard</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f6f3; display: flex; min-height: 100vh; margin: 0;
       align-items: center; justify-content: center; color: #262730; }}
main {{ background: #fff; padding: 2rem 2.5rem; border-radius: 10px; box-shadow: 0 1px 4px rgba(0,0,0,.12); width: 20rem; }}
h1 {{ font-size: 1.4rem; margin: 0 0 1.2rem; }}
label {{ display: block; margin: .8rem 0 .3rem; font-size: .9rem; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem;
       border: 1px solid #ccc; border-radius: 6px; }}
button {{ margin-top: 1.3rem; width: 100%; padding: .6rem; font-size: 1rem; border: 0; border-radius: 6px;
       background: #ff4b4b; color: #fff; cursor: pointer; }}
.error {{ background: #ffecec; color: #7d1a1a; padding: .6rem; border-radius: 6px; font-size: .9rem; }}
.note {{ color: #666; font-size: .85rem; }}
</style></head><body><main>{body}</main></body></html>"""
    response = HTMLResponse(document, status_code=status, headers={"Cache-Control": "no-store"})
    if csrf:
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/auth/")
    return response


def _login_form(next_path: str, username: str = "", message: str = "", status: int = 200) -> HTMLResponse:
    csrf = secrets.token_urlsafe(24)
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    body = f"""<h1>LiveKit Dashboard</h1>{error}
<form method="post" action="/auth/login">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username" value="{html.escape(username)}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>"""
    return _page(body, status, csrf=csrf)


async def login_page(request: Request) -> Response:
    svc = services_of(request)
    next_path = safe_next(request.query_params.get("next"))
    if svc is None:
        return _page('<p class="error">The dashboard is starting; reload in a moment.</p>', 503)
    if current_user(request):
        return RedirectResponse(next_path, status_code=303)
    if svc.users.count() == 0:
        return _page(
            "<h1>No users yet</h1><p>Create the first admin: set DASHBOARD_ADMIN_PASSWORD and restart, "
            "or run <code>python -m lib.auth create-user</code>.</p>",
            503,
        )
    return _login_form(next_path)


async def login_submit(request: Request) -> Response:
    svc = services_of(request)
    if svc is None:
        return _page('<p class="error">The dashboard is starting; reload in a moment.</p>', 503)
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "/")))
    csrf = str(form.get("csrf", ""))
    # Compared as bytes: compare_digest raises TypeError on non-ASCII str, and both come from the client.
    if not csrf or not secrets.compare_digest(csrf.encode(), request.cookies.get(CSRF_COOKIE, "").encode()):
        return _login_form(next_path, username, "The form expired. Please sign in again.", 400)
    # bcrypt takes a good part of a second: off the event loop, which also serves every websocket.
    result = await run_in_threadpool(svc.users.sign_in, username, password, client_address(request))
    if result.user is None:
        return _login_form(next_path, username, result.message, 401)
    cookie, expires = svc.logins.create(result.user.id)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=int(svc.logins.lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=svc.settings.cookie_secure,
        path="/",
    )
    response.delete_cookie(CSRF_COOKIE, path="/auth/")
    return response


async def logout_page(request: Request) -> Response:
    """A GET only asks: signing out on a plain link would let any site sign people out."""
    if current_user(request) is None:
        return RedirectResponse("/auth/login", status_code=303)
    csrf = secrets.token_urlsafe(24)
    body = f"""<h1>Sign out?</h1><form method="post" action="/auth/logout">
<input type="hidden" name="csrf" value="{csrf}"><button type="submit">Sign out</button></form>
<p class="note"><a href="/">Back to the dashboard</a></p>"""
    return _page(body, csrf=csrf)


async def logout(request: Request) -> Response:
    form = await request.form()
    csrf = str(form.get("csrf", ""))
    if not csrf or not secrets.compare_digest(csrf.encode(), request.cookies.get(CSRF_COOKIE, "").encode()):
        return RedirectResponse("/auth/logout", status_code=303)
    svc = services_of(request)
    if svc is not None:
        svc.logins.sign_out(request.cookies.get(COOKIE_NAME), client_address(request))
    response = RedirectResponse("/auth/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/auth/")
    return response


ROUTES = [
    Route("/auth/login", login_page, methods=["GET"]),
    Route("/auth/login", login_submit, methods=["POST"]),
    Route("/auth/logout", logout_page, methods=["GET"]),
    Route("/auth/logout", logout, methods=["POST"]),
]


def requires(capability: str) -> Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """Decorator for custom routes: 401 without a session, 403 without the capability."""

    def wrap(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            user = current_user(request)
            if user is None:
                return JSONResponse({"error": "sign in first"}, status_code=401)
            if not may(user.role, capability):
                return JSONResponse({"error": f"the {user.role} role may not do this"}, status_code=403)
            request.state.user = user
            return await handler(request)

        return guarded

    return wrap


class SignInRedirect:
    """Sends a browser that asks for a page without a valid session to the sign-in form.
    Pages check the session and role themselves too; this only spares people a blank app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            request = Request(scope)
            path = request.url.path
            wants_page = "text/html" in request.headers.get("accept", "")
            if wants_page and not path.startswith(OPEN_PREFIXES) and services_of(request) is not None and current_user(request) is None:
                target = path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/auth/login?next={quote(target, safe='')}", status_code=303)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
