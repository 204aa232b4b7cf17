"""/api/v1/openapi.json and /api/docs: the API's description and Swagger UI, both for signed-in
callers, with Swagger UI's files served from frontend/node_modules (installed from npm at
set-up): the docs page loads nothing from any other host."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from ...auth.sessions import COOKIE_NAME
from .deps import Caller, caller, services

router = APIRouter(include_in_schema=False)
ASSETS = Path(__file__).resolve().parents[3] / "frontend" / "node_modules" / "swagger-ui-dist"
OURS = Path(__file__).resolve().parent / "docs_init.js"
SERVED = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript", "favicon-32x32.png": "image/png"}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>API · LiveKit Dashboard</title>
<link rel="icon" href="/api/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/assets/init.js"></script>
</body></html>"""


@router.get("/v1/openapi.json")
def openapi(request: Request, _who: Caller = Depends(caller(None))) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs(request: Request) -> Response:
    svc = services(request)
    if svc.logins.resolve(request.cookies.get(COOKIE_NAME)) is None:
        return RedirectResponse(f"/auth/login?next={quote('/api/docs', safe='')}", status_code=303)
    if not (ASSETS / "swagger-ui-bundle.js").is_file():
        return HTMLResponse("<p>The API docs' files are not installed: run <code>scripts/setup.sh</code>.</p>", status_code=503)
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    if name == "init.js":
        return FileResponse(OURS, media_type="text/javascript")
    if name not in SERVED or not (ASSETS / name).is_file():
        return Response(status_code=404)
    return FileResponse(ASSETS / name, media_type=SERVED[name])
