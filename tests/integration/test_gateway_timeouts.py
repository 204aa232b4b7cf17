"""A server that accepts connections and never answers: the gateway names the cause (timeout)
within its request timeout, which is below five seconds by default."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.config import ServerConfig, load_settings
from lib.livekit.errors import Category, GatewayError
from lib.livekit.gateway import LiveKitGateway


@pytest.fixture
def silent_server() -> Iterator[str]:
    """The URL of a local TCP socket that accepts connections (the kernel completes the
    handshake for the listen backlog) and never sends a byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_default_request_timeout_is_below_five_seconds(tmp_path: Path) -> None:
    settings = load_settings({}, tmp_path / "none.toml")

    assert settings.request_timeout < 5


def test_connection_test_against_a_silent_server_reports_timeout(silent_server: str, tmp_path: Path) -> None:
    timeout = load_settings({}, tmp_path / "none.toml").request_timeout
    gateway = LiveKitGateway(request_timeout=timeout)
    try:
        result = gateway.test_connection(ServerConfig("silent", silent_server, "key", "secret-" + "s" * 32))
    finally:
        gateway.close()

    assert gateway.request_timeout == timeout
    assert not result.ok
    assert result.error is not None and result.error.category is Category.TIMEOUT


def test_snapshot_of_a_silent_server_ends_in_a_timeout_error(silent_server: str) -> None:
    gateway = LiveKitGateway([ServerConfig("silent", silent_server, "key", "secret-" + "s" * 32)], request_timeout=1.0)
    try:
        deadline = time.monotonic() + 6 * gateway.request_timeout  # generous: several timeouts
        [view] = gateway.live(max_age=0.0, wait=1.0)
        while view.snapshot is None and time.monotonic() < deadline:
            [view] = gateway.live(max_age=0.0, wait=1.0)
    finally:
        gateway.close()

    assert view.snapshot is not None, "the server is still shown as 'waiting for the first answer'"
    assert view.snapshot.error is not None and view.snapshot.error.category is Category.TIMEOUT


def test_control_against_a_silent_server_reports_timeout(silent_server: str) -> None:
    gateway = LiveKitGateway([ServerConfig("silent", silent_server, "key", "secret-" + "s" * 32)], request_timeout=1.0)
    try:
        with pytest.raises(GatewayError) as caught:
            gateway.create_room("silent", "never-created")
    finally:
        gateway.close()
    assert caught.value.category is Category.TIMEOUT
