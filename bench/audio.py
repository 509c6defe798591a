"""End-to-end audio barge-in benchmark: our placements and the peers' rules on the same audio.

    python -m bench audio [--stt pocketsphinx|whisper|hybrid] [--json] [--plot FILE.png]
                          [--limit N] [--seed S] [--no-open] [--verbose]

Scenarios (bench/audio_scenarios.py): the bot starts a long Piper answer and,
while it talks, a user sound reaches the microphone at a set offset:
backchannels, interruptions, mixed ("okay hold on", "yeah but what about the
price"), noise (cough, breath, keyboard, hum, varied in numpy) and echo (the
bot's own answer leaking into the microphone), over several voices, speeds and
noise-bed SNRs, drawn from a fixed seed (printed with the mix).

Besides the default mix (the tuned clips of ``tests/audio``), every run plays the
open-vocabulary clips (``tests/audio/open``: phrases, voices and speeds no default
was chosen on) once each, as backchannel and interruption scenarios of their own
set, reported in their own rows (``--no-open`` leaves them out). All of it is
synthetic speech (Piper, espeak-ng), not recordings of people.

Per scenario one real-time run (bench/audio_timeline.py's file-fed microphone)::

    mic -> VADProcessor(Silero, start_secs as bot/pipeline.py) -> STT (--stt) -> tee
      tee => "ours-filter":     SoftAckInterruptionFilter -> user aggregator (default start)     -> speaker
          => "ours-canonical":  SoftAckInterruptionFilter -> user aggregator (own Silero inside) -> speaker
          => "ours-strategy":   user aggregator (SoftAckUserTurnStartStrategy)                 -> speaker
          => "pipecat-default": user aggregator (VAD + Transcription start strategies)         -> speaker
          => "min-words-3":     user aggregator (MinWordsUserTurnStartStrategy(3))              -> speaker
          => "vapi", "vapi-2":  user aggregator (Vapi's stopSpeakingPlan, numWords 0 / 2)       -> speaker
          => "livekit-legacy":  user aggregator (LiveKit's legacy VoiceAssistant rule)          -> speaker

The ear (``--stt``, default the bot's default ear ``bot.services.OFFLINE_STT``):
``pocketsphinx`` (streaming, interims), ``whisper`` (Pipecat's WhisperSTTService,
one final per VAD segment) or ``hybrid`` (PocketSphinx interims holding a command
keyword, Whisper finals); the filter branches wait for a final as the bot does
(``bot.services.transcript_timeout_secs``). The peers' rules and where they come
from: bench/peers.py.

VAD and STT run once; the tee copies their frames (VAD start/stop, user
speaking, interim and final transcripts) into *separate* pipeline workers,
one per strategy. "ours-canonical" is Pipecat's canonical shape (issue 9): Silero
inside the user aggregator (``LLMUserAggregatorParams(vad_analyzer=...)``), which
the filter adopts at setup; the tee sends it the microphone audio and the
transcripts but not the front VAD's frames: its own Silero analyzer hears the same
audio. Each branch has its own bot state: its speaker plays the
scripted answer in real time (40 ms chunks, like Pipecat's output transport),
broadcasts ``BotStartedSpeakingFrame``/``BotStoppedSpeakingFrame`` into its own
branch only, and stops on the ``InterruptionFrame`` its own user aggregator
broadcasts. (Pipecat's ``ParallelPipeline`` is not used: the aggregator's
interruption is broadcast upstream too, and out of a ParallelPipeline branch it
would reach the shared STT and VAD, whose queues an interruption resets.) No LLM:
a user turn ends with Pipecat's ``SpeechTimeoutUserTurnStopStrategy`` in every
branch (Smart Turn four times over would not fit on 2 cores) and the context
frame it pushes is dropped at the branch's end.

Metrics per strategy (over the default mix; the open set in rows of its own):

* false-interrupt rate: backchannel/noise/echo scenarios where the bot's audio
  was stopped by an interruption, overall and by kind;
* missed-interrupt rate: interruption/mixed scenarios where the bot's audio was
  not stopped within 3 s of the user's speech onset (clips.tsv speech_start +
  injection time);
* time to interrupt: speech onset to the branch's ``InterruptionFrame``, and to
  the bot's audio stopping (end of the chunk being played), median and p95, over
  the interruption/mixed scenarios it stopped after the onset; also the median
  over the *command-word* interruptions alone (a command keyword of the lexicon in
  the scenario's text, as ``BackchannelClassifier.explain`` reads it);
* the issue-10 targets (:data:`TARGETS`) for our three placements.

``--json`` prints one JSON object on stdout and nothing else (progress goes to
stderr). ``--plot`` needs matplotlib (the project's ``bench`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from bench.audio_io import SAMPLE_RATE, to_pcm
from bench.audio_scenarios import (
    BOT_START,
    DEFAULT_SEED,
    KEEP_KINDS,
    KINDS,
    MISS_WINDOW,
    STOP_KINDS,
    Scenario,
    bot_answer_sentences,
    bot_answers,
    build_mic,
    make_open_scenarios,
    make_scenarios,
    mix_summary,
)

STRATEGIES = {
    "ours-filter": "SoftAckInterruptionFilter before a user aggregator with default start strategies",
    "ours-canonical": "Silero inside the user aggregator, SoftAckInterruptionFilter between the STT "
    "and it (Pipecat's canonical shape: the filter adopts the aggregator's VAD)",
    "ours-strategy": "SoftAckUserTurnStartStrategy in the user aggregator",
    "pipecat-default": "VADUserTurnStartStrategy + TranscriptionUserTurnStartStrategy",
    "min-words-3": "MinWordsUserTurnStartStrategy(min_words=3)",
    "vapi": "Vapi stopSpeakingPlan defaults: numWords 0 (+ voiceSeconds 0.2 s), default phrase lists",
    "vapi-2": "Vapi stopSpeakingPlan, numWords 2, default phrase lists",
    "livekit-legacy": "LiveKit legacy VoiceAssistant: more than 3 words (final or interim) while the "
    "VAD hears speech, not in the first 1 s of playout",
}
OURS = ("ours-filter", "ours-canonical", "ours-strategy")
#: Branches that run a SoftAckInterruptionFilter (their decisions are recorded).
FILTER_BRANCHES = ("ours-filter", "ours-canonical")
#: Branches that run their own VAD on the microphone audio instead of the front's.
OWN_VAD_BRANCHES = ("ours-canonical",)
BASELINE = "pipecat-default"
EARS = ("pocketsphinx", "whisper", "hybrid")
#: Issue 10's targets for our placements, on the full run (default mix; "open" on
#: the open-vocabulary set): rates as fractions, counts of 25, times in ms.
TARGETS = {
    "false_interrupt_rate": 0.15,
    "open_false_interrupt_rate": 0.20,
    "echo_false_interrupts": 2,
    "noise_false_interrupts": 1,
    "backchannel_false_interrupt_rate": 0.25,
    "missed_interrupt_rate": 0.02,
    "command_median_onset_to_interruption_ms": 450,
    "p95_onset_to_interruption_ms": 1300,
}
SPEAKER_CHUNK_SECS = 0.04  # Pipecat's output transport writes 4 x 10 ms chunks
LINGER_SECS = 0.3  # after every speaker is done
PLOT_DEPENDENCY = "matplotlib"


# --------------------------------------------------------------------------- #
# Pipeline pieces (Pipecat imports are deferred to keep `--help` fast)
# --------------------------------------------------------------------------- #


def _pipecat():
    """Import the Pipecat pieces once; returns a namespace of classes."""
    from types import SimpleNamespace

    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        CancelFrame,
        EndFrame,
        InputAudioRawFrame,
        InterimTranscriptionFrame,
        InterruptionFrame,
        SpeechControlParamsFrame,
        StartFrame,
        TranscriptionFrame,
        UserSpeakingFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.frames.frames import STTMetadataFrame  # noqa: F401 - checked below
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

    return SimpleNamespace(**{k: v for k, v in locals().items() if k != "SimpleNamespace"})


def _build_classes():
    pc = _pipecat()
    from bench.audio_timeline import Timeline

    forward = (
        pc.VADUserStartedSpeakingFrame,
        pc.VADUserStoppedSpeakingFrame,
        pc.UserSpeakingFrame,
        pc.InterimTranscriptionFrame,
        pc.TranscriptionFrame,
        pc.SpeechControlParamsFrame,
        pc.STTMetadataFrame,
    )
    vad_frames = (
        pc.VADUserStartedSpeakingFrame,
        pc.VADUserStoppedSpeakingFrame,
        pc.UserSpeakingFrame,
        pc.SpeechControlParamsFrame,
    )

    class SyncTimeline(Timeline):
        """A Timeline whose start (the microphone's first sample) can be awaited."""

        def __init__(self):
            super().__init__()
            self.started = asyncio.Event()

        def start(self):
            super().start()
            self.started.set()

    class TaggedTimeline:
        """Adds ``branch=<name>`` to every event recorded through it."""

        def __init__(self, timeline, branch: str):
            self.timeline = timeline
            self.branch = branch

        def add(self, kind, t=None, **data):
            return self.timeline.add(kind, t, branch=self.branch, **data)

        def now(self):
            return self.timeline.now()

    class Tee(pc.FrameProcessor):
        """Copies the VAD/STT frames going downstream into the branch workers.

        ``targets``: ``(worker, own_vad, audio)``; a branch with its own VAD gets
        the transcripts, not the front VAD's frames; a branch with ``audio`` also
        gets the microphone audio (its own VAD hears it; a filter's acoustic echo
        check reads it, as an STT service passes audio on in a bot).
        """

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.targets = []

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if direction == pc.FrameDirection.DOWNSTREAM:
                audio = isinstance(frame, pc.InputAudioRawFrame)
                if audio or isinstance(frame, forward):
                    vad_frame = isinstance(frame, vad_frames)
                    for worker, own_vad, wants_audio in self.targets:
                        if (audio and wants_audio) or (not audio and not (own_vad and vad_frame)):
                            await worker.queue_frame(copy.copy(frame))
            await self.push_frame(frame, direction)

    class BotSpeaker(pc.FrameProcessor):
        """Plays a scripted bot answer in real time, like an output transport.

        From ``start_at`` (timeline seconds) it plays ``secs`` of audio in 40 ms
        chunks, broadcasting ``BotStartedSpeakingFrame`` at the first and
        ``BotStoppedSpeakingFrame`` at the end. On ``InterruptionFrame`` it stops
        after the chunk being played (recorded as the audio stop) and broadcasts
        ``BotStoppedSpeakingFrame`` at once. Each of ``sentences`` (``(seconds into
        the answer, text)``) is added to every record in ``records`` (the filters'
        ``BotSpeechRecord``) when it starts playing, as Pipecat's output transport
        reports a Piper sentence when its audio starts; each chunk of ``audio`` (the
        answer as 16 kHz 16-bit PCM, the same samples the echo scenarios leak into
        the microphone) is added to every record's ``audio`` as played by the end of
        its 40 ms, as the output transport pushes an audio frame on once written.
        """

        def __init__(
            self, timeline, branch: str, start_at: float, secs: float, sentences=(), audio: bytes = b"", **kwargs
        ):
            super().__init__(**kwargs)
            self.tl = timeline
            self.branch = branch
            self.start_at = start_at
            self.secs = secs
            self.sentences = list(sentences)
            self.audio = audio
            self.records = []
            self.playing = False
            self.done = asyncio.Event()
            self._played_until = 0.0
            self._task = None

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if isinstance(frame, pc.StartFrame):
                await self.push_frame(frame, direction)
                self._task = self.create_task(self._play(), f"{self}::play")
                return
            if isinstance(frame, pc.InterruptionFrame):
                await self._interrupt()
            elif isinstance(frame, (pc.EndFrame, pc.CancelFrame)) and self._task:
                task, self._task = self._task, None
                await self.cancel_task(task)
            await self.push_frame(frame, direction)

        async def _play(self):
            tl = self.tl
            await tl.started.wait()
            await asyncio.sleep(max(0.0, self.start_at - tl.now()))
            self.playing = True
            tl.add("speaker_start", branch=self.branch)
            await self.broadcast_frame(pc.BotStartedSpeakingFrame)
            n = int(round(self.secs / SPEAKER_CHUNK_SECS))
            pending = list(self.sentences)
            chunk_bytes = 2 * int(round(SAMPLE_RATE * SPEAKER_CHUNK_SECS))
            for i in range(n):
                t = self.start_at + i * SPEAKER_CHUNK_SECS
                await asyncio.sleep(max(0.0, t - tl.now()))
                if not self.playing:
                    return
                while pending and pending[0][0] <= t - self.start_at + 1e-9:
                    text = pending.pop(0)[1]
                    for record in self.records:
                        record.add(text)
                chunk = self.audio[i * chunk_bytes : (i + 1) * chunk_bytes]
                if chunk:
                    played_by = time.monotonic() + SPEAKER_CHUNK_SECS
                    for record in self.records:
                        record.audio.add(chunk, SAMPLE_RATE, t=played_by)
                self._played_until = t + SPEAKER_CHUNK_SECS
            await asyncio.sleep(max(0.0, self._played_until - tl.now()))
            if self.playing:
                self.playing = False
                tl.add("speaker_end", branch=self.branch, audio_stop=self._played_until)
                await self.broadcast_frame(pc.BotStoppedSpeakingFrame)
                self.done.set()

        async def _interrupt(self):
            if not self.playing:
                return
            self.playing = False
            now = self.tl.now()
            self.tl.add("speaker_interrupted", branch=self.branch,
                        audio_stop=round(max(now, self._played_until), 4))  # fmt: skip
            self.done.set()
            await self.broadcast_frame(pc.BotStoppedSpeakingFrame)

    return SyncTimeline, TaggedTimeline, Tee, BotSpeaker


# --------------------------------------------------------------------------- #
# One scenario
# --------------------------------------------------------------------------- #


def _user_aggregator(start_strategies, vad_analyzer=None):
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

    strategies = UserTurnStrategies(start=start_strategies, stop=[SpeechTimeoutUserTurnStopStrategy()])
    user, _assistant = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(user_turn_strategies=strategies, vad_analyzer=vad_analyzer),
    )
    return user


