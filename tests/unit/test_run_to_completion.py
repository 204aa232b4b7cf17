"""lib.aio.run_to_completion: a call that must not stop half-way (the rtc SDK's connect) runs to
its end when its caller is cancelled, and the cancel still reaches the caller afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from lib.aio import run_to_completion


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a thread of its own: after a browser test, Playwright's sync API keeps an
    event loop running on the main thread for the rest of the session, where asyncio.run refuses."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coro).result()


class Call:
    """A call that takes a while and records whether it ran to its end."""

    def __init__(self, seconds: float, fails: bool = False) -> None:
        self.seconds, self.fails = seconds, fails
        self.finished = False

    async def __call__(self) -> str:
        await asyncio.sleep(self.seconds)
        if self.fails:
            raise ConnectionError("refused")
        self.finished = True
        return "connected"


async def cancelled_after(call: Call, delay: float, times: int = 1) -> asyncio.Task[str]:
    caller = asyncio.ensure_future(run_to_completion(call()))
    for _ in range(times):
        await asyncio.sleep(delay)
        caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    return caller


def test_the_result_comes_back_when_nobody_cancels() -> None:
    call = Call(0.01)
    assert run(run_to_completion(call())) == "connected" and call.finished


def test_a_cancelled_caller_lets_the_call_finish_then_is_cancelled() -> None:
    call = Call(0.2)
    caller = run(cancelled_after(call, 0.02))
    assert call.finished, "the call ran to its end"
    assert caller.cancelled(), "and the caller was still cancelled"


def test_repeated_cancels_while_it_waits_change_nothing() -> None:
    call = Call(0.2)
    caller = run(cancelled_after(call, 0.02, times=5))
    assert call.finished and caller.cancelled()


def test_the_call_s_own_error_reaches_the_caller() -> None:
    with pytest.raises(ConnectionError):
        run(run_to_completion(Call(0.01, fails=True)()))


def test_a_call_that_fails_after_its_caller_was_cancelled_raises_its_error() -> None:
    caller = run(cancelled_after(Call(0.1, fails=True), 0.02))
    assert isinstance(caller.exception(), ConnectionError)


def test_a_call_cancelled_itself_cancels_the_caller() -> None:
    async def scenario() -> asyncio.Task[str]:
        inner = asyncio.ensure_future(Call(1.0)())
        caller = asyncio.ensure_future(run_to_completion(inner))
        await asyncio.sleep(0.02)
        inner.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        return caller

    assert run(scenario()).cancelled()
