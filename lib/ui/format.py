"""Text formatting for the UI. Everything user-controlled that reaches Markdown goes through
`md()`, so names and metadata render as the text they are, never as markup."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
CELL_LIMIT = 200


def md(text: str) -> str:
    """Escape Markdown (and the HTML Streamlit would show escaped anyway) so text stays text."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def clip(text: str, limit: int = CELL_LIMIT) -> str:
    """Shorten long values for table cells; the full value is shown in the detail view."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def since(ts: datetime | None, now: datetime | None = None) -> str:
    if ts is None:
        return ""
    now = now or datetime.now(timezone.utc)
    return duration((now - ts).total_seconds())


def clock(ts: datetime | None) -> str:
    """A UTC wall-clock time with the date when it is not today."""
    if ts is None:
        return ""
    ts = ts.astimezone(timezone.utc)
    if ts.date() == datetime.now(timezone.utc).date():
        return ts.strftime("%H:%M:%S UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")
