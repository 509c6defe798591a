"""Soak benchmark, and the virtual clock it runs on.

    python -m bench soak [--hours H] [--seed S] [--sample-minutes M] [--json]

One long simulated call (default one hour) at real frame rates, on a virtual clock
(:class:`VirtualClockLoop`): the event loop's clock jumps to the next timer whenever
nothing is ready to run, so the filter's timers (transcript timeout, max hold, the
stale-bot bound) and the user aggregator's turn timers fire at their simulated times
while the hour runs as fast as the CPU allows. The pipeline is ``[input counter,
SoftAckInterruptionFilter, output counter, LLMUserAggregator (speech-timeout stop),
sink]``; the sink answers each user turn by clearing the context, so the context does
not grow and the memory figure is the pipeline's own.

The call (:class:`SoakCall`, deterministic from ``--seed``): 20 ms audio frames
(50/s); the bot speaking about 70% of the time with a ``BotSpeakingFrame`` every
0.2 s; backchannels, interruptions (the bot stops 0.6 s later), user turns while the
bot is silent, noise (a VAD start and stop, no words: a cough), echo (the bot's own
words transcribed with no VAD start), and the faults of ``tests/test_faults.py`` now
and then: a final that never comes, a late final, a duplicate final, an interim after
its final, a ``BotStoppedSpeakingFrame`` that never arrives.

Reported: traced memory (``tracemalloc``, after ``gc.collect()``) every
``--sample-minutes`` simulated minutes and its growth; the filter's decisions by kind
and reason against the utterances planned; the frame accounting (every gated frame
into the filter came out or was dropped in a reported decision); user turns started
and stopped; and, at the end, whether anything is still held.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
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



# --- the soak ------------------------------------------------------------------------

SAMPLE_RATE = 16000
AUDIO_SECS = 0.02
_AUDIO = b"\x00\x00" * int(SAMPLE_RATE * AUDIO_SECS)
EVERY = 0.2
USER_ID, TIMESTAMP = "soak-user", "2026-01-01T00:00:00.000Z"
BACKCHANNELS = ["uh-huh", "yeah", "mm-hmm", "okay", "right", "i see", "got it", "oh really", "sure"]
INTERRUPTIONS = ["wait what about the fee", "no stop that is wrong", "hold on a second", "but why"]
TURNS = ["i would like to book a table for two", "what time do you open on sunday", "yes please"]
ECHO = ["your order has shipped", "the table is booked for seven", "anything else i can do"]
FLAT_TOLERANCE_BYTES = 64 * 1024


class SoakCall:
    """A long simulated call as ``(t, frame)`` in time order (t in seconds from 0).

    Exchanges follow one another: the bot speaks 4-10 s (a ``BotSpeakingFrame`` every
    0.2 s) with 0-3 events from the user, then 1-3 s of silence, often with a user
    turn. Events while the bot speaks, by weight: backchannel 50, noise 12, echo 10,
    interruption 10 (ends the bot's speech 0.6 s later), and faults: no final 6, late
    final 4, duplicate final 4, interim after its final 4. One exchange in 40 loses its
    ``BotStoppedSpeakingFrame`` (the BotSpeakingFrames stop; the silence that follows
    is long enough for the filter's stale-bot bound). ``planned`` counts them all.
    """

    def __init__(self, seconds: float, seed: int):
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.planned: dict[str, int] = {}

    def _count(self, kind: str):
        self.planned[kind] = self.planned.get(kind, 0) + 1

    @staticmethod
    def _interim(text: str) -> Frame:
        from pipecat.frames.frames import InterimTranscriptionFrame

        return InterimTranscriptionFrame(text, USER_ID, TIMESTAMP)

    @staticmethod
    def _final(text: str) -> Frame:
        from pipecat.frames.frames import TranscriptionFrame

        return TranscriptionFrame(text, USER_ID, TIMESTAMP)

    def _speech(self, t0: float, secs: float, text: str | None, *, final: str = "now") -> list:
        """VAD start, UserSpeakingFrames and interims, VAD stop; then the final: "now"
        (0.15 s after the stop), "late" (3 s after), "twice" (and again), "none", or
        "interim-after" (then a stray interim)."""
        from pipecat.frames.frames import (
            UserSpeakingFrame,
            VADUserStartedSpeakingFrame,
            VADUserStoppedSpeakingFrame,
        )

        events = [(t0, VADUserStartedSpeakingFrame())]
        words = (text or "").split()
        k = 0
        while t0 + k * EVERY < t0 + secs:
            events.append((t0 + k * EVERY, UserSpeakingFrame()))
            if words:
                shown = " ".join(words[: max(1, math.ceil((k + 1) * EVERY / secs * len(words)))])
                events.append((t0 + k * EVERY + 0.1, self._interim(shown)))
            k += 1
        end = t0 + secs
        events.append((end, VADUserStoppedSpeakingFrame()))
        if words and final != "none":
            events.append((end + (3.0 if final == "late" else 0.15), self._final(text)))
            if final == "twice":
                events.append((end + 0.3, self._final(text)))
            elif final == "interim-after":
                events.append((end + 0.3, self._interim(text)))
        return events

    def __iter__(self):
        from pipecat.frames.frames import (
            BotSpeakingFrame,
            BotStartedSpeakingFrame,
            BotStoppedSpeakingFrame,
            InputAudioRawFrame,
        )

        rng, t, tick = self.rng, 1.0, 0
        kinds = ["backchannel", "noise", "echo", "interruption", "no final", "late final",
                 "duplicate final", "interim after final"]  # fmt: skip
        weights = [50, 12, 10, 10, 6, 4, 4, 4]
        while t < self.seconds - 30:
            events = [(t, BotStartedSpeakingFrame())]
            end = t + rng.uniform(4.0, 10.0)
            cursor = t + rng.uniform(0.5, 1.5)
            for _ in range(rng.choice([0, 1, 2, 3])):
                kind = rng.choices(kinds, weights)[0]
                secs = rng.uniform(0.4, 0.9)
                if cursor + secs + 3.5 > end:
                    break
                self._count(kind)
                if kind == "interruption":
                    events += self._speech(cursor, 1.2, rng.choice(INTERRUPTIONS))
                    end = cursor + 0.6
                    break
                if kind == "noise":
                    events += self._speech(cursor, secs, None)
                elif kind == "echo":
                    text = rng.choice(ECHO)
                    events += [(cursor + 0.1, self._interim(text)), (cursor + secs, self._final(text))]
                else:
                    final = {"no final": "none", "late final": "late", "duplicate final": "twice",
                             "interim after final": "interim-after"}.get(kind, "now")  # fmt: skip
                    events += self._speech(cursor, secs, rng.choice(BACKCHANNELS), final=final)
                cursor += secs + rng.uniform(3.5, 5.0)
            lost_stop = rng.random() < 1 / 40
            k = 1
            while t + k * EVERY < end:
                events.append((t + k * EVERY, BotSpeakingFrame()))
                k += 1
            quiet = rng.uniform(1.0, 3.0)
            if lost_stop:
                self._count("lost BotStoppedSpeakingFrame")
                quiet += 4.0  # past the stale-bot bound (3.5 s)
            else:
                events.append((end, BotStoppedSpeakingFrame()))
            last = max(e[0] for e in events)
            if rng.random() < 0.6:
                self._count("user turn")
                start = max(end, last) + (4.0 if lost_stop else 0.4)
                secs = rng.uniform(1.0, 2.5)
                events += self._speech(start, secs, rng.choice(TURNS))
                quiet = max(quiet, start - end + secs + 1.0)
            events.sort(key=lambda e: e[0])
            for when, frame in events:
                while tick * AUDIO_SECS <= when:
                    yield tick * AUDIO_SECS, InputAudioRawFrame(_AUDIO, SAMPLE_RATE, 1)
                    tick += 1
                yield when, frame
            t = max(end + quiet, events[-1][0] + 1.0)
        while tick * AUDIO_SECS < self.seconds:
            yield tick * AUDIO_SECS, InputAudioRawFrame(_AUDIO, SAMPLE_RATE, 1)
            tick += 1


async def soak(hours: float, seed: int, sample_minutes: float) -> dict:
    """Run the soak on the running (virtual-clock) loop; see the module docstring."""
    import gc
    import tracemalloc

    from pipecat.frames.frames import (
        EndFrame,
        InterimTranscriptionFrame,
        InterruptionFrame,
        LLMContextFrame,
        TranscriptionFrame,
        UserBackchannelFrame,
        UserSpeakingFrame,
        UserStartedSpeakingFrame,
        UserStoppedSpeakingFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMUserAggregator,
        LLMUserAggregatorParams,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
        SpeechTimeoutUserTurnStopStrategy,
    )
    from pipecat.turns.user_turn_strategies import UserTurnStrategies
    from pipecat.workers.runner import WorkerRunner

    from pipecat_softack import SoftAckInterruptionFilter

    gated = (
        VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame, UserStartedSpeakingFrame,
        UserStoppedSpeakingFrame, UserSpeakingFrame, InterruptionFrame,
        InterimTranscriptionFrame, TranscriptionFrame,
    )  # fmt: skip

    class Counter(FrameProcessor):
        def __init__(self):
            super().__init__(enable_direct_mode=True)
            self.gated = 0
            self.backchannels = 0

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if direction == FrameDirection.DOWNSTREAM:
                self.gated += isinstance(frame, gated)
                self.backchannels += isinstance(frame, UserBackchannelFrame)
            await self.push_frame(frame, direction)

    context = LLMContext()

    class Sink(FrameProcessor):
        def __init__(self):
            super().__init__(enable_direct_mode=True)
            self.llm_runs = 0

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if isinstance(frame, LLMContextFrame):
                self.llm_runs += 1
                context.set_messages([])  # answered: the context does not grow
            else:
                await self.push_frame(frame, direction)

    filt = SoftAckInterruptionFilter()
    decisions: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    dropped_frames = [0]

    for event in ("on_backchannel", "on_interruption_released", "on_noise_dropped",
                  "on_echo_dropped", "on_speech_discarded"):  # fmt: skip
        if event not in filt._event_handlers:
            continue

        @filt.event_handler(event)
        async def record(_f, d):
            key = f"{d.kind}: {d.reason}"
            decisions[key] = decisions.get(key, 0) + 1
            by_kind[d.kind] = by_kind.get(d.kind, 0) + 1
            if d.kind != "interruption":
                dropped_frames[0] += d.frames

    aggregator = LLMUserAggregator(
        context,
        params=LLMUserAggregatorParams(
            user_turn_strategies=UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy()]),
        ),
    )
    turns = [0, 0]

    @aggregator.event_handler("on_user_turn_started")
    async def started(_a, _s):
        turns[0] += 1

    @aggregator.event_handler("on_user_turn_stopped")
    async def stopped(_a, _s, _m):
        turns[1] += 1

    into, out, sink = Counter(), Counter(), Sink()
    worker = PipelineWorker(
        Pipeline([into, filt, out, aggregator, sink]),
        params=PipelineParams(),
        cancel_on_idle_timeout=False,
        idle_timeout_secs=None,
        enable_rtvi=False,
        enable_turn_tracking=False,
    )
    ready = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(_w, _f):
        ready.set()

    seconds = hours * 3600
    call = SoakCall(seconds, seed)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run_task = asyncio.create_task(runner.run())
    loop = asyncio.get_running_loop()
    samples = []
    gc.collect()
    tracemalloc.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        await asyncio.wait_for(ready.wait(), 30)
        t0 = loop.time()
        next_sample = 0.0
        frames = 0
        for when, frame in call:
            if when >= next_sample:
                await asyncio.sleep(max(0.0, when - (loop.time() - t0)))
                gc.collect()
                samples.append({"sim_minutes": round(when / 60, 2), "traced_bytes": tracemalloc.get_traced_memory()[0]})
                next_sample += sample_minutes * 60
            delay = when - (loop.time() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            await worker.queue_frame(frame)
            frames += 1
        await asyncio.sleep(10.0)  # every timer due
        gc.collect()
        samples.append({"sim_minutes": round((loop.time() - t0) / 60, 2), "traced_bytes": tracemalloc.get_traced_memory()[0]})
        holding = filt.holding
        turns_open = turns[0] - turns[1]
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(run_task, 60)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if not run_task.done():
            await runner.cancel()
    measured = [s["traced_bytes"] for s in samples[1:]]  # the first sample is before any frame
    growth = measured[-1] - measured[0] if len(measured) > 1 else 0
    return {
        "hours": hours,
        "seed": seed,
        "frames": frames,
        "wall_secs": time.perf_counter() - wall0,
        "cpu_secs": time.process_time() - cpu0,
        "planned": dict(sorted(call.planned.items())),
        "decisions": dict(sorted(decisions.items())),
        "decisions_by_kind": dict(sorted(by_kind.items())),
        "backchannel_frames": out.backchannels,
        "gated_in": into.gated,
        "gated_out": out.gated - 0,
        "dropped_in_decisions": dropped_frames[0],
        "accounted": into.gated == out.gated + dropped_frames[0],
        "turns_started": turns[0],
        "turns_stopped": turns[1],
        "llm_runs": sink.llm_runs,
        "stuck": {"holding_at_end": holding, "user_turns_open_at_end": turns_open},
        "samples": samples,
        "peak_bytes": peak,
        "growth_bytes": growth,
        "flat_tolerance_bytes": FLAT_TOLERANCE_BYTES,
        "flat": abs(growth) <= FLAT_TOLERANCE_BYTES,
    }


def render(r: dict) -> str:
    """The soak report as ``python -m bench soak`` prints it."""
    lines = [
        f"bench soak: {r['hours']:g} simulated h on the virtual clock, seed {r['seed']}: "
        f"{r['frames']:,} frames in {r['wall_secs']:.1f} s wall ({r['cpu_secs']:.1f} s CPU)",
        "",
        "planned events: " + ", ".join(f"{k} {v}" for k, v in r["planned"].items()),
        "decisions: " + ", ".join(f"{k} {v}" for k, v in r["decisions_by_kind"].items())
        + f"; UserBackchannelFrames out {r['backchannel_frames']}",
    ]
    for key, n in r["decisions"].items():
        lines.append(f"   {n:>6}  {key}")
    lines += [
        f"frames: {r['gated_in']:,} gated frames in = {r['gated_out']:,} out + "
        f"{r['dropped_in_decisions']:,} dropped in reported decisions: "
        f"{'ok' if r['accounted'] else 'MISMATCH'}",
        f"user turns: {r['turns_started']} started, {r['turns_stopped']} stopped; LLM runs {r['llm_runs']}",
        f"stuck at the end: holding {r['stuck']['holding_at_end']}, user turns open "
        f"{r['stuck']['user_turns_open_at_end']}",
        "",
        f"memory (tracemalloc, after gc.collect()):   {'sim min':>8}{'traced':>12}",
    ]
    for s in r["samples"]:
        lines.append(f"   {s['sim_minutes']:>48g}{s['traced_bytes'] / 1024:>9.1f} KiB")
    lines.append(
        f"   peak {r['peak_bytes'] / 2**20:.1f} MiB; growth from the first sample after the start to "
        f"the last {r['growth_bytes'] / 1024:+.1f} KiB (target flat within "
        f"{r['flat_tolerance_bytes'] // 1024} KiB: {'met' if r['flat'] else 'NOT met'})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; exit code 1 if a frame went unaccounted or something stayed held."""
    import argparse
    import json
    import math as _math
    import sys

    from loguru import logger

    p = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=1.0, help="simulated hours (default 1)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--sample-minutes", type=float, default=5.0, help="memory sample period (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    args = p.parse_args(argv)
    for name in ("hours", "sample_minutes"):
        value = getattr(args, name)
        if not (_math.isfinite(value) and value > 0):
            p.error(f"--{name.replace('_', '-')} must be a positive number, got {value}")
    logger.remove()
    handler = logger.add(
        sys.stderr, level="ERROR", filter=lambda r: "cannot gate every" not in r["message"]
    )
    try:
        with contextlib.redirect_stdout(sys.stderr):
            report = run_virtual(soak(args.hours, args.seed, args.sample_minutes))
    finally:
        logger.remove(handler)
        logger.add(sys.stderr)
    print(json.dumps(report) if args.json else render(report))
    return 0 if report["accounted"] and not report["stuck"]["holding_at_end"] else 1


if __name__ == "__main__":
    import sys

    sys.exit(main())
