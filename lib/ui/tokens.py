"""The Tokens page's form and result: collect a token request, hand it to TokenService.issue once,
and show what came back, the token itself only once revealed. Parsing of what was typed (the
attribute lines) and the expiry's wording are plain functions here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import streamlit as st

from ..auth.policy import ActionError, Actor
from ..livekit.errors import GatewayError
from ..livekit.tokens import DEFAULT_TTL, MAX_TTL, MIN_TTL, SOURCES, Attributes, Grants, IssuedToken, TokenError, TokenRequest
from ..tokens import TokenService
from . import live
from .format import duration, md, visible

SERVER, ROOM, ROOM_PICK, REVEAL = "token_server", "token_room", "token_room_pick", "token_reveal"
FORM = "issue_token"
_ISSUED = "_token_issued"  # (server, IssuedToken) of this session's last issue


def parse_attribute_lines(text: str) -> Attributes:
    """Attributes typed one `key=value` a line (blank lines skipped, spaces around key and value
    dropped); TokenError naming every line that is not one."""
    pairs: dict[str, str] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        shown = repr(line if len(line) <= 40 else line[:39] + "…")
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            problems.append(f"line {number} ({shown}) has no '='")
        elif not key:
            problems.append(f"line {number} ({shown}) has no key before '='")
        elif key in pairs:
            problems.append(f"line {number} repeats the key {key!r}")
        else:
            pairs[key] = value.strip()
    if problems:
        raise TokenError(f"Attributes are key=value lines: {'; '.join(problems)}.")
    return tuple(pairs.items())


def expiry_text(expires_at: datetime, now: datetime | None = None) -> str:
    """When a token expires, in UTC and relative to `now`."""
    now = now or datetime.now(timezone.utc)
    left = (expires_at - now).total_seconds()
    when = expires_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{when} (in {duration(left)})" if left > 0 else f"{when} (expired {duration(-left)} ago)"


def _fill_room() -> None:
    # The picker only fills the room field and then empties itself: holding no pick, it has
    # nothing to jump from when the live rooms it offers change between runs.
    picked = st.session_state.get(ROOM_PICK)
    if picked:
        st.session_state[ROOM] = picked
    st.session_state[ROOM_PICK] = None


def issue_form(
    tokens: TokenService, actor: Actor, servers: list[str], meeting_of: Callable[[list[tuple[str, str]]], dict[tuple[str, str], object]]
) -> None:
    """The request form; on submit, one call of `tokens.issue`, whose result `issued_token`
    shows. What was typed stays in the form whatever the answer. `meeting_of` names the
    meeting of each meeting room (their names are opaque), for the room picker."""
    server = st.selectbox("Server", servers, key=SERVER)
    suggested = tokens.suggested_rooms(actor, server)
    meetings = meeting_of([(server, r) for r in suggested])
    room_col, pick_col = st.columns([3, 2])
    room = room_col.text_input(
        "Room", max_chars=256, key=ROOM, help="The room need not exist yet: the first participant to join creates it."
    )
    pick_col.selectbox(
        "Fill in a room",
        suggested,
        index=None,
        key=ROOM_PICK,
        format_func=lambda r: f"{visible(m.title)} · {r}" if (m := meetings.get((server, r))) is not None else r,  # type: ignore[attr-defined]
        on_change=_fill_room,
        placeholder="live rooms of this server" if tokens.any_room(actor) else "rooms of meetings you host",
        help="As the server listed them when this page last ran.",
        disabled=not suggested,
    )
    if not tokens.any_room(actor):
        st.caption("As a host you may issue tokens for the rooms of the meetings you host.")

    with st.form(FORM, enter_to_submit=False):
        c1, c2 = st.columns(2)
        identity = c1.text_input("Identity", max_chars=256, key=f"{FORM}_identity", help="Unique within the room.")
        name = c2.text_input("Display name", key=f"{FORM}_name")
        metadata = st.text_area("Metadata", key=f"{FORM}_metadata")
        attribute_text = st.text_area("Attributes (one key=value per line)", key=f"{FORM}_attributes", placeholder="role=speaker")
        minutes = st.number_input(
            "Lifetime (minutes)",
            int(MIN_TTL.total_seconds() // 60),
            int(MAX_TTL.total_seconds() // 60),
            int(DEFAULT_TTL.total_seconds() // 60),
            key=f"{FORM}_ttl",
            help="From 1 minute to 24 hours. A participant already in the room stays after it expires.",
        )
        st.markdown("**Grants**")
        g = st.columns(4)
        room_join = g[0].checkbox("Join the room", True, key=f"{FORM}_join")
        can_publish = g[1].checkbox("Publish", True, key=f"{FORM}_publish")
        can_subscribe = g[2].checkbox("Subscribe", True, key=f"{FORM}_subscribe")
        can_publish_data = g[3].checkbox("Publish data", True, key=f"{FORM}_data")
        hidden = g[0].checkbox("Hidden", key=f"{FORM}_hidden", help="Not shown to the other participants.")
        room_admin = g[1].checkbox("Room admin", key=f"{FORM}_admin", help="Mute, remove and update others in this room.")
        can_update_own_metadata = g[2].checkbox("Update own metadata", key=f"{FORM}_own_metadata")
        agent = g[3].checkbox("Agent", key=f"{FORM}_agent", help="May register as an agent worker.")
        room_create = g[0].checkbox("Create rooms", key=f"{FORM}_create")
        room_list = g[1].checkbox("List rooms", key=f"{FORM}_list")
        room_record = g[2].checkbox("Record", key=f"{FORM}_record")
        sources = st.multiselect(
            "Publish sources (none chosen: every source)", list(SOURCES), key=f"{FORM}_sources", placeholder="every source"
        )
        st.markdown("**Agent dispatch** (when joining creates the room)")
        d1, d2 = st.columns(2)
        dispatch_agent = d1.text_input("Agent name", max_chars=256, key=f"{FORM}_dispatch_agent", help="The agent_name a worker registered with; empty: none.")
        dispatch_metadata = d2.text_area("Job metadata", key=f"{FORM}_dispatch_metadata")
        if not st.form_submit_button("Issue token", type="primary"):
            return
        try:
            request = TokenRequest(
                room=room,
                identity=identity,
                name=name,
                metadata=metadata,
                attributes=parse_attribute_lines(attribute_text),
                ttl=timedelta(minutes=int(minutes)),
                grants=Grants(
                    room_join=room_join,
                    can_publish=can_publish,
                    can_subscribe=can_subscribe,
                    can_publish_data=can_publish_data,
                    can_publish_sources=tuple(sources),
                    hidden=hidden,
                    room_admin=room_admin,
                    room_create=room_create,
                    room_list=room_list,
                    room_record=room_record,
                    agent=agent,
                    can_update_own_metadata=can_update_own_metadata,
                ),
                dispatch_agent=dispatch_agent,
                dispatch_metadata=dispatch_metadata,
            )
            issued = tokens.issue(actor, server, request)
        except (TokenError, ActionError, GatewayError) as exc:
            # An older result below would read as this request's: it goes.
            st.session_state.pop(_ISSUED, None)
            st.error(md(live.failure(exc)))
            return
        st.session_state[_ISSUED] = (server, issued)
        st.session_state[REVEAL] = False  # a new token starts hidden


def issued_token() -> None:
    """The last token this session issued: for whom, until when, its claims, and the token
    itself behind a toggle (nothing of it is sent to the browser before)."""
    found: tuple[str, IssuedToken] | None = st.session_state.get(_ISSUED)
    if found is None:
        return
    server, issued = found
    st.subheader("Issued token")
    st.success(md(f"Token for {issued.identity} in room {issued.room} on {server}."))
    st.write(f"Expires {expiry_text(issued.expires_at)}.")
    if st.toggle("Reveal token", key=REVEAL):
        st.code(issued.jwt, language=None, wrap_lines=True)
    else:
        st.caption("Hidden: the token lets whoever holds it join as this identity. Reveal it to copy it.")
    st.markdown("**Claims**")
    st.json(issued.claims)
