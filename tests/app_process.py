"""The real dashboard as a subprocess (`streamlit run app.py`) for tests that need real HTTP:
a browser, cookies, the sign-in redirect. One class for every such test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from lib.config import REPO_ROOT
from lib.livekit.devserver import free_port

LOG_TAIL_CHARS = 6000


def base_env() -> dict[str, str]:
    """This process's environment without any dashboard or LiveKit setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "DASHBOARD_")) and k not in ("DATABASE_URL", "FORWARDED_ALLOW_IPS")}


class AppProcess:
    """One `streamlit run app.py` on a free loopback port with the given settings; its output
    goes to a log file, and `stop()` ends it by its PID."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = {**base_env(), **env}
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> AppProcess:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> AppProcess:
        """Start the process without waiting for it (to start several at once)."""
        command = [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.address", "127.0.0.1",
            "--server.port", self.url.rsplit(":", 1)[1],
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 60.0) -> AppProcess:
        """Wait until /healthz answers 200; raise with the log if the process ends or never does."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the dashboard exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=3).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the dashboard did not answer /healthz in {timeout:.0f} s:\n{self.log()}")

    def client(self, address: str = "127.0.0.1") -> httpx.Client:
        """A client whose requests come from `address` (any 127.0.0.x reaches the app)."""
        return httpx.Client(base_url=self.url, transport=httpx.HTTPTransport(local_address=address), timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        try:
            return self.log()[-LOG_TAIL_CHARS:]
        except OSError as exc:
            return f"(no log: {exc})"

    def __enter__(self) -> AppProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
