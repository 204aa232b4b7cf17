"""Nagle off on the dashboard's connections (lib/api/server_socket.py): a connection accepted on
a listening socket bound as Streamlit binds it (protocol 0) has TCP_NODELAY off until the
wrapped uvicorn protocol takes it, and on after."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket

from lib.api.server_socket import no_delay, take_over_connections


def accepted_no_delay() -> tuple[int, int]:
    """TCP_NODELAY of a connection asyncio accepted on a protocol-0 socket: before, after."""

    async def scenario() -> tuple[int, int]:
        listening = socket.socket(socket.AF_INET)  # as streamlit's _bind_socket does
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        listening.setblocking(False)
        got: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                before = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                no_delay(transport)
                got.set_result((before, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        _, writer = await asyncio.open_connection(*listening.getsockname())
        try:
            return await asyncio.wait_for(got, 10)
        finally:
            writer.close()
            server.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop of its own (Playwright's may run here)
        return pool.submit(asyncio.run, scenario()).result()


def test_a_connection_on_a_socket_bound_as_streamlit_binds_it_keeps_nagle_until_told() -> None:
    assert accepted_no_delay() == (0, 1)


def test_uvicorn_s_http_protocol_is_wrapped_once() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    take_over_connections()
    wrapped = H11Protocol.connection_made
    take_over_connections()
    assert getattr(H11Protocol.connection_made, "dashboard_no_delay", False) and H11Protocol.connection_made is wrapped
