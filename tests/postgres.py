"""A private PostgreSQL cluster for the tests: initdb in a temp dir, served on 127.0.0.1 on a free
port with Unix sockets off, stopped by `pg_ctl stop -m fast` and deleted afterwards.

initdb and postgres refuse to run as root, so as root the cluster belongs to the `postgres` user
(created by Debian's packages) and its commands run through `runuser`. The binaries come from
$POSTGRES_BIN_DIR, the newest /usr/lib/postgresql/<major>/bin (Debian), or PATH.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import URL, make_url

from lib.livekit.devserver import free_port

SUPERUSER = "dashboard"
DATABASE = "dashboard_test"
START_ATTEMPTS = 3  # free_port() can lose a race with another process before postgres binds it


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (scripts/setup.sh --test installs them)."""


class PostgresError(RuntimeError):
    """The private cluster could not be created or started; the message includes its log."""


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl."""
    candidates: list[Path] = []
    if os.environ.get("POSTGRES_BIN_DIR"):
        candidates.append(Path(os.environ["POSTGRES_BIN_DIR"]))

    def major(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else -1

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or "
        "on PATH: run `scripts/setup.sh --test` (as root it installs Debian's postgresql) or set "
        "POSTGRES_BIN_DIR"
    )


def _run_as() -> tuple[list[str], int | None, int | None]:
    """The command prefix and owner uid/gid for the cluster: `postgres` via runuser when root."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no `postgres` user to own the cluster") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and `runuser` is missing (util-linux)")
    return [runuser, "-u", "postgres", "--"], owner.pw_uid, owner.pw_gid


@dataclass
class PostgresServer:
    """One private cluster; `start()` returns it running, `stop()` ends it by pg_ctl and its PID."""

    bin_dir: Path = field(default_factory=find_bin_dir)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    port: int = 0
    _root: Path | None = None

    @property
    def data_dir(self) -> Path:
        assert self._root is not None, "start() first"
        return self._root / "data"

    @property
    def log_path(self) -> Path:
        assert self._root is not None, "start() first"
        return self._root / "postgres.log"

    def url(self, database: str = DATABASE) -> URL:
        return URL.create(
            "postgresql+psycopg", SUPERUSER, self.password, "127.0.0.1", self.port, database
        )

    def _command(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix, _, _ = _run_as()
        return subprocess.run(
            [*prefix, str(self.bin_dir / tool), *args],
            cwd=self._root,  # postgres must be able to enter its working directory
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def start(self) -> PostgresServer:
        _, uid, gid = _run_as()
        # Not pytest's tmp_path: it lives under a root-only 0700 directory postgres cannot enter.
        self._root = Path(tempfile.mkdtemp(prefix="dashboard-pg-"))
        try:
            pwfile = self._root / "pwfile"
            pwfile.write_text(self.password + "\n")
            if uid is not None:
                os.chown(self._root, uid, gid)
                os.chown(pwfile, uid, gid)
            init = self._command(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                "--no-sync", check=False,
            )  # fmt: skip
            pwfile.unlink()
            if init.returncode != 0:
                raise PostgresError(f"initdb failed ({init.returncode}): {init.stderr.strip()}")
            self._start_on_free_port()
            with admin_connection(self.url()) as connection:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')
        except BaseException:
            self.stop()
            raise
        return self

    def _start_on_free_port(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            # Throwaway data: durability settings off make initdb-to-ready and DDL fast.
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            started = self._command(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options,
                "-w", "-t", "60", "start", check=False,
            )  # fmt: skip
            if started.returncode == 0:
                return
            port_taken = re.search(r"could not bind|Address already in use", self._log_tail())
            if not port_taken or attempt == START_ATTEMPTS:
                raise PostgresError(
                    f"pg_ctl start failed ({started.returncode}) on port {self.port}: "
                    f"{started.stderr.strip()}\n{self._log_tail()}"
                )

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _kill(pid: int) -> None:
        """Immediate shutdown of the one postmaster we started, when pg_ctl could not stop it."""
        try:
            os.kill(pid, signal.SIGQUIT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Stop the cluster (fast: roll back open sessions) and delete its directory."""
        if self._root is None:
            return
        try:
            if self._postmaster_pid() is not None:
                stopped = self._command(
                    "pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop", check=False
                )
                pid = self._postmaster_pid()
                if stopped.returncode != 0 and pid is not None:
                    self._kill(pid)
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def admin_connection(url: URL | str) -> psycopg.Connection:
    """An autocommit connection to the `postgres` database of the server behind `url`."""
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password,
        dbname="postgres", autocommit=True, connect_timeout=10,
    )  # fmt: skip


def create_database(server_url: URL | str, prefix: str = "test") -> URL:
    """A new, empty database on the server behind `server_url`; its URL (same credentials)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin_connection(server_url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name)


def drop_database(url: URL | str) -> None:
    """Drop the database behind `url`, even if a test left connections to it open."""
    name = make_url(url).database
    with admin_connection(url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
