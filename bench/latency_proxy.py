"""A TCP proxy on 127.0.0.1 that delays each direction by a fixed time, so the benchmarks can
measure the gateway at a real network's round-trip time (this kernel has no `tc netem`).

    python -m bench.latency_proxy --target 127.0.0.1:7880 --delay-ms 10 [--stall]

prints "listening PORT" once it accepts connections and runs until stdin closes or SIGTERM.

What it models: every chunk read from one side reaches the other `delay` later (so a round
trip costs 2 x delay), in the order it was read on that connection; a new connection costs one
round trip before the first client byte can arrive, as TCP's handshake does across a network
(the kernel completes the client's connect() at once on loopback, so the proxy holds the first
bytes instead). Not modelled: TLS, loss, bandwidth. `--stall` accepts and reads but never
forwards, like a server that hangs.

The benchmark runs it as a child process (`ProxyProcess`): its CPU then shows up as another
process on the machine, as a network hop's would, instead of holding the measured process's GIL
and event loop. Tests may run it on a thread of their own (`ProxyThread`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import subprocess
import sys
from dataclasses import dataclass

from lib.aio import LoopThread

_EOF = object()  # queued after the data when one side half-closes or goes away
HIGH_WATER = 1 << 20  # bytes buffered towards one side before the other side stops being read


class _Direction:
    """Bytes travelling one way on one connection: queued with their delivery time and written
    by one timer in order."""

    def __init__(self, link: "_Link", loop: asyncio.AbstractEventLoop, delay: float, opens_at: float) -> None:
        self._link = link
        self._loop = loop
        self._delay = delay
        self._opens_at = opens_at  # nothing is delivered before the handshake would have ended
        self._queue: collections.deque[tuple[float, object]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self.sink: asyncio.Transport | None = None  # None until the far side is connected
        self.closed = False

    def push(self, item: object) -> None:
        when = max(self._loop.time(), self._opens_at) + self._delay
        self._queue.append((when, item))
        if self._timer is None and self.sink is not None:
            self._timer = self._loop.call_at(when, self._deliver)

    def attach(self, sink: asyncio.Transport) -> None:
        self.sink = sink
        if self._queue and self._timer is None:
            self._timer = self._loop.call_at(self._queue[0][0], self._deliver)

    def _deliver(self) -> None:
        self._timer = None
        # The loop runs a timer up to its clock resolution early; count that as due.
        sink, now = self.sink, self._loop.time() + 1e-4
        chunks: list[bytes] = []
        while self._queue and self._queue[0][0] <= now:
            _, item = self._queue.popleft()
            if item is _EOF:
                if chunks:
                    sink.write(b"".join(chunks))
                    chunks = []
                self._finish()
                return
            chunks.append(item)  # type: ignore[arg-type]
        if chunks and not sink.is_closing():
            sink.write(b"".join(chunks))
        if self._queue:
            self._timer = self._loop.call_at(self._queue[0][0], self._deliver)

    def _finish(self) -> None:
        self._queue.clear()
        self.closed = True
        sink = self.sink
        if sink is not None and not sink.is_closing():
            try:
                sink.write_eof()
            except OSError:  # the far side is already gone
                sink.close()
        self._link.direction_done()

    def abort(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class _Side(asyncio.Protocol):
    """One end of a proxied connection; what it reads goes into `outbound`."""

    def __init__(self, link: "_Link", outbound: _Direction, inbound: _Direction) -> None:
        self._link = link
        self._outbound = outbound
        self._inbound = inbound  # the direction that writes to this side's transport
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._inbound.attach(self.transport)
        self.transport.set_write_buffer_limits(HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if not self._link.stall:
            self._outbound.push(data)

    def eof_received(self) -> bool:
        self._outbound.push(_EOF)
        return True  # keep our own writing side open until the other side finishes too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._outbound.closed:
            self._outbound.push(_EOF)
        self._link.side_lost(self)

    def pause_writing(self) -> None:
        self._link.peer(self).pause_reading()

    def resume_writing(self) -> None:
        self._link.peer(self).resume_reading()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class _Link:
    """One client connection and its connection to the target."""

    def __init__(self, proxy: "DelayProxy") -> None:
        loop, delay = proxy.loop, proxy.delay
        self.proxy = proxy
        self.stall = proxy.stall
        now = loop.time()
        to_target = _Direction(self, loop, delay, opens_at=now + 2 * delay)
        to_client = _Direction(self, loop, delay, opens_at=now)
        self.client = _Side(self, to_target, to_client)
        self.target = _Side(self, to_client, to_target)
        self._directions = (to_target, to_client)
        self._lost = 0
        self._done = 0

    def peer(self, side: _Side) -> _Side:
        return self.target if side is self.client else self.client

    async def connect(self) -> None:
        try:
            await self.proxy.loop.create_connection(lambda: self.target, *self.proxy.target)
        except OSError:
            # The target is down: the client sees its connection closed, as behind a real proxy.
            if self.client.transport is not None:
                self.client.transport.close()

    def direction_done(self) -> None:
        # Both ways half-closed: asyncio keeps a transport open after write_eof, so close it here.
        self._done += 1
        if self._done == 2:
            self.close()

    def side_lost(self, side: _Side) -> None:
        self._lost += 1
        if self._lost == 2 or side is self.client and self.target.transport is None:
            self.close()

    def close(self) -> None:
        for direction in self._directions:
            direction.abort()
        for side in (self.client, self.target):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()
        self.proxy.links.discard(self)


class DelayProxy:
    """The proxy's server on the running loop: `await start()`, then `port`; `close()` ends the
    server and every connection through it."""

    def __init__(self, target: tuple[str, int], delay: float, *, stall: bool = False, port: int = 0) -> None:
        self.target = target
        self.delay = delay
        self.stall = stall
        self.links: set[_Link] = set()
        self._port = port
        self._server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]

    async def start(self) -> "DelayProxy":
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(self._accept, "127.0.0.1", self._port, backlog=1024)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def _accept(self) -> _Side:
        link = _Link(self)
        self.links.add(link)
        if not self.stall:
            self.loop.create_task(link.connect())
        return link.client

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.close()
        if self._server is not None:
            await self._server.wait_closed()


class ProxyThread:
    """A DelayProxy on a thread with its own event loop, for tests; `stop()` closes it."""

    def __init__(self, target: tuple[str, int], delay_ms: float, *, stall: bool = False) -> None:
        self._loop = LoopThread("delay-proxy")
        self._proxy = self._loop.run(DelayProxy(target, delay_ms / 1000, stall=stall).start(), 10)
        self.port = self._proxy.port

    def stop(self) -> None:
        """Close the listening socket and every connection through it; safe to call twice."""
        if not self._loop.running:
            return
        try:
            self._loop.run(self._proxy.close(), 10)
        finally:
            self._loop.stop()


@dataclass
class ProxyProcess:
    """`python -m bench.latency_proxy` as a child process; `stop()` ends it by its PID."""

    target: tuple[str, int]
    delay_ms: float
    stall: bool = False
    port: int = 0
    process: subprocess.Popen[str] | None = None

    def start(self) -> "ProxyProcess":
        args = [sys.executable, "-m", "bench.latency_proxy", "--target", f"{self.target[0]}:{self.target[1]}", "--delay-ms", str(self.delay_ms)]
        self.process = subprocess.Popen(args + (["--stall"] if self.stall else []), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().split()
        if line[:1] != ["listening"]:
            self.stop()
            raise RuntimeError(f"the delay proxy did not start: {line}")
        self.port = int(line[1])
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.stdin.close()  # the proxy exits when its stdin closes
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(5)

    def __enter__(self) -> "ProxyProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _serve(target: tuple[str, int], delay_ms: float, stall: bool, port: int) -> None:
    loop = asyncio.get_running_loop()
    proxy = await DelayProxy(target, delay_ms / 1000, stall=stall, port=port).start()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read(1) or done.set())
    print(f"listening {proxy.port}", flush=True)
    await done.wait()
    await proxy.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, required=True, help="delay of each direction (round trip = 2x)")
    parser.add_argument("--stall", action="store_true", help="accept and read, never forward")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    asyncio.run(_serve((host, int(port)), args.delay_ms, args.stall, args.port))


if __name__ == "__main__":
    main()
