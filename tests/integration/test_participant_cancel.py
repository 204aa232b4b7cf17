"""A simulated participant's join given up half-way must not take its process down: the rtc
SDK's native side panics and sends its own process SIGTERM when a connect is cancelled between
the server's answer and the SDK's "ready" (seen as test runs and the demo's simulator ending
with a bare "Terminated")."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lib.config import REPO_ROOT
from lib.livekit.devserver import DevServer

pytestmark = pytest.mark.integration

# The native side gives up waiting for "ready" about 15 s after the connect it answered.
PANIC_AFTER = 15
SCRIPT = textwrap.dedent(
    """
    import sys, time
    from lib.sim.participants import ParticipantPool
    url, key, secret = sys.argv[1:4]
    pool = ParticipantPool(url, key, secret, timeout=0.02)  # gives up at once, mid-connect
    try:
        pool.join("given-up-room", "quitter")
        print("joined before the pool gave up")
    except TimeoutError:
        print("gave up")
    time.sleep(%d)
    print("still running", flush=True)
    pool.close()
    """
    % (PANIC_AFTER + 8)
)


def test_a_join_given_up_mid_connect_leaves_its_process_running(livekit_server: DevServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert "FFI Panic" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.splitlines() == ["gave up", "still running"], "the join was given up mid-connect"
