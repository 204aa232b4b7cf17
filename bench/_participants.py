"""Child process for the benchmarks: joins N real participants (publishing audio) spread over the
given rooms, prints "ready", and stays until stdin closes, so their media work does not run in
the process being measured."""

from __future__ import annotations

import sys

from lib.sim.participants import ParticipantPool


def main() -> None:
    url, key, secret, count, *rooms = sys.argv[1:]
    with ParticipantPool(url, key, secret) as pool:
        for i in range(int(count)):
            pool.join(rooms[(i * len(rooms)) // int(count)], f"bench-user-{i:02d}", publish_audio=True)
        print("ready", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
