"""What every route module of the API shares: strict request bodies, the documented error
answers, and the range of ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from .problems import Problem

ERRORS: dict[int | str, dict[str, object]] = {
    s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (400, 401, 403, 404, 409, 422, 429, 502)
}
# Ids are INTEGER columns: 32 bits on PostgreSQL. Past that a lookup failed in the driver (500).
MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int, Field(ge=1, le=MAX_ID)]


class Strict(BaseModel):
    """A request body: a field it does not know is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")
