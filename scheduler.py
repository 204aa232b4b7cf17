"""Scheduler sidecar: opens each meeting's room at its time and closes it at its end
(lib/meetings/lifecycle.py), every DASHBOARD_SCHEDULER_SECONDS, until SIGTERM or SIGINT.

    python scheduler.py           run until stopped (make run starts it beside the dashboard)
    python scheduler.py --once    one tick, then exit

It shares the dashboard's settings and SQL database, which the dashboard migrates: on a database
that is not migrated it stops with one line. It never opens the history store (DuckDB allows one
process per file) and serves nothing over HTTP. Any number may run at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading

from lib import logs, services
from lib.config import ConfigError, load_settings
from lib.db import DatabaseError
from lib.meetings.lifecycle import Lifecycle, run

log = logging.getLogger("scheduler")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--once", action="store_true", help="run one tick and exit")
    args = parser.parse_args(argv)
    logs.configure()
    try:
        settings = load_settings()
        core = services.build_core(settings)
    except (ConfigError, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        # Set from another thread: the handler runs on the main thread, which may be inside
        # stop.wait() holding the event's own lock.
        threading.Thread(target=stop.set, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    name = f"{socket.gethostname()}:{os.getpid()}"
    try:
        core.follower.start()
        lifecycle = Lifecycle(core.sessions, core.gateway, core.audit)
        log.info("scheduler %s started: a tick every %g s on %s", name, settings.scheduler_seconds, ", ".join(core.gateway.server_names()) or "no server")
        report = run(lifecycle, settings.scheduler_seconds, stop, name, once=args.once)
    finally:
        core.close()
    if args.once:
        if report is None:
            print("error: the tick failed (see the log above)", file=sys.stderr)
            return 1
        print(f"started {report.activated}, ended {report.ended}, rooms deleted again {report.reconciled}, waiting {report.waiting}")
        for error in report.errors:
            print(f"  {error}")
    log.info("scheduler %s stopped", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
