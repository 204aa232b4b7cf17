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


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that was free a moment ago (TCP by default, UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
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

    def start(self, timeout: float = 30.0) -> "DevServer":
        binary = find_binary()
        self.http_port = self.http_port or free_port()
        self._workdir = tempfile.TemporaryDirectory(prefix="livekit-dev-")
        config = Path(self._workdir.name) / "livekit.yaml"
        config.write_text(self.config_yaml(free_port(), free_port(socket.SOCK_DGRAM)))
        config.chmod(0o600)
        log_path = self.log_path or Path(self._workdir.name) / "livekit.log"
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(binary), "--dev", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ready(timeout)
        return self

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
        self.stop()
        raise DevServerError(f"livekit-server did not answer on {self.http_url} in {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """End the process this object started (SIGTERM, then SIGKILL), then clean up."""
        if self.process is not None and self.process.poll() is None:
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
