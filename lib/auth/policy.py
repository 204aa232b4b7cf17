"""Who is acting and whether they may: the actor every service method takes, the capability check,
and the audit row each action leaves (ok, failed or refused). Services call `Policy.act` around
their work; no entry point (page, route, sidecar, command line) checks roles or writes audit rows
of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .audit import AuditLog
from .roles import may

# What each capability lets an actor do, as the refusal message puts it.
_DOING = {
    "control": "act on live rooms",
    "manage_servers": "manage servers",
    "manage_users": "manage users",
    "read_audit": "read the audit trail",
    "own_account": "change this account",
    "host_meetings": "host meetings",
    "issue_tokens": "issue tokens",
    "issue_tokens_any_room": "issue tokens for any room",
    "manage_api_keys": "manage API keys",
    "read_live": "see live rooms",
    "read_history": "read the history",
    "manage_webhooks": "manage webhooks",
}


@dataclass(frozen=True)
class Actor:
    """Whoever asks for an action: a signed-in user, the command line or a process of ours.
    `address` is where the request came from (empty when there is no network request);
    `via` the prefix of the API key a request came with (empty for a signed-in browser)."""

    name: str
    role: str
    address: str = ""
    via: str = ""

    @property
    def label(self) -> str:
        """The actor as the audit trail names it: a key's requests say which key."""
        return f"{self.name} (key {self.via})" if self.via else self.name

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The dashboard itself (first admin, command line): an admin acting locally."""
        return cls(name, "admin", "local")


class ActionError(Exception):
    """An action was not done; the message is meant for the person who asked."""


class Forbidden(ActionError):
    """The actor may not do this. Raised inside `Policy.act`, it is audited as refused, not
    failed."""


class Refused(Forbidden):
    """The actor's role lacks the capability the action needs, or (with `message`) the actor
    may do this kind of action but not to this target."""

    def __init__(self, actor: Actor, capability: str, message: str = "") -> None:
        super().__init__(message or f"The {actor.role} role may not {_DOING.get(capability, capability)}.")
        self.actor = actor
        self.capability = capability


class Invalid(ActionError, ValueError):
    """The input breaks a rule; the message names it."""


@dataclass
class Outcome:
    """What a service method tells the audit row about an action that ran to its end: the
    detail, and `failed` for one that returned a failure rather than raising it (a connection
    test that did not connect)."""

    detail: str = ""
    failed: bool = False


class Policy:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    @staticmethod
    def permits(actor: Actor, capability: str) -> bool:
        return may(actor.role, capability)

    def require(self, actor: Actor, capability: str, action: str, target: str) -> None:
        """Raise Refused, after auditing the refusal, unless the actor has the capability."""
        if not may(actor.role, capability):
            self._audit.record(actor.label, action, target, "refused", f"the {actor.role} role lacks '{capability}'", actor.address)
            raise Refused(actor, capability)

    @contextmanager
    def act(self, actor: Actor, capability: str, action: str, target: str, detail: str = "") -> Iterator[Outcome]:
        """Check the capability, run the body, and audit how it went: ok with the outcome's
        detail, refused when the body refused the actor (Refused: allowed such actions, not
        this one), or failed with the error's message (which never holds a secret: errors name
        what failed, not the credentials used). The error is re-raised for the caller."""
        self.require(actor, capability, action, target)
        outcome = Outcome(detail)
        try:
            yield outcome
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            result = "refused" if isinstance(exc, Forbidden) else "failed"
            self._audit.record(actor.label, action, target, result, f"{outcome.detail}; {reason}" if outcome.detail else reason, actor.address)
            raise
        self._audit.record(actor.label, action, target, "failed" if outcome.failed else "ok", outcome.detail, actor.address)