def _silero():
    """Silero as the reference bot runs it (``bot.pipeline.VAD_START_SECS``)."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams

    from bot.pipeline import VAD_START_SECS

    return SileroVADAnalyzer(params=VADParams(start_secs=VAD_START_SECS))


def _filter_timeout(ear: str) -> float | None:
    """The filter's transcript timeout for ``ear``, as the reference bot sets it."""
    from bot.services import ServiceChoice, transcript_timeout_secs

    return transcript_timeout_secs(ServiceChoice(ear, "local", "piper"))


def _branch_processors(name: str, watch_filter, ear: str = "pocketsphinx", records: list | None = None):
    """The processors of branch ``name`` before its speaker; a filter branch appends
    its ``BotSpeechRecord`` to ``records`` (the speaker feeds it what it plays)."""
    from pipecat.turns.user_start import MinWordsUserTurnStartStrategy
    from pipecat.turns.user_turn_strategies import default_user_turn_start_strategies

    from bench.peer_strategies import LiveKitLegacyUserTurnStartStrategy, VapiUserTurnStartStrategy
    from pipecat_softack import SoftAckInterruptionFilter, SoftAckUserTurnStartStrategy

    if name in FILTER_BRANCHES:
        from pipecat_softack.bot_speech import BotSpeechRecord

        record = BotSpeechRecord()
        if records is not None:
            records.append(record)
        softack = SoftAckInterruptionFilter(transcript_timeout_secs=_filter_timeout(ear), bot_speech=record)
        watch_filter(softack)
        vad = _silero() if name in OWN_VAD_BRANCHES else None
        return [softack, _user_aggregator(default_user_turn_start_strategies(), vad_analyzer=vad)]
    if name == "vapi":
        return [_user_aggregator([VapiUserTurnStartStrategy(num_words=0)])]
    if name == "vapi-2":
        return [_user_aggregator([VapiUserTurnStartStrategy(num_words=2)])]
    if name == "livekit-legacy":
        return [_user_aggregator([LiveKitLegacyUserTurnStartStrategy()])]
    if name == "ours-strategy":
        return [_user_aggregator([SoftAckUserTurnStartStrategy()])]
    if name == "pipecat-default":
        return [_user_aggregator(default_user_turn_start_strategies())]
    if name == "min-words-3":
        return [_user_aggregator([MinWordsUserTurnStartStrategy(min_words=3)])]
    raise ValueError(name)


def _front_stt(ear: str, warmup_pcm: bytes):
    """The front's STT for ``ear``: a processor (``hybrid``: a two-processor Pipeline)."""
    if ear == "pocketsphinx":
        return _primed_stt(warmup_pcm)
    from bot.whisper_stt import create_command_word_stt, create_whisper_stt

    if ear == "whisper":
        return create_whisper_stt()
    if ear == "hybrid":
        from pipecat.pipeline.pipeline import Pipeline

        return Pipeline([_primed_stt(warmup_pcm, type(create_command_word_stt())), create_whisper_stt()])
    raise ValueError(f"unknown ear {ear!r}: choose from {EARS}")


def _primed_stt(warmup_pcm: bytes, base=None):
    """The bot's PocketSphinx STT (``base``, default ``PocketsphinxSTTService``), in the
    steady state of a conversation.

    At start, before the microphone's timeline begins, its decoder hears
    ``warmup_pcm`` (the scenario's noise bed, or silence) and one VAD start/stop
    pair; whatever that produces is discarded. Without it every scenario would
    begin as a fresh session: PocketSphinx's own onset detector fires once on the
    onset of a noise bed, and until the first pipeline VAD event
    ``PocketsphinxStream`` takes the pipeline for VAD-less and emits finals of
    the utterances that detector opened (reported as a bug).
    """
    from bot.pocketsphinx_stt import PocketsphinxSTTService

    class PrimedPocketsphinxSTTService(base or PocketsphinxSTTService):
        _discard = False

        async def start(self, frame):
            await super().start(frame)
            self._discard = True
            chunk = 640  # 20 ms
            for i in range(0, len(warmup_pcm), chunk):
                self._send("audio", warmup_pcm[i : i + chunk])
            self._send("vad_start")
            self._send("vad_stop")
            while self._in_q is not None and not self._in_q.empty():
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.15)  # the last command, and its events reaching the reader
            self._discard = False

        async def _handle_event(self, ev):
            if not self._discard:
                await super()._handle_event(ev)

    return PrimedPocketsphinxSTTService()


@dataclass
class _Classes:
    SyncTimeline: type
    TaggedTimeline: type
    Tee: type
    BotSpeaker: type


async def run_scenario(
    scn: Scenario, mic_pcm: bytes, warmup_pcm: bytes, classes: _Classes, strategies=tuple(STRATEGIES),
    ear: str = "pocketsphinx", sentences=(), answer: np.ndarray | None = None,
):  # fmt: skip
    """Run one scenario in real time with the front STT ``ear``; return its timeline.

    ``answer`` (16 kHz samples, 16-bit scale) is the bot's answer audio, given to the
    filters' records as played; without it they get its texts only."""
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.workers.runner import WorkerRunner

    from bench.audio_timeline import Clip, Cue, FileMicInputTransport, TimelineObserver

    tl = classes.SyncTimeline()
    common = dict(
        params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE),
        cancel_on_idle_timeout=False,
        enable_rtvi=False,
        enable_turn_tracking=False,
        check_dangling_tasks=False,
    )
    speakers = {}
    branch_workers = []
    for name in strategies:
        observer = TimelineObserver(classes.TaggedTimeline(tl, name))
        speaker = classes.BotSpeaker(
            tl, name, BOT_START, scn.bot_end - BOT_START, sentences=sentences,
            audio=b"" if answer is None else to_pcm(answer), name=f"speaker-{name}",
        )  # fmt: skip
        speakers[name] = speaker
        pipeline = Pipeline([*_branch_processors(name, observer.watch_filter, ear, speaker.records), speaker])
        branch_workers.append(PipelineWorker(pipeline, name=f"branch-{name}", observers=[observer], **common))

    gate = asyncio.Event()

    class GatedMic(FileMicInputTransport):
        """Starts the timeline only once every pipeline is up (model loads block the loop)."""

        async def _mic(self):
            await gate.wait()
            await super()._mic()

    mic = GatedMic(tl, [Cue(Clip(scn.name, mic_pcm), at=0.0)], name="file-mic")
    tee = classes.Tee(name="tee")
    tee.targets = [
        (w, name in OWN_VAD_BRANCHES, name in OWN_VAD_BRANCHES or name in FILTER_BRANCHES)
        for w, name in zip(branch_workers, strategies)
    ]
    vad = VADProcessor(vad_analyzer=_silero())
    front = PipelineWorker(
        Pipeline([mic, vad, _front_stt(ear, warmup_pcm), tee]),
        name="front",
        observers=[TimelineObserver(tl)],
        **common,
    )

    started = {w.name: asyncio.Event() for w in [*branch_workers, front]}
    for w in [*branch_workers, front]:

        @w.event_handler("on_pipeline_started")
        async def _on_started(worker, _frame):
            started[worker.name].set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(*branch_workers)
    run_task = asyncio.create_task(runner.run())
    try:
        # Branches first: frames the tee queues must reach a started pipeline.
        await asyncio.wait_for(asyncio.gather(*(started[w.name].wait() for w in branch_workers)), 30)
        await runner.add_workers(front)
        await asyncio.wait_for(started[front.name].wait(), 30)
        await asyncio.sleep(0.2)  # let the STT's decoder thread settle
        gate.set()
        await asyncio.wait_for(tl.started.wait(), 30)
        hard_end = scn.bot_end + 3.0
        while True:
            await asyncio.sleep(0.05)
            now = tl.now()
            if all(s.done.is_set() for s in speakers.values()):
                last = max((e.t for e in tl.events if e.kind in ("speaker_end", "speaker_interrupted")), default=0)
                if now >= max(last, scn.speech_end) + LINGER_SECS:
                    break
            if now >= hard_end:
                tl.add("max_secs_reached")
                break
    finally:
        await runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(run_task, 20)
    return tl


