"""Issuing LiveKit access tokens to people: who may issue one for which room, the rooms a form
may suggest to them, and the audit row each issue leaves (naming the token's identity, grants,
lifetime and dispatch, never the token). Tokens are signed by lib/livekit/tokens.py with the
server's own key and secret.

Errors: Refused (the role may not, or a host asked for a room of a meeting they do not host),
Invalid (the request breaks a rule, nothing was signed) and GatewayError (no such server).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone

from .auth.policy import Actor, Invalid, Policy, Refused
from .livekit.gateway import LiveKitGateway
from .livekit.tokens import MAX_IDENTITY, MIN_TTL, IssuedToken, TokenError, TokenRequest, build_token

CAPABILITY = "issue_tokens"
ANY_ROOM = "issue_tokens_any_room"
HOST_ONLY_THEIR_ROOMS = "A host may issue tokens only for rooms of meetings they host."

# (server, room) of the meetings the actor hosts, with when each ends (a host's token for the
# room lives no longer); the meetings service provides it.
HostedRooms = Callable[[Actor], Mapping[tuple[str, str], datetime]]


def describe(request: TokenRequest) -> str:
    """The audit detail of an issue: what the token lets whom do, for how long."""
    minutes = request.ttl.total_seconds() / 60
    # Written before the request is checked: an identity too long to be issued is cut here.
    identity = request.identity if len(request.identity) <= MAX_IDENTITY else request.identity[:MAX_IDENTITY] + "…"
    parts = [
        f"identity {identity}",
        f"grants {', '.join(request.grants.granted()) or 'none'}",
        f"ttl {minutes:g} min",
    ]
    if request.dispatch_agent:
        parts.append(f"dispatch {request.dispatch_agent}")
    return "; ".join(parts)


class TokenService:
    def __init__(self, gateway: LiveKitGateway, policy: Policy, hosted_rooms: HostedRooms | None = None) -> None:
        """`hosted_rooms(actor)`: the rooms an actor without `issue_tokens_any_room` (a host)
        may issue tokens for; None: no room at all."""
        self._gateway = gateway
        self._policy = policy
        self._hosted_rooms = hosted_rooms

    def permits(self, actor: Actor) -> bool:
        return self._policy.permits(actor, CAPABILITY)

    def any_room(self, actor: Actor) -> bool:
        """Whether the actor may issue tokens for any room, rather than only for the rooms of
        the meetings they host."""
        return self._policy.permits(actor, CAPABILITY) and self._policy.permits(actor, ANY_ROOM)

    def _rooms_hosted(self, actor: Actor) -> Mapping[tuple[str, str], datetime]:
        return self._hosted_rooms(actor) if self._hosted_rooms is not None else {}

    def issue(self, actor: Actor, server: str, request: TokenRequest) -> IssuedToken:
        """Sign a token for `request` with `server`'s key. Admins and operators may issue one for
        any room (it need not exist yet: joining creates it); a host only for the rooms of
        meetings they host."""
        with self._policy.act(actor, CAPABILITY, "token.issue", f"{server}/{request.room}", describe(request)) as outcome:
            if not self.any_room(actor):
                ends = self._rooms_hosted(actor).get((server, request.room))
                if ends is None:
                    raise Refused(actor, ANY_ROOM, HOST_ONLY_THEIR_ROOMS)
                # A token outliving its meeting lets its holder re-create the deleted room.
                left = ends - datetime.now(timezone.utc)
                if left < MIN_TTL:
                    raise Invalid("This meeting ends in less than a minute: there is no time left to issue a token for.")
                if left < request.ttl:
                    request = replace(request, ttl=left)
                    outcome.detail = describe(request) + " (cut to the meeting's end)"
            config = self._gateway.server_config(server)
            try:
                return build_token(config.api_key, config.api_secret, request)
            except TokenError as exc:
                raise Invalid(str(exc)) from None

    def suggested_rooms(self, actor: Actor, server: str) -> list[str]:
        """Room names a form may offer the actor for `server`: the live rooms (as its newest
        answered snapshot has them) for those who may issue for any room; a host, the rooms of
        the meetings they host, and never the names of anyone else's rooms."""
        if not self.permits(actor):
            return []
        if not self.any_room(actor):
            return sorted(room for where, room in self._rooms_hosted(actor) if where == server)
        wait = min(self._gateway.request_timeout, 3.0)
        view = next((v for v in self._gateway.live(max_age=1.0, wait=wait) if v.server == server), None)
        snapshot = None if view is None else view.current or view.last_good
        return sorted(r.room.name for r in snapshot.rooms) if snapshot is not None else []
