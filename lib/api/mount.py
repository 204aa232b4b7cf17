"""The Mount that puts the REST API at /api: Starlette's own stops matching at a newline in the
path (its pattern is `.*` without DOTALL), so /api/v1/servers/%0A/rooms fell through to
Streamlit's HTML page instead of getting the API's problem+json answer."""

from __future__ import annotations

import re

from starlette.routing import Mount
from starlette.types import ASGIApp


def api_mount(path: str, app: ASGIApp) -> Mount:
    """Mount `app` at `path` for every path beneath it, newlines included."""
    mount = Mount(path, app=app)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount
