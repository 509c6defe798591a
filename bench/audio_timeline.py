"""Real-time audio runs of a Pipecat pipeline: a file-fed microphone, a timed
speaker, and a timeline of what happened when.

    python -m bench.audio_timeline [--turn CLIP] [--backchannel CLIP] [--interrupt CLIP]
                                   [--backchannel-delay S] [--interrupt-delay S]

runs the reference bot's offline pipeline (``bot.pipeline.build_pipeline``:
Silero VAD, PocketSphinx, the soft-ack filter, SmolLM2 via llama.cpp, Piper)
on the committed clips (``tests/audio``): a TURN clip while the bot is silent,
then a backchannel and an interruption while it answers. It prints the
timeline and the latencies: VAD start to first interim transcript, VAD stop to
first bot audio, and clip start to the bot going quiet.

The pieces are general (the audio barge-in benchmark reuses them):

* :class:`Timeline`: ``(seconds, kind, data)`` events, plus the bot audio the
  speaker played, with queries and a printable form.
* :class:`TimelineObserver`: a Pipecat observer that records VAD start/stop,
  interim and final transcripts, user turn start/stop, backchannels,
  ``InterruptionFrame``, bot started/stopped speaking, LLM response start and
  first text, first TTS audio; :meth:`TimelineObserver.watch_filter` adds the
  ``SoftAckInterruptionFilter`` decisions.
* :class:`FileAudioTransport`: ``input()`` is a :class:`BaseInputTransport`
  that plays a microphone timeline in real time, 20 ms ``InputAudioRawFrame``
  chunks, silence between clips, each :class:`Cue` starting at an offset or a
  delay after a timeline event ("2 s after the bot started speaking");
  ``output()`` is a :class:`BaseOutputTransport` whose ``write_audio_frame``
  takes as long as the chunk would take to play, like a speaker, and drops
  it. Bot started/stopped speaking and interruptions are Pipecat's own
  output-transport logic.
* :func:`run_timeline`: run a pipeline until its cues are played and it has
  been quiet for a while, then cancel it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pipecat.audio.utils import is_silence
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    UserBackchannelFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.workers.runner import WorkerRunner

# The bottom layer, re-exported: tests and the benches import these from here too.
from bench.audio_io import (  # noqa: F401
    CLIPS_DIR,
    OPEN_CLIPS_DIR,
    ROOT,
    SAMPLE_RATE,
    Clip,
    load_clip,
    load_manifest,
    piper_clip,
    read_wav,
)

CHUNK_SECS = 0.02
CHUNK_BYTES = int(SAMPLE_RATE * CHUNK_SECS) * 2
# Gap between played output chunks that ends a run of bot audio.
AUDIO_RUN_GAP_SECS = 0.15


# --------------------------------------------------------------------------- #
# Clips and cues
# --------------------------------------------------------------------------- #


@dataclass
class Cue:
    """When to play a clip into the microphone.

    Either ``at`` seconds after the microphone starts, or ``delay`` seconds after
    the ``nth`` timeline event of kind ``after`` (e.g. ``after="bot_started_speaking"``,
    or ``after="clip_end"``), optionally only events with ``match`` in their data
    (e.g. ``match={"clip": "yeah__joe.wav"}``). A due cue waits for the clip
    playing before it to end: clips never overlap.
    """

    clip: Clip
    at: float | None = None
    after: str | None = None
    delay: float = 0.0
    nth: int = 1
    match: dict[str, Any] = field(default_factory=dict)

    def due_at(self, timeline: "Timeline") -> float | None:
        if self.after is None:
            return self.at if self.at is not None else 0.0
        event = timeline.find(self.after, nth=self.nth, **self.match)
        return None if event is None else event.t + self.delay


# --------------------------------------------------------------------------- #
# Timeline
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the timeline's origin (the microphone's start)
    kind: str
    data: dict[str, Any]

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"{self.t:8.3f}  {self.kind:<24} {extra}".rstrip()


class Timeline:
    """Events of one run, in seconds since :meth:`start` (monotonic clock).

    Kinds recorded by this module: ``clip_start``/``clip_end`` (data ``clip``,
    ``text``, ``label``; ``speech_onset`` = when the speech in it begins),
    ``vad_start``/``vad_stop``, ``interim``/``transcript`` (``text``),
    ``user_started_speaking``/``user_stopped_speaking``, ``backchannel_frame``,
    ``filter_backchannel``/``filter_interruption``/``filter_noise``/``filter_echo`` (a
    ``SoftAckDecision``: ``text``, ``reason``, ``deferred``, ``held``),
    ``tts_speak`` (a ``TTSSpeakFrame``: ``text``, ``interruptible``),
    ``interruption``, ``bot_started_speaking``/
    ``bot_stopped_speaking``, ``llm_response_start``/``llm_first_text``/
    ``llm_response_end``, ``tts_first_audio``, ``aec_stats`` (the echo canceller's
    figures at the end of :func:`run_offline_barge_in`). Played bot audio is kept apart in
    :attr:`audio_out` (start, seconds) and summarised by :meth:`audio_runs`.
    """

    def __init__(self):
        self.t0 = time.monotonic()
        self.events: list[Event] = []
        self.audio_out: list[tuple[float, float]] = []
        self._changed = asyncio.Event() if _has_loop() else None

    def start(self):
        """Set the origin to now (keeps events already recorded, shifted)."""
        now = time.monotonic()
        shift = now - self.t0
        self.t0 = now
        self.events = [Event(e.t - shift, e.kind, e.data) for e in self.events]
        self.audio_out = [(t - shift, d) for t, d in self.audio_out]

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, kind: str, t: float | None = None, **data) -> Event:
        event = Event(self.now() if t is None else t, kind, data)
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()
        return event

    def add_audio(self, secs: float, t: float | None = None):
        """Record bot audio played from ``t`` (default now) for ``secs``."""
        self.audio_out.append((self.now() if t is None else t, secs))

    # -- queries ----------------------------------------------------------

    def all(self, kind: str, *, since: float = float("-inf"), until: float = float("inf"), **match) -> list[Event]:
        return [
            e
            for e in self.events
            if e.kind == kind and since <= e.t <= until and all(e.data.get(k) == v for k, v in match.items())
        ]

    def find(self, kind: str, *, nth: int = 1, since: float = float("-inf"), until: float = float("inf"), **match) -> Event | None:
        """The ``nth`` (1-based) event of ``kind`` in ``[since, until]`` matching ``match``."""
        found = self.all(kind, since=since, until=until, **match)
        return found[nth - 1] if len(found) >= nth else None

    def first_after(self, kind: str, t: float, **match) -> Event | None:
        return self.find(kind, since=t, **match)

    async def wait_for(self, kind: str, timeout: float, **match) -> Event | None:
        """Wait until an event of ``kind`` is recorded (None on timeout)."""
        deadline = time.monotonic() + timeout
        while (event := self.find(kind, **match)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.1))
            except TimeoutError:
                pass
        return event

    def audio_runs(self, gap: float = AUDIO_RUN_GAP_SECS) -> list[tuple[float, float]]:
        """Contiguous stretches of played bot audio, ``(start, end)``."""
        runs: list[list[float]] = []
        for t, d in sorted(self.audio_out):
            if runs and t - runs[-1][1] <= gap:
                runs[-1][1] = max(runs[-1][1], t + d)
            else:
                runs.append([t, t + d])
        return [(a, b) for a, b in runs]

    def audio_secs(self, since: float = float("-inf"), until: float = float("inf")) -> float:
        """Seconds of bot audio played within ``[since, until]``."""
        total = 0.0
        for t, d in self.audio_out:
            total += max(0.0, min(t + d, until) - max(t, since))
        return total

    def first_audio_after(self, t: float) -> float | None:
        """Start of the first bot audio chunk played at or after ``t``."""
        starts = [a for a, _ in self.audio_out if a >= t]
        return min(starts) if starts else None

    def last_audio_end(self) -> float | None:
        return max((a + d for a, d in self.audio_out), default=None)

    # -- display ----------------------------------------------------------

    def format(self) -> str:
        rows = list(self.events)
        for a, b in self.audio_runs():
            rows.append(Event(a, "bot_audio_start", {}))
            rows.append(Event(b, "bot_audio_end", {"secs": round(b - a, 2)}))
        rows.sort(key=lambda e: e.t)
        return "\n".join(str(e) for e in rows)

    def __str__(self) -> str:
        return self.format()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


# --------------------------------------------------------------------------- #
# Observer
# --------------------------------------------------------------------------- #


_SIMPLE_KINDS: dict[type[Frame], str] = {
    VADUserStartedSpeakingFrame: "vad_start",
    VADUserStoppedSpeakingFrame: "vad_stop",
    UserStartedSpeakingFrame: "user_started_speaking",
    UserStoppedSpeakingFrame: "user_stopped_speaking",
    BotStartedSpeakingFrame: "bot_started_speaking",
    BotStoppedSpeakingFrame: "bot_stopped_speaking",
    InterruptionFrame: "interruption",
    LLMFullResponseStartFrame: "llm_response_start",
    LLMFullResponseEndFrame: "llm_response_end",
}


class TimelineObserver(BaseObserver):
    """Records the frames that mark moments of a voice conversation into a :class:`Timeline`.

    Each frame is recorded once, when first pushed; a frame broadcast both ways
    (bot started/stopped speaking, interruptions) is recorded once per pair.
    """

    def __init__(self, timeline: Timeline, **kwargs):
        super().__init__(observe_every_push=False, **kwargs)
        self.timeline = timeline
        self._siblings: set[int] = set()
        self._awaiting_llm_text = False
        self._awaiting_tts_audio = False

    def watch_filter(self, softack_filter: FrameProcessor) -> None:
        """Record the decisions of a ``SoftAckInterruptionFilter`` (its events)."""
        events = {
            "backchannel": "on_backchannel",
            "interruption": "on_interruption_released",
            "noise": "on_noise_dropped",
            "echo": "on_echo_dropped",
        }
        for kind, event in events.items():

            def make(kind=kind):
                async def handler(_filter, decision):
                    self.timeline.add(
                        f"filter_{kind}",
                        text=decision.text,
                        reason=decision.reason,
                        deferred=decision.deferred,
                        held=round(decision.held_secs, 3),
                    )

                return handler

            softack_filter.add_event_handler(event, make())

    async def on_push_frame(self, data: FramePushed):
        frame = data.frame
        tl = self.timeline
        kind = _SIMPLE_KINDS.get(type(frame))
        if kind is not None:
            sibling = getattr(frame, "broadcast_sibling_id", None)
            if sibling is not None:
                if sibling in self._siblings:
                    return
                self._siblings.add(frame.id)
            tl.add(kind)
            if kind == "llm_response_start":
                self._awaiting_llm_text = True
            return
        if isinstance(frame, InterimTranscriptionFrame):
            tl.add("interim", text=frame.text)
        elif isinstance(frame, TranscriptionFrame):
            tl.add("transcript", text=frame.text)
        elif isinstance(frame, UserBackchannelFrame):
            tl.add("backchannel_frame", text=frame.text)
        elif isinstance(frame, TTSSpeakFrame):
            tl.add("tts_speak", text=frame.text, interruptible=frame.interruptible)
        elif isinstance(frame, LLMTextFrame) and isinstance(data.source, LLMService):
            if self._awaiting_llm_text:
                self._awaiting_llm_text = False
                tl.add("llm_first_text", text=frame.text)
        elif isinstance(frame, TTSStartedFrame) and isinstance(data.source, TTSService):
            self._awaiting_tts_audio = True
        elif isinstance(frame, TTSAudioRawFrame) and isinstance(data.source, TTSService):
            if self._awaiting_tts_audio:
                self._awaiting_tts_audio = False
                tl.add("tts_first_audio")


# --------------------------------------------------------------------------- #
# Transport
# --------------------------------------------------------------------------- #


class EchoPath:
    """The bot's speaker heard by its own microphone: played audio, delayed and
    attenuated by an echo return loss, mixed into the microphone (a laptop without
    headphones).

    The echo is a fixed linear function of what the speaker played: each chunk is
    resampled to the microphone's 16 kHz on its own (zero-padded 20 ms each side, so
    the tails of adjacent chunks add up to the continuous resampling) and laid at
    exactly its play time plus ``delay_secs``. Not through a stream resampler: soxr's
    (Pipecat's ``create_stream_resampler``, VHQ) releases 24 -> 16 kHz output in lumps
    of about 1100 samples (69 ms), nothing for every other 40 ms chunk, and laid at
    the play time of the chunk that released it the echo came a further 35-80 ms
    late, by an amount that changed lump by lump (measured: the echo 55-124 ms behind
    the canceller's reverse stream, where the audio as played was 20-42 ms behind it),
    which no echo canceller can follow; its clearing after 0.2 s without audio also
    dropped the end of each sentence's echo.

    The microphone (:class:`FileMicInputTransport`) mixes the echo into a 20 ms chunk
    at that chunk's start, so ``delay_secs`` under ``CHUNK_SECS`` (0.02 s) would miss
    the echo of audio played meanwhile.

    Args:
        echo_return_loss_db: Attenuation from speaker to microphone, dB (e.g. 12).
        delay_secs: Acoustic and device delay, seconds (default 0.04).

    Raises:
        ValueError: a negative echo return loss or delay.
    """

    #: Zero padding (s) each side of a chunk resampled on its own: more than the
    #: soxr VHQ filter's reach (about 5 ms at 16 kHz), a whole number of samples at
    #: 16 kHz and at any rate that is a multiple of 50 Hz.
    PAD_SECS = 0.02

    def __init__(self, echo_return_loss_db: float, delay_secs: float = 0.04):
        if echo_return_loss_db < 0 or delay_secs < 0:
            raise ValueError(
                f"echo_return_loss_db and delay_secs must be >= 0, got {echo_return_loss_db!r}, {delay_secs!r}"
            )
        self.gain = 10 ** (-echo_return_loss_db / 20)
        self.delay = delay_secs
        self._samples = np.zeros(0, np.float32)  # 16 kHz, index 0 = timeline 0

    async def play(self, audio: bytes, sample_rate: int, t: float):
        """The speaker plays ``audio`` (16-bit mono at ``sample_rate`` Hz) from
        timeline time ``t`` (s)."""
        pcm = np.frombuffer(audio, np.int16).astype(np.float64)
        lead = 0  # 16 kHz samples of padding ahead of the chunk
        if sample_rate != SAMPLE_RATE:
            import soxr

            pad = round(self.PAD_SECS * sample_rate)
            lead = round(pad * SAMPLE_RATE / sample_rate)
            padded = np.concatenate([np.zeros(pad), pcm, np.zeros(pad)])
            pcm = soxr.resample(padded, sample_rate, SAMPLE_RATE, "VHQ")
        echo = (pcm * self.gain).astype(np.float32)
        start = int(round((t + self.delay) * SAMPLE_RATE)) - lead
        if start < 0:
            echo, start = echo[-start:], 0
        end = start + len(echo)
        if end > len(self._samples):
            self._samples = np.concatenate([self._samples, np.zeros(end - len(self._samples), np.float32)])
        self._samples[start:end] += echo

    def mix(self, chunk: bytes, t: float) -> bytes:
        """``chunk`` (the microphone's 16 kHz audio from timeline time ``t``) plus the echo."""
        start = int(round(t * SAMPLE_RATE))
        echo = self._samples[start : start + len(chunk) // 2]
        if not len(echo) or not echo.any():
            return chunk
        mic = np.frombuffer(chunk, np.int16).astype(np.float32)
        mic[: len(echo)] += echo
        return np.clip(mic, -32768, 32767).astype(np.int16).tobytes()


class FileMicInputTransport(BaseInputTransport):
    """Plays a microphone timeline in real time: silence, and clips when their cues are due.

    One 20 ms ``InputAudioRawFrame`` per 20 ms of wall clock (a late tick is
    caught up, as a sound card's buffer would be). ``clip_start``/``clip_end``
    events are stamped with the audio time of the first/last sample.
    """

    def __init__(self, timeline: Timeline, cues: Iterable[Cue] = (), params: TransportParams | None = None, **kwargs):
        params = params or TransportParams(audio_in_enabled=True, audio_in_sample_rate=SAMPLE_RATE)
        if params.audio_in_sample_rate not in (None, SAMPLE_RATE):
            raise ValueError("FileMicInputTransport plays 16 kHz audio")
        params.audio_in_sample_rate = SAMPLE_RATE
        super().__init__(params, **kwargs)
        self.timeline = timeline
        self.pending: list[Cue] = list(cues)
        self.played: list[tuple[Cue, float]] = []
        self._mic_task: asyncio.Task | None = None
        self._current: tuple[Cue, float, int] | None = None  # cue, start time, bytes played
        self._idle_since = 0.0
        self.echo: EchoPath | None = None  # the speaker's audio heard back, if set

    def add_cue(self, cue: Cue):
        self.pending.append(cue)

    @property
    def done(self) -> bool:
        """True when every cue has been played to its end."""
        return not self.pending and self._current is None

    @property
    def idle_since(self) -> float:
        """Timeline time when the last clip ended (0 before any)."""
        return self._idle_since

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._mic_task is None:
            self._mic_task = self.create_task(self._mic(), "file_mic")

    async def stop(self, frame):
        await self._stop_mic()
        await super().stop(frame)

    async def cancel(self, frame):
        await self._stop_mic()
        await super().cancel(frame)

    async def _stop_mic(self):
        if self._mic_task is not None:
            task, self._mic_task = self._mic_task, None
            await self.cancel_task(task)

    def _next_due(self, now: float) -> Cue | None:
        best = None
        for cue in self.pending:
            due = cue.due_at(self.timeline)
            if due is not None and due <= now and (best is None or due < best[0]):
                best = (due, cue)
        return best[1] if best else None

    async def _mic(self):
        tl = self.timeline
        tl.start()
        n = 0
        silence = bytes(CHUNK_BYTES)
        while True:
            t = n * CHUNK_SECS  # audio time of this chunk's first sample
            wait = t - tl.now()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._current is None:
                cue = self._next_due(t)
                if cue is not None:
                    self.pending.remove(cue)
                    self._current = (cue, t, 0)
                    c = cue.clip
                    tl.add("clip_start", t=t, clip=c.name, text=c.text, label=c.label,
                           speech_onset=round(t + c.speech_start, 3))  # fmt: skip
            if self._current is not None:
                cue, started, off = self._current
                pcm = cue.clip.pcm[off : off + CHUNK_BYTES]
                chunk = pcm + silence[len(pcm) :]
                off += CHUNK_BYTES
                if off >= len(cue.clip.pcm):
                    end = started + cue.clip.duration
                    tl.add("clip_end", t=end, clip=cue.clip.name)
                    self.played.append((cue, started))
                    self._current = None
                    self._idle_since = end
                else:
                    self._current = (cue, started, off)
            else:
                chunk = silence
            if self.echo is not None:
                chunk = self.echo.mix(chunk, t)
            await self.push_audio_frame(
                InputAudioRawFrame(audio=chunk, sample_rate=SAMPLE_RATE, num_channels=1)
            )
            n += 1


class SpeakerOutputTransport(BaseOutputTransport):
    """Consumes bot audio like a speaker: each write lasts as long as the chunk plays.

    The audio is dropped; the timeline gets when and how much speech was played
    (chunks that are not silence). Everything else (bot started/stopped speaking,
    dropping queued audio on ``InterruptionFrame``) is Pipecat's base class.
    """

    def __init__(self, timeline: Timeline, params: TransportParams | None = None, **kwargs):
        params = params or TransportParams(audio_out_enabled=True, audio_out_end_silence_secs=0)
        super().__init__(params, **kwargs)
        self.timeline = timeline
        self._play_until = 0.0
        self.echo: EchoPath | None = None  # where played audio is also heard, if set

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        secs = len(frame.audio) / (2 * frame.sample_rate * max(frame.num_channels, 1))
        now = time.monotonic()
        start = max(now, self._play_until)
        self._play_until = start + secs
        if not is_silence(frame.audio):
            self.timeline.add_audio(secs, t=start - self.timeline.t0)
            if self.echo is not None:
                await self.echo.play(frame.audio, frame.sample_rate, start - self.timeline.t0)
        await asyncio.sleep(self._play_until - now)
        return True


class FileAudioTransport(BaseTransport):
    """A transport whose microphone plays clips on cue and whose speaker only keeps time.

    With ``echo`` the microphone also hears what the speaker plays (:class:`EchoPath`);
    with ``aec`` (a ``bot.echo_cancel.EchoCanceller``) the microphone goes through
    acoustic echo cancellation with the speaker's audio as the reverse stream, as the
    reference bot's local transport does.
    """

    def __init__(
        self,
        timeline: Timeline | None = None,
        cues: Iterable[Cue] = (),
        *,
        echo: EchoPath | None = None,
        aec: Any = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.timeline = timeline or Timeline()
        mic = TransportParams(audio_in_enabled=True, audio_in_sample_rate=SAMPLE_RATE)
        speaker = TransportParams(audio_out_enabled=True, audio_out_end_silence_secs=0)
        if aec is not None:
            mic.audio_in_filter, speaker.audio_out_filter = aec.capture_filter, aec.render_tap
        self._input = FileMicInputTransport(self.timeline, cues, params=mic, name="file-mic")
        self._output = SpeakerOutputTransport(self.timeline, params=speaker, name="speaker")
        self._input.echo = self._output.echo = echo

    def input(self) -> FileMicInputTransport:
        return self._input

    def output(self) -> SpeakerOutputTransport:
        return self._output


async def run_timeline(
    worker: PipelineWorker,
    transport: FileAudioTransport,
    *,
    linger_secs: float = 3.0,
    max_secs: float = 60.0,
    until: Callable[[Timeline], bool] | None = None,
) -> Timeline:
    """Run ``worker`` until every cue has played and ``linger_secs`` have passed
    since the last clip ended (or ``until(timeline)`` is true), or ``max_secs``
    of timeline time; then cancel it and return the timeline.
    """
    mic = transport.input()
    tl = transport.timeline

    async def watch():
        while True:
            await asyncio.sleep(0.05)
            if mic._mic_task is None:
                continue
            now = tl.now()
            finished = until(tl) if until else (mic.done and now - mic.idle_since >= linger_secs)
            if finished or now >= max_secs:
                if not finished:
                    tl.add("max_secs_reached")
                await worker.cancel()
                return

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    watcher = asyncio.create_task(watch())
    try:
        await runner.run()
    finally:
        watcher.cancel()
    return tl


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #


@dataclass
class Utterance:
    """One user utterance as the pipeline saw it (VAD start to VAD stop)."""

    clip: str
    label: str
    clip_start: float
    speech_onset: float
    vad_start: float | None
    vad_stop: float | None
    first_interim: float | None
    first_interim_text: str
    final_text: str
    bot_speaking: bool  # the bot was speaking when the clip started
    decision: str  # filter decisions joined with "+" (e.g. "backchannel+interruption"), "" if none
    interruption: float | None  # InterruptionFrame after the clip started
    bot_stopped: float | None  # bot stopped speaking after the clip started
    next_audio: float | None  # first bot audio after the VAD stop

    @property
    def vad_to_interim(self) -> float | None:
        if self.vad_start is None or self.first_interim is None:
            return None
        return self.first_interim - self.vad_start

    @property
    def stop_to_audio(self) -> float | None:
        if self.vad_stop is None or self.next_audio is None:
            return None
        return self.next_audio - self.vad_stop


def bot_speaking_at(tl: Timeline, t: float) -> bool:
    started = [e.t for e in tl.all("bot_started_speaking", until=t)]
    stopped = [e.t for e in tl.all("bot_stopped_speaking", until=t)]
    return bool(started) and (not stopped or max(started) > max(stopped))


def utterances(tl: Timeline) -> list[Utterance]:
    """Per clip played: VAD, transcripts, decision and bot reaction, from the timeline."""
    out = []
    starts = tl.all("clip_start")
    for i, cs in enumerate(starts):
        next_clip = starts[i + 1].t if i + 1 < len(starts) else float("inf")
        end = tl.find("clip_end", since=cs.t, clip=cs.data["clip"])
        end_t = end.t if end else cs.t
        # The VAD fires after the speech onset; its stop comes after the clip's speech ends.
        vs = tl.find("vad_start", since=cs.t, until=min(next_clip, end_t + 0.5))
        ve = tl.find("vad_stop", since=vs.t, until=next_clip + 0.3) if vs else None
        window_end = ve.t + 1.5 if ve else end_t + 1.5
        interim = tl.find("interim", since=(vs.t if vs else cs.t) - 0.5, until=window_end)
        finals = tl.all("transcript", since=cs.t, until=window_end)
        decisions = [
            e.kind.removeprefix("filter_")
            for e in tl.events
            if e.kind.startswith("filter_") and cs.t <= e.t <= min(window_end + 1.5, next_clip)
        ]
        intr = tl.find("interruption", since=cs.t, until=next_clip)
        stopped = tl.find("bot_stopped_speaking", since=cs.t, until=next_clip)
        out.append(
            Utterance(
                clip=cs.data["clip"],
                label=cs.data.get("label", ""),
                clip_start=cs.t,
                speech_onset=cs.data.get("speech_onset", cs.t),
                vad_start=vs.t if vs else None,
                vad_stop=ve.t if ve else None,
                first_interim=interim.t if interim else None,
                first_interim_text=interim.data["text"] if interim else "",
                final_text=" ".join(e.data["text"] for e in finals),
                bot_speaking=bot_speaking_at(tl, cs.t),
                decision="+".join(decisions),
                interruption=intr.t if intr else None,
                bot_stopped=stopped.t if stopped else None,
                next_audio=tl.first_audio_after(ve.t) if ve else None,
            )
        )
    return out


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f} ms"


def format_figures(tl: Timeline) -> str:
    """A table of the latencies the issue asks for, one line per clip played.

    Columns: ``onset->interim`` (speech onset in the clip to the first interim),
    ``VAD->interim`` (VAD start to the first interim; negative when PocketSphinx's own
    onset detector beats Silero, "-" when Silero missed the word), ``VAD stop->audio``
    (VAD stop to the first bot audio played after it), ``clip->quiet`` (clip start
    to the bot stopped speaking, for clips said while the bot spoke). For clips said
    to a silent bot, a second line splits VAD stop -> audio into turn detection
    (user turn stop), LLM first text, TTS first audio and playback.
    """
    lines = [
        f"{'clip':<38} {'bot':<5} {'onset->interim':>14} {'VAD->interim':>12} "
        f"{'VAD stop->audio':>15} {'clip->quiet':>11}  decision [first interim | final]"
    ]
    us = utterances(tl)
    for u in us:
        quiet = u.bot_stopped - u.clip_start if (u.bot_speaking and u.bot_stopped is not None) else None
        answered = not u.bot_speaking or "interruption" in u.decision
        onset = u.first_interim - u.speech_onset if u.first_interim is not None else None
        lines.append(
            f"{u.clip:<38} {'talk' if u.bot_speaking else 'quiet':<5} {_ms(onset):>14} "
            f"{_ms(u.vad_to_interim):>12} {_ms(u.stop_to_audio if answered else None):>15} "
            f"{_ms(quiet):>11}  {u.decision or '-'} [{u.first_interim_text} | {u.final_text}]"
        )
        if not u.bot_speaking and u.vad_stop is not None:
            steps = [("turn stop", tl.first_after("user_stopped_speaking", u.vad_stop))]
            steps.append(("LLM text", tl.first_after("llm_first_text", steps[0][1].t) if steps[0][1] else None))
            steps.append(("TTS audio", tl.first_after("tts_first_audio", steps[1][1].t) if steps[1][1] else None))
            parts, prev = [], u.vad_stop
            for name, ev in steps:
                if ev is None:
                    break
                parts.append(f"{name} +{_ms(ev.t - prev)}")
                prev = ev.t
            if u.next_audio is not None and len(parts) == len(steps):
                parts.append(f"played +{_ms(u.next_audio - prev)}")
            lines.append(f"{'':<38} VAD stop -> " + ", ".join(parts))
    onsets = [u.first_interim - u.speech_onset for u in us if u.first_interim is not None]
    if onsets:
        lines.append(f"speech onset -> first interim: median {_ms(statistics.median(onsets))} over {len(onsets)} clips")
    v2i = [u.vad_to_interim for u in us if u.vad_to_interim is not None]
    lines.append(
        f"VAD start -> first interim: median {_ms(statistics.median(v2i)) if v2i else '-'} "
        f"({len(v2i)} of {len(us)} clips had a VAD start)"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# The reference bot on clips
# --------------------------------------------------------------------------- #


def offline_worker(
    transport: FileAudioTransport,
    observer: TimelineObserver,
    agent: str = "default",
    *,
    vad_in_aggregator: bool = False,
    **params,
) -> tuple[PipelineWorker, Any, Any]:
    """The reference bot's pipeline (``bot.pipeline.build_pipeline``, offline services,
    the ``bot.agents`` behaviour ``agent``; Silero inside the user aggregator if
    ``vad_in_aggregator``) on ``transport``, observed. Returns
    ``(worker, context, softack_filter)``."""
    from bot.agents import AGENTS
    from bot.pipeline import build_pipeline
    from bot.services import choose_services

    choice = choose_services("pocketsphinx", "local", "piper")
    bot = build_pipeline(transport, choice, AGENTS[agent], vad_in_aggregator=vad_in_aggregator)
    observer.watch_filter(bot.softack)
    worker = PipelineWorker(
        bot.pipeline,
        params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, **params),
        observers=[observer, *bot.observers],
        cancel_on_idle_timeout=False,
        enable_rtvi=False,
    )
    return worker, bot.context, bot.softack


def barge_in_cues(
    turn: Clip, backchannel: Clip | None, interrupt: Clip | None, *,
    backchannel_delay: float = 1.0, interrupt_delay: float = 4.5,
) -> list[Cue]:  # fmt: skip
    """A user turn at 0.5 s; once the bot speaks, a backchannel then an interruption."""
    cues = [Cue(turn, at=0.5)]
    if backchannel is not None:
        cues.append(Cue(backchannel, after="bot_started_speaking", delay=backchannel_delay))
    if interrupt is not None:
        cues.append(Cue(interrupt, after="bot_started_speaking", delay=interrupt_delay))
    return cues


async def run_offline_barge_in(
    turn: str = "tell_me_a_story_about_a_dog__joe.wav",
    backchannel: str | None = "yeah__joe.wav",
    interrupt: str | None = "stop__joe.wav",
    *,
    backchannel_delay: float = 1.0,
    interrupt_delay: float = 4.5,
    linger_secs: float = 3.0,
    max_secs: float = 60.0,
    vad_in_aggregator: bool = False,
    echo_return_loss_db: float | None = None,
    aec: bool = False,
) -> tuple[Timeline, Any]:
    """Run the offline bot on ``turn`` then, while it answers, ``backchannel`` and
    ``interrupt`` (Silero inside the user aggregator if ``vad_in_aggregator``; the
    bot's speaker heard back by its microphone at ``echo_return_loss_db`` if set,
    through the reference bot's echo canceller if ``aec``, whose figures end the
    timeline as an ``aec_stats`` event: ``erle_db``, ``median_frame_erle_db``,
    ``resets``, ``runs``, see ``bot.echo_cancel.EchoCancelStats``).
    Returns ``(timeline, llm_context)``."""
    from bot.local_llm import get_shared_local_llm_server

    await get_shared_local_llm_server().astart()  # off the event loop
    cues = barge_in_cues(
        load_clip(turn),
        load_clip(backchannel) if backchannel else None,
        load_clip(interrupt) if interrupt else None,
        backchannel_delay=backchannel_delay,
        interrupt_delay=interrupt_delay,
    )
    tl = Timeline()
    echo = EchoPath(echo_return_loss_db) if echo_return_loss_db is not None else None
    canceller = None
    if aec:
        from bot.echo_cancel import EchoCanceller

        canceller = EchoCanceller()
    transport = FileAudioTransport(tl, cues, echo=echo, aec=canceller)
    observer = TimelineObserver(tl)
    worker, context, _ = offline_worker(transport, observer, vad_in_aggregator=vad_in_aggregator)
    await run_timeline(worker, transport, linger_secs=linger_secs, max_secs=max_secs)
    if canceller is not None:
        s = canceller.stats
        tl.add("aec_stats", erle_db=None if s.erle_db is None else round(s.erle_db, 1),
               median_frame_erle_db=s.median_frame_erle_db, resets=s.resets, runs=s.runs)  # fmt: skip
    return tl, context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audio_timeline", description=__doc__.splitlines()[0])
    parser.add_argument("--turn", default="tell_me_a_story_about_a_dog__joe.wav")
    parser.add_argument("--backchannel", default="yeah__joe.wav", help="clip, or '' for none")
    parser.add_argument("--interrupt", default="stop__joe.wav", help="clip, or '' for none")
    parser.add_argument("--backchannel-delay", type=float, default=1.0, help="s after the bot starts speaking")
    parser.add_argument("--interrupt-delay", type=float, default=4.5, help="s after the bot starts speaking")
    parser.add_argument("--linger", type=float, default=3.0, help="s to keep running after the last clip")
    parser.add_argument("--verbose", action="store_true", help="keep Pipecat's debug log")
    args = parser.parse_args(argv)
    if not args.verbose:
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level="WARNING")
    tl, context = asyncio.run(
        run_offline_barge_in(
            args.turn,
            args.backchannel or None,
            args.interrupt or None,
            backchannel_delay=args.backchannel_delay,
            interrupt_delay=args.interrupt_delay,
            linger_secs=args.linger,
        )
    )
    print(tl.format())
    print()
    print(format_figures(tl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
