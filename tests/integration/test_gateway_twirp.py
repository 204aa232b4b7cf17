"""The snapshot reads' own HTTP/1.1 client (lib/livekit/twirp.py) against real sockets: a small
HTTP server started here answers the ways real servers and proxies do (chunked bodies, answers
split over many packets, Connection: close, idle connections closed by the server, an answer cut
short), and against the real livekit-server connections are kept and reused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from lib.aio import LoopThread
from lib.livekit.errors import Category, classify
from lib.livekit.twirp import TwirpPool

PROTOBUF = b"Content-Type: application/protobuf\r\n"
Answer = Callable[[asyncio.StreamWriter, int], "asyncio.Future[None] | None"]


class ScriptedServer:
    """Accepts connections on 127.0.0.1 and answers the n-th request (counted over all
    connections) with `answer(writer, n)`; counts connections."""

    def __init__(self, answer: Callable[[asyncio.StreamWriter, int], object]) -> None:
        self.answer = answer
        self.connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                self.requests += 1
                outcome = self.answer(writer, self.requests)
                if asyncio.iscoroutine(outcome):
                    await outcome
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
def loop() -> LoopThread:
    running = LoopThread("twirp-test")
    yield running
    running.stop()


def run_calls(loop: LoopThread, answer, calls: int, *, timeout: float = 3.0, between=None):  # type: ignore[no-untyped-def]
    """Start a ScriptedServer, make `calls` calls one after another through one pool; return
    (results or exceptions, the server)."""

    async def scenario():  # type: ignore[no-untyped-def]
        server = ScriptedServer(answer)
        port = await server.start()
        pool = TwirpPool(f"http://127.0.0.1:{port}", timeout=timeout, connect_timeout=timeout)
        results: list[object] = []
        try:
            for i in range(calls):
                try:
                    results.append(await pool.call("livekit.RoomService/ListRooms", b"Authorization: Bearer x\r\n", b"\x0a\x01a"))
                except Exception as exc:  # noqa: BLE001 - the test looks at it
                    results.append(exc)
                if between is not None:
                    await between(i)
        finally:
            await pool.close()
            await server.stop()
        return results, server

    return loop.run(scenario(), 30)


def test_keep_alive_connection_is_reused(loop):
    def answer(writer, n):  # type: ignore[no-untyped-def]
        writer.write(b"HTTP/1.1 200 OK\r\n" + PROTOBUF + b"Content-Length: 2\r\n\r\nok")

    results, server = run_calls(loop, answer, 5)

    assert results == [b"ok"] * 5
    assert server.connections == 1


def test_chunked_answer_split_over_many_packets_is_read_whole(loop):
    async def answer(writer, n):  # type: ignore[no-untyped-def]
        parts = [b"HTTP/1.1 200 OK\r\n", PROTOBUF, b"Transfer-Encoding: chunked\r\n\r\n", b"5\r\nhel", b"lo\r\n", b"6;x=y\r\n wor", b"ld\r\n0\r\n\r\n"]
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.01)

    results, server = run_calls(loop, answer, 2)

    assert results == [b"hello world"] * 2
    assert server.connections == 1


def test_connection_close_answer_is_not_reused(loop):
    def answer(writer, n):  # type: ignore[no-untyped-def]
        writer.write(b"HTTP/1.1 200 OK\r\n" + PROTOBUF + b"Connection: close\r\nContent-Length: 2\r\n\r\nok")
        writer.close()

    results, server = run_calls(loop, answer, 3)

    assert results == [b"ok"] * 3
    assert server.connections == 3


def test_idle_connection_closed_by_the_server_is_replaced_on_the_next_call(loop):
    writers: list[asyncio.StreamWriter] = []

    def answer(writer, n):  # type: ignore[no-untyped-def]
        writers.append(writer)
        writer.write(b"HTTP/1.1 200 OK\r\n" + PROTOBUF + b"Content-Length: 2\r\n\r\nok")

    async def server_drops_idle(i):  # type: ignore[no-untyped-def]
        writers[-1].transport.abort()  # the server times the idle connection out
        await asyncio.sleep(0.05)

    results, server = run_calls(loop, answer, 3, between=server_drops_idle)

    assert results == [b"ok"] * 3
    assert server.connections == 3


def test_reused_connection_closed_without_an_answer_is_retried_once_on_a_new_one(loop):
    def answer(writer, n):  # type: ignore[no-untyped-def]
        if n == 2:
            writer.close()  # as a server closing an idle connection the moment it is reused
            return
        writer.write(b"HTTP/1.1 200 OK\r\n" + PROTOBUF + b"Content-Length: 2\r\n\r\nok")

    results, server = run_calls(loop, answer, 2)

    assert results == [b"ok", b"ok"]
    assert server.requests == 3 and server.connections == 2


def test_new_connection_closed_without_an_answer_is_an_error(loop):
    def answer(writer, n):  # type: ignore[no-untyped-def]
        writer.close()

    [result], server = run_calls(loop, answer, 1)

    assert isinstance(result, ConnectionError) and classify(result).category is Category.UNREACHABLE
    assert server.requests == 1


def test_answer_cut_short_is_an_unreachable_error_not_a_retry(loop):
    def answer(writer, n):  # type: ignore[no-untyped-def]
        writer.write(b"HTTP/1.1 200 OK\r\n" + PROTOBUF + b"Content-Length: 10\r\n\r\nabc")
        writer.close()

    [result], server = run_calls(loop, answer, 1)

    assert isinstance(result, ConnectionError)
    assert classify(result).category is Category.UNREACHABLE
    assert server.requests == 1


def test_twirp_error_answer_keeps_its_code_and_message(loop):
    def answer(writer, n):  # type: ignore[no-untyped-def]
        body = b'{"code":"not_found","msg":"requested room does not exist"}'
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    [result, again], server = run_calls(loop, answer, 2)

    error = classify(result)
    assert (error.category, error.detail) == (Category.NOT_FOUND, "requested room does not exist")
    assert server.connections == 1  # an error answer leaves the connection usable


def test_snapshots_of_the_real_server_reuse_their_connections(livekit_server, lk_api, unique_name):
    from lib.config import ServerConfig
    from lib.livekit.gateway import LiveKitGateway

    for _ in range(3):
        lk_api.create_room(unique_name())
    config = ServerConfig("test", livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret)
    gateway = LiveKitGateway([config], request_timeout=4.0)
    try:
        gateway.snapshot("test")  # the first one reads every room after ListRooms
        second = gateway.snapshot("test")
        pool = gateway._servers["test"].reader._pool  # noqa: SLF001 - what the test is about
        opened = len(pool._idle)  # noqa: SLF001
        third = gateway.snapshot("test")
        kept = len(pool._idle)  # noqa: SLF001
    finally:
        gateway.close()

    assert second.ok and third.ok and len(third.rooms) >= 3
    assert opened >= 1 and kept == opened  # the third snapshot opened no connection
