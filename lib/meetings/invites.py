"""Signed invites: the part of a join link that stands in for a meeting's password.

An invite names the meeting, the link version it was signed under (rotating the link raises the
version, which revokes every invite signed before), the invitee's email for a private meeting,
and when it expires (the meeting's end). It is signed with HMAC-SHA256 under a key derived from
the dashboard's secret key, so any node sharing that key can check it. It is not encrypted: it
holds nothing a guest may not see (never the password, which is stored only as a bcrypt hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone

MAX_CHARS = 1024


class InviteError(ValueError):
    """An invite is not valid here; the message is meant for the guest."""


@dataclass(frozen=True)
class Invite:
    meeting_id: int
    link_version: int
    email: str | None
    expires_at: datetime


def invite_key(secret_key: str) -> bytes:
    """The invite signing key: derived, so an invite never reveals or reuses the secret key itself."""
    return hashlib.sha256(b"livekit-dashboard invites\0" + secret_key.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, invite: Invite) -> str:
    payload = json.dumps(
        {"m": invite.meeting_id, "v": invite.link_version, "e": invite.email, "x": int(invite.expires_at.timestamp())},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_b64(hmac.new(key, payload, hashlib.sha256).digest())}"


def verify(key: bytes, text: str, *, meeting_id: int, link_version: int, now: datetime) -> Invite:
    """The invite in `text` if it is genuine, for this meeting, under its current link, and not
    expired; InviteError otherwise. The signature is checked before anything is read from it."""
    if not text or len(text) > MAX_CHARS or text.count(".") != 1:
        raise InviteError("This invite link is damaged: ask the host for a new one.")
    body, _, signature = text.partition(".")
    try:
        payload, mac = _unb64(body), _unb64(signature)
    except ValueError:
        raise InviteError("This invite link is damaged: ask the host for a new one.") from None
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        raise InviteError("This invite link is not valid: ask the host for a new one.")
    data = json.loads(payload)
    invite = Invite(int(data["m"]), int(data["v"]), data.get("e"), datetime.fromtimestamp(int(data["x"]), timezone.utc))
    if invite.meeting_id != meeting_id:
        raise InviteError("This invite is for another meeting.")
    if invite.link_version != link_version:
        raise InviteError("This invite was revoked: the host has changed the meeting's link. Ask the host for a new one.")
    if invite.expires_at <= now:
        raise InviteError("This invite has expired.")
    return invite
