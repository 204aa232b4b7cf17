"""Join service benchmark: what a guest's join costs, against signing the same token alone, in
one run on SQLite with a real livekit-server on loopback (the meeting's room already open).

    python -m bench.join_tokens [--rounds 200] [--password-rounds 10]

Cases, each timed per join (median and p95 of its rounds):
- baseline: `build_token` of the same request (the floor: a JWT signature);
- public: a public meeting without a password (meeting and occurrence reads, the lockout count,
  the attempt, grant and audit rows, the token);
- invite: the same with a signed invite checked (HMAC) in place of a password;
- password: a meeting with a password (one bcrypt check at cost 12, on purpose slow).
Each join comes from its own address, so no lockout is reached.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lib import services
from lib.auth.policy import Actor
from lib.config import load_settings
from lib.livekit.devserver import DevServer
from lib.livekit.tokens import Grants, TokenRequest, build_token
from lib.meetings.join import JoinRequest
from lib.meetings.service import MeetingDraft


def timed(rounds: int, call: Callable[[int], object]) -> list[float]:
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float], baseline: float) -> None:
    median = statistics.median(samples)
    p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
    print(f"{name:<10} {len(samples):>6} {median:>10.3f} {p95:>10.3f} {median / baseline:>9.1f}x")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--password-rounds", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-join-") as tmp, DevServer() as server:
        env = {
            "LIVEKIT_URL": server.ws_url, "LIVEKIT_API_KEY": server.api_key, "LIVEKIT_API_SECRET": server.api_secret,
            "DASHBOARD_DATA_DIR": str(Path(tmp) / "data"),
        }  # fmt: skip
        svc = services.build(load_settings(env, Path(tmp) / "none.toml"))
        try:
            host = Actor("bench-host", "host", "local")
            svc.users.create(Actor.system("bench"), host.name, "bench-host-password", "host")
            start = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) - timedelta(minutes=1)

            def meeting(password: str | None = None):  # type: ignore[no-untyped-def]
                draft = MeetingDraft(title="Bench", server="default", start=start, end=start + timedelta(hours=2), time_zone="UTC", password=password)
                made = svc.meetings.schedule(host, draft)
                svc.lifecycle.activate(made.occurrences[0].id)  # the room is open: joins do not create it
                return made.join_url.split("m=", 1)[1], made

            public, _ = meeting()
            guarded, guarded_meeting = meeting("bench password")
            invite = svc.meetings.invite_link(host, guarded_meeting.id).split("invite=", 1)[1]
            config = svc.gateway.server_config("default")
            request = TokenRequest(room="bench-room", identity="guest-0123456789abcdef", name="Guest", grants=Grants.guest())

            baseline = timed(args.rounds, lambda i: build_token(config.api_key, config.api_secret, request))
            joins = timed(args.rounds, lambda i: svc.joins.join(JoinRequest(public, "Guest"), f"10.9.{i // 250}.{i % 250}"))
            invited = timed(args.rounds, lambda i: svc.joins.join(JoinRequest(guarded, "Guest", invite=invite), f"10.8.{i // 250}.{i % 250}"))
            passwords = timed(
                args.password_rounds, lambda i: svc.joins.join(JoinRequest(guarded, "Guest", password="bench password"), f"10.7.0.{i}")
            )
        finally:
            svc.close()
    floor = statistics.median(baseline)
    print("join service: ms per call (SQLite, loopback livekit-server)")
    print(f"{'case':<10} {'rounds':>6} {'median':>10} {'p95':>10} {'vs token':>10}")
    report("baseline", baseline, floor)
    report("public", joins, floor)
    report("invite", invited, floor)
    report("password", passwords, floor)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