def outcome(scn: Scenario, tl, strategies=tuple(STRATEGIES)) -> dict:
    """Per-strategy outcome of one scenario, read from its timeline."""
    out = {}
    for name in strategies:
        start = tl.find("speaker_start", branch=name)
        intr_ev = tl.find("speaker_interrupted", branch=name)
        frame_ev = tl.find("interruption", branch=name, since=start.t if start else 0.0)
        stopped = intr_ev is not None
        audio_stop = intr_ev.data["audio_stop"] if stopped else None
        r = {
            "bot_start": round(start.t, 3) if start else None,
            "stopped": stopped,
            "interruption_frame": round(frame_ev.t, 3) if frame_ev else None,
            "audio_stop": round(audio_stop, 3) if stopped else None,
        }
        if scn.should_stop:
            before = stopped and audio_stop < scn.speech_onset
            r["stopped_before_onset"] = before
            r["missed"] = not stopped or audio_stop > scn.speech_onset + MISS_WINDOW
            if stopped and not before and not r["missed"]:
                t_frame = frame_ev.t if frame_ev is not None and frame_ev.t <= audio_stop + 0.05 else None
                r["onset_to_interruption_ms"] = round((t_frame - scn.speech_onset) * 1000) if t_frame else None
                r["onset_to_audio_stop_ms"] = round((audio_stop - scn.speech_onset) * 1000)
        else:
            r["false_interrupt"] = stopped
        if name in FILTER_BRANCHES:
            r["filter_decisions"] = [
                [e.kind.removeprefix("filter_"), e.data.get("text", ""), round(e.t, 3), e.data.get("reason", "")]
                for e in tl.events
                if e.kind.startswith("filter_") and e.data.get("branch") == name
            ]
        out[name] = r
    return out


def front_events(tl) -> dict:
    """What the shared VAD and STT produced (untagged events)."""
    vad, open_at = [], None
    for e in tl.events:
        if e.data.get("branch") is not None:
            continue
        if e.kind == "vad_start":
            open_at = e.t
        elif e.kind == "vad_stop" and open_at is not None:
            vad.append([round(open_at, 3), round(e.t, 3)])
            open_at = None
    if open_at is not None:
        vad.append([round(open_at, 3), None])
    first = next((e for e in tl.events if e.kind == "interim" and e.data.get("branch") is None), None)
    finals = [e.data["text"] for e in tl.events if e.kind == "transcript" and e.data.get("branch") is None]
    return {
        "vad": vad,
        "first_interim": [round(first.t, 3), first.data["text"]] if first else None,
        "finals": [f for f in finals if f],
    }


# --------------------------------------------------------------------------- #
# Aggregation
# --------------------------------------------------------------------------- #


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def _dist(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "median_ms": None, "p95_ms": None}
    return {
        "n": len(values),
        "median_ms": round(float(statistics.median(values))),
        "p95_ms": round(float(np.percentile(values, 95))),
    }


def aggregate(results: list[dict], strategies=tuple(STRATEGIES)) -> dict:
    """Per-strategy metrics over scenario results (``{"kind": ..., "outcomes": {...}}``)."""
    metrics = {}
    for name in strategies:
        keep = [r for r in results if r["kind"] in KEEP_KINDS]
        stop = [r for r in results if r["kind"] in STOP_KINDS]
        fi_by_kind = {}
        for kind in KEEP_KINDS:
            rs = [r for r in keep if r["kind"] == kind]
            n_fi = sum(r["outcomes"][name]["false_interrupt"] for r in rs)
            fi_by_kind[kind] = {"n": len(rs), "n_false_interrupt": n_fi, "rate": _rate(n_fi, len(rs))}
        miss_by_kind = {}
        for kind in STOP_KINDS:
            rs = [r for r in stop if r["kind"] == kind]
            n_m = sum(r["outcomes"][name]["missed"] for r in rs)
            lat = [r["outcomes"][name].get("onset_to_audio_stop_ms") for r in rs]
            miss_by_kind[kind] = {
                "n": len(rs),
                "n_missed": n_m,
                "rate": _rate(n_m, len(rs)),
                "onset_to_audio_stop": _dist([x for x in lat if x is not None]),
            }
        fi_by_snr = {}
        for r in keep:
            key = "clean" if r["snr_db"] is None else f"{r['snr_db']:g}"
            d = fi_by_snr.setdefault(key, {"n": 0, "n_false_interrupt": 0})
            d["n"] += 1
            d["n_false_interrupt"] += r["outcomes"][name]["false_interrupt"]
        for d in fi_by_snr.values():
            d["rate"] = _rate(d["n_false_interrupt"], d["n"])
        n_fi = sum(v["n_false_interrupt"] for v in fi_by_kind.values())
        n_miss = sum(v["n_missed"] for v in miss_by_kind.values())
        to_frame = [r["outcomes"][name].get("onset_to_interruption_ms") for r in stop]
        to_stop = [r["outcomes"][name].get("onset_to_audio_stop_ms") for r in stop]
        to_frame_cmd = [r["outcomes"][name].get("onset_to_interruption_ms") for r in stop if r.get("command_word")]
        metrics[name] = {
            "description": STRATEGIES[name],
            "n_scenarios": len(results),
            "n_keep": len(keep),
            "n_false_interrupt": n_fi,
            "false_interrupt_rate": _rate(n_fi, len(keep)),
            "false_interrupt_by_kind": fi_by_kind,
            "false_interrupt_by_snr_db": dict(sorted(fi_by_snr.items())),
            "n_stop": len(stop),
            "n_missed": n_miss,
            "missed_interrupt_rate": _rate(n_miss, len(stop)),
            "missed_by_kind": miss_by_kind,
            "n_stopped_before_onset": sum(r["outcomes"][name]["stopped_before_onset"] for r in stop),
            "onset_to_interruption_frame": _dist([x for x in to_frame if x is not None]),
            "onset_to_audio_stop": _dist([x for x in to_stop if x is not None]),
            "n_stop_command_word": sum(bool(r.get("command_word")) for r in stop),
            "command_onset_to_interruption_frame": _dist([x for x in to_frame_cmd if x is not None]),
        }
    return metrics


