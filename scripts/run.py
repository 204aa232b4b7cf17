#!/usr/bin/env python3
"""`make run` / `make demo`: start the dashboard, and a local LiveKit server when none is configured.

Which LiveKit server:
- the one the dashboard's settings name (lib.config.load_settings: LIVEKIT_URL, LIVEKIT_API_KEY
  and LIVEKIT_API_SECRET from the environment, or from .streamlit/secrets.toml's top-level keys
  or its [livekit] table): that server is used; half of them set is an error;
- otherwise a local `livekit-server --dev` is started on 127.0.0.1 (port $LIVEKIT_DEV_PORT, else
  7880 when free, else any free port). Its API key and secret live in data/devserver.json (0600),
  so the same secret is reused across runs. Its log is data/livekit-server.log. Its webhooks
  go to the dashboard's /webhooks/livekit route, so history has exact events.

Children (each in its own session, so Ctrl-C reaches them only through this script):
  livekit-server (when local) -> traffic simulator (--demo) -> streamlit -> scheduler.py.
The scheduler starts once the dashboard answers (the dashboard migrates the database, which the
scheduler only uses), with the same environment. SIGINT/SIGTERM/SIGHUP stop them by PID in
reverse order and exit 0. If the traffic simulator or the scheduler exits on its own it is
started again (each at most 5 times in 5 minutes); if another child exits, the others are
stopped and the exit status is 1. The API secret is never printed.

Settings: DASHBOARD_HOST (127.0.0.1), DASHBOARD_PORT (8501), LIVEKIT_DEV_PORT.
Python standard library only, plus lib.config and lib.livekit.devserver.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib.config import ConfigError, ServerConfig, load_settings  # noqa: E402
from lib.livekit.devserver import DevServer, DevServerError, free_port  # noqa: E402

DATA_DIR = ROOT / "data"
DEVSERVER_JSON = DATA_DIR / "devserver.json"
DEVSERVER_LOG = DATA_DIR / "livekit-server.log"
DEFAULT_LIVEKIT_DEV_PORT = 7880
STOP_TIMEOUT = 10.0
HEALTH_WAIT = 60.0

_stop_signal: int | None = None


def _on_signal(signum: int, _frame: object) -> None:
    # Only record it: the main loop notices within a fraction of a second and stops everything.
    global _stop_signal
    if _stop_signal is None:
        _stop_signal = signum


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Children -----------------------------------------------------------------------------------


class Child:
    """A process this script started: a plain Popen, or the DevServer wrapper."""

    def __init__(
        self, name: str, popen: subprocess.Popen[bytes] | None = None, dev: DevServer | None = None
    ) -> None:
        self.name = name
        self.popen = popen
        self.dev = dev
        self.respawn: Callable[[], Child] | None = None  # how to start it again, for one that may
        self.restarts: Restarts | None = None  # how often it was started again lately

    @property
    def pid(self) -> int | None:
        return self.dev.pid if self.dev is not None else (self.popen.pid if self.popen else None)

    def poll(self) -> int | None:
        proc = self.dev.process if self.dev is not None else self.popen
        return None if proc is None else proc.poll()

    def stop(self) -> None:
        if self.dev is not None:
            self.dev.stop(STOP_TIMEOUT)  # SIGTERM, then SIGKILL, by its PID
            return
        proc = self.popen
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            warn(f"    {self.name} (pid {proc.pid}) ignored SIGTERM; killing it")
            try:
                # The child leads its own session (start_new_session), so its group holds only
                # what it started; the leader is not reaped yet, so the group id is still ours.
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(STOP_TIMEOUT)


def spawn(name: str, argv: list[str], env: dict[str, str], respawn: bool = False) -> Child:
    """Start a child; with `respawn`, the child knows how to start again if it ends."""
    popen = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    say(f"==> started {name} (pid {popen.pid})")
    child = Child(name, popen=popen)
    if respawn:
        child.respawn = lambda: spawn(name, argv, env, respawn=True)
        child.restarts = Restarts()
    return child


def restart(child: Child, now: float) -> Child | None:
    """A new start of a child that may be started again and has not died too often lately (its
    restarts carry over to the new one); None otherwise."""
    if child.respawn is None or child.restarts is None or not child.restarts.allow(now):
        return None
    again = child.respawn()
    again.restarts = child.restarts
    return again


class Restarts:
    """At most `limit` restarts within `window` seconds: a child that keeps dying is a fault."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._times: list[float] = []

    def allow(self, now: float) -> bool:
        self._times = [t for t in self._times if now - t < self.window]
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


def stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            say(f"==> stopping {child.name} (pid {child.pid})")
        try:
            child.stop()
        except Exception as exc:  # keep going: the others must still be stopped
            warn(f"warning: could not stop {child.name}: {exc}")
    children.clear()


# LiveKit settings ---------------------------------------------------------------------------


def configured_livekit(env: dict[str, str] | None = None, secrets_path: Path | None = None) -> ServerConfig | None:
    """The LiveKit server the dashboard's own settings name (the environment, or
    .streamlit/secrets.toml's top-level keys or [livekit] table), read the way the app reads
    them; None when none is configured. ConfigError when they are half set or malformed."""
    return load_settings(env, secrets_path).default_server


def _write_private_json(path: Path, data: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def dev_credentials() -> tuple[str, str]:
    """The local server's API key and secret: reused from data/devserver.json, else created."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(DEVSERVER_JSON.read_text(encoding="utf-8"))
        key, secret = data["api_key"], data["api_secret"]
        if not (isinstance(key, str) and key and isinstance(secret, str) and len(secret) >= 32):
            raise ValueError("api_key/api_secret missing or too short")
        os.chmod(DEVSERVER_JSON, 0o600)
        return key, secret
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warn(f"warning: {DEVSERVER_JSON.relative_to(ROOT)} is unusable ({exc}); making a new key")
    key, secret = "devkey", secrets.token_urlsafe(32)
    _write_private_json(DEVSERVER_JSON, {"api_key": key, "api_secret": secret})
    say(f"==> created {DEVSERVER_JSON.relative_to(ROOT)} (new API key for the local server)")
    return key, secret


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def dev_port() -> int:
    configured = os.environ.get("LIVEKIT_DEV_PORT")
    if configured:
        return int(configured)
    if port_free("127.0.0.1", DEFAULT_LIVEKIT_DEV_PORT):
        return DEFAULT_LIVEKIT_DEV_PORT
    return free_port()


def start_dev_server(webhook_url: str | None, children: list[Child]) -> dict[str, str]:
    key, secret = dev_credentials()
    DEVSERVER_LOG.touch(mode=0o600)
    DEVSERVER_LOG.write_bytes(b"")  # a fresh log per run
    os.chmod(DEVSERVER_LOG, 0o600)
    dev = DevServer(
        api_key=key,
        api_secret=secret,
        webhook_urls=(webhook_url,) if webhook_url else (),
        http_port=dev_port(),
        log_path=DEVSERVER_LOG,
    )
    say("==> starting local livekit-server --dev")
    child = Child("livekit-server", dev=dev)
    children.append(child)  # before start(): a failed start is still cleaned up
    dev.start()
    say(f"==> started livekit-server (pid {dev.pid}) on {dev.ws_url}")
    return {"LIVEKIT_URL": dev.ws_url, "LIVEKIT_API_KEY": key, "LIVEKIT_API_SECRET": secret}


# Main ---------------------------------------------------------------------------------------


def url_host(host: str, for_client: bool) -> str:
    if for_client and host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1" if host != "::" else "::1"
    return f"[{host}]" if ":" in host else host


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


def scheduler_command(python_cmd: str) -> list[str]:
    """The scheduler sidecar (scheduler.py): opens and closes meeting rooms on time."""
    return [python_cmd, str(ROOT / "scheduler.py")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--demo", action="store_true", help="also start the traffic simulator")
    parser.add_argument("--host", default=os.environ.get("DASHBOARD_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DASHBOARD_PORT", "8501")))
    parser.add_argument("--app", default="app.py", help="the Streamlit entry script")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, children: list[Child]) -> int:
    python = ROOT / ".venv" / "bin" / "python"
    python_cmd = str(python) if python.exists() else sys.executable
    app_url = f"http://{url_host(args.host, for_client=True)}:{args.port}"

    if not port_free(args.host, args.port):
        warn(f"error: {args.host}:{args.port} is in use; set DASHBOARD_PORT to another port")
        return 1

    try:
        configured = configured_livekit()
    except ConfigError as exc:
        warn(f"error: {exc}")
        return 1
    if configured is not None:
        say(f"==> using the LiveKit server at {configured.url} (from the settings)")
        livekit = {"LIVEKIT_URL": configured.url, "LIVEKIT_API_KEY": configured.api_key, "LIVEKIT_API_SECRET": configured.api_secret}
    else:
        webhook = f"http://{url_host(args.host, for_client=True)}:{args.port}/webhooks/livekit"
        livekit = start_dev_server(webhook, children)
    if _stop_signal is not None:
        return 0

    env = dict(os.environ)
    env.update(livekit)
    env["PYTHONUNBUFFERED"] = "1"

    if not env.get("DASHBOARD_ADMIN_PASSWORD"):
        # On a fresh install with no user, create `admin` with a random password, shown once.
        made = subprocess.run([python_cmd, "-m", "lib.auth", "first-admin"], cwd=ROOT, env=env, text=True, capture_output=True)
        if made.returncode != 0:
            warn(made.stderr.strip() or "error: could not check for the first admin")
            return 1
        if made.stdout.strip():
            say(f"==> {made.stdout.strip()}")

    if args.demo:
        sim = ROOT / "lib" / "sim"
        if (sim / "traffic.py").is_file() or (sim / "traffic" / "__main__.py").is_file():
            simulator = [python_cmd, "-m", "lib.sim.traffic"]
            children.append(spawn("traffic simulator", simulator, env, respawn=True))
        else:
            warn("warning: lib/sim/traffic.py is missing; running without the traffic simulator")

    streamlit = [
        python_cmd, "-m", "streamlit", "run", args.app,
        "--server.address", args.host,
        "--server.port", str(args.port),
        "--server.headless", "true",
    ]  # fmt: skip
    children.append(spawn("streamlit", streamlit, env))

    started = time.monotonic()
    announced = False
    while True:
        if _stop_signal is not None:
            say(f"\n==> {signal.Signals(_stop_signal).name}: stopping")
            return 0
        for index, child in enumerate(children):
            code = child.poll()
            if code is None:
                continue
            # The simulator's participants run on the livekit rtc SDK, whose native side now and
            # then ends its process, and a scheduler may stop on a fault of its own: the
            # dashboard goes on with a new one.
            again = restart(child, time.monotonic())
            if again is not None:
                warn(f"warning: {child.name} (pid {child.pid}) exited with code {code}; starting it again")
                children[index] = again
                continue
            warn(f"error: {child.name} (pid {child.pid}) exited unexpectedly with code {code};"
                 " stopping the others")
            return 1
        if not announced:
            ok = healthy(app_url)
            if ok or time.monotonic() - started > HEALTH_WAIT:
                # After the dashboard, which migrates the database the scheduler only opens.
                children.append(spawn("scheduler", scheduler_command(python_cmd), env, respawn=True))
                state = "" if ok else "   (not answering yet)"
                say("")
                say(f"    Dashboard: {app_url}{state}")
                say(f"    LiveKit:   {livekit['LIVEKIT_URL']}  (API key {livekit['LIVEKIT_API_KEY']})")
                say("    Press Ctrl-C to stop.")
                say("")
                announced = True
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    children: list[Child] = []
    try:
        return run(args, children)
    except DevServerError as exc:
        warn(f"error: {exc}")
        return 1
    finally:
        stop_all(children)
        if _stop_signal is not None:
            say("==> stopped")


if __name__ == "__main__":
    sys.exit(main())
