"""Load benchmark: many sessions at once in one process and one event loop.

    python -m bench load [--levels 1,10,100,500] [--secs S] [--warmup S]
                         [--search] [--memory-sessions N] [--seed S] [--json]

Each session is one ``PipelineWorker`` running ``[processor, sink]``: the processor is
``SoftAckInterruptionFilter`` (default settings, timers real) or, in the same run and
at the same N, Pipecat's ``IdentityFilter`` in its place. All sessions share one
``WorkerRunner`` and one asyncio event loop, as a server hosting N calls does. Every
session is fed in real time a simulated call (:class:`CallStream`, its own seed and
phase): a 20 ms ``InputAudioRawFrame`` every 20 ms (50/s); the bot speaking most of the
time (``BotStartedSpeakingFrame``, a ``BotSpeakingFrame`` every 0.2 s as Pipecat's
output transport sends, ``BotStoppedSpeakingFrame``); and user speech: backchannels
while the bot speaks, some interruptions (the bot stops 0.6 s later), user turns while
it is silent, each with VAD start/stop, ``UserSpeakingFrame`` and an
``InterimTranscriptionFrame`` every 0.2 s (5/s) while the user speaks, then the final.
One feeder task wakes every 5 ms and queues each session's due frames (sessions are
spread over the four 5 ms slots of a 20 ms audio period).

Reported per processor and N, over ``--secs`` of real time after ``--warmup``:

- latency: from ``worker.queue_frame`` to the sink, for audio frames (never held by
  the filter), p50 and p99 in ms; "added" is the filter's minus IdentityFilter's at
  the same N (same percentile);
- event-loop lag: a task sleeping 5 ms measures how late it wakes; p99 and max, ms;
- CPU: process CPU seconds per wall second, per session (% of one core);
- memory (``--memory-sessions`` sessions, default 100, under ``tracemalloc``): traced
  bytes after ``gc.collect()`` with the sessions running, minus before they were
  built, per session; the filter's own is filter minus IdentityFilter.

"Sustains N" means the loop lag p99 stays at or under 20 ms. With ``--search`` (on by
default) the largest such N is found for both processors by bisection between the
largest level that passes and the smallest that fails (to within 5%), alternating
filter and identity at each step so both see the same machine; a level that fails is
run again (``--trials``, default 2) and the better run kept, since other processes
on the machine only ever add lag. Targets: the filter
sustains at least 90% of the sessions IdentityFilter does, and its own memory is
under 200 KiB a session. Loguru is set to WARNING (the filter logs a DEBUG line per
decision). The figures depend on the machine and on what else runs on it.
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
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field

from loguru import logger

with contextlib.redirect_stdout(sys.stderr):
    import pipecat
    from pipecat.frames.frames import (
        BotSpeakingFrame,
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        CancelFrame,
        EndFrame,
        ErrorFrame,
        Frame,
        InputAudioRawFrame,
        InterimTranscriptionFrame,
        StartFrame,
        StopFrame,
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

LOG_LEVEL = "WARNING"
LAG_LIMIT_MS = 20.0  # a session count is sustained while the loop lag p99 stays under this
TARGET_SHARE = 0.9  # the filter sustains at least this share of IdentityFilter's sessions
TARGET_MEMORY_BYTES = 200 * 1024  # the filter's own memory per session, at most
LAG_PROBE_SECS = 0.005
FEED_SLOT_SECS = 0.005  # the feeder's period; four slots per 20 ms audio period
SEARCH_PRECISION = 0.05

# --- the simulated call ----------------------------------------------------------

SAMPLE_RATE = 16000
AUDIO_SECS = 0.02
_AUDIO = bytearray(2 * int(SAMPLE_RATE * AUDIO_SECS))  # copied per frame, as a transport's are
EVERY = 0.2  # UserSpeakingFrame, InterimTranscriptionFrame and BotSpeakingFrame period
FINAL_DELAY = 0.15
USER_ID, TIMESTAMP = "load-user", "2026-01-01T00:00:00.000Z"
BACKCHANNELS = ["uh-huh", "yeah", "mm-hmm", "okay", "right", "i see", "got it", "oh really"]
INTERRUPTIONS = ["wait what about the fee", "no stop that is wrong", "hold on a second please"]
TURNS = ["i would like to book a table for two", "what time do you open on sunday"]


class CallStream:
    """One simulated call, lazily, as ``(t, frame)`` in time order (t in seconds).

    The bot speaks 5-12 s at a time with 0.5-1.5 s of silence between (about 85% of
    the time); while it speaks the user backchannels every 1.5-4 s (0.4-0.9 s each),
    and 15% of bot turns end in an interruption (1.5 s of speech; the bot stops 0.6 s
    in); 60% of the silences hold a user turn. Same seed, same call.
    """

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.stats = {"audio": 0, "interims": 0, "bot_speaking_secs": 0.0, "utterances": 0}

    def _utterance(self, t0: float, secs: float, text: str) -> list[tuple[float, Frame]]:
        words = text.split()
        events: list[tuple[float, Frame]] = [(t0, VADUserStartedSpeakingFrame())]
        k = 0
        while t0 + k * EVERY < t0 + secs:
            events.append((t0 + k * EVERY, UserSpeakingFrame()))
            shown = " ".join(words[: max(1, math.ceil((k + 1) * EVERY / secs * len(words)))])
            events.append((t0 + k * EVERY + 0.1, InterimTranscriptionFrame(shown, USER_ID, TIMESTAMP)))
            self.stats["interims"] += 1
            k += 1
        events.append((t0 + secs, VADUserStoppedSpeakingFrame()))
        events.append((t0 + secs + FINAL_DELAY, TranscriptionFrame(text, USER_ID, TIMESTAMP)))
        self.stats["utterances"] += 1
        return events

    def _events(self) -> Iterator[tuple[float, Frame]]:
        rng, t = self.rng, self.rng.uniform(0.0, 3.0)  # each call its own phase
        while True:
            events = [(t, BotStartedSpeakingFrame())]
            end = t + rng.uniform(5.0, 12.0)
            cursor = t + rng.uniform(0.5, 2.0)
            interrupted = rng.random() < 0.15
            while cursor + 1.2 < end:
                secs = rng.uniform(0.4, 0.9)
                events += self._utterance(cursor, secs, rng.choice(BACKCHANNELS))
                cursor += secs + rng.uniform(1.5, 4.0)
            if interrupted:
                onset = max(t + 1.0, end - 1.5)
                events = [e for e in events if e[0] < onset - 0.3]
                events += self._utterance(onset, 1.5, rng.choice(INTERRUPTIONS))
                end = onset + 0.6
            k = 1
            while t + k * EVERY < end:
                events.append((t + k * EVERY, BotSpeakingFrame()))
                k += 1
            events.append((end, BotStoppedSpeakingFrame()))
            self.stats["bot_speaking_secs"] += end - t
            quiet = rng.uniform(0.5, 1.5)
            if rng.random() < 0.6:
                secs = rng.uniform(1.0, 2.0)
                start = max(end + 0.3, max(e[0] for e in events) + 0.1)
                events += self._utterance(start, secs, rng.choice(TURNS))
                quiet += secs + 0.5
            events.sort(key=lambda e: e[0])
            yield from events
            t = max(end + quiet, events[-1][0] + 0.05)

    def __iter__(self) -> Iterator[tuple[float, Frame]]:
        tick = 0
        for when, frame in self._events():
            while tick * AUDIO_SECS <= when:
                self.stats["audio"] += 1
                # A bytes object of its own: what a processor keeps of the audio
                # (the filter's echo check) counts in the memory figure.
                yield tick * AUDIO_SECS, InputAudioRawFrame(bytes(_AUDIO), SAMPLE_RATE, 1)
                tick += 1
            yield when, frame


# --- one session -----------------------------------------------------------------

_LIFECYCLE = (StartFrame, EndFrame, CancelFrame, StopFrame, ErrorFrame)


class _Sink(FrameProcessor):
    """Ends the pipeline: records audio latency, counts frames, discards them."""

    def __init__(self, session: Session):
        super().__init__(enable_direct_mode=True)
        self.session = session

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, _LIFECYCLE) or direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            return
        s = self.session
        s.frames_out += 1
        sent = s.sent_at.pop(frame.id, None)
        if sent is not None and s.recording:
            s.latencies.append(time.perf_counter() - sent)
        if isinstance(frame, UserBackchannelFrame):
            s.backchannels += 1


@dataclass
class Session:
    """One simulated call: its processor, worker, frame stream, feed slot (0-3) and
    what its sink measured (audio latencies in seconds)."""

    processor: FrameProcessor
    stream: Iterator[tuple[float, Frame]]
    slot: int
    worker: PipelineWorker | None = None
    pending: tuple[float, Frame] | None = None
    sent_at: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    recording: bool = False
    frames_in: int = 0
    frames_out: int = 0
    backchannels: int = 0

    async def feed_until(self, t: float):
        """Queue every frame due by stream time ``t``."""
        worker = self.worker
        while True:
            if self.pending is None:
                self.pending = next(self.stream)
            when, frame = self.pending
            if when > t:
                return
            self.pending = None
            if isinstance(frame, InputAudioRawFrame):
                self.sent_at[frame.id] = time.perf_counter()
            self.frames_in += 1
            await worker.queue_frame(frame)


def make_processor(kind: str) -> FrameProcessor:
    """A ``SoftAckInterruptionFilter`` (default settings) for ``"filter"``, an
    ``IdentityFilter`` for ``"identity"``.

    Raises:
        ValueError: another kind, naming it.
    """
    if kind == "filter":
        return SoftAckInterruptionFilter()
    if kind == "identity":
        return IdentityFilter()
    raise ValueError(f"unknown processor kind {kind!r}; kinds: filter, identity")


def build_sessions(kind: str, n: int, seed: int) -> list[Session]:
    """``n`` sessions of ``kind``, each its own ``PipelineWorker`` and call (seeded)."""
    sessions = []
    for i in range(n):
        s = Session(make_processor(kind), iter(CallStream(seed * 100_003 + i)), slot=i % 4)
        s.worker = PipelineWorker(
            Pipeline([s.processor, _Sink(s)]),
            params=PipelineParams(),
            cancel_on_idle_timeout=False,
            idle_timeout_secs=None,
            enable_rtvi=False,
            enable_turn_tracking=False,
            check_dangling_tasks=False,
        )
        sessions.append(s)
    return sessions


# --- one run: N sessions of one processor ------------------------------------------


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


async def _lag_probe(samples: list[float], stop: asyncio.Event):
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_SECS)
        samples.append(time.perf_counter() - t0 - LAG_PROBE_SECS)


async def _started(sessions: list[Session], timeout: float):
    events = []
    for s in sessions:
        ev = asyncio.Event()

        @s.worker.event_handler("on_pipeline_started")
        async def _on_started(_worker, _frame, ev=ev):
            ev.set()

        events.append(ev)
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)


async def run_level(kind: str, n: int, secs: float, warmup: float, seed: int, *, memory: bool = False) -> dict:
    """N sessions of ``kind`` fed in real time for ``warmup + secs``; the figures of the
    last ``secs``. With ``memory``, traced memory per session instead of timings."""
    gc.collect()
    if memory:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    sessions = build_sessions(kind, n, seed)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(*(s.worker for s in sessions))
    run_task = asyncio.create_task(runner.run())
    stop, lag = asyncio.Event(), []
    try:
        await _started(sessions, timeout=60 + n * 0.2)
        t0 = time.perf_counter()
        probe = asyncio.create_task(_lag_probe(lag, stop))
        measuring = False
        cpu0 = wall0 = 0.0
        lag_from = 0
        k = 0
        while True:
            now = time.perf_counter() - t0
            if not measuring and now >= warmup:
                measuring, cpu0, wall0, lag_from = True, time.process_time(), time.perf_counter(), len(lag)
                for s in sessions:
                    s.recording = True
            if now >= warmup + secs:
                break
            slot = k % 4
            for s in sessions:
                if s.slot == slot:
                    # A session's slot is fed a little ahead, so its frames are queued on time.
                    await s.feed_until(now + FEED_SLOT_SECS)
            k += 1
            delay = t0 + k * FEED_SLOT_SECS - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        stop.set()
        await probe
        if memory:
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] - base
    finally:
        for s in sessions:
            await s.worker.queue_frame(EndFrame())
        try:
            await asyncio.wait_for(asyncio.shield(run_task), 60)
        except (TimeoutError, asyncio.TimeoutError):
            await runner.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(run_task, 10)
        if memory:
            tracemalloc.stop()
    lat = [x for s in sessions for x in s.latencies]
    lags = lag[lag_from:]
    out = {
        "processor": kind,
        "sessions": n,
        "secs": wall,
        "frames_in_per_sec": sum(s.frames_in for s in sessions) / (warmup + secs),
        "latency_p50_ms": _pct(lat, 0.5) * 1e3,
        "latency_p99_ms": _pct(lat, 0.99) * 1e3,
        "latency_samples": len(lat),
        "lag_p99_ms": _pct(lags, 0.99) * 1e3,
        "lag_max_ms": max(lags, default=float("nan")) * 1e3,
        "cpu_share_per_session": cpu / wall / n,
        "backchannels": sum(s.backchannels for s in sessions),
    }
    out["sustained"] = out["lag_p99_ms"] <= LAG_LIMIT_MS
    if memory:
        out["traced_bytes_per_session"] = traced / n
    return out


# --- the benchmark -----------------------------------------------------------------


async def bench(
    levels: list[int], secs: float, warmup: float, seed: int, search: bool, memory_n: int, trials: int
) -> dict:
    """Every level for both processors, the bisection (if ``search``), and memory with
    ``memory_n`` sessions; ``secs`` and ``warmup`` are seconds of real time per run."""
    rows: list[dict] = []

    async def best_of(kind: str, n: int) -> dict:
        # Another process on the machine only ever adds lag: keep the best of ``trials``.
        row = None
        for _ in range(trials):
            trial = await run_level(kind, n, secs, warmup, seed)
            if row is None or trial["lag_p99_ms"] < row["lag_p99_ms"]:
                row = trial
            if row["sustained"]:
                break
        return row

    for n in levels:
        for kind in ("filter", "identity"):
            row = await best_of(kind, n)
            rows.append(row)
            print(_row_line(row), file=sys.stderr, flush=True)

    def sustained(kind: str) -> tuple[int, int | None]:
        ok = [r["sessions"] for r in rows if r["processor"] == kind and r["sustained"]]
        bad = [r["sessions"] for r in rows if r["processor"] == kind and not r["sustained"]]
        lo = max(ok, default=0)
        hi = min((b for b in bad if b > lo), default=None)
        return lo, hi

    limits: dict[str, dict] = {}
    if search:
        bounds = {kind: list(sustained(kind)) for kind in ("filter", "identity")}
        while any(hi is not None and hi - lo > max(1, SEARCH_PRECISION * hi) for lo, hi in bounds.values()):
            for kind in ("filter", "identity"):
                lo, hi = bounds[kind]
                if hi is None or hi - lo <= max(1, SEARCH_PRECISION * hi):
                    continue
                mid = (lo + hi) // 2
                row = await best_of(kind, mid)
                row["search"] = True
                rows.append(row)
                print(_row_line(row), file=sys.stderr, flush=True)
                bounds[kind] = [mid, hi] if row["sustained"] else [lo, mid]
        for kind, (lo, hi) in bounds.items():
            limits[kind] = {"largest_sustained": lo, "smallest_failing": hi}
    else:
        for kind in ("filter", "identity"):
            lo, hi = sustained(kind)
            limits[kind] = {"largest_sustained": lo, "smallest_failing": hi}

    memory = {}
    for kind in ("filter", "identity"):
        memory[kind] = await run_level(kind, memory_n, min(secs, 5.0), min(warmup, 2.0), seed, memory=True)
    own = memory["filter"]["traced_bytes_per_session"] - memory["identity"]["traced_bytes_per_session"]
    identity_max = limits["identity"]["largest_sustained"]
    share = limits["filter"]["largest_sustained"] / identity_max if identity_max else float("nan")
    return {
        "rows": rows,
        "limits": limits,
        "share": share,
        "target_share": TARGET_SHARE,
        "meets_share": share >= TARGET_SHARE,
        "memory": {
            "sessions": memory_n,
            "filter_bytes_per_session": memory["filter"]["traced_bytes_per_session"],
            "identity_bytes_per_session": memory["identity"]["traced_bytes_per_session"],
            "filter_own_bytes_per_session": own,
            "target_bytes": TARGET_MEMORY_BYTES,
            "meets_target": own <= TARGET_MEMORY_BYTES,
        },
    }


def _row_line(r: dict) -> str:
    return (
        f"   {r['processor']:<9}{r['sessions']:>6}{r['frames_in_per_sec']:>11,.0f}"
        f"{r['latency_p50_ms']:>10.2f}{r['latency_p99_ms']:>10.2f}"
        f"{r['lag_p99_ms']:>10.1f}{r['lag_max_ms']:>9.1f}"
        f"{r['cpu_share_per_session'] * 100:>10.3f}%"
        f"  {'yes' if r['sustained'] else 'NO'}{'  (search)' if r.get('search') else ''}"
    )


def render(report: dict) -> str:
    """The report as the table ``python -m bench load`` prints."""
    lines = [
        f"bench load (pipecat {report['pipecat_version']}, Python {report['python']}, "
        f"{report['cpus']} CPUs; loguru {report['loguru_level']}); {report['secs']:g} s measured "
        f"after {report['warmup']:g} s warm-up per run, seed {report['seed']}; machine load average "
        f"{report['load_average']['before']:.1f} before, {report['load_average']['after']:.1f} after "
        f"(other processes share the cores); each level best of {report['trials']}",
        "",
        "   processor     N   frames/s  p50 ms    p99 ms   lag p99  lag max  CPU/session  sustained",
        "                             (audio latency,          (event loop, ms)   (of a core)",
    ]
    rows = report["rows"]
    for r in sorted(rows, key=lambda r: (r["sessions"], r["processor"] != "filter")):
        lines.append(_row_line(r))
    lines.append("")
    by = {(r["processor"], r["sessions"]): r for r in rows}
    lines.append("   added by the filter (filter minus IdentityFilter, same N):")
    for n in sorted({r["sessions"] for r in rows if not r.get("search")}):
        f, i = by.get(("filter", n)), by.get(("identity", n))
        if f and i:
            lines.append(
                f"     N={n:<4} latency p50 {f['latency_p50_ms'] - i['latency_p50_ms']:+.2f} ms, "
                f"p99 {f['latency_p99_ms'] - i['latency_p99_ms']:+.2f} ms; CPU per session "
                f"{(f['cpu_share_per_session'] - i['cpu_share_per_session']) * 100:+.3f}% of a core"
            )
    lim = report["limits"]

    def fails(kind: str) -> str:
        hi = lim[kind]["smallest_failing"]
        return f"fails at {hi}" if hi is not None else "none failed"

    lines += [
        "",
        f"   largest N with loop lag p99 <= {LAG_LIMIT_MS:g} ms: filter "
        f"{lim['filter']['largest_sustained']} ({fails('filter')}), "
        f"IdentityFilter {lim['identity']['largest_sustained']} ({fails('identity')})",
        f"   filter / IdentityFilter sessions: {report['share']:.2f} (target >= "
        f"{report['target_share']}: {'met' if report['meets_share'] else 'NOT met'})",
    ]
    m = report["memory"]
    lines.append(
        f"   memory per session ({m['sessions']} sessions, tracemalloc): filter "
        f"{m['filter_bytes_per_session'] / 1024:.1f} KiB, IdentityFilter "
        f"{m['identity_bytes_per_session'] / 1024:.1f} KiB; the filter's own "
        f"{m['filter_own_bytes_per_session'] / 1024:.1f} KiB (target < "
        f"{m['target_bytes'] // 1024} KiB: {'met' if m['meets_target'] else 'NOT met'})"
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench load``."""
    p = argparse.ArgumentParser(
        prog="python -m bench load", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--levels", default="1,10,100,500", help="session counts (default 1,10,100,500)")
    p.add_argument("--secs", type=float, default=6.0, help="seconds measured per run (default 6)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (default 2)")
    p.add_argument("--no-search", dest="search", action="store_false", help="skip the bisection")
    p.add_argument("--trials", type=int, default=2, help="runs per level while it fails, best kept (default 2)")
    p.add_argument("--memory-sessions", type=int, default=100, help="sessions for memory (default 100)")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def parse_levels(parser: argparse.ArgumentParser, text: str) -> list[int]:
    """``"1,10,100"`` -> ``[1, 10, 100]``; exits with a usage error naming a bad value."""
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--levels must be comma-separated whole numbers, got {text!r}")
    if not levels or any(n < 1 for n in levels):
        parser.error(f"--levels must be session counts >= 1, got {text!r}")
    return sorted(set(levels))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table (or ``--json``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    levels = parse_levels(parser, args.levels)
    for name in ("secs", "warmup"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= (0 if name == "warmup" else 0.5)):
            parser.error(f"--{name} must be a number of seconds ({'>= 0' if name == 'warmup' else '>= 0.5'}), got {value}")
    if args.trials < 1:
        parser.error(f"--trials must be at least 1, got {args.trials}")
    if args.memory_sessions < 1:
        parser.error(f"--memory-sessions must be at least 1, got {args.memory_sessions}")
    logger.remove()
    # Each filter warns once that no user aggregator follows it: true of this harness.
    handler = logger.add(
        sys.stderr, level=LOG_LEVEL, filter=lambda r: "cannot gate every" not in r["message"]
    )
    import os

    load_before = os.getloadavg()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            results = asyncio.run(
                bench(levels, args.secs, args.warmup, args.seed, args.search, args.memory_sessions, args.trials)
            )
    finally:
        logger.remove(handler)
        logger.add(sys.stderr)
    report = {
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "trials": args.trials,
        "pipecat_version": getattr(pipecat, "__version__", "unknown"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loguru_level": LOG_LEVEL,
        "secs": args.secs,
        "warmup": args.warmup,
        "seed": args.seed,
        "lag_limit_ms": LAG_LIMIT_MS,
        **results,
    }
    print(json.dumps(report) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