def aggregate_open(results: list[dict], strategies=tuple(STRATEGIES)) -> dict:
    """Per-strategy figures on the open-vocabulary scenarios (backchannel, interruption)."""
    out = {}
    bc = [r for r in results if r["kind"] == "backchannel"]
    turns = [r for r in results if r["kind"] == "interruption"]
    for name in strategies:
        n_fi = sum(r["outcomes"][name]["false_interrupt"] for r in bc)
        n_m = sum(r["outcomes"][name]["missed"] for r in turns)
        lat = [r["outcomes"][name].get("onset_to_interruption_ms") for r in turns]
        out[name] = {
            "n_backchannel": len(bc),
            "n_false_interrupt": n_fi,
            "false_interrupt_rate": _rate(n_fi, len(bc)),
            "false_interrupts": [r["text"] for r in bc if r["outcomes"][name]["false_interrupt"]],
            "n_interruption": len(turns),
            "n_missed": n_m,
            "missed_interrupt_rate": _rate(n_m, len(turns)),
            "missed": [r["text"] for r in turns if r["outcomes"][name]["missed"]],
            "onset_to_interruption_frame": _dist([x for x in lat if x is not None]),
        }
    return out


def check_targets(metrics: dict, open_metrics: dict | None = None) -> dict:
    """Issue 10's targets (:data:`TARGETS`) for our placements: ``{name: {target:
    {"value", "limit", "met"}}}``; ``met`` is None when a term cannot be computed
    (no scenario of that kind in the run)."""

    def term(value, limit):
        return {"value": value, "limit": limit, "met": None if value is None else value <= limit}

    out = {}
    for name in OURS:
        m = metrics.get(name)
        if m is None:
            continue
        by = m["false_interrupt_by_kind"]
        om = (open_metrics or {}).get(name)
        out[name] = {
            "false_interrupt_rate": term(m["false_interrupt_rate"], TARGETS["false_interrupt_rate"]),
            "open_false_interrupt_rate": term(
                om["false_interrupt_rate"] if om else None, TARGETS["open_false_interrupt_rate"]
            ),
            "echo_false_interrupts": term(
                by["echo"]["n_false_interrupt"] if by["echo"]["n"] else None, TARGETS["echo_false_interrupts"]
            ),
            "noise_false_interrupts": term(
                by["noise"]["n_false_interrupt"] if by["noise"]["n"] else None, TARGETS["noise_false_interrupts"]
            ),
            "backchannel_false_interrupt_rate": term(
                by["backchannel"]["rate"], TARGETS["backchannel_false_interrupt_rate"]
            ),
            "missed_interrupt_rate": term(m["missed_interrupt_rate"], TARGETS["missed_interrupt_rate"]),
            "command_median_onset_to_interruption_ms": term(
                m["command_onset_to_interruption_frame"]["median_ms"],
                TARGETS["command_median_onset_to_interruption_ms"],
            ),
            "p95_onset_to_interruption_ms": term(
                m["onset_to_interruption_frame"]["p95_ms"], TARGETS["p95_onset_to_interruption_ms"]
            ),
        }
    return out


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def _pct(r: float | None) -> str:
    return "-" if r is None else f"{100 * r:.1f}%"


def _ms(d: dict) -> str:
    if not d["n"]:
        return "-"
    return f"{d['median_ms']}/{d['p95_ms']}"


def _cmd(m: dict) -> str:
    d = m.get("command_onset_to_interruption_frame") or {"n": 0}
    return "-" if not d["n"] else f"{d['median_ms']} ({d['n']})"


def format_report(report: dict) -> str:
    mix = report["mix"]
    lines = [
        f"ear: {report.get('stt', 'pocketsphinx')} (every table below; clips: synthetic speech, Piper and espeak-ng)",
        f"seed {report['seed']}: {mix['n']} scenarios; "
        + ", ".join(f"{k} {mix['by_kind'].get(k, 0)}" for k in KINDS),
        "  voices: " + ", ".join(f"{k} {v}" for k, v in mix["by_voice"].items()),
        "  speeds: " + ", ".join(f"{k} {v}" for k, v in mix["by_speed"].items()),
        "  noise bed SNR dB: " + ", ".join(f"{k} {v}" for k, v in mix["by_snr_db"].items()),
        "",
        f"{'strategy':<16} {'false-int':>14} {'backchannel':>12} {'noise':>10} {'echo':>10} "
        f"{'missed':>12} {'onset->InterruptionFrame':>24} {'command words':>14} {'onset->audio stop':>18}",
        f"{'':<16} {'':>14} {'':>12} {'':>10} {'':>10} {'':>12} {'median/p95 ms (n)':>24} "
        f"{'median ms (n)':>14} {'median/p95 ms':>18}",
    ]
    for name, m in report["strategies"].items():
        by = m["false_interrupt_by_kind"]
        cell = lambda d: f"{d['n_false_interrupt']}/{d['n']}"  # noqa: E731
        fr = m["onset_to_interruption_frame"]
        lines.append(
            f"{name:<16} {_pct(m['false_interrupt_rate']):>6} {m['n_false_interrupt']:>3}/{m['n_keep']:<3} "
            f"{cell(by['backchannel']):>12} {cell(by['noise']):>10} {cell(by['echo']):>10} "
            f"{_pct(m['missed_interrupt_rate']):>6} {m['n_missed']:>2}/{m['n_stop']:<3}"
            f"{_ms(fr) + ' (' + str(fr['n']) + ')':>24} {_cmd(m):>14} {_ms(m['onset_to_audio_stop']):>18}"
        )
    lines.append("")
    lines.append("false interrupts by noise-bed SNR (dB):")
    for name, m in report["strategies"].items():
        parts = [f"{k} {v['n_false_interrupt']}/{v['n']}" for k, v in m["false_interrupt_by_snr_db"].items()]
        lines.append(f"  {name:<16} " + ", ".join(parts))
    lines.append("missed by kind / stopped before the speech onset:")
    for name, m in report["strategies"].items():
        parts = [f"{k} {v['n_missed']}/{v['n']}" for k, v in m["missed_by_kind"].items()]
        lines.append(f"  {name:<16} " + ", ".join(parts) + f"; before onset {m['n_stopped_before_onset']}")
    om = report.get("open")
    if om:
        omix = report["open_mix"]
        lines.append("")
        lines.append(
            f"open-vocabulary set (tests/audio/open, never tuned on): {omix['n']} scenarios; "
            + ", ".join(f"{k} {v}" for k, v in omix["by_kind"].items())
        )
        lines.append("  voices: " + ", ".join(f"{k} {v}" for k, v in omix["by_voice"].items()))
        lines.append(
            f"  {'strategy':<16} {'false-int (backchannel)':>24} {'missed':>12} {'onset->InterruptionFrame':>26}"
        )
        for name, m in om.items():
            fr = m["onset_to_interruption_frame"]
            lines.append(
                f"  {name:<16} {_pct(m['false_interrupt_rate']):>14} {m['n_false_interrupt']:>4}/{m['n_backchannel']:<4} "
                f"{_pct(m['missed_interrupt_rate']):>6} {m['n_missed']:>2}/{m['n_interruption']:<3}"
                f"{_ms(fr) + ' (' + str(fr['n']) + ')':>26}"
            )
    lines.append("")
    lines.append("targets (issue 10):")
    yn = lambda x: "n/a" if x is None else ("MET" if x else "NOT MET")  # noqa: E731
    show = {
        "false_interrupt_rate": ("false-int", _pct),
        "open_false_interrupt_rate": ("open false-int", _pct),
        "echo_false_interrupts": ("echo", lambda v: "-" if v is None else f"{v}"),
        "noise_false_interrupts": ("noise", lambda v: "-" if v is None else f"{v}"),
        "backchannel_false_interrupt_rate": ("backchannel", _pct),
        "missed_interrupt_rate": ("missed", _pct),
        "command_median_onset_to_interruption_ms": ("command median ms", lambda v: "-" if v is None else f"{v}"),
        "p95_onset_to_interruption_ms": ("p95 ms", lambda v: "-" if v is None else f"{v}"),
    }
    for name, t in report["targets"].items():
        parts = []
        for key, (label, fmt) in show.items():
            if key in t:
                parts.append(f"{label} {fmt(t[key]['value'])} <= {fmt(t[key]['limit'])} {yn(t[key]['met'])}")
        lines.append(f"  {name:<16} " + "; ".join(parts))
    lines.append(f"wall time {report['wall_secs']:.0f} s")
    return "\n".join(lines)


