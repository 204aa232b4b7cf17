"""GET /healthz: liveness and readiness as JSON. Open to everyone, so it names servers but
never their URLs or keys."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse

from .state import services_of


def _age(ts: datetime | None, now: datetime) -> float | None:
    return round((now - ts).total_seconds(), 3) if ts else None


async def healthz(request: Request) -> JSONResponse:
    current = services_of(request)
    if current is None:
        return JSONResponse({"status": "starting", "live": True, "ready": False, "servers": []}, status_code=503)
    health = await current.gateway.probe(timeout=2.0)
    now = datetime.now(timezone.utc)
    servers = [
        {
            "name": h.server,
            "reachable": bool(h.reachable),
            "error": h.last_error.category.value if h.last_error and not h.reachable else None,
            "unreachable_since": h.failing_since.isoformat() if h.failing_since else None,
            "last_snapshot_age_s": _age(h.last_snapshot_at, now),
        }
        for h in health.values()
    ]
    degraded = any(not s["reachable"] for s in servers) or not servers
    return JSONResponse(
        {"status": "degraded" if degraded else "ok", "live": True, "ready": True, "servers": servers}
    )
