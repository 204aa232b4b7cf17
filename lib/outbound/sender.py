"""The one module that sends HTTP to webhook receivers: one POST, a short timeout, the answer's
status code or a short error. Redirects are not followed (a 3xx is a failure). Errors never
quote the URL (its path or query may carry a receiver's own token)."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_ERROR = 300


@dataclass(frozen=True)
class Answer:
    """How one POST went: the status code when the receiver answered, else an error."""

    status_code: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the receiver"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the receiver closed the connection without answering"
    if isinstance(exc, socket.gaierror):
        return "the receiver's host name does not resolve"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


class Post:
    """One POST that another thread may abort (the deliverer, stopping)."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
        self._url = urlsplit(url)
        self._body = body
        self._headers = {"Content-Type": "application/json", "User-Agent": "livekit-dashboard-webhooks", **headers}
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._aborted = False

    def send(self) -> Answer:
        """Connect, send, read the status line (and at most a little of the body): each step
        within the timeout."""
        u = self._url
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        try:
            if u.scheme == "https":
                connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                    u.hostname or "", u.port, timeout=self._timeout, context=ssl.create_default_context()
                )
            else:
                connection = http.client.HTTPConnection(u.hostname or "", u.port, timeout=self._timeout)
        except ValueError:
            return Answer(None, "the URL's port is not valid")
        with self._lock:
            if self._aborted:
                return Answer(None, "interrupted: the dashboard is stopping")
            self._connection = connection
        try:
            connection.request("POST", path, body=self._body, headers=self._headers)
            response = connection.getresponse()
            try:
                response.read(4096)  # lets a keep-alive receiver finish its answer; the rest is not ours
            except (OSError, http.client.HTTPException):
                pass
            return Answer(response.status, "" if 200 <= response.status < 300 else f"HTTP {response.status} {response.reason}"[:MAX_ERROR])
        except (OSError, http.client.HTTPException) as exc:
            if self._aborted:
                return Answer(None, "interrupted: the dashboard is stopping")
            return Answer(None, _describe(exc, self._timeout)[:MAX_ERROR])
        finally:
            connection.close()

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            sock = self._connection.sock if self._connection is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