def plot(report: dict, path: str, n_timelines: int = 4) -> None:
    """Timelines of a few scenarios and a bar chart of the rates (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = report["scenarios"]
    names = list(report["strategies"])

    # Prefer scenarios where the strategies disagree, one per kind.
    def disagreement(s):
        return len({o["stopped"] for o in s["outcomes"].values()}) > 1

    chosen = []
    for kind in ("backchannel", "interruption", "mixed", "echo", "noise"):
        pool = [s for s in scenarios if s["kind"] == kind]
        pool.sort(key=lambda s: (not disagreement(s), s["index"]))
        if pool:
            chosen.append(pool[0])
    chosen = chosen[:n_timelines]

    fig = plt.figure(figsize=(12, 2.3 * len(chosen) + 4))
    gs = fig.add_gridspec(len(chosen) + 1, 1, height_ratios=[1.0] * len(chosen) + [1.6])
    palette = ["tab:green", "tab:cyan", "tab:olive", "tab:red", "tab:purple", "tab:orange", "tab:brown", "tab:pink"]
    colors = dict(zip(names, palette * 2))
    for i, s in enumerate(chosen):
        ax = fig.add_subplot(gs[i])
        rows = ["user", "VAD", *names]  # "user": the injected sound (speech, noise or echo)
        y = {r: len(rows) - 1 - k for k, r in enumerate(rows)}
        ax.broken_barh([(s["speech_onset"], s["speech_end"] - s["speech_onset"])], (y["user"] - 0.35, 0.7), color="tab:blue")
        end = max(s["bot_end"], max((o["audio_stop"] or 0) for o in s["outcomes"].values())) + 0.3
        for a, b in s["front"]["vad"]:
            ax.broken_barh([(a, (b if b is not None else end) - a)], (y["VAD"] - 0.35, 0.7), color="tab:gray")
        for name in names:
            o = s["outcomes"][name]
            start = o["bot_start"] or BOT_START
            stop = o["audio_stop"] if o["stopped"] else s["bot_end"]
            ax.broken_barh([(start, stop - start)], (y[name] - 0.35, 0.7), color=colors[name], alpha=0.8)
            if o["stopped"] and o["interruption_frame"] is not None:
                ax.plot([o["interruption_frame"]], [y[name]], marker="x", color="black")
        ax.axvline(s["speech_onset"], color="tab:blue", ls=":", lw=1)
        ax.set_yticks([y[r] for r in rows], rows, fontsize=8)
        ax.set_xlim(0, end)
        label = s["text"] or s["name"]
        ax.set_title(f"#{s['index']} {s['kind']}: {label!r} ({s['voice']}, SNR {s['snr_db'] or 'clean'}) "
                     f"heard: {' / '.join(s['front']['finals']) or '-'}", fontsize=9)  # fmt: skip
    ax.set_xlabel("seconds (bars: bot audio per strategy; x: InterruptionFrame)")

    ax = fig.add_subplot(gs[-1])
    groups = [*(f"false-int\n{k}" for k in KEEP_KINDS), "false-int\nall", "missed\nall"]
    width = 0.8 / max(1, len(names))
    for j, name in enumerate(names):
        m = report["strategies"][name]
        vals = [m["false_interrupt_by_kind"][k]["rate"] or 0 for k in KEEP_KINDS]
        vals += [m["false_interrupt_rate"] or 0, m["missed_interrupt_rate"] or 0]
        xs = [g + (j - (len(names) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [100 * v for v in vals], width, label=name, color=colors[name])
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel("%")
    ax.legend(fontsize=8)
    ax.set_title(f"rates over {report['mix']['n']} scenarios (seed {report['seed']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def select(scenarios: list[Scenario], limit: int | None, kinds=KINDS) -> list[Scenario]:
    """The first ``limit`` scenarios taken round-robin over ``kinds`` (all if None)."""
    if limit is None or limit >= len(scenarios):
        return scenarios
    by_kind = {k: [s for s in scenarios if s.kind == k] for k in kinds}
    picked: list[Scenario] = []
    rank = 0
    while len(picked) < limit:
        for k in kinds:
            if rank < len(by_kind[k]) and len(picked) < limit:
                picked.append(by_kind[k][rank])
        rank += 1
    return sorted(picked, key=lambda s: s.index)


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to stdout (Python and C level) to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield os.fdopen(os.dup(saved), "w")
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench audio",
        description="Real-time audio barge-in benchmark: our placements and the peers' rules on the "
        "same scripted scenarios (Silero VAD + the chosen ear, Piper bot answers).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.add_argument("--plot", metavar="FILE.png", help=f"save timelines and a rate chart (needs {PLOT_DEPENDENCY})")
    p.add_argument("--limit", type=int, metavar="N", help="run only N scenarios (round-robin over the kinds)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"scenario seed (default {DEFAULT_SEED})")
    p.add_argument("--stt", choices=EARS, default=None,
                   help="the front's ear (default: the bot's default, bot.services.OFFLINE_STT)")  # fmt: skip
    p.add_argument("--no-open", action="store_true", help="leave out the open-vocabulary scenarios")
    p.add_argument("--verbose", action="store_true", help="keep Pipecat's debug log (stderr)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                f"error: --plot needs the '{PLOT_DEPENDENCY}' package, which is not installed "
                f"(pip install {PLOT_DEPENDENCY}, or this project's bench extra: pip install -e '.[bench]')",
                file=sys.stderr,
            )
            return 2
    with stdout_to_stderr() as real_stdout:
        report = _run(args)
    if args.plot:
        plot(report, args.plot)
        print(f"plot saved to {args.plot}", file=sys.stderr)
    if args.json:
        real_stdout.write(json.dumps(report) + "\n")
        real_stdout.flush()
    else:
        real_stdout.write(format_report(report) + "\n")
        real_stdout.flush()
    real_stdout.close()
    return 0


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def _run(args) -> dict:
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if args.verbose else "ERROR")

    from bot.services import OFFLINE_STT
    from pipecat_softack import BackchannelClassifier, Verdict

    ear = args.stt or OFFLINE_STT
    t_start = time.monotonic()
    scenarios = select(make_scenarios(args.seed), args.limit)
    tuned_n = len(scenarios)
    open_scenarios = []
    if not args.no_open:
        open_limit = None if args.limit is None else max(2, args.limit // 2)
        open_scenarios = select(make_open_scenarios(args.seed, start_index=10_000), open_limit, kinds=("backchannel", "interruption"))
        scenarios = scenarios + open_scenarios
    mix = mix_summary(scenarios[:tuned_n])
    _log(f"bench audio: ear {ear}, seed {args.seed}, {mix['n']} scenarios + {len(open_scenarios)} open-vocabulary")
    _log(f"  mix: {json.dumps({k: v for k, v in mix.items() if k != 'n'})}")
    answers = bot_answers(log=_log)
    sentences = bot_answer_sentences(log=_log)
    classes = _Classes(*_build_classes())
    classifier = BackchannelClassifier()

    results = []
    for i, scn in enumerate(scenarios, 1):
        t0 = time.monotonic()
        mic, warmup = build_mic(scn, answers, args.seed)
        tl = asyncio.run(
            run_scenario(
                scn, mic, warmup, classes, ear=ear, sentences=sentences[(scn.answer, scn.answer_speed)],
                answer=answers[(scn.answer, scn.answer_speed)],
            )  # fmt: skip
        )
        res = scn.describe()
        if scn.should_stop:
            verdict, by_command = classifier.explain(scn.text)
            res["command_word"] = verdict == Verdict.INTERRUPTION and by_command
        res["outcomes"] = outcome(scn, tl)
        res["front"] = front_events(tl)
        if tl.find("max_secs_reached"):
            res["max_secs_reached"] = True
        late = [n for n, o in res["outcomes"].items() if o["bot_start"] is None or o["bot_start"] > BOT_START + 0.25]
        if late:
            res["late_bot_start"] = late
        results.append(res)
        elapsed = time.monotonic() - t_start
        eta = elapsed / i * (len(scenarios) - i)
        verdicts = " ".join(
            f"{n}={'STOP' if o['stopped'] else 'keep'}" for n, o in res["outcomes"].items()
        )
        _log(
            f"[{i}/{len(scenarios)}] #{scn.index} {scn.set:<5} {scn.kind:<12} {scn.name[:40]:<40} "
            f"snr={'clean' if scn.snr_db is None else f'{scn.snr_db:g}'}: {verdicts} "
            f"heard={res['front']['finals']} ({time.monotonic() - t0:.1f}s, eta {eta / 60:.1f} min)"
            + (f" LATE BOT START {late}" if late else "")
        )
    tuned = [r for r in results if r["set"] == "tuned"]
    opened = [r for r in results if r["set"] == "open"]
    metrics = aggregate(tuned)
    open_metrics = aggregate_open(opened) if opened else None
    return {
        "stt": ear,
        "seed": args.seed,
        "limit": args.limit,
        "mix": mix,
        "open_mix": mix_summary(open_scenarios) if open_scenarios else None,
        "miss_window_secs": MISS_WINDOW,
        "strategies": metrics,
        "open": open_metrics,
        "targets": check_targets(metrics, open_metrics),
        "wall_secs": round(time.monotonic() - t_start, 1),
        "scenarios": results,
    }
