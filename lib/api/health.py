"""GET /healthz: liveness and readiness as JSON. Open to everyone, so it names servers but
never their URLs or keys, and of the history's failures only their kind (an exception's type),
never its message: DuckDB's messages can quote the values of the rows it refused."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..history.collector import CollectorStatus
from ..history.store import WriterStatus
from .state import services_of


def _age(ts: datetime | None, now: datetime) -> float | None:
    return round((now - ts).total_seconds(), 3) if ts else None


def _when(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _kind(text: str | None) -> str | None:
    """'ConversionException: Could not convert ...' -> 'ConversionException'."""
    return text.split(":", 1)[0] if text else None


def history_health(status: WriterStatus) -> dict[str, object]:
    return {
        "failed_batches": status.failed_batches,
        "last_failure_at": _when(status.last_failure_at),
        "last_failure": _kind(status.last_failure),
        "failing": status.failing,
        "queued": status.queued,
    }


def collector_health(status: CollectorStatus) -> dict[str, object]:
    return {
        "restarts": status.restarts,
        "last_crash_at": _when(status.last_crash_at),
        "last_crash": _kind(status.last_crash),
        "running": status.running,
    }


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
    history = history_health(current.history.status()) if current.history is not None else None
    collector = collector_health(current.collector.status()) if current.collector is not None else None
    degraded = (
        any(not s["reachable"] for s in servers)
        or not servers
        or (history is not None and history["failing"])
        or (collector is not None and not collector["running"])
    )
    return JSONResponse(
        {
            "status": "degraded" if degraded else "ok",
            "live": True,
            "ready": True,
            "servers": servers,
            "history": history,
            "collector": collector,
        }
    )
