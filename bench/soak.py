"""Soak benchmark, and the virtual clock it runs on.

    python -m bench soak [--hours H] [--seed S] [--sample-minutes M] [--json]

PLACEHOLDER: the soak session is added below.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# Seconds of real time the loop waits at most for an executor thread before it looks
# again (a thread's result wakes it at once; this only bounds a lost wake-up).
_THREAD_WAIT_SECS = 0.05


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on a virtual clock that jumps to the next timer.

    ``loop.time()`` starts at ``start`` and moves only when nothing is ready to run:
    then, instead of sleeping until the next timer (``asyncio.sleep``, ``wait_for``,
    ``call_later``), it sets the clock to that timer's time. So every callback that
    is ready runs before the clock moves on, a 20 ms ``SleepFrame`` takes 20 virtual
    ms however loaded the machine is, and an hour of frames at real rates runs as
    fast as the CPU allows. While an executor thread works (a VAD analyzer's
    ``run_in_executor``), the clock stands still and the loop waits for it in real
    time. Sockets and pipes still work (``select`` with no wait).

    Use :func:`run_virtual`, which also points ``time.monotonic`` at this clock.
    """

    def __init__(self, start: float = 1000.0):
        super().__init__()
        self._now = float(start)
        self._threads = 0
        real = self._selector
        loop = self

        class _Selector:
            def select(self, timeout=None):
                if loop._threads:
                    wait = _THREAD_WAIT_SECS if timeout is None else min(timeout, _THREAD_WAIT_SECS)
                    return real.select(wait)
                if timeout is not None and timeout > 0:
                    loop._now += timeout
                    return real.select(0)
                return real.select(timeout)

            def __getattr__(self, name):
                return getattr(real, name)

        self._selector = _Selector()

    def time(self) -> float:
        """The virtual clock, in seconds."""
        return self._now

    def advance(self, secs: float):
        """Move the clock ``secs`` seconds on (timers due by then fire next)."""
        if not secs >= 0:
            raise ValueError(f"advance() needs seconds >= 0, got {secs!r}")
        self._now += secs

    def run_in_executor(self, executor, func, *args):
        """As asyncio's, with the clock held still until the thread's result is in."""
        future = super().run_in_executor(executor, func, *args)
        self._threads += 1

        def done(_):
            self._threads -= 1

        future.add_done_callback(done)
        return future


@contextlib.contextmanager
def virtual_monotonic(loop: VirtualClockLoop) -> Iterator[None]:
    """Point ``time.monotonic`` at ``loop``'s clock for the duration (the filter's
    timestamps, Pipecat's VAD idle timer), then put the real one back."""
    real = time.monotonic
    time.monotonic = loop.time
    try:
        yield
    finally:
        time.monotonic = real


def run_virtual(coro: Coroutine[Any, Any, T], *, start: float = 1000.0) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualClockLoop`.

    Args:
        coro: The coroutine, e.g. ``run_test(...)``.
        start: Virtual seconds the clock starts at (default 1000.0, so times
            computed as "now minus a few seconds" stay positive).

    Returns:
        What ``coro`` returns; its exception, if it raises.
    """
    loop = VirtualClockLoop(start)
    try:
        asyncio.set_event_loop(loop)
        with virtual_monotonic(loop):
            return loop.run_until_complete(coro)
    finally:
        try:
            with virtual_monotonic(loop):
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def on_virtual_clock(test):
    """Decorate an ``async def`` test so that it runs on :func:`run_virtual` (a plain
    function to pytest, which passes its arguments and fixtures through)."""
    import functools

    @functools.wraps(test)
    def run(*args, **kwargs):
        return run_virtual(test(*args, **kwargs))

    return run
