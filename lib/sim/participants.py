"""Simulated LiveKit participants: real rtc SDK clients that join rooms and publish synthetic media.

`SimParticipant` is the async object (one rtc.Room each); `ParticipantPool` owns a LoopThread and
gives synchronous callers (tests, scripts) handles to participants living on that loop.

CPU model: all participants on one event loop are fed by one `_MediaPump` task that ticks every
100 ms and pushes the same precomputed frames (one 100 ms sine chunk, a short cycle of small I420
frames) to every source, so twenty publishers cost one timer, not forty. Video is opt-in, and by
default participants subscribe to nothing, because decoding remote media is the expensive part.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import weakref
from dataclasses import dataclass
from datetime import timedelta
from collections.abc import Callable
from typing import Literal

import numpy as np
from livekit import rtc

from lib.aio import LoopThread
from lib.livekit.tokens import Grants, TokenRequest, build_token

SAMPLE_RATE = 48_000
TICK_S = 0.1  # one audio chunk and one video frame per tick: 10 fps, 100 ms of audio
# The rtc SDK only sends simulcast layers for frames at least 480 px wide; smaller frames are
# published as one layer even when simulcast is asked for. 480x270 is the smallest size that
# exercises simulcast.
VIDEO_WIDTH, VIDEO_HEIGHT = 480, 270
VIDEO_CYCLE_FRAMES = 20
TONE_HZ = 440  # 44 whole periods per 100 ms chunk, so the chunk loops without a click
SIM_TOKEN_TTL = timedelta(hours=6)  # the SDK's own default, which the simulator always used

Subscribe = Literal["none", "audio", "all"]
MediaKind = Literal["audio", "video"]


def ws_url(url: str) -> str:
    """The WebSocket form of a LiveKit URL (http:// -> ws://, https:// -> wss://)."""
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    return url


def http_url(url: str) -> str:
    """The HTTP form of a LiveKit URL (ws:// -> http://, wss:// -> https://)."""
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    return url


@dataclass(frozen=True)
class ReceivedData:
    """One data packet a participant received; `sender` is "" when the Server API sent it."""

    topic: str
    payload: bytes
    sender: str


class _SharedMedia:
    """The frames every simulated participant publishes, computed once per process."""

    _audio: rtc.AudioFrame | None = None
    _video: tuple[rtc.VideoFrame, ...] = ()

    @classmethod
    def audio_chunk(cls) -> rtc.AudioFrame:
        if cls._audio is None:
            samples = int(SAMPLE_RATE * TICK_S)
            t = np.arange(samples) / SAMPLE_RATE
            tone = (0.2 * 32767 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.int16)
            cls._audio = rtc.AudioFrame(tone.tobytes(), SAMPLE_RATE, 1, samples)
        return cls._audio

    @classmethod
    def video_frames(cls) -> tuple[rtc.VideoFrame, ...]:
        if not cls._video:
            w, h = VIDEO_WIDTH, VIDEO_HEIGHT
            y, x = np.mgrid[0:h, 0:w]
            frames = []
            for i in range(VIDEO_CYCLE_FRAMES):
                phase = i / VIDEO_CYCLE_FRAMES
                # Diagonal bars sliding across, hue drifting through the cycle.
                luma = (((x + y) * 2 + int(phase * 256)) % 256 * 0.6 + 40).astype(np.uint8)
                angle = 2 * math.pi * phase
                u = np.full((h // 2, w // 2), int(128 + 90 * math.cos(angle)), np.uint8)
                v = np.full((h // 2, w // 2), int(128 + 90 * math.sin(angle)), np.uint8)
                data = luma.tobytes() + u.tobytes() + v.tobytes()
                frames.append(rtc.VideoFrame(w, h, rtc.VideoBufferType.I420, data))
            cls._video = tuple(frames)
        return cls._video


class _MediaPump:
    """One task per event loop that feeds every registered audio and video source each tick."""

    _by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _MediaPump]" = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self._audio: set[rtc.AudioSource] = set()
        self._video: set[rtc.VideoSource] = set()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_running_loop(cls) -> "_MediaPump":
        loop = asyncio.get_running_loop()
        pump = cls._by_loop.get(loop)
        if pump is None:
            pump = cls._by_loop[loop] = cls()
        return pump

    def add(self, source: rtc.AudioSource | rtc.VideoSource) -> None:
        if isinstance(source, rtc.AudioSource):
            self._audio.add(source)
        else:
            self._video.add(source)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-media-pump")

    def discard(self, source: rtc.AudioSource | rtc.VideoSource) -> None:
        self._audio.discard(source)  # type: ignore[arg-type]
        self._video.discard(source)  # type: ignore[arg-type]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        audio = _SharedMedia.audio_chunk()
        frames = _SharedMedia.video_frames()
        due = loop.time()
        for n in itertools.count():
            if not self._audio and not self._video:
                return
            frame = frames[n % len(frames)]
            for video_source in list(self._video):
                try:
                    video_source.capture_frame(frame)
                except Exception:  # a source closed between ticks; its owner discards it
                    self._video.discard(video_source)
            if self._audio:
                sources = list(self._audio)
                results = await asyncio.gather(
                    *(s.capture_frame(audio) for s in sources), return_exceptions=True
                )
                for source, result in zip(sources, results):
                    if isinstance(result, Exception):
                        self._audio.discard(source)
            due += TICK_S
            delay = due - loop.time()
            if delay < -1.0:  # the loop stalled; resume the cadence instead of bursting
                due = loop.time()
            await asyncio.sleep(max(delay, 0.0))


def participant_token(
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    *,
    name: str = "",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    can_publish: bool = True,
    can_subscribe: bool = True,
    can_publish_data: bool = True,
) -> str:
    """A join token for one simulated participant, valid for as long as a demo session runs."""
    grants = Grants(can_publish=can_publish, can_subscribe=can_subscribe, can_publish_data=can_publish_data)
    request = TokenRequest(
        room, identity, name=name or identity, metadata=metadata, attributes=attributes or {}, ttl=SIM_TOKEN_TTL, grants=grants
    )
    return build_token(api_key, api_secret, request).jwt


async def _connect(room: rtc.Room, url: str, token: str, options: rtc.RoomOptions, timeout: float) -> None:
    """`room.connect()`, never cancelled half-way. Cancelled between the server's answer and
    the SDK telling its native side it is ready for room events, the native side panics about
    15 s later and ends the whole process with SIGTERM (a test run, the simulator). Giving up
    (a timeout, or the caller cancelled) leaves the connect to finish, then disconnects it."""
    connecting = asyncio.ensure_future(room.connect(url, token, options))
    try:
        await asyncio.wait_for(asyncio.shield(connecting), timeout)
    except BaseException:
        connecting.add_done_callback(_leave_when_connected(room))
        raise


def _leave_when_connected(room: rtc.Room) -> Callable[[asyncio.Future[None]], None]:
    def leave(done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is None:
            asyncio.ensure_future(room.disconnect())

    return leave


class SimParticipant:
    """A real rtc participant in one room. Create with `await SimParticipant.join(...)`."""

    def __init__(self, room: rtc.Room, room_name: str, identity: str) -> None:
        self.room = room
        self.room_name = room_name
        self.identity = identity
        self.disconnected = asyncio.Event()
        self.disconnect_reason: str | None = None
        self._received: list[ReceivedData] = []
        self._data_waiters: list[asyncio.Future[None]] = []
        self._sources: dict[MediaKind, rtc.AudioSource | rtc.VideoSource] = {}
        self._tracks: dict[MediaKind, rtc.LocalAudioTrack | rtc.LocalVideoTrack] = {}
        self._track_sids: dict[MediaKind, str] = {}
        room.on("disconnected", self._on_disconnected)
        room.on("data_received", self._on_data)

    @classmethod
    async def join(
        cls,
        url: str,
        api_key: str,
        api_secret: str,
        room: str,
        identity: str,
        *,
        name: str = "",
        metadata: str = "",
        attributes: dict[str, str] | None = None,
        publish_audio: bool = False,
        publish_video: bool = False,
        simulcast: bool = True,
        can_publish: bool = True,
        can_subscribe: bool = True,
        can_publish_data: bool = True,
        subscribe: Subscribe = "none",
        connect_timeout: float = 15.0,
        token: str = "",
    ) -> "SimParticipant":
        """Join `room` as `identity` and start publishing what was asked for. With `token` (one
        from lib/livekit/tokens.py), join with it as it is; the name, metadata, attributes and
        permissions given here are then not used."""
        if (publish_audio or publish_video) and not can_publish:
            raise ValueError("publish_audio/publish_video need can_publish=True")
        token = token or participant_token(
            api_key,
            api_secret,
            room,
            identity,
            name=name,
            metadata=metadata,
            attributes=attributes,
            can_publish=can_publish,
            can_subscribe=can_subscribe,
            can_publish_data=can_publish_data,
        )
        rtc_room = rtc.Room()
        participant = cls(rtc_room, room, identity)
        if subscribe == "audio":
            rtc_room.on("track_published", participant._subscribe_if_audio)
        options = rtc.RoomOptions(
            auto_subscribe=subscribe == "all", connect_timeout=connect_timeout
        )
        await _connect(rtc_room, ws_url(url), token, options, connect_timeout + 5)
        try:
            if subscribe == "audio":
                for remote in rtc_room.remote_participants.values():
                    for publication in remote.track_publications.values():
                        participant._subscribe_if_audio(publication, remote)
            if publish_audio:
                await participant.publish_audio()
            if publish_video:
                await participant.publish_video(simulcast=simulcast)
        except BaseException:
            await participant.leave()
            raise
        return participant

    # -- media ---------------------------------------------------------------------------------

    async def publish_audio(self) -> str:
        """Publish a microphone track playing a sine tone; returns its track sid."""
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        return await self._publish("audio", source, track, options)

    async def publish_video(self, *, simulcast: bool = True) -> str:
        """Publish a small camera track showing a moving pattern; returns its track sid."""
        source = rtc.VideoSource(VIDEO_WIDTH, VIDEO_HEIGHT)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            simulcast=simulcast,
            video_encoding=rtc.VideoEncoding(max_framerate=round(1 / TICK_S), max_bitrate=300_000),
        )
        return await self._publish("video", source, track, options)

    async def _publish(
        self,
        kind: MediaKind,
        source: rtc.AudioSource | rtc.VideoSource,
        track: rtc.LocalAudioTrack | rtc.LocalVideoTrack,
        options: rtc.TrackPublishOptions,
    ) -> str:
        if kind in self._tracks:
            raise ValueError(f"{self.identity} already publishes {kind}")
        # Frames flow before publishing so the encoder has input as soon as the track exists.
        _MediaPump.for_running_loop().add(source)
        try:
            publication = await self.room.local_participant.publish_track(track, options)
        except BaseException:
            _MediaPump.for_running_loop().discard(source)
            await source.aclose()
            raise
        self._sources[kind] = source
        self._tracks[kind] = track
        self._track_sids[kind] = publication.sid
        return publication.sid

    async def unpublish(self, kind: MediaKind) -> None:
        """Stop publishing the audio or video track."""
        sid = self._track_sids.pop(kind, None)
        self._tracks.pop(kind, None)
        source = self._sources.pop(kind, None)
        if source is not None:
            _MediaPump.for_running_loop().discard(source)
        if sid is not None and self.room.isconnected():
            await self.room.local_participant.unpublish_track(sid)
        if source is not None:
            await source.aclose()

    def set_muted(self, kind: MediaKind, muted: bool) -> None:
        """Mute or unmute our own published track (the server sees the track as muted)."""
        track = self._tracks.get(kind)
        if track is None:
            raise ValueError(f"{self.identity} does not publish {kind}")
        if muted:
            track.mute()
        else:
            track.unmute()

    def is_muted(self, kind: MediaKind) -> bool:
        track = self._tracks.get(kind)
        return track is not None and track.muted

    @property
    def track_sids(self) -> dict[MediaKind, str]:
        """Sids of our published tracks by kind ("audio", "video")."""
        return dict(self._track_sids)

    def _subscribe_if_audio(
        self, publication: rtc.RemoteTrackPublication, _participant: rtc.RemoteParticipant
    ) -> None:
        if publication.kind == rtc.TrackKind.KIND_AUDIO:
            publication.set_subscribed(True)

    # -- data and state ------------------------------------------------------------------------

    @property
    def sid(self) -> str:
        return self.room.local_participant.sid

    @property
    def connected(self) -> bool:
        return self.room.isconnected() and not self.disconnected.is_set()

    @property
    def received_data(self) -> list[ReceivedData]:
        return list(self._received)

    async def send_data(self, payload: bytes, *, topic: str = "", reliable: bool = True) -> None:
        await self.room.local_participant.publish_data(payload, reliable=reliable, topic=topic)

    async def set_metadata(self, metadata: str) -> None:
        await self.room.local_participant.set_metadata(metadata)

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        await self.room.local_participant.set_attributes(attributes)

    async def wait_for_data(
        self, topic: str | None = None, timeout: float = 10.0
    ) -> ReceivedData | None:
        """The first packet received (on `topic`, if given), waiting up to `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for packet in self._received:
                if topic is None or packet.topic == topic:
                    return packet
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            waiter = loop.create_future()
            self._data_waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                return None
            finally:
                if waiter in self._data_waiters:
                    self._data_waiters.remove(waiter)

    async def wait_disconnected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.disconnected.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant is not None else ""
        self._received.append(ReceivedData(packet.topic or "", packet.data, sender))
        waiters, self._data_waiters = self._data_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _on_disconnected(self, reason: int) -> None:
        if self.disconnect_reason is None:
            self.disconnect_reason = rtc.DisconnectReason.Name(reason)
        self._stop_media()
        self.disconnected.set()

    def _stop_media(self) -> None:
        pump = _MediaPump.for_running_loop()
        for source in self._sources.values():
            pump.discard(source)

    async def leave(self) -> None:
        """Leave the room (if still in it) and release media sources."""
        self._stop_media()
        if self.room.isconnected():
            await self.room.disconnect()
        for source in self._sources.values():
            await source.aclose()
        self._sources.clear()
        self._tracks.clear()
        self._track_sids.clear()
        # A server-side removal may already have flipped the state without an event reaching us.
        self.disconnected.set()

    def __repr__(self) -> str:
        return f"SimParticipant({self.room_name!r}, {self.identity!r})"


async def _leave_all(participants: list[SimParticipant]) -> None:
    await asyncio.gather(*(p.leave() for p in participants), return_exceptions=True)


@dataclass(frozen=True)
class ParticipantHandle:
    """A participant owned by a `ParticipantPool`; pass it back to the pool's methods."""

    room: str
    identity: str
    sid: str
    key: int


class ParticipantPool:
    """Synchronous access to simulated participants that live on the pool's own event loop."""

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        timeout: float = 30.0,
        name: str = "sim-participants",
    ) -> None:
        self._url = ws_url(url)
        self._api_key = api_key
        self._api_secret = api_secret
        self._timeout = timeout
        self._loop = LoopThread(name)
        self._members: dict[ParticipantHandle, SimParticipant] = {}
        self._keys = itertools.count(1)

    def join(self, room: str, identity: str, **options: object) -> ParticipantHandle:
        """Join `room` as `identity`; `options` are those of `SimParticipant.join`."""
        participant = self._loop.run(
            SimParticipant.join(
                self._url, self._api_key, self._api_secret, room, identity,
                **options,  # type: ignore[arg-type]
            ),  # fmt: skip
            self._timeout,
        )
        handle = ParticipantHandle(room, identity, participant.sid, next(self._keys))
        self._members[handle] = participant
        return handle

    def participant(self, handle: ParticipantHandle) -> SimParticipant:
        """The async object behind a handle; only touch it on the pool's loop (`run`)."""
        return self._members[handle]

    def run(self, coro, timeout: float | None = None):  # type: ignore[no-untyped-def]
        """Run a coroutine on the pool's loop, e.g. one built from `participant(handle)`."""
        return self._loop.run(coro, self._timeout if timeout is None else timeout)

    def leave(self, handle: ParticipantHandle) -> None:
        participant = self._members.pop(handle, None)
        if participant is not None:
            self._loop.run(participant.leave(), self._timeout)

    def received_data(self, handle: ParticipantHandle) -> list[ReceivedData]:
        participant = self._members[handle]
        return self._loop.run(self._read(lambda: participant.received_data), self._timeout)

    def wait_for_data(
        self, handle: ParticipantHandle, topic: str | None = None, timeout: float = 10.0
    ) -> ReceivedData | None:
        return self._loop.run(self._members[handle].wait_for_data(topic, timeout), timeout + 5)

    def wait_disconnected(self, handle: ParticipantHandle, timeout: float = 10.0) -> bool:
        return self._loop.run(self._members[handle].wait_disconnected(timeout), timeout + 5)

    def disconnect_reason(self, handle: ParticipantHandle) -> str | None:
        participant = self._members[handle]
        return self._loop.run(self._read(lambda: participant.disconnect_reason), self._timeout)

    def track_sids(self, handle: ParticipantHandle) -> dict[MediaKind, str]:
        participant = self._members[handle]
        return self._loop.run(self._read(lambda: participant.track_sids), self._timeout)

    def set_muted(self, handle: ParticipantHandle, kind: MediaKind, muted: bool) -> None:
        participant = self._members[handle]
        self._loop.run(self._read(lambda: participant.set_muted(kind, muted)), self._timeout)

    def send_data(self, handle: ParticipantHandle, payload: bytes, *, topic: str = "") -> None:
        self._loop.run(self._members[handle].send_data(payload, topic=topic), self._timeout)

    @property
    def handles(self) -> list[ParticipantHandle]:
        return list(self._members)

    @staticmethod
    async def _read(fn):  # type: ignore[no-untyped-def]
        # Participant state is only touched on its own loop; this hops there for one read.
        return fn()

    def close(self) -> None:
        """Every participant leaves, then the loop stops. Safe to call twice."""
        if not self._loop.running:
            return
        members, self._members = list(self._members.values()), {}
        if members:
            try:
                self._loop.run(_leave_all(members), self._timeout)
            except TimeoutError:
                pass  # stopping the loop below cancels whatever is still leaving
        self._loop.stop()

    def __enter__(self) -> "ParticipantPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
