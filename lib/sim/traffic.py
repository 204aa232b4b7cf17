"""The traffic simulator: keeps a few rooms on a LiveKit server busy with real participants.

Run it with `python -m lib.sim.traffic` and LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET in
the environment. It creates rooms with metadata; participants join with one of three roles
(camera: audio and video, mic: audio only, viewer: subscribes to audio, publishes nothing);
publishers mute and unmute, participants leave and rejoin at the churn rate, and an agent
worker takes dispatches that the simulator creates (and withdraws) now and then. One short line
per event goes to stdout. SIGINT or SIGTERM (or --duration) ends it cleanly: participants leave,
the agent worker stops, the rooms it created are deleted.

Everything runs on one asyncio loop; the agent worker has its own LoopThread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from livekit import api

from lib.sim.agent_worker import AgentWorker
from lib.sim.participants import SimParticipant, http_url, ws_url

Role = Literal["camera", "mic", "viewer"]
ENV_VARS = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")

ROOM_TOPICS = (
    "standup", "support", "town-hall", "design-review", "sales-demo", "classroom", "onboarding",
    "retro",
)  # fmt: skip
FIRST_NAMES = (
    "ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "linus", "radia", "tim",
    "frances", "donald", "hedy", "claude", "katherine", "dennis",
)  # fmt: skip


@dataclass(frozen=True)
class TrafficConfig:
    """What to simulate; rates are means of exponential waits, so the traffic looks organic."""

    url: str
    api_key: str
    api_secret: str
    rooms: int = 4
    participants: int = 10
    seed: int | None = None
    duration: float | None = None  # seconds; None runs until stopped
    prefix: str = "sim"
    camera_share: float = 0.3
    mic_share: float = 0.4  # the rest are viewers
    churn_per_minute: float = 0.2  # share of online participants that leave per minute
    rejoin_after: float = 8.0  # mean seconds a participant stays away
    mute_every: float = 4.0  # mean seconds between mute toggles (any publisher)
    agents: bool = True
    agent_name: str = "sim-agent"
    dispatch_every: float = 15.0  # mean seconds between agent dispatches
    first_dispatch_after: float = 2.0
    agent_leave_every: float = 45.0
    agent_min_stay: float = 20.0  # a dispatch is never withdrawn sooner than this


@dataclass
class _Person:
    identity: str
    name: str
    role: Role
    room: str
    participant: SimParticipant | None = None
    busy: bool = False  # joining or leaving right now


def _print_line(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


@dataclass
class TrafficSimulator:
    """Runs the simulation until `stop` is set or the configured duration is over."""

    config: TrafficConfig
    log: Callable[[str], None] = _print_line
    rooms: list[str] = field(default_factory=list)
    people: list[_Person] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._api: api.LiveKitAPI | None = None
        self._worker: AgentWorker | None = None
        self._dispatches: dict[str, tuple[str, float]] = {}  # room -> (dispatch id, monotonic)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self.log(
            f"start url={http_url(cfg.url)} rooms={cfg.rooms} participants={cfg.participants} "
            f"seed={cfg.seed} duration={cfg.duration or 'forever'}"
        )
        self._api = api.LiveKitAPI(http_url(cfg.url), cfg.api_key, cfg.api_secret)
        try:
            await self._create_rooms()
            self.people = self._cast()
            worker_started = self._spawn(self._start_agent_worker()) if cfg.agents else None
            await asyncio.gather(*(self._join(p) for p in self.people))
            self._spawn(self._every(cfg.mute_every, self._toggle_mute))
            self._spawn(self._churn())
            if worker_started is not None:
                self._spawn(self._agent_loop(worker_started))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), cfg.duration)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._stopping = True
        self.log("stopping")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        online = [p for p in self.people if p.participant is not None]
        await asyncio.gather(*(self._leave(p) for p in online), return_exceptions=True)
        if self._worker is not None:
            await asyncio.to_thread(self._worker.stop)
            self.log(f"agent worker stopped name={self.config.agent_name}")
        if self._api is not None:
            for room in self.rooms:
                await self._quietly(
                    f"delete room {room}",
                    self._api.room.delete_room(api.DeleteRoomRequest(room=room)),
                )
                self.log(f"room deleted room={room}")
            await self._api.aclose()
        self.log("stopped")

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _quietly(self, what: str, coro: Awaitable[object]) -> bool:
        """Await one LiveKit call; log a failure as one line instead of ending the simulation."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the simulation keeps going on any API error
            self.log(f"error {what}: {type(exc).__name__}: {exc}")
            return False
        return True

    # -- rooms and people ----------------------------------------------------------------------

    async def _create_rooms(self) -> None:
        assert self._api is not None
        for i in range(self.config.rooms):
            topic = ROOM_TOPICS[i % len(ROOM_TOPICS)]
            suffix = f"-{i // len(ROOM_TOPICS) + 1}" if i >= len(ROOM_TOPICS) else ""
            name = f"{self.config.prefix}-{topic}{suffix}"
            metadata = json.dumps({"topic": topic, "simulated": True, "index": i})
            ok = await self._quietly(
                f"create room {name}",
                self._api.room.create_room(
                    api.CreateRoomRequest(
                        name=name, metadata=metadata, empty_timeout=300, departure_timeout=20
                    )
                ),
            )
            if ok:
                self.rooms.append(name)
                self.log(f"room created room={name}")
        if not self.rooms:
            raise RuntimeError("no room could be created; is the server reachable?")

    def _cast(self) -> list[_Person]:
        cfg = self.config
        people = []
        for i in range(cfg.participants):
            draw = self._rng.random()
            role: Role = (
                "camera" if draw < cfg.camera_share
                else "mic" if draw < cfg.camera_share + cfg.mic_share
                else "viewer"
            )  # fmt: skip
            first = FIRST_NAMES[i % len(FIRST_NAMES)]
            # Round-robin first so every room has someone, then at random.
            room = self.rooms[i] if i < len(self.rooms) else self._rng.choice(self.rooms)
            people.append(_Person(f"{first}-{i + 1}", first.capitalize(), role, room))
        return people

    async def _join(self, person: _Person) -> None:
        cfg = self.config
        person.busy = True
        try:
            person.participant = await SimParticipant.join(
                cfg.url,
                cfg.api_key,
                cfg.api_secret,
                person.room,
                person.identity,
                name=person.name,
                metadata=json.dumps({"role": person.role}),
                attributes={"sim.role": person.role},
                publish_audio=person.role in ("camera", "mic"),
                publish_video=person.role == "camera",
                can_publish=person.role != "viewer",
                subscribe="audio" if person.role == "viewer" else "none",
            )
            self.log(f"join room={person.room} identity={person.identity} role={person.role}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one failed join must not end the simulation
            self.log(f"error join {person.identity}: {type(exc).__name__}: {exc}")
        finally:
            person.busy = False

    async def _leave(self, person: _Person) -> None:
        participant, person.participant = person.participant, None
        if participant is None:
            return
        person.busy = True
        try:
            await asyncio.wait_for(participant.leave(), 10)
        except Exception as exc:  # noqa: BLE001
            self.log(f"error leave {person.identity}: {type(exc).__name__}: {exc}")
        finally:
            person.busy = False
        self.log(f"leave room={person.room} identity={person.identity}")

    # -- recurring events ----------------------------------------------------------------------

    async def _every(self, mean_s: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self._rng.expovariate(1 / mean_s))
            await action()

    def _online(self, *roles: Role) -> list[_Person]:
        return [
            p for p in self.people
            if p.participant is not None and p.participant.connected and not p.busy
            and (not roles or p.role in roles)
        ]  # fmt: skip

    async def _toggle_mute(self) -> None:
        candidates = self._online("camera", "mic")
        if not candidates:
            return
        person = self._rng.choice(candidates)
        assert person.participant is not None
        kind = self._rng.choice(sorted(person.participant.track_sids))
        muted = not person.participant.is_muted(kind)
        person.participant.set_muted(kind, muted)
        event = "mute" if muted else "unmute"
        self.log(f"{event} room={person.room} identity={person.identity} track={kind}")

    async def _churn(self) -> None:
        """Participants leave at `churn_per_minute`, and each comes back after a while."""
        while True:
            online = self._online()
            rate = self.config.churn_per_minute * max(len(online), 1) / 60
            await asyncio.sleep(self._rng.expovariate(rate) if rate > 0 else 3600)
            online = self._online()
            if len(online) <= 1 or self.config.churn_per_minute <= 0:
                continue
            person = self._rng.choice(online)
            await self._leave(person)
            self._spawn(self._rejoin_later(person))

    async def _rejoin_later(self, person: _Person) -> None:
        await asyncio.sleep(self._rng.expovariate(1 / self.config.rejoin_after))
        if self._stopping:
            return
        person.room = self._rng.choice(self.rooms)
        await self._join(person)

    # -- agents --------------------------------------------------------------------------------

    async def _start_agent_worker(self) -> None:
        cfg = self.config
        worker = AgentWorker(
            ws_url(cfg.url), cfg.api_key, cfg.api_secret, cfg.agent_name, on_job=self._on_agent_job
        )
        # Known before it starts, so a shutdown during start-up still stops it.
        self._worker = worker
        try:
            await asyncio.to_thread(worker.start, 30.0)
        except Exception as exc:  # noqa: BLE001 - the rest of the traffic is still useful
            self.log(f"error agent worker: {type(exc).__name__}: {exc}")
            raise
        self.log(f"agent worker registered name={cfg.agent_name} id={worker.worker_id}")

    def _on_agent_job(self, room: str, job_id: str) -> None:
        # Called on the job's thread; the log line is written from our loop to keep lines whole.
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while the agent joined
                self._loop.call_soon_threadsafe(self.log, f"agent joined room={room} job={job_id}")

    async def _agent_loop(self, worker_started: asyncio.Task[None]) -> None:
        try:
            await worker_started
        except Exception:  # noqa: BLE001 - already logged by _start_agent_worker
            return
        cfg = self.config
        await asyncio.sleep(cfg.first_dispatch_after)
        await self._dispatch_agent()
        self._spawn(self._every(cfg.agent_leave_every, self._withdraw_agent))
        await self._every(cfg.dispatch_every, self._dispatch_agent)

    async def _dispatch_agent(self) -> None:
        assert self._api is not None
        free = [r for r in self.rooms if r not in self._dispatches]
        if not free:
            return
        room = self._rng.choice(free)
        metadata = json.dumps({"reason": "simulated", "at": int(time.time())})
        try:
            dispatch = await self._api.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=self.config.agent_name, room=room, metadata=metadata
                )
            )
        except Exception as exc:  # noqa: BLE001
            self.log(f"error dispatch {room}: {type(exc).__name__}: {exc}")
            return
        self._dispatches[room] = (dispatch.id, time.monotonic())
        self.log(f"agent dispatched room={room} dispatch={dispatch.id}")

    async def _withdraw_agent(self) -> None:
        """Delete one dispatch and remove its agent participant, which ends the job."""
        assert self._api is not None
        now = time.monotonic()
        min_stay = self.config.agent_min_stay
        settled = sorted(room for room, (_, at) in self._dispatches.items() if now - at >= min_stay)
        if not settled:
            return
        room = self._rng.choice(settled)
        dispatch_id, _ = self._dispatches.pop(room)
        await self._quietly(
            f"delete dispatch {dispatch_id}",
            self._api.agent_dispatch.delete_dispatch(dispatch_id, room),
        )
        try:
            listing = await self._api.room.list_participants(api.ListParticipantsRequest(room=room))
        except Exception as exc:  # noqa: BLE001
            self.log(f"error list participants {room}: {type(exc).__name__}: {exc}")
            return
        for info in listing.participants:
            if info.kind == api.ParticipantInfo.Kind.AGENT:
                await self._quietly(
                    f"remove agent {info.identity}",
                    self._api.room.remove_participant(
                        api.RoomParticipantIdentity(room=room, identity=info.identity)
                    ),
                )
        self.log(f"agent withdrawn room={room} dispatch={dispatch_id}")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lib.sim.traffic",
        description="Simulated LiveKit traffic. Reads " + ", ".join(ENV_VARS) + ".",
    )
    parser.add_argument("--rooms", type=int, default=4, help="rooms to create (default 4)")
    parser.add_argument(
        "--participants", type=int, default=10, help="participants in all (default 10)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--duration", type=float, default=None,
        help="seconds to run (default: until SIGINT/SIGTERM)",
    )  # fmt: skip
    parser.add_argument("--prefix", default="sim", help="room name prefix (default sim)")
    parser.add_argument(
        "--churn", type=float, default=0.2, help="share of participants leaving per minute"
    )
    parser.add_argument("--no-agents", action="store_true", help="no agent worker, no dispatches")
    parser.add_argument("--agent-name", default="sim-agent")
    args = parser.parse_args(argv)
    if args.rooms < 1 or args.participants < 0:
        parser.error("--rooms must be at least 1 and --participants at least 0")
    return args


def config_from_env(args: argparse.Namespace) -> TrafficConfig:
    missing = [name for name in ENV_VARS if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"traffic: set {', '.join(missing)} in the environment")
    return TrafficConfig(
        url=os.environ["LIVEKIT_URL"],
        api_key=os.environ["LIVEKIT_API_KEY"],
        api_secret=os.environ["LIVEKIT_API_SECRET"],
        rooms=args.rooms,
        participants=args.participants,
        seed=args.seed,
        duration=args.duration,
        prefix=args.prefix,
        churn_per_minute=args.churn,
        agents=not args.no_agents,
        agent_name=args.agent_name,
    )


async def _main(config: TrafficConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await TrafficSimulator(config).run(stop)


def main(argv: list[str] | None = None) -> int:
    config = config_from_env(_parse_args(argv))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # The rtc SDK's native layer logs ERROR lines ("data channel closed unexpectedly") whenever
    # a participant is removed or a room deleted, which the simulator does on purpose.
    logging.getLogger("livekit").setLevel(logging.CRITICAL)
    logging.getLogger("livekit.agents").setLevel(logging.WARNING)
    try:
        asyncio.run(_main(config))
    except Exception as exc:  # noqa: BLE001 - a short message, not a traceback
        print(f"traffic: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
