"""The Servers page's connection test against URLs that are not a LiveKit server: a plain web
server answering HTTP (a real one, started here on 127.0.0.1) and a URL of another scheme."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lib.config import ConfigError, ServerConfig, validate_url
from lib.livekit.errors import Category
from lib.livekit.gateway import LiveKitGateway

# What the web server answers to any POST: status, content type, body.
ANSWERS = {
    "/html405": (405, "text/html", b"<html><body><h1>405 Not Allowed</h1></body></html>"),
    "/json404": (404, "application/json", b'{"error": "no such page"}'),
    "/html200": (200, "text/html; charset=utf-8", b"<!doctype html><title>Welcome</title>"),
}


class _WebServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        self.connections += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        prefix = "/" + self.path.split("/")[1]
        status, content_type, body = ANSWERS.get(prefix, (404, "text/plain", b"404 page not found"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[_WebServer]:
    server = _WebServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def gateway() -> Iterator[LiveKitGateway]:
    gw = LiveKitGateway(request_timeout=3.0)
    yield gw
    gw.close()


@pytest.mark.parametrize("path", sorted(ANSWERS))
def test_a_web_server_that_is_not_livekit_is_named_as_such(gateway: LiveKitGateway, web_server: _WebServer, path: str) -> None:
    url = f"http://127.0.0.1:{web_server.server_address[1]}{path}"
    result = gateway.test_connection(ServerConfig("web", url, "key", "s" * 32))

    assert not result.ok and result.error is not None
    status = ANSWERS[path][0]
    assert result.error.category is Category.NOT_LIVEKIT
    assert f"answered HTTP {status}" in result.error.detail
    assert "does not look like a LiveKit server" in result.error.detail
    assert web_server.connections >= 1


def test_a_url_of_another_scheme_is_refused_without_a_network_call(gateway: LiveKitGateway, web_server: _WebServer) -> None:
    url = f"ftp://127.0.0.1:{web_server.server_address[1]}"
    with pytest.raises(ConfigError) as expected:
        validate_url(url)

    result = gateway.test_connection(ServerConfig("ftp", url, "key", "s" * 32))

    assert not result.ok and result.error is not None
    assert result.error.category is Category.INVALID
    assert result.error.detail == str(expected.value)
    assert "ws://" in result.error.detail and "https://" in result.error.detail
    assert result.seconds == 0.0
    assert web_server.connections == 0
