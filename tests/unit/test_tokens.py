"""Token requests and what a signed token says: the rules a request must pass, the claims each
grant becomes, the expiry, the attribute lines of the Tokens form, and that a token's text stays
out of reprs. Signed with a made-up key and checked with PyJWT; nothing here talks to a server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt as pyjwt
import pytest
from livekit import api

from lib.livekit.tokens import (
    Grants,
    IssuedToken,
    TokenError,
    TokenRequest,
    build_token,
    decode_claims,
    server_api_token,
)
from lib.ui.tokens import expiry_text, parse_attribute_lines

KEY = "unit-test-key"
SECRET = "unit-test-secret-" + "s" * 32


def issue(**fields: object) -> IssuedToken:
    return build_token(KEY, SECRET, TokenRequest(**{"room": "lobby", "identity": "alice", **fields}))  # type: ignore[arg-type]


def verified(token: str) -> dict:
    return pyjwt.decode(token, SECRET, algorithms=["HS256"], issuer=KEY)


# ----- what a token says --------------------------------------------------------------------


def test_a_guest_token_grants_join_publish_subscribe_and_data_in_its_room_only() -> None:
    issued = issue(grants=Grants.guest())

    claims = verified(issued.jwt)
    assert claims["sub"] == "alice" and claims["iss"] == KEY
    assert claims["video"] == {"room": "lobby", "roomJoin": True, "canPublish": True, "canSubscribe": True, "canPublishData": True}
    assert issued.claims == claims, "the claims shown are the token's own"
    assert (issued.identity, issued.room) == ("alice", "lobby")


def test_a_host_token_adds_room_admin_to_a_guests_grants() -> None:
    assert Grants.host() == Grants(room_admin=True)
    video = verified(issue(grants=Grants.host()).jwt)["video"]
    assert video["roomAdmin"] is True and video["roomJoin"] is True and video["canPublish"] is True


def test_every_grant_reaches_the_token_under_livekits_claim_name() -> None:
    grants = Grants(
        room_join=False, can_publish=True, can_subscribe=False, can_publish_data=False,
        can_publish_sources=("camera", "screen_share"), hidden=True, room_admin=True, room_create=True,
        room_list=True, room_record=True, agent=True, can_update_own_metadata=True,
    )  # fmt: skip

    video = verified(issue(grants=grants).jwt)["video"]

    assert video == {
        "room": "lobby", "canPublish": True, "canSubscribe": False, "canPublishData": False,
        "canPublishSources": ["camera", "screen_share"], "hidden": True, "roomAdmin": True, "roomCreate": True,
        "roomList": True, "roomRecord": True, "agent": True, "canUpdateOwnMetadata": True,
    }  # fmt: skip
    # The server reads the sources as it reads a participant's permission.
    assert api.TokenVerifier(KEY, SECRET).verify(issue(grants=grants).jwt).video.can_publish_sources == ["camera", "screen_share"]


def test_name_metadata_and_attributes_are_claims_and_empty_ones_are_left_out() -> None:
    full = verified(issue(name="Alice A.", metadata='{"seat": 4}', attributes={"role": "speaker", "lang": "de"}).jwt)
    bare = verified(issue().jwt)

    assert (full["name"], full["metadata"], full["attributes"]) == ("Alice A.", '{"seat": 4}', {"lang": "de", "role": "speaker"})
    assert not {"name", "metadata", "attributes", "roomConfig"} & set(bare)


def test_a_dispatch_goes_into_the_room_configuration() -> None:
    claims = verified(issue(dispatch_agent="helper", dispatch_metadata='{"topic": "x"}').jwt)

    assert claims["roomConfig"] == {"agents": [{"agentName": "helper", "metadata": '{"topic": "x"}'}]}
    config = api.TokenVerifier(KEY, SECRET).verify(issue(dispatch_agent="helper").jwt).room_config
    assert [a.agent_name for a in config.agents] == ["helper"]


def test_the_expiry_is_the_tokens_exp_claim_the_lifetime_after_now() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    issued = issue(ttl=timedelta(minutes=90))
    after = datetime.now(timezone.utc)

    assert issued.expires_at == datetime.fromtimestamp(verified(issued.jwt)["exp"], timezone.utc)
    assert issued.expires_at.tzinfo == timezone.utc
    assert before + timedelta(minutes=90) <= issued.expires_at <= after + timedelta(minutes=90)
    assert TokenRequest("r", "i").ttl == timedelta(minutes=15)


def test_the_token_is_not_in_the_records_repr() -> None:
    issued = issue()

    assert issued.jwt not in repr(issued) and issued.jwt not in str(issued)
    assert "alice" in repr(issued)


def test_claims_are_decoded_without_the_secret_and_garbage_is_a_token_error() -> None:
    token = issue(name="Bob").jwt
    assert decode_claims(token)["name"] == "Bob"
    with pytest.raises(TokenError, match="not a LiveKit token"):
        decode_claims("not.a.token")


def test_requests_and_grants_are_frozen_and_hashable_whatever_form_attributes_come_in() -> None:
    from_mapping = TokenRequest("r", "i", attributes={"b": "2", "a": "1"})
    from_pairs = TokenRequest("r", "i", attributes=(("a", "1"), ("b", "2")))

    assert from_mapping == from_pairs and hash(from_mapping) == hash(from_pairs)
    assert from_mapping.attributes == (("a", "1"), ("b", "2"))
    assert Grants(can_publish_sources=["camera"]).can_publish_sources == ("camera",)  # type: ignore[arg-type]
    assert hash(Grants.host()) == hash(Grants(room_admin=True))
    with pytest.raises(AttributeError):
        from_mapping.room = "other"  # type: ignore[misc]


def test_granted_names_only_the_grants_that_are_on() -> None:
    assert Grants.guest().granted() == ["join", "publish", "subscribe", "data"]
    assert Grants(room_join=False, can_publish=False, can_subscribe=False, can_publish_data=False).granted() == []
    assert Grants(can_publish_sources=("microphone",), hidden=True).granted() == [
        "join", "publish", "subscribe", "data", "hidden", "sources microphone"
    ]


def test_a_server_api_token_lists_rooms_or_administers_one_and_joins_nothing() -> None:
    listing = verified(server_api_token(KEY, SECRET))
    admin = verified(server_api_token(KEY, SECRET, room="lobby"))

    assert listing["video"]["roomList"] is True and "roomJoin" not in listing["video"]
    assert admin["video"]["roomAdmin"] is True and admin["video"]["room"] == "lobby" and "roomJoin" not in admin["video"]
    assert listing["sub"] == "" and admin["sub"] == ""


# ----- the rules a request must pass --------------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"identity": ""}, "needs an identity"),
        ({"identity": "   "}, "needs an identity"),
        ({"identity": "i" * 257}, "identity is 257 characters; at most 256"),
        ({"room": ""}, "needs a room"),
        ({"room": "r" * 257}, "room name is 257 characters"),
        ({"ttl": timedelta(seconds=59)}, "from 1 minute to 24 hours; 0.983333 minutes was asked"),
        ({"ttl": timedelta(hours=24, seconds=1)}, "from 1 minute to 24 hours"),
        ({"ttl": timedelta(minutes=-5)}, "from 1 minute to 24 hours"),
        ({"metadata": "é" * 32_001}, "metadata is 64,002 bytes; at most 64,000"),
        ({"attributes": {"": "x"}}, "Every attribute needs a key"),
        ({"attributes": (("a", "1"), ("a", "2"))}, "'a' is given more than once"),
        ({"dispatch_metadata": "job"}, "no agent to dispatch"),
        ({"dispatch_agent": "a" * 257}, "agent name is 257 characters"),
        ({"grants": Grants(can_publish_sources=("webcam",))}, "Unknown track source 'webcam'"),
        ({"grants": Grants(can_publish=False, can_publish_sources=("camera",))}, "publishing is not granted"),
    ],
)
def test_a_request_that_breaks_a_rule_is_refused_with_a_sentence_and_nothing_is_signed(fields: dict, message: str) -> None:
    with pytest.raises(TokenError, match=message) as refused:
        issue(**fields)
    assert str(refused.value).endswith(".") and str(refused.value)[0].isupper()
    assert isinstance(refused.value, ValueError)


def test_the_limits_themselves_are_accepted() -> None:
    issue(identity="i" * 256, room="r" * 256, metadata="m" * 64_000, ttl=timedelta(minutes=1))
    issue(ttl=timedelta(hours=24))


def test_an_empty_key_or_secret_never_falls_back_to_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK signs with LIVEKIT_API_KEY/SECRET when given none: a token for another server.
    monkeypatch.setenv("LIVEKIT_API_KEY", "environment-key")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "environment-secret-" + "e" * 32)
    for key, secret in (("", SECRET), (KEY, "")):
        with pytest.raises(TokenError, match="API key and secret are needed"):
            build_token(key, secret, TokenRequest("lobby", "alice"))


# ----- the form's attribute lines and expiry ------------------------------------------------


def test_attribute_lines_become_pairs_with_blank_lines_and_edge_spaces_dropped() -> None:
    assert parse_attribute_lines("role = speaker\n\n  lang=de  \nurl=https://x/?a=b\nempty=") == (
        ("role", "speaker"), ("lang", "de"), ("url", "https://x/?a=b"), ("empty", "")
    )  # fmt: skip
    assert parse_attribute_lines("") == ()


def test_every_bad_attribute_line_is_named_in_one_message() -> None:
    with pytest.raises(TokenError) as refused:
        parse_attribute_lines("ok=1\nno equals sign\n=value\nok=2")

    message = str(refused.value)
    assert "line 2 ('no equals sign') has no '='" in message
    assert "line 3 ('=value') has no key" in message
    assert "line 4 repeats the key 'ok'" in message
    assert "line 1" not in message


def test_expiry_is_shown_in_utc_and_relative_to_now() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

    assert expiry_text(now + timedelta(minutes=15), now) == "2026-03-01 12:15:00 UTC (in 15m 00s)"
    assert expiry_text(now - timedelta(seconds=30), now) == "2026-03-01 11:59:30 UTC (expired 30s ago)"
