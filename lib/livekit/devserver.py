"""Starts and stops a local `livekit-server --dev` bound to 127.0.0.1 on free ports.

Used by `make run` (the embedded default server) and by the test harness. The binary comes from
`go install github.com/livekit/livekit-server/cmd/server@<LIVEKIT_SERVER_VERSION>` into the
git-ignored `.tools/bin/`; see scripts/install-livekit-server.sh.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LIVEKIT_SERVER_VERSION = "v1.13.5"
DEFAULT_BINARY = REPO_ROOT / ".tools" / "bin" / "livekit-server"


class DevServerError(RuntimeError):
    """The local livekit-server could not be found or did not come up."""


def find_binary() -> Path:
    """The livekit-server to run: $LIVEKIT_SERVER_BIN, then .tools/bin, then PATH."""
    configured = os.environ.get("LIVEKIT_SERVER_BIN")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise DevServerError(f"LIVEKIT_SERVER_BIN={configured} does not exist")
        return path
    if DEFAULT_BINARY.is_file():
        return DEFAULT_BINARY
    on_path = shutil.which("livekit-server")
    if on_path:
        return Path(on_path)
    raise DevServerError(
        "livekit-server not found: run `make setup` (it installs it with Go into .tools/bin) "
        "or set LIVEKIT_SERVER_BIN"
    )


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (TCP by default, UDP with SOCK_DGRAM). Pass host=""
    for a port that must be free on every interface."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class DevServer:
    """One running livekit-server process; `stop()` ends it by its PID."""

    api_key: str = "devkey"
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    webhook_urls: tuple[str, ...] = ()
    http_port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def config_yaml(self, tcp_port: int, udp_port: int) -> str:
        lines = [
            f"port: {self.http_port}",
            "bind_addresses: [127.0.0.1]",
            "rtc:",
            f"  tcp_port: {tcp_port}",
            f"  udp_port: {udp_port}",
            "  use_external_ip: false",
            "  node_ip: 127.0.0.1",
            "keys:",
            f"  {self.api_key}: {self.api_secret}",
            # Lets the dashboard's unmute control work against the local server (off by default).
            "room:",
            "  enable_remote_unmute: true",
            "logging:",
            "  level: info",
        ]
        if self.webhook_urls:
            lines += ["webhook:", f"  api_key: {self.api_key}", "  urls:"]
            lines += [f"    - {url}" for url in self.webhook_urls]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 30.0, attempts: int = 3) -> "DevServer":
        """Start the server; a port taken between choosing it and binding it means another try
        with fresh ports (the media ports listen on every interface, so races happen)."""
        binary = find_binary()
        fixed_http_port = self.http_port
        self._workdir = tempfile.TemporaryDirectory(prefix="livekit-dev-")
        for attempt in range(1, attempts + 1):
            self.http_port = fixed_http_port or free_port()
            config = Path(self._workdir.name) / "livekit.yaml"
            config.write_text(self.config_yaml(free_port(host=""), free_port(socket.SOCK_DGRAM, host="")))
            config.chmod(0o600)
            self.log_path = self.log_path or Path(self._workdir.name) / "livekit.log"
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [str(binary), "--dev", "--config", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                self._wait_ready(timeout)
                return self
            except DevServerError:
                if attempt == attempts or not self._log_says("address already in use"):
                    self.stop()
                    raise
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()
        return self

    def _log_says(self, text: str) -> bool:
        try:
            return text in Path(self.log_path).read_text(errors="replace") if self.log_path else False
        except OSError:
            return False

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DevServerError(
                    f"livekit-server exited with {self.process.returncode}; log: {self.log_path}"
                )
            try:
                with urllib.request.urlopen(self.http_url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise DevServerError(f"livekit-server did not answer on {self.http_url} in {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """End the process this object started, then clean up. livekit-server answers a first
        SIGTERM by draining its rooms and a second one by exiting; SIGKILL is the last resort."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(1.0)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> "DevServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
