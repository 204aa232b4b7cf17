"""Which address a request comes from: X-Forwarded-For is believed only from trusted proxies,
and then only as far back as the chain of trusted proxies reaches."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from lib.auth.addresses import CLIENT_ADDRESS_HEADER, normalise_address, resolve_client, resolved_scope
from lib.config import ConfigError, load_settings

NONE_TOML = Path("/nonexistent/secrets.toml")


def nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


PROXY = nets("10.0.0.1", "10.1.0.0/16", "fd00::/8")


def test_without_trusted_proxies_forwarded_for_is_never_believed() -> None:
    assert resolve_client("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"
    assert resolve_client("10.0.0.1", ["203.0.113.9"], ()) == "10.0.0.1"


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_forwards() -> None:
    assert resolve_client("192.0.2.5", ["203.0.113.9"], PROXY) == "192.0.2.5"


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client() -> None:
    assert resolve_client("10.0.0.1", ["203.0.113.9"], PROXY) == "203.0.113.9"


def test_the_right_most_untrusted_entry_wins_so_a_client_cannot_prepend_its_choice() -> None:
    # The client sent "198.51.100.1" itself; the proxy appended the address it saw.
    assert resolve_client("10.0.0.1", ["198.51.100.1, 203.0.113.9"], PROXY) == "203.0.113.9"


def test_trusted_proxies_in_the_chain_are_skipped_across_several_headers() -> None:
    headers = ["198.51.100.1", "203.0.113.9, 10.1.2.3", "fd00::7"]
    assert resolve_client("10.0.0.1", headers, PROXY) == "203.0.113.9"


def test_when_every_hop_is_trusted_the_earliest_one_is_the_client() -> None:
    assert resolve_client("10.0.0.1", ["10.1.0.5, 10.1.0.6"], PROXY) == "10.1.0.5"


@pytest.mark.parametrize("entry", ["unknown", "", "_hidden", "300.1.2.3", "١٢٣.1.2.3", "203.0.113.9:port", "[2001:db8::1", "[203.0.113.9]", "a" * 200])
def test_a_malformed_entry_stops_the_walk_at_the_proxy_that_passed_it_on(entry: str) -> None:
    assert resolve_client("10.0.0.1", [entry], PROXY) == "10.0.0.1"
    # Behind a second trusted hop, that hop is the client; nothing left of the entry is used.
    assert resolve_client("10.0.0.1", [f"203.0.113.9, {entry}, 10.1.0.5"], PROXY) == "10.1.0.5"


def test_no_forwarded_header_from_a_trusted_proxy_means_the_proxy_is_the_client() -> None:
    assert resolve_client("10.0.0.1", [], PROXY) == "10.0.0.1"


@pytest.mark.parametrize(
    "text, address",
    [
        ("203.0.113.9", "203.0.113.9"),
        (" 203.0.113.9 ", "203.0.113.9"),
        ("203.0.113.9:4711", "203.0.113.9"),
        ("2001:DB8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_addresses_are_normalised_so_one_client_is_one_bucket(text: str, address: str) -> None:
    assert normalise_address(text) == address
    assert resolve_client("10.0.0.1", [text], PROXY) == address


def test_a_peer_that_is_not_an_ip_address_is_kept_as_it_is() -> None:
    assert resolve_client("testclient", ["203.0.113.9"], PROXY) == "testclient"
    assert resolve_client(None, ["203.0.113.9"], PROXY) == ""


def test_an_ipv4_mapped_peer_matches_an_ipv4_trusted_proxy() -> None:
    assert resolve_client("::ffff:10.0.0.1", ["203.0.113.9"], PROXY) == "203.0.113.9"


def scope(kind: str, peer: str, headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"type": kind, "client": (peer, 5555), "headers": headers, "scheme": "ws" if kind == "websocket" else "http"}


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_the_resolved_scope_carries_the_client_and_an_unforgeable_header(kind: str) -> None:
    forged = (CLIENT_ADDRESS_HEADER.encode(), b"192.0.2.66")
    original = scope(kind, "10.0.0.1", [forged, (b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")])

    resolved = resolved_scope(original, PROXY)

    assert resolved["client"] == ("203.0.113.9", 0)
    assert [v for k, v in resolved["headers"] if k == CLIENT_ADDRESS_HEADER.encode()] == [b"203.0.113.9"]
    assert resolved["scheme"] == ("wss" if kind == "websocket" else "https")
    assert original["client"] == ("10.0.0.1", 5555), "the caller's scope is left alone"


def test_an_untrusted_peer_keeps_its_address_and_scheme_and_loses_a_forged_header() -> None:
    original = scope("http", "127.0.0.1", [(CLIENT_ADDRESS_HEADER.encode(), b"192.0.2.66"), (b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")])

    resolved = resolved_scope(original, ())

    assert resolved["client"] == ("127.0.0.1", 5555) and resolved["scheme"] == "http"
    assert [v for k, v in resolved["headers"] if k == CLIENT_ADDRESS_HEADER.encode()] == [b"127.0.0.1"]


def test_trusted_proxies_setting_takes_addresses_and_networks() -> None:
    settings = load_settings({"DASHBOARD_TRUSTED_PROXIES": "127.0.0.1, 10.1.0.0/16 fd00::/8"}, NONE_TOML)
    assert settings.trusted_proxies == nets("127.0.0.1", "10.1.0.0/16", "fd00::/8")
    assert load_settings({}, NONE_TOML).trusted_proxies == ()


@pytest.mark.parametrize("raw", ["10.0.0.0/33", "proxy.example", "10.0.0.1/8", "127.0.0.1 nonsense"])
def test_a_bad_trusted_proxies_entry_is_refused_with_the_setting_name(raw: str) -> None:
    with pytest.raises(ConfigError, match="DASHBOARD_TRUSTED_PROXIES"):
        load_settings({"DASHBOARD_TRUSTED_PROXIES": raw}, NONE_TOML)
