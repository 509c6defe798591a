"""Cost benchmark: what SoftAckInterruptionFilter costs per frame and in memory.

    python -m bench cost [--json] [--minutes N] [--hours H] [--repeats R] [--seed S]

Everything runs on a simulated live call (``SessionGenerator``), generated
deterministically from ``--seed``: 20 ms ``InputAudioRawFrame`` at 16 kHz
(50/s) the whole time; the bot speaking about 60% of the time
(``BotStartedSpeakingFrame``/``BotStoppedSpeakingFrame``); user utterances, each
a ``VADUserStartedSpeakingFrame``, a ``UserSpeakingFrame`` every 0.2 s while the
user speaks, an ``InterimTranscriptionFrame`` every 0.3 s, a
``VADUserStoppedSpeakingFrame`` and, 0.15 s later, the final
``TranscriptionFrame``. Utterances come in three kinds:

* backchannels while the bot speaks ("uh-huh", "yeah", "i see"): the filter
  holds them and drops them (one ``UserBackchannelFrame`` each);
* interruptions while the bot speaks ("wait ...", "yeah but ..."): held until
  the first content or command word, then released; the bot stops 1 s after
  the interruption began;
* user turns while the bot is silent: they pass at once.

1. Throughput. The filter and Pipecat's ``IdentityFilter`` each run the same
   ``--minutes`` session (default 10) through the same harness: a ``Pipeline``
   of an input counter, the processor under test and a counting sink that
   discards frames, run by ``PipelineWorker`` + ``WorkerRunner`` and fed with
   ``worker.queue_frame`` as fast as possible, no sleeps. Pipecat processes
   ``SystemFrame`` s (audio, VAD, bot speaking) ahead of data frames
   (transcriptions) queued before them; in a live call 20 ms separate them, so
   the feeder restores that order: after a run of data frames, before the next
   system frame, it queues a small sync marker (a ``DataFrame``) and waits for
   it to reach the sink. Markers are fed to both processors alike and are not
   counted as session frames. The clock runs from the first frame queued to
   the last marker reaching the sink; then an ``EndFrame`` ends the run (with
   a timeout, so nothing hangs). The filter's timers are set to an hour so
   they never fire. One warm-up run each, then ``--repeats`` timed runs
   (interleaved); the median is reported. The warm-up run also checks the
   filter behaved as planned (every backchannel dropped, every interruption
   released) and counts its classifier calls.
2. Decision step: ``BackchannelClassifier.classify`` alone on the session's
   transcripts (interims with ``partial=True``, finals without), in
   microseconds per call, and amortised per session frame.
3. Memory: the filter over a ``--hours`` session (default 1), generated lazily
   and fed one simulated minute at a time, under ``tracemalloc``: the peak, and
   the traced size after ``gc.collect()`` every simulated 10 minutes; growth is
   last sample minus first.

Loguru is set to WARNING for the whole benchmark (the filter logs a DEBUG line
per decision, and pipecat logs per run), so logging does not dominate the
timing. ``--json`` prints exactly one JSON object on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from loguru import logger

# Pipecat prints a banner when imported; keep stdout clean for --json.
with contextlib.redirect_stdout(sys.stderr):
    import pipecat
    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        CancelFrame,
        DataFrame,
        EndFrame,
        ErrorFrame,
        Frame,
        InputAudioRawFrame,
        InterimTranscriptionFrame,
        StartFrame,
        StopFrame,
        SystemFrame,
        TranscriptionFrame,
        UserBackchannelFrame,
        UserSpeakingFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.filters.identity_filter import IdentityFilter
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.workers.runner import WorkerRunner

    from pipecat_softack import SoftAckInterruptionFilter
    from pipecat_softack.classifier import BackchannelClassifier, Verdict

LOG_LEVEL = "WARNING"
TARGET_RATIO = 0.5  # filter throughput / IdentityFilter throughput, at least
TIMER_SECS = 3600.0  # the filter's timers: long enough never to fire mid-run
END_TIMEOUT_SECS = 60.0  # an EndFrame must end a run within this, or it is cancelled
START_TIMEOUT_SECS = 10.0
# Memory growth (last sample minus first) within this counts as flat: gc.collect()
# leaves a few KiB of free-list and asyncio bookkeeping that come and go.
FLAT_TOLERANCE_BYTES = 64 * 1024

# --- the simulated session ----------------------------------------------------

SAMPLE_RATE = 16000
AUDIO_SECS = 0.02  # one InputAudioRawFrame per 20 ms: 50 per second
_AUDIO = b"\x00\x00" * int(SAMPLE_RATE * AUDIO_SECS)  # shared: frames are never mutated
USER_SPEAKING_EVERY = 0.2
INTERIM_EVERY = 0.3
FINAL_DELAY = 0.15  # final transcript after the VAD stop
BOT_STOP_AFTER_INTERRUPTION = 1.0  # the bot goes quiet this long after an interruption starts
USER_ID = "bench-user"
TIMESTAMP = "2026-01-01T00:00:00.000Z"

# Each backchannel is one final; its interims are the words so far.
BACKCHANNELS = [
    "Uh-huh.", "Yeah.", "Mm-hmm.", "Okay.", "Right.", "I see.", "Yeah, yeah.", "Got it.",
    "Oh, really?", "Sure.", "Okay, okay.", "Oh wow.",
]  # fmt: skip
# The decisive word is at most the second one, so the release comes before the bot stops.
INTERRUPTIONS = [
    "Wait, what about the delivery fee?",
    "No, stop, that's not what I asked.",
    "Actually I have a question about that.",
    "Yeah but what about the weekend?",
    "Hold on, can you repeat the price?",
    "Sorry, which account was that?",
    "Okay but I need it by Friday.",
    "Hang on a second please.",
]
USER_TURNS = [
    "I'd like to book a table for two tomorrow evening.",
    "Can you tell me how much the premium plan costs per month?",
    "Yes, that works for me, please go ahead and confirm it.",
    "My order number is four five six seven and it never arrived.",
    "What time do you open on Sundays?",
    "I think the second option sounds better for us.",
    "Could you send the details to my email address instead?",
]

@dataclass
class SessionStats:
    """What a generated session holds; filled in while its frames are generated."""

    seconds: float = 0.0
    bot_speaking_secs: float = 0.0
    frames: int = 0
    audio_frames: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    utterances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Gated frames (VAD, UserSpeaking, transcripts) by utterance kind.
    gated_frames: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Gated frames that arrive while the bot speaks: the ones the filter may hold.
    holdable_frames: int = 0

    def as_dict(self) -> dict:
        return {
            "seconds": self.seconds,
            "frames": self.frames,
            "audio_frames": self.audio_frames,
            "audio_frames_per_minute": (
                self.audio_frames / (self.seconds / 60) if self.seconds else 0.0
            ),
            "bot_speaking_share": self.bot_speaking_secs / self.seconds if self.seconds else 0.0,
            "utterances": dict(self.utterances),
            "gated_frames": dict(self.gated_frames),
            "holdable_frames": self.holdable_frames,
            "by_type": dict(sorted(self.by_type.items())),
        }


def _interim(text: str) -> InterimTranscriptionFrame:
    return InterimTranscriptionFrame(text=text, user_id=USER_ID, timestamp=TIMESTAMP)


def _final(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id=USER_ID, timestamp=TIMESTAMP)


def _audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=_AUDIO, sample_rate=SAMPLE_RATE, num_channels=1)


class SessionGenerator:
    """A simulated live call, generated lazily as timestamped frames.

    The call is a series of exchanges, each starting with the bot speaking
    (3-8 s) with 0-2 backchannels from the user; 30% of them end in an
    interruption (the bot stops 1 s after it starts), the others in the bot
    finishing and, 80% of the time, a user turn (1.5-4 s) while it is silent.
    An exchange that would not end before ``seconds`` is left out: the session
    ends in silence, so every utterance is complete and the audio frames are
    exactly 50 per second. Same ``seed``, same frames.

    Iterating yields ``(t, frame)`` in time order (an audio frame for each
    20 ms tick, the other frames at their time); ``stats`` is complete once
    the iteration ends.
    """

    def __init__(self, seconds: float, seed: int = 7):
        self.seconds = seconds
        self.seed = seed
        self.stats = SessionStats(seconds=seconds)

    # Each event is (t, kind, factory) where kind is the utterance kind or None.
    def _utterance(self, rng: random.Random, t0: float, duration: float, text: str, kind: str):
        words = text.split()
        t_end = t0 + duration
        events = [(t0, kind, VADUserStartedSpeakingFrame)]
        k = 0
        while t0 + k * USER_SPEAKING_EVERY < t_end:
            events.append((t0 + k * USER_SPEAKING_EVERY, kind, UserSpeakingFrame))
            k += 1
        k = 1
        while t0 + k * INTERIM_EVERY < t_end:
            shown = max(1, math.ceil(k * INTERIM_EVERY / duration * len(words)))
            partial = " ".join(words[:shown]).rstrip(".,?!")
            events.append((t0 + k * INTERIM_EVERY, kind, lambda p=partial: _interim(p)))
            k += 1
        events.append((t_end, kind, VADUserStoppedSpeakingFrame))
        events.append((t_end + FINAL_DELAY, kind, lambda: _final(text)))
        self.stats.utterances[kind] += 1
        return events, t_end + FINAL_DELAY

    def _exchange(self, rng: random.Random, t: float):
        """The events of one exchange starting at t, and its end time."""
        events = [(t, None, BotStartedSpeakingFrame)]
        bot_end = t + rng.uniform(3.0, 8.0)
        interrupted = rng.random() < 0.3
        cursor = t + rng.uniform(1.0, 3.0)
        for _ in range(rng.choices([0, 1, 2], weights=[30, 45, 25])[0]):
            duration = rng.uniform(0.4, 0.9)
            if cursor + duration + FINAL_DELAY > bot_end - 0.5:
                break
            evs, end = self._utterance(
                rng, cursor, duration, rng.choice(BACKCHANNELS), "backchannel"
            )
            events += evs
            cursor = end + rng.uniform(1.0, 3.0)
        if interrupted:
            onset = max(cursor, bot_end - 2.0)
            evs, end = self._utterance(
                rng, onset, rng.uniform(1.2, 3.0), rng.choice(INTERRUPTIONS), "interruption"
            )
            events += evs
            bot_end = onset + BOT_STOP_AFTER_INTERRUPTION
            events.append((bot_end, None, BotStoppedSpeakingFrame))
            end += rng.uniform(0.4, 1.0)
        else:
            events.append((bot_end, None, BotStoppedSpeakingFrame))
            end = bot_end + rng.uniform(0.3, 1.0)
            if rng.random() < 0.8:
                evs, end = self._utterance(
                    rng, end, rng.uniform(1.5, 4.0), rng.choice(USER_TURNS), "user_turn"
                )
                events += evs
                end += rng.uniform(0.5, 1.2)
        events.sort(key=lambda e: e[0])  # stable: same-time events keep their order
        return events, end, bot_end - t

    def __iter__(self) -> Iterator[tuple[float, Frame]]:
        rng = random.Random(self.seed)
        stats = self.stats
        total_ticks = round(self.seconds / AUDIO_SECS)
        tick = 0
        bot_speaking = False
        t = rng.uniform(0.5, 2.0)  # the call opens with a little silence
        while True:
            # Draw the exchange with a throwaway stats object first: if it does not
            # fit, it is left out and must not be counted.
            saved, self.stats = self.stats, SessionStats()
            events, end, bot_secs = self._exchange(rng, t)
            draft, self.stats = self.stats, saved
            if end > self.seconds:
                events = []
            else:
                for kind, n in draft.utterances.items():
                    stats.utterances[kind] += n
                stats.bot_speaking_secs += bot_secs
            for when, kind, factory in events:
                while tick < total_ticks and tick * AUDIO_SECS <= when:
                    stats.audio_frames += 1
                    stats.frames += 1
                    stats.by_type["InputAudioRawFrame"] += 1
                    yield tick * AUDIO_SECS, _audio()
                    tick += 1
                frame = factory()
                if isinstance(frame, BotStartedSpeakingFrame):
                    bot_speaking = True
                elif isinstance(frame, BotStoppedSpeakingFrame):
                    bot_speaking = False
                elif kind is not None:
                    stats.gated_frames[kind] += 1
                    if bot_speaking:
                        stats.holdable_frames += 1
                stats.frames += 1
                stats.by_type[type(frame).__name__] += 1
                yield when, frame
            if not events:
                break
            t = end
        while tick < total_ticks:
            stats.audio_frames += 1
            stats.frames += 1
            stats.by_type["InputAudioRawFrame"] += 1
            yield tick * AUDIO_SECS, _audio()
            tick += 1


def session_frames(seconds: float, seed: int = 7) -> Iterator[Frame]:
    """The frames of a simulated session (see :class:`SessionGenerator`), lazily."""
    return (frame for _, frame in SessionGenerator(seconds, seed))


def session_transcripts(seconds: float, seed: int = 7) -> list[tuple[str, bool]]:
    """(text, partial) of every transcript of a session: the filter's classify inputs."""
    out = []
    for frame in session_frames(seconds, seed):
        if isinstance(frame, InterimTranscriptionFrame):
            out.append((frame.text, True))
        elif isinstance(frame, TranscriptionFrame):
            out.append((frame.text, False))
    return out


