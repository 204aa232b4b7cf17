"""/api/v1/history/{chart}: each History chart's data for a range and filters, as JSON, CSV or
Parquet: the same DataFrames the page draws and offers as downloads (lib/history/reports.py)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ...history.reports import CHARTS
from . import cursors
from .deps import Caller, caller, services
from .schema import ERRORS, QueryId

router = APIRouter(tags=["history"])
READERS = caller("read_history")
Chart = Literal[tuple(CHARTS)]  # type: ignore[valid-type]
PARQUET = "application/vnd.apache.parquet"


class ChartOut(BaseModel):
    chart: str
    start: datetime = Field(description="where the data starts: later than asked when the history begins inside the range")
    end: datetime
    step_seconds: int = Field(description="the bucket of time series charts")
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="one object per row; times in ISO 8601 UTC, missing values null")


@router.get(
    "/history/{chart}", response_model=ChartOut,
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}, PARQUET: {}}, "description": "the chart's data"}},
    summary="A History chart's data (JSON, CSV or Parquet)",
)  # fmt: skip
def chart(
    chart: Chart,
    request: Request,
    who: Caller = Depends(READERS),
    since: Annotated[datetime | None, Query(description="with offset; default: 24 hours before until")] = None,
    until: Annotated[datetime | None, Query(description="with offset; default: now")] = None,
    server: Annotated[list[Annotated[str, Query(max_length=64)]] | None, Query(max_length=100)] = None,
    room: Annotated[list[Annotated[str, Query(max_length=256)]] | None, Query(max_length=1000)] = None,
    meeting: Annotated[list[QueryId] | None, Query(max_length=100, description="only these meetings' rooms")] = None,
    format: Literal["json", "csv", "parquet"] = "json",
) -> object:
    end = cursors.require_offset(until, "until") or datetime.now(timezone.utc)
    start = cursors.require_offset(since, "since") or end - timedelta(hours=24)
    data = services(request).reports.chart(who.actor, chart, start, end, servers=server, rooms=room, meetings=meeting)
    frame = data.frame
    if format == "csv":
        return Response(frame.to_csv(index=False), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{chart}.csv"'})
    if format == "parquet":
        out = io.BytesIO()
        frame.to_parquet(out, index=False)
        return Response(out.getvalue(), media_type=PARQUET, headers={"Content-Disposition": f'attachment; filename="{chart}.parquet"'})
    rows = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s")) if not frame.empty else []
    return ChartOut(chart=chart, start=data.start, end=data.end, step_seconds=data.step_seconds, columns=[str(c) for c in frame.columns], rows=rows)
