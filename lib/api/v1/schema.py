"""What every route module of the API shares: strict request bodies, the documented error
answers, and the range of ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .problems import Problem

ERRORS: dict[int | str, dict[str, object]] = {
    s: {"model": Problem, "content": {"application/problem+json": {}}} for s in (400, 401, 403, 404, 409, 413, 422, 429, 502)
}
# Ids are INTEGER columns: 32 bits on PostgreSQL. Past that a lookup failed in the driver (500).
MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _no_nul(value: object) -> object:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    if isinstance(value, (list, tuple)):
        for item in value:
            _no_nul(item)
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    return value


class Strict(BaseModel):
    """A request body: a field it does not know is an error, not ignored, and no text holds a
    NUL (PostgreSQL stores none; LiveKit took one in a room name)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: object) -> object:
        return _no_nul(value)
