"""Roles and what each may reach. Pages and routes name a capability; this table decides."""

from __future__ import annotations

import enum


class Role(str, enum.Enum):
    ADMIN = "admin"
    OPERATOR = "operator"
    HOST = "host"
    ANALYST = "analyst"


ROLES = tuple(r.value for r in Role)

# Every page of the app and the roles that may open it. Admins may open everything.
PAGE_ROLES: dict[str, frozenset[str]] = {
    "overview": frozenset({"admin", "operator", "analyst"}),
    "rooms": frozenset({"admin", "operator"}),
    "agents": frozenset({"admin", "operator"}),
    "account": frozenset(ROLES),
    "settings": frozenset({"admin"}),
    "users": frozenset({"admin"}),
    "audit": frozenset({"admin"}),
    "history": frozenset({"admin", "operator", "analyst"}),
    "sessions": frozenset({"admin", "operator", "analyst"}),
    "tokens": frozenset({"admin", "operator", "host"}),
    "meetings": frozenset({"admin", "host"}),
    "api_keys": frozenset({"admin"}),
    "webhooks": frozenset({"admin"}),
}

# Actions beyond seeing a page; the services check them (lib/auth/policy.py).
CAPABILITY_ROLES: dict[str, frozenset[str]] = {
    "control": frozenset({"admin", "operator"}),  # create/end rooms, mute, remove, send data, dispatch
    "manage_servers": frozenset({"admin"}),  # add, update, remove and test servers
    "manage_users": frozenset({"admin"}),  # create users, change roles, disable, reset passwords
    "read_audit": frozenset({"admin"}),
    "own_account": frozenset(ROLES),  # change one's own password
    # Schedule, edit, cancel and end meetings: a host those they host or co-host, an admin all.
    "host_meetings": frozenset({"admin", "host"}),
    "issue_tokens": frozenset({"admin", "operator", "host"}),  # sign LiveKit access tokens
    # Without it, tokens only for the rooms of meetings one hosts (lib/tokens.py).
    "issue_tokens_any_room": frozenset({"admin", "operator"}),
    "manage_api_keys": frozenset({"admin"}),  # create and revoke REST API keys
    "read_live": frozenset({"admin", "operator"}),  # every room, participant and agent (the Rooms page's view)
    "read_history": frozenset({"admin", "operator", "analyst"}),  # the History page's charts as data
    "manage_webhooks": frozenset({"admin"}),  # outgoing webhook receivers (lib/outbound/)
}


def may_open(role: str, page: str) -> bool:
    return role in PAGE_ROLES.get(page, frozenset())


def may(role: str, capability: str) -> bool:
    return role in CAPABILITY_ROLES.get(capability, frozenset())
