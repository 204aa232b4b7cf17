"""A minimal real livekit-agents worker (no AI plugins) for the demo traffic and the tests.

The worker registers under an agent name; each dispatched job joins the room as an agent-kind
participant, marks itself with attributes (and the dispatch metadata as its own metadata), then
stays: the agents framework keeps the job alive after the entrypoint returns until the room
disconnects it (room deleted, participant removed) or the worker shuts the job down.

Everything runs on one LoopThread; jobs run on threads of their own (JobExecutorType.THREAD),
so no child processes are started.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from collections.abc import Callable

from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobExecutorType

from lib.aio import LoopThread, run_to_completion
from lib.sim.participants import ws_url

AGENT_ATTRIBUTE = "sim.agent"
JOB_ATTRIBUTE = "sim.job"
JOBS_AT_FULL_LOAD = 50  # only shapes the load the worker reports; it never refuses a job
# AgentServer.run() writes these into os.environ for its job processes; with thread jobs that
# would leak into the whole host process (tests, the simulator), so start() puts them back.
_ENV_SET_BY_AGENTS = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")

JobCallback = Callable[[str, str], None]


class AgentWorkerError(RuntimeError):
    """The worker could not register with the LiveKit server."""


class AgentWorker:
    """A livekit-agents AgentServer registered as `agent_name`, running on its own loop."""

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        agent_name: str = "sim-agent",
        *,
        on_job: JobCallback | None = None,
    ) -> None:
        """`on_job(room, job_id)` is called on the job's own thread once its agent has joined."""
        self.url = ws_url(url)
        self.agent_name = agent_name
        self._on_job = on_job
        self._api_key = api_key
        self._api_secret = api_secret
        self._loop: LoopThread | None = None
        self._server: AgentServer | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._registered = threading.Event()
        self._settled = threading.Event()  # registered, or run() ended before that
        self._run_error: BaseException | None = None
        self._worker_id = ""
        self._jobs_started = 0
        self._jobs_lock = threading.Lock()

    @property
    def worker_id(self) -> str:
        """The id the server gave at registration ("" before that)."""
        return self._worker_id

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    @property
    def jobs_started(self) -> int:
        """How many job entrypoints have connected to their room so far."""
        with self._jobs_lock:
            return self._jobs_started

    def start(self, timeout: float = 30.0) -> "AgentWorker":
        """Start the worker and return once the server has confirmed its registration."""
        if self._loop is not None:
            raise RuntimeError("AgentWorker already started")
        saved_env = {name: os.environ.get(name) for name in _ENV_SET_BY_AGENTS}
        self._loop = LoopThread(f"agent-worker-{self.agent_name}")
        try:
            self._loop.run(self._start(), timeout)
            self._settled.wait(timeout)
            if not self._registered.is_set():
                why = (
                    f"stopped: {self._run_error}"
                    if self._run_error
                    else f"no answer in {timeout:.0f} s"
                )
                raise AgentWorkerError(
                    f"agent worker {self.agent_name!r} did not register with {self.url}: {why}"
                )
        except BaseException:
            self.stop()
            raise
        finally:
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        return self

    async def _start(self) -> None:
        server = AgentServer(
            ws_url=self.url,
            api_key=self._api_key,
            api_secret=self._api_secret,
            host="127.0.0.1",
            port=0,
            job_executor_type=JobExecutorType.THREAD,
            num_idle_processes=1,
            # The default load is host CPU: on a busy machine (twenty simulated participants on
            # two cores) the worker reports itself full and dispatches wait forever. A simulated
            # agent costs next to nothing, so it never refuses; the load it reports counts jobs.
            load_threshold=math.inf,
            load_fnc=self._load,
            shutdown_process_timeout=5.0,
        )
        server.on("worker_registered", self._on_registered)
        server.rtc_session(agent_name=self.agent_name)(self._entrypoint)
        self._server = server
        self._run_task = asyncio.get_running_loop().create_task(
            server.run(devmode=False), name=f"agent-server-{self.agent_name}"
        )
        self._run_task.add_done_callback(self._on_run_done)

    def _load(self, server: AgentServer) -> float:
        return min(len(server.active_jobs) / JOBS_AT_FULL_LOAD, 1.0)

    def _on_registered(self, worker_id: str, _server_info: object) -> None:
        # Emitted again after every reconnection; the id may change.
        self._worker_id = worker_id
        self._registered.set()
        self._settled.set()

    def _on_run_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._run_error = task.exception()
            logging.getLogger(__name__).error(
                "agent worker %s stopped: %s", self.agent_name, self._run_error
            )
        self._settled.set()

    async def _entrypoint(self, ctx: JobContext) -> None:
        # Runs on the job's own thread and loop; subscribing to nothing keeps the agent cheap.
        # The framework cancels an entrypoint still running 15 s after the job is told to end
        # (its room deleted while the agent joins, on a busy machine): the connect is finished
        # first, or the SDK's native side panics and ends the whole process (a test run, the
        # simulator) with SIGTERM.
        await run_to_completion(ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE))
        local = ctx.room.local_participant
        await local.set_attributes({AGENT_ATTRIBUTE: self.agent_name, JOB_ATTRIBUTE: ctx.job.id})
        if ctx.job.metadata:
            await local.set_metadata(ctx.job.metadata)
        with self._jobs_lock:
            self._jobs_started += 1
        if self._on_job is not None:
            self._on_job(ctx.room.name, ctx.job.id)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the jobs and the worker down, then stop the loop. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            if self._server is not None:
                loop.run(self._shutdown(), timeout)
        except TimeoutError:
            logging.getLogger(__name__).warning(
                "agent worker %s did not shut down within %.0f s", self.agent_name, timeout
            )
        finally:
            loop.stop()
            self._registered.clear()
            self._settled.clear()

    async def _shutdown(self) -> None:
        assert self._server is not None
        await self._server.aclose()
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)

    def __enter__(self) -> "AgentWorker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