# --- the harness --------------------------------------------------------------


@dataclass
class _Sync(DataFrame):
    """Marker the feeder waits for at the sink (orders data before system frames)."""

    seq: int = 0


# What the sink passes on: the worker needs to see these to start and end.
_LIFECYCLE = (StartFrame, EndFrame, CancelFrame, StopFrame, ErrorFrame)


class _InputCounter(FrameProcessor):
    """Counts the session frames going into the processor under test."""

    def __init__(self):
        super().__init__(enable_direct_mode=True)
        self.frames = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM and not isinstance(frame, (_Sync, *_LIFECYCLE)):
            self.frames += 1
        await self.push_frame(frame, direction)


class _CountingSink(FrameProcessor):
    """Counts what comes out of the processor under test by type, then discards it."""

    def __init__(self):
        super().__init__(enable_direct_mode=True)
        self.by_type: dict[type, int] = defaultdict(int)
        self.frames = 0
        self.synced = 0
        self._waiter: tuple[int, asyncio.Future] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, _LIFECYCLE) or direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, _Sync):
            self.synced = frame.seq
            if self._waiter and self._waiter[0] <= frame.seq and not self._waiter[1].done():
                self._waiter[1].set_result(None)
        else:
            self.frames += 1
            self.by_type[type(frame)] += 1

    def wait_for(self, seq: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self.synced >= seq:
            future.set_result(None)
        self._waiter = (seq, future)
        return future


class _Feeder:
    """Queues frames into a worker as fast as possible, keeping data-before-system order."""

    def __init__(self, worker: PipelineWorker, sink: _CountingSink):
        self._worker = worker
        self._sink = sink
        self._after_data = False
        self.markers = 0

    async def sync(self):
        """Queue a marker and wait until it reaches the sink: everything before it is done."""
        self.markers += 1
        waiter = self._sink.wait_for(self.markers)
        await self._worker.queue_frame(_Sync(seq=self.markers))
        await waiter
        self._after_data = False

    async def feed(self, frames: Iterable[Frame]):
        for frame in frames:
            if isinstance(frame, SystemFrame):
                if self._after_data:
                    await self.sync()
            else:
                self._after_data = True
            await self._worker.queue_frame(frame)


@dataclass
class RunResult:
    frames_in: int
    frames_out: int
    out_by_type: dict[str, int]
    markers: int
    body: object  # what the run body returned


async def run_through(
    processor: FrameProcessor, body: Callable[[_Feeder], object]
) -> RunResult:
    """Run ``body(feeder)`` against a pipeline [input counter, processor, sink], then end it."""
    counter, sink = _InputCounter(), _CountingSink()
    worker = PipelineWorker(
        Pipeline([counter, processor, sink]),
        params=PipelineParams(),
        cancel_on_idle_timeout=False,
        idle_timeout_secs=None,
        enable_rtvi=False,
        enable_turn_tracking=False,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _on_started(worker, frame):
        started.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run_task = asyncio.create_task(runner.run())
    feeder = _Feeder(worker, sink)
    try:
        await asyncio.wait_for(started.wait(), START_TIMEOUT_SECS)
        result = await body(feeder)
        await feeder.sync()
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(asyncio.shield(run_task), END_TIMEOUT_SECS)
    except BaseException:
        await worker.queue_frame(CancelFrame())
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(run_task, 10)
        if not run_task.done():
            run_task.cancel()
        raise
    return RunResult(
        frames_in=counter.frames,
        frames_out=sink.frames,
        out_by_type=dict(sorted((k.__name__, v) for k, v in sink.by_type.items())),
        markers=feeder.markers,
        body=result,
    )


class _CountingClassifier(BackchannelClassifier):
    """Counts the filter's decisions (``classify`` goes through ``explain`` too)."""

    calls = 0

    def explain(self, text: str, *, partial: bool = False, context: str | None = None) -> tuple[Verdict, bool]:
        self.calls += 1
        return super().explain(text, partial=partial, context=context)


def make_filter(classifier: BackchannelClassifier | None = None) -> SoftAckInterruptionFilter:
    return SoftAckInterruptionFilter(
        classifier=classifier,
        transcript_timeout_secs=TIMER_SECS,
        max_hold_secs=TIMER_SECS,
    )


# --- 1. throughput ------------------------------------------------------------


async def _timed_run(processor: FrameProcessor, frames: list[Frame]) -> tuple[float, RunResult]:
    async def body(feeder: _Feeder):
        t0 = time.perf_counter()
        await feeder.feed(frames)
        await feeder.sync()
        return time.perf_counter() - t0

    result = await run_through(processor, body)
    return result.body, result


def _expected_filter_output(stats: SessionStats) -> int:
    """Frames the filter should let out: all but the backchannels' gated frames, plus one
    UserBackchannelFrame per backchannel."""
    return (
        stats.frames
        - stats.gated_frames.get("backchannel", 0)
        + stats.utterances.get("backchannel", 0)
    )


async def bench_throughput(minutes: float, repeats: int, seed: int) -> dict:
    seconds = minutes * 60
    gen = SessionGenerator(seconds, seed)
    list(gen)  # stats only
    stats = gen.stats

    def frames() -> list[Frame]:
        return list(session_frames(seconds, seed))

    # Warm-up, and the behaviour check with a counting classifier.
    counting = _CountingClassifier()
    checked_filter = make_filter(counting)
    decisions: dict[str, int] = defaultdict(int)
    for event in ("on_backchannel", "on_interruption_released", "on_noise_dropped"):

        @checked_filter.event_handler(event)
        async def _count(_filter, decision):
            decisions[f"{decision.kind}: {decision.reason}"] += 1

    _, checked = await _timed_run(checked_filter, frames())
    await asyncio.sleep(0)  # let the handler tasks of the last decisions run
    _, identity_checked = await _timed_run(IdentityFilter(), frames())
    expected_out = _expected_filter_output(stats)
    behaviour = {
        "backchannels_planned": stats.utterances.get("backchannel", 0),
        "backchannels_reported": checked.out_by_type.get(UserBackchannelFrame.__name__, 0),
        "filter_frames_out_expected": expected_out,
        "filter_frames_out": checked.frames_out,
        "identity_frames_out": identity_checked.frames_out,
        "interruptions_planned": stats.utterances.get("interruption", 0),
        "interruptions_released_on_words": decisions.get(
            "interruption: content or command word", 0
        ),
        "decisions": dict(sorted(decisions.items())),
        "classify_calls": counting.calls,
    }
    behaviour["ok"] = (
        behaviour["backchannels_planned"] == behaviour["backchannels_reported"]
        and behaviour["interruptions_planned"] == behaviour["interruptions_released_on_words"]
        and decisions.get("backchannel: utterance ended", 0) == behaviour["backchannels_planned"]
        and sum(decisions.values())
        == behaviour["backchannels_planned"] + behaviour["interruptions_planned"]
        and expected_out == checked.frames_out
        and identity_checked.frames_out == stats.frames
        and checked.frames_in == identity_checked.frames_in == stats.frames
    )

    runs: dict[str, list[float]] = {"filter": [], "identity": []}
    inputs: dict[str, set[tuple[int, int]]] = {"filter": set(), "identity": set()}
    for _ in range(repeats):
        for name, make in (("filter", make_filter), ("identity", IdentityFilter)):
            batch = frames()
            gc.collect()
            elapsed, result = await _timed_run(make(), batch)
            del batch
            runs[name].append(elapsed)
            inputs[name].add((result.frames_in, result.markers))
    if not inputs["filter"] == inputs["identity"] == {(checked.frames_in, checked.markers)}:
        raise RuntimeError(f"the processors got different inputs: {inputs}")

    out: dict = {}
    for name, label in (("filter", "SoftAckInterruptionFilter"), ("identity", "IdentityFilter")):
        median = statistics.median(runs[name])
        out[name] = {
            "processor": label,
            "frames_in": checked.frames_in,
            "sync_markers": checked.markers,
            "median_secs": median,
            "frames_per_sec": stats.frames / median,
            "us_per_frame": median / stats.frames * 1e6,
            "runs_frames_per_sec": [stats.frames / s for s in runs[name]],
        }
    ratio = out["filter"]["frames_per_sec"] / out["identity"]["frames_per_sec"]
    return {
        "minutes": minutes,
        "repeats": repeats,
        "session": stats.as_dict(),
        "filter": out["filter"],
        "identity": out["identity"],
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "extra_us_per_frame": out["filter"]["us_per_frame"] - out["identity"]["us_per_frame"],
        "behaviour": behaviour,
    }


# --- 2. decision step ---------------------------------------------------------


def bench_classify(
    transcripts: list[tuple[str, bool]], repeats: int = 5, min_calls: int = 20000
) -> dict:
    classifier = BackchannelClassifier()
    if not transcripts:
        transcripts = [(t, False) for t in BACKCHANNELS + INTERRUPTIONS]
    loops = max(1, math.ceil(min_calls / len(transcripts)))
    classify = classifier.classify
    for text, partial in transcripts:  # warm-up
        classify(text, partial=partial)
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            for text, partial in transcripts:
                classify(text, partial=partial)
        per_call.append((time.perf_counter() - t0) / (loops * len(transcripts)))
    return {
        "transcripts": len(transcripts),
        "distinct_transcripts": len(set(transcripts)),
        "calls_per_repeat": loops * len(transcripts),
        "us_per_classify": statistics.median(per_call) * 1e6,
    }


# --- 3. memory ----------------------------------------------------------------


async def bench_memory(hours: float, seed: int, sample_minutes: float = 10.0) -> dict:
    seconds = hours * 3600
    sample_secs = min(sample_minutes * 60, seconds / 2)
    chunk_secs = min(60.0, sample_secs)
    stream = iter(SessionGenerator(seconds, seed))
    samples: list[dict] = []

    def take_chunk(end: float, pending: list) -> list[Frame]:
        chunk = [pending.pop()[1]] if pending else []
        for t, frame in stream:
            if t >= end:
                pending.append((t, frame))
                break
            chunk.append(frame)
        return chunk

    def sample(sim_secs: float):
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        samples.append({"sim_minutes": round(sim_secs / 60, 3), "current_bytes": current})

    async def body(feeder: _Feeder):
        pending: list = []
        frames = 0
        n_chunks = math.ceil(seconds / chunk_secs - 1e-9)
        next_sample = sample_secs
        for i in range(1, n_chunks + 1):
            end = min(i * chunk_secs, seconds)
            chunk = take_chunk(end, pending)
            frames += len(chunk)
            await feeder.feed(chunk)
            del chunk
            await feeder.sync()
            if end >= next_sample - 1e-6:
                sample(end)
                next_sample += sample_secs
        return frames

    gc.collect()
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        result = await run_through(make_filter(), body)
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    first, last = samples[0]["current_bytes"], samples[-1]["current_bytes"]
    growth = last - first
    return {
        "hours": hours,
        "chunk_secs": chunk_secs,
        "sample_every_secs": sample_secs,
        "frames": result.body,
        "frames_in": result.frames_in,
        "wall_secs_under_tracemalloc": wall,
        "peak_bytes": peak,
        "samples": samples,
        "growth_bytes": growth,
        "flat_tolerance_bytes": FLAT_TOLERANCE_BYTES,
        "flat": abs(growth) <= FLAT_TOLERANCE_BYTES,
        "spread_bytes": max(s["current_bytes"] for s in samples)
        - min(s["current_bytes"] for s in samples),
    }


# --- CLI ----------------------------------------------------------------------


def _fmt_bytes(n: float, signed: bool = False) -> str:
    sign = "-" if n < 0 else ("+" if n > 0 and signed else "")
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    return f"{sign}{n}"


def render(report: dict) -> str:
    tp, cl, mem = report["throughput"], report["decision_step"], report["memory"]
    s = tp["session"]
    u = s["utterances"]
    lines = [
        f"bench cost (pipecat {report['pipecat_version']}, Python {report['python']}; "
        f"loguru level {report['loguru_level']} during the bench, "
        "so per-decision DEBUG logs are off)",
        "",
        f"Session: {tp['minutes']:g} simulated min, seed {report['seed']}: {s['frames']} frames "
        f"({s['audio_frames_per_minute']:.0f} audio/min), "
        f"bot speaking {s['bot_speaking_share']:.0%}; "
        f"utterances: {u.get('backchannel', 0)} backchannels, {u.get('interruption', 0)} "
        f"interruptions, {u.get('user_turn', 0)} user turns; "
        f"{s['holdable_frames']} holdable frames",
        "",
        f"1. Throughput (median of {tp['repeats']} runs, same frames and harness for both; "
        f"{tp['filter']['sync_markers']} sync markers not counted)",
        f"   {'processor':<28}{'frames in':>10}{'frames/s':>12}{'us/frame':>10}",
    ]
    for key in ("filter", "identity"):
        r = tp[key]
        lines.append(
            f"   {r['processor']:<28}{r['frames_in']!s:>10}{r['frames_per_sec']:>12,.0f}"
            f"{r['us_per_frame']:>10.2f}"
        )
    b = tp["behaviour"]
    lines += [
        f"   ratio filter/identity: {tp['ratio']:.2f} (target >= {tp['target_ratio']}: "
        f"{'met' if tp['meets_target'] else 'NOT met'}); "
        f"filter adds {tp['extra_us_per_frame']:.2f} us/frame",
        "   behaviour check (warm-up run): "
        f"{b['backchannels_reported']}/{b['backchannels_planned']} "
        f"backchannels held then dropped, {b['interruptions_released_on_words']}/"
        f"{b['interruptions_planned']} interruptions held then released on words; filter out "
        f"{b['filter_frames_out']} (expected {b['filter_frames_out_expected']}), identity out "
        f"{b['identity_frames_out']}: {'ok' if b['ok'] else 'MISMATCH ' + str(b['decisions'])}",
        "",
        f"2. Decision step: BackchannelClassifier.classify {cl['us_per_classify']:.2f} us/call "
        f"({cl['distinct_transcripts']} distinct session transcripts); "
        f"{cl['calls_per_session']} calls per session = "
        f"{cl['us_per_frame_amortized']:.3f} us per frame",
        "",
        f"3. Memory (tracemalloc, filter, {mem['hours']:g} simulated h fed in "
        f"{mem['chunk_secs']:g} s chunks, {mem['frames']} frames, "
        f"{mem['wall_secs_under_tracemalloc']:.1f} s wall)",
        f"   {'sim min':>9}{'traced now':>14}",
    ]
    for smp in mem["samples"]:
        lines.append(f"   {smp['sim_minutes']:>9g}{_fmt_bytes(smp['current_bytes']):>14}")
    lines += [
        f"   peak {_fmt_bytes(mem['peak_bytes'])}; growth first->last sample "
        f"{_fmt_bytes(mem['growth_bytes'], signed=True)} (spread of the samples "
        f"{_fmt_bytes(mem['spread_bytes'])}); target flat within "
        f"{_fmt_bytes(mem['flat_tolerance_bytes'])}: {'met' if mem['flat'] else 'NOT met'}",
        "   (peak includes the harness's current one-minute chunk of frames; samples are taken "
        "after gc.collect(), between chunks)",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench cost", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--minutes", type=float, default=10.0, help="throughput session length (default 10)"
    )
    p.add_argument("--hours", type=float, default=1.0, help="memory session length (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per processor (default 5)")
    p.add_argument("--seed", type=int, default=7, help="session generator seed (default 7)")
    return p


def _positive(parser: argparse.ArgumentParser, name: str, value: float):
    if not (value > 0 and math.isfinite(value)):
        parser.error(f"--{name} must be a positive number, got {value}")


async def _run_all(args) -> dict:
    throughput = await bench_throughput(args.minutes, args.repeats, args.seed)
    decision = bench_classify(session_transcripts(args.minutes * 60, args.seed))
    calls = throughput["behaviour"]["classify_calls"]
    decision["calls_per_session"] = calls
    decision["us_per_frame_amortized"] = (
        decision["us_per_classify"] * calls / throughput["session"]["frames"]
    )
    memory = await bench_memory(args.hours, args.seed)
    return {"throughput": throughput, "decision_step": decision, "memory": memory}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _positive(parser, "minutes", args.minutes)
    _positive(parser, "hours", args.hours)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    logger.remove()
    handler = logger.add(sys.stderr, level=LOG_LEVEL)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            results = asyncio.run(_run_all(args))
    finally:
        logger.remove(handler)
        logger.add(sys.stderr)  # loguru's default handler back
    report = {
        "pipecat_version": getattr(pipecat, "__version__", "unknown"),
        "python": platform.python_version(),
        "loguru_level": LOG_LEVEL,
        "note": (
            "loguru set to WARNING during the bench so per-decision DEBUG logs "
            "do not dominate the timing"
        ),
        "seed": args.seed,
        **results,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
