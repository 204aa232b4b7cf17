"""A small HTTP/1.1 client for the Twirp calls a snapshot repeats hundreds of times a refresh.

Why not aiohttp here: a snapshot is one ListRooms and then a call per room, and on two cores its
time is mostly client CPU. aiohttp spent about 90 µs of it per request (request and response
objects, header multidicts, stream readers, timers); this client writes each request as one
byte string and parses the response in place, for a fraction of that. It does only what those
calls need: POST with a body, a response with Content-Length or chunked body, keep-alive
connections reused most-recently-used first and closed after `keepalive` idle seconds, TLS for
https. Controls and everything else keep using the LiveKit SDK (and aiohttp).

`TwirpPool.call` raises `ServerError` (the SDK's) for a Twirp error answer, `NotTwirpAnswer` for
an HTTP answer that is not one (a plain web server, a proxy's error page), `ConnectError` when
nothing accepts the connection, `ConnectionError` when it breaks, and `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import ssl
import time
import zlib
from urllib.parse import urlsplit

from livekit.api.twirp_client import ServerError
from livekit.api.version import __version__ as SDK_VERSION

MAX_BODY = 64 << 20  # a bigger answer is not a LiveKit listing; refuse rather than buffer it
_USER_AGENT = f"livekit-dashboard (livekit-server-sdk-python/{SDK_VERSION})"


class NotTwirpAnswer(Exception):
    """Something answered HTTP, but not with Twirp (no JSON error with a `code`)."""

    def __init__(self, status: int, content_type: str) -> None:
        super().__init__(f"HTTP {status} ({content_type or 'no content type'})")
        self.status = status
        self.content_type = content_type


class ConnectError(ConnectionError):
    """Nothing accepted a connection at host:port (refused, unresolvable, unroutable)."""

    def __init__(self, host: str, port: int, cause: BaseException) -> None:
        reason = getattr(cause, "reason", None) or getattr(cause, "strerror", None) or type(cause).__name__
        super().__init__(f"cannot connect to {host}:{port} ({reason})")
        self.host, self.port = host, port


class _Closed(ConnectionError):
    """The connection ended before a whole response; `sent_nothing_back` tells a stale
    keep-alive connection (safe to retry a read) from a broken answer."""

    def __init__(self, received: int) -> None:
        super().__init__("the server closed the connection" + (" mid-answer" if received else ""))
        self.sent_nothing_back = received == 0


class _Response:
    __slots__ = ("status", "headers", "body", "reusable")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, reusable: bool) -> None:
        self.status, self.headers, self.body, self.reusable = status, headers, body, reusable


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._waiter: asyncio.Future[_Response] | None = None
        # One timer handle per call: asyncio.timeout() cost several times as much CPU, at
        # hundreds of calls a snapshot.
        self._timer: asyncio.TimerHandle | None = None
        self._received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def request(self, payload: bytes, deadline: float) -> asyncio.Future[_Response]:
        """Send one request; the future fails with TimeoutError at `deadline` (loop time)."""
        assert self.transport is not None and self._waiter is None
        self._waiter = self._loop.create_future()
        self._timer = self._loop.call_at(deadline, self._expire)
        self._received = 0
        self.transport.write(payload)
        return self._waiter

    def _expire(self) -> None:
        self._timer = None
        self._fail(TimeoutError("no answer in time"))

    def _settle(self) -> asyncio.Future[_Response] | None:
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return waiter if waiter is not None and not waiter.done() else None

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self._received += len(data)
        self._buffer += data
        try:
            response = self._parse(eof=False)
        except Exception as exc:  # noqa: BLE001 - a malformed answer fails this call
            self._fail(exc)
            return
        if response is not None:
            self._finish(response)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the waiter

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            try:
                response = self._parse(eof=True) if self._buffer else None
            except Exception as error:  # noqa: BLE001
                self._fail(error)
                return
            if response is not None:
                self._finish(response)
            else:
                self._fail(_Closed(self._received))

    def _finish(self, response: _Response) -> None:
        waiter = self._settle()
        self._buffer.clear()
        if not response.reusable:
            self.close()
        if waiter is not None:
            waiter.set_result(response)

    def _fail(self, exc: BaseException) -> None:
        waiter = self._settle()
        self._buffer.clear()
        self.close()
        if waiter is not None:
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _parse(self, eof: bool) -> _Response | None:
        buf = self._buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > 65536:
                raise ConnectionError("the answer's headers are too long")
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ConnectionError("the answer is not HTTP/1.x")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        reusable = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _dechunk(buf, start)
            if body is None:
                if eof:
                    raise ConnectionError("the server closed the connection mid-answer")
                return None
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise ConnectionError(f"the answer is too large ({length} bytes)")
            if len(buf) - start < length:
                if eof:
                    raise ConnectionError("the server closed the connection mid-answer")
                return None
            body = bytes(buf[start : start + length])
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # the body runs until the server closes the connection
            if len(buf) - start > MAX_BODY:
                raise ConnectionError("the answer is too large")
            if not eof:
                return None
            body, reusable = bytes(buf[start:]), False
        if headers.get("content-encoding", "identity").lower() in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        return _Response(status, headers, body, reusable)


def _dechunk(buf: bytearray, pos: int) -> bytes | None:
    """The body of a chunked answer starting at `pos`, or None while it is incomplete."""
    parts: list[bytes] = []
    size_total = 0
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";", 1)[0].strip() or b"0", 16)
        pos = line_end + 2
        if size == 0:
            # Trailers (none expected) end with an empty line.
            trailer_end = buf.find(b"\r\n", pos)
            while trailer_end > pos:
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            return b"".join(parts) if trailer_end >= 0 else None
        size_total += size
        if size_total > MAX_BODY:
            raise ConnectionError("the answer is too large")
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


class TwirpPool:
    """Keep-alive connections to one server's Twirp endpoint. The caller bounds how many calls
    run at once (the gateway's per-server semaphore); the pool opens a connection whenever none
    is idle and keeps every one it opened until it has been idle `keepalive` seconds."""

    def __init__(self, base_url: str, *, timeout: float, connect_timeout: float, keepalive: float = 30.0) -> None:
        parts = urlsplit(base_url)
        # Checked when called, so a gateway can hold a server whose URL only fails its calls.
        self._invalid = None if parts.scheme in ("http", "https") and parts.hostname else f"not an http(s) URL: {base_url}"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._base = parts.path.rstrip("/")
        default_port = self._port == (443 if self._ssl else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._idle: collections.deque[_Connection] = collections.deque()  # newest on the right
        self._busy: set[_Connection] = set()
        self._prefixes: dict[str, bytes] = {}
        self._fastest = math.inf  # the quickest answer since take_fastest(), in seconds

    def take_fastest(self) -> float | None:
        """The shortest time from a request written to its answer read since the last call:
        about the round trip plus the server's time, with the least queueing."""
        fastest, self._fastest = self._fastest, math.inf
        return None if fastest == math.inf else fastest

    def _prefix(self, path: str) -> bytes:
        prefix = self._prefixes.get(path)
        if prefix is None:
            prefix = (
                f"POST {self._base}/twirp/{path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
                f"User-Agent: {_USER_AGENT}\r\nContent-Type: application/protobuf\r\n"
            ).encode("latin-1")
            self._prefixes[path] = prefix
        return prefix

    async def _open(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + self._connect_timeout)):
                _, conn = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._ssl else None
                )
        except TimeoutError:
            raise
        except OSError as exc:  # refused, unresolvable, unroutable, or a TLS failure
            raise ConnectError(self._host, self._port, exc) from None
        return conn

    def trim(self, keep: int) -> None:
        """Close idle connections beyond the `keep` used most recently."""
        while len(self._idle) > keep:
            self._idle.popleft().close()

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle and now - self._idle[0].idle_since > self._keepalive:
            self._idle.popleft().close()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return None

    def _release(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        if not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)

    async def call(self, path: str, authorization: bytes, body: bytes) -> bytes:
        """POST `body` to /twirp/`path` and return the answer's body (HTTP 200 only).

        `authorization` is the whole header line, b"Authorization: Bearer ...\\r\\n"."""
        if self._invalid:
            raise ValueError(self._invalid)
        payload = b"".join((self._prefix(path), authorization, b"Content-Length: %d\r\n\r\n" % len(body), body))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        conn = self._take_idle()
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._open(deadline)
            self._busy.add(conn)
            sent = loop.time()
            try:
                response = await conn.request(payload, deadline)
            except _Closed as exc:
                self._busy.discard(conn)
                if reused and exc.sent_nothing_back:
                    # The server closed this idle connection as we reused it; a read is safe
                    # to send again, once, on a new connection.
                    conn, reused = None, False
                    continue
                raise
            except BaseException:
                self._busy.discard(conn)
                conn.close()  # cancelled or timed out mid-call: its state is unknown
                raise
            self._release(conn)
            break
        elapsed = loop.time() - sent
        if elapsed < self._fastest:
            self._fastest = elapsed
        if response.status == 200:
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("application/protobuf"):
                return response.body
            raise NotTwirpAnswer(200, content_type.split(";", 1)[0])
        raise _error_of(response)

    async def close(self) -> None:
        for conn in (*self._idle, *self._busy):
            conn.close()
        self._idle.clear()
        self._busy.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks


def _error_of(response: _Response) -> Exception:
    """Twirp answers an error with JSON carrying a `code`; anything else is not Twirp."""
    content_type = response.headers.get("content-type", "")
    try:
        data = json.loads(response.body) if response.body[:1] == b"{" else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("code"), str):
        return NotTwirpAnswer(response.status, content_type.split(";", 1)[0])
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else None
    return ServerError(data["code"], str(data.get("msg", "")), status=response.status, metadata=meta)
