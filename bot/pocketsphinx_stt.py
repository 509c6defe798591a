"""Embedded offline streaming STT for the reference bot: CMU PocketSphinx 5.

Why PocketSphinx: it runs on one CPU core well under real time, ships its
English acoustic model, dictionary and language model inside the PyPI wheel
(no downloads at run time) and gives a partial hypothesis after every audio
chunk, which is what a barge-in filter needs: it decides from the first words.

Tuned for barge-in (measured with ``python -m bench.stt``, see bench/stt.py):

* **Boosted barge-in vocabulary.** Interruption commands ("wait", "stop",
  "hold on", ...) and the rare backchannels "uh-huh"/"mm-hmm" are added to the
  stock 3-gram LM as extra unigram *alias* tokens (``"hold_on~"``) with their
  own weight (the stock LM gives "uh-huh" ~1e-5 after ``<s>``). Aliases are
  mapped back to the usual spelling ("hold on", "mm-hmm", "okay"). Boosting
  *all* soft-acks was measured and rejected: from a weight of ~3e4 on they get
  inserted into long utterances ("yeah but what..." -> "yeah oh wow ...", an
  espeak "tell me a story..." -> "really oh sure yeah hmm got it"), turning real
  interruptions into backchannels, the costly error.
* **Extra pronunciations** for the backchannels the CMU dict lacks or has one
  odd pronunciation for ("mm-hmm" as M HH M, "uh-huh" with a nasal ending...).
* **Stable interims.** The very first partial of PocketSphinx is usually a
  wrong filler ("the", "it's", "i"); an interim is emitted only once the
  hypothesis has been unchanged for ``interim_stable_chunks`` chunks, which
  removes most of them for a few tens of milliseconds.

Utterances: the service opens an utterance on speech onset (a small WebRTC
VAD built into PocketSphinx, with pre-roll, so interims can come out before
the pipeline VAD has confirmed speech) or on ``VADUserStartedSpeakingFrame``,
whichever comes first, and finalizes it on ``VADUserStoppedSpeakingFrame``.
Without any pipeline VAD it finalizes after ``endpoint_silence_secs`` of
silence of its own. Decoding runs in a single worker thread, so the event loop
is never blocked.
"""

from __future__ import annotations

import asyncio
import collections
import os
import queue
import re
import threading
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

try:
    import pocketsphinx
except ModuleNotFoundError as e:  # pragma: no cover - import guard
    logger.error("PocketsphinxSTTService needs `pip install 'pocketsphinx>=5,<6'`")
    raise Exception(f"Missing module: {e}") from e

SAMPLE_RATE = 16000
ALIAS_MARK = "~"

# Canonical spelling -> pronunciations (CMU phones). Words not listed take the
# pronunciations in the stock dictionary. Compounds use "_" and become one token.
SOFT_ACKS: dict[str, list[str]] = {
    "yeah": ["Y AE", "Y EH", "Y EH AH", "Y AE AH"],
    "yes": ["Y EH S"],
    "yep": ["Y EH P"],
    "okay": ["OW K EY", "K EY", "AH K EY"],
    "right": ["R AY T"],
    "uh-huh": ["AH HH AH", "AH HH AH N", "AH N HH AH N", "AA HH AA"],
    "mm-hmm": ["M HH M", "M M HH M", "AH M HH AH M", "M HH M M", "HH M HH M"],
    "hmm": ["HH M", "HH M M", "M"],
    "sure": ["SH UH R", "SH ER", "SH AO R"],
    "i_see": ["AY S IY"],
    "got_it": ["G AA T IH T", "G AA D IH T", "G AA IH T"],
    "oh": ["OW"],
    "wow": ["W AW"],
    "really": ["R IH L IY", "R IY L IY"],
    "exactly": ["IH G Z AE K T L IY", "IH G Z AE K L IY"],
    "alright": ["AO L R AY T", "AA L R AY T"],
    "cool": ["K UW L"],
    "nice": ["N AY S"],
    "great": ["G R EY T"],
}
COMMANDS: dict[str, list[str]] = {
    "wait": ["W EY T"],
    "stop": ["S T AA P"],
    "no": ["N OW"],
    "nope": ["N OW P"],
    "but": ["B AH T"],
    "hold_on": ["HH OW L D AA N", "HH OW L AA N", "HH OW AA N"],
    "hang_on": ["HH AE NG AA N", "HH AE NG AO N"],
    "pause": ["P AO Z"],
    "actually": ["AE K CH UW AH L IY", "AE K CH AH L IY", "AE K SH L IY"],
    "excuse_me": ["IH K S K Y UW Z M IY", "K S K Y UW Z M IY", "S K Y UW Z M IY"],
    "sorry": ["S AA R IY"],
    "cancel": ["K AE N S AH L"],
    "never_mind": ["N EH V ER M AY N D", "N EH V ER M AY N"],
    "quiet": ["K W AY AH T"],
    "enough": ["IH N AH F"],
}
# Spellings as real STTs print them.
CANONICAL = {
    "mhm": "mm-hmm",
    "mm-hm": "mm-hmm",
    "hm": "hmm",
    "ok": "okay",
    "uh huh": "uh-huh",
    "all right": "alright",
}


def canonical_text(words: Iterable[str]) -> str:
    """Map decoder tokens to output text: drop fillers, undo aliases, fix spelling."""
    out = []
    for w in words:
        if not w or w.startswith("<") or w.startswith("["):
            continue
        w = re.sub(r"\(\d+\)$", "", w)  # alternate pronunciation marker
        w = w.rstrip(ALIAS_MARK).replace("_", " ")
        out.append(CANONICAL.get(w, w))
    return CANONICAL.get(" ".join(out), " ".join(out))


@dataclass
class PocketsphinxParams:
    """Decoder knobs. Defaults are the ones chosen by measurement (bench/stt.py)."""

    # Unigram weight (relative to uniform over the ~134k-word vocabulary) of the
    # alias tokens. 0 disables boosting for that group.
    softack_boost: float = 0.0
    command_boost: float = 30000.0
    # Number of consecutive chunks a partial must stay the same before it is
    # emitted as an interim. 1 = emit every change.
    interim_stable_chunks: int = 3
    # Minimum audio (s) between partial-hypothesis evaluations.
    partial_interval_secs: float = 0.02
    # Per-word boost overriding the group boost (canonical word -> weight).
    word_boost: dict[str, float] = field(default_factory=lambda: {"uh-huh": 3000.0, "mm-hmm": 3000.0})
    # Extra pocketsphinx config (e.g. {"beam": 1e-40}).
    config: dict[str, Any] = field(default_factory=dict)


class PocketsphinxRecognizer:
    """Synchronous streaming recognizer. Not thread-safe: use from one thread.

    ``start()``, then ``feed(pcm)`` with 16 kHz 16-bit mono PCM (returns a new
    interim text or None), then ``finish()`` for the final text.
    """

    def __init__(self, params: PocketsphinxParams | None = None):
        self.params = params or PocketsphinxParams()
        cfg: dict[str, Any] = {"loglevel": "FATAL"}
        cfg.update(self.params.config)
        self._decoder = pocketsphinx.Decoder(**cfg)
        self._add_vocabulary()
        self._in_utt = False
        self._reset_utterance()

    def _reset_utterance(self) -> None:
        """Forget the partials of the previous utterance."""
        self._last_partial = ""
        self._candidate = ""
        self._candidate_count = 0
        self._since_partial = 0
        self.samples = 0

    def _add_vocabulary(self) -> None:
        d = self._decoder
        lm = d.get_lm()
        entries: list[tuple[str, str]] = []  # (dict word, phones)
        groups = ((SOFT_ACKS, self.params.softack_boost), (COMMANDS, self.params.command_boost))
        for vocab, group_boost in groups:
            for word, prons in vocab.items():
                boost = self.params.word_boost.get(word, group_boost)
                if boost > 0:
                    # A new LM word gets unigram prob boost / |V|; stock words
                    # cannot be re-weighted, hence the alias token.
                    token = word + ALIAS_MARK
                    lm.add_word(token, float(boost))
                    entries += [(token if i == 0 else f"{token}({i + 1})", p) for i, p in enumerate(prons)]
                elif "_" not in word:
                    # No boost: just give stock words the extra pronunciations.
                    known = {" ".join(self._phones(word))}
                    k = 2
                    while d.lookup_word(f"{word}({k})") is not None:
                        known.add(d.lookup_word(f"{word}({k})"))
                        k += 1
                    if d.lookup_word(word) is None:
                        lm.add_word(word, 1.0)
                        entries.append((word, prons[0]))
                        known.add(prons[0])
                    for p in prons:
                        if p not in known:
                            entries.append((f"{word}({k})", p))
                            k += 1
        for i, (name, phones) in enumerate(entries):
            d.add_word(name, phones, update=(i == len(entries) - 1))

    def _phones(self, word: str) -> list[str]:
        p = self._decoder.lookup_word(word)
        return p.split() if p else []

    # -- streaming API -------------------------------------------------
    def start(self) -> None:
        if self._in_utt:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self._in_utt = True
        self._reset_utterance()

    @property
    def in_utterance(self) -> bool:
        return self._in_utt

    def feed(self, pcm: bytes) -> str | None:
        """Decode a chunk; return a new (stable) interim text, or None."""
        if not self._in_utt:
            self.start()
        self._decoder.process_raw(pcm, no_search=False, full_utt=False)
        n = len(pcm) // 2
        self.samples += n
        self._since_partial += n
        if self._since_partial < self.params.partial_interval_secs * SAMPLE_RATE:
            return None
        self._since_partial = 0
        hyp = self._decoder.hyp()
        text = canonical_text(hyp.hypstr.split()) if hyp is not None else ""
        if text == self._candidate:
            self._candidate_count += 1
        else:
            self._candidate = text
            self._candidate_count = 1
        if (
            text
            and text != self._last_partial
            and self._candidate_count >= self.params.interim_stable_chunks
        ):
            self._last_partial = text
            return text
        return None

    def finish(self) -> str:
        """End the utterance and return the final text ("" if nothing)."""
        if not self._in_utt:
            return ""
        self._decoder.end_utt()
        self._in_utt = False
        hyp = self._decoder.hyp()
        return canonical_text(hyp.hypstr.split()) if hyp is not None else ""

    def abort(self) -> None:
        if self._in_utt:
            try:
                self._decoder.end_utt()
            finally:
                self._in_utt = False


# ---------------------------------------------------------------------------
# Utterance state machine (synchronous; shared by the service and the bench)
# ---------------------------------------------------------------------------


@dataclass
class SttEvent:
    """Result of the stream: ``kind`` is "interim" or "final"."""

    kind: str
    text: str
    # Seconds of audio fed into the stream when the event was produced.
    audio_time: float
    # True if the pipeline VAD confirmed speech in this utterance.
    confirmed: bool = True


class PocketsphinxStream:
    """Opens/closes utterances around a :class:`PocketsphinxRecognizer`.

    Feed every chunk of 16 kHz PCM with :meth:`process`, and the pipeline's VAD
    events with :meth:`vad_started` / :meth:`vad_stopped`. While idle the last
    ``preroll_secs`` of audio are kept; an utterance opens on the first of the
    internal onset detector (``onset_frames`` consecutive 30 ms WebRTC-VAD
    speech frames) or ``vad_started``, and the pre-roll is decoded first.
    ``vad_stopped`` finalizes it. An utterance opened by the internal detector
    that the pipeline VAD never confirms (a cough, a click) is dropped silently
    after ``endpoint_silence_secs`` of silence; if no pipeline VAD event was
    ever seen, the stream endpoints by itself and emits that final.
    """

    def __init__(
        self,
        recognizer: PocketsphinxRecognizer,
        *,
        preroll_secs: float = 0.3,
        internal_onset: bool = True,
        onset_frames: int = 2,
        vad_mode: int = 2,
        endpoint_silence_secs: float = 0.8,
        max_utterance_secs: float = 30.0,
    ):
        self.rec = recognizer
        self.preroll_bytes = int(preroll_secs * SAMPLE_RATE) * 2
        self.internal_onset = internal_onset
        self.onset_frames = onset_frames
        self.endpoint_silence_secs = endpoint_silence_secs
        self.max_utterance_secs = max_utterance_secs
        self._vad = pocketsphinx.Vad(vad_mode, SAMPLE_RATE, 0.03)
        self._vad_buf = bytearray()
        self._preroll = bytearray()
        self._speech_run = 0
        self._silence = 0.0
        self._pipeline_vad_seen = False
        self._confirmed = False
        # With a pipeline VAD, an interim the VAD has not confirmed waits here: noise
        # and echo make the internal detector open utterances Silero rejects, and
        # their made-up words must not reach the barge-in filter.
        self._pending = ""
        self.audio_time = 0.0

    @property
    def in_utterance(self) -> bool:
        return self.rec.in_utterance

    def _open(self) -> list[SttEvent]:
        self.rec.start()
        self._silence = 0.0
        pre = bytes(self._preroll)
        self._preroll.clear()
        events = []
        if pre:
            events += self._interim(self.rec.feed(pre))
        return events

    def _interim(self, text: str) -> list[SttEvent]:
        if not text:
            return []
        if self._pipeline_vad_seen and not self._confirmed:
            self._pending = text
            return []
        return [SttEvent("interim", text, self.audio_time, self._confirmed)]

    def _close(self, emit: bool) -> list[SttEvent]:
        text = self.rec.finish()
        confirmed = self._confirmed
        self._confirmed = False
        self._pending = ""
        self._silence = 0.0
        if emit:
            return [SttEvent("final", text, self.audio_time, confirmed)]
        return []

    def _vad_frames(self, pcm: bytes) -> tuple[int, int]:
        """Run the internal VAD; return (speech frames, non-speech frames)."""
        self._vad_buf += pcm
        fb = self._vad.frame_bytes
        sp = ns = 0
        while len(self._vad_buf) >= fb:
            frame = bytes(self._vad_buf[:fb])
            del self._vad_buf[:fb]
            if self._vad.is_speech(frame):
                sp += 1
                self._speech_run += 1
            else:
                ns += 1
                self._speech_run = 0
        return sp, ns

    def process(self, pcm: bytes) -> list[SttEvent]:
        self.audio_time += len(pcm) / (2 * SAMPLE_RATE)
        sp, ns = self._vad_frames(pcm)
        events: list[SttEvent] = []
        if not self.rec.in_utterance:
            self._preroll += pcm
            if len(self._preroll) > self.preroll_bytes:
                del self._preroll[: len(self._preroll) - self.preroll_bytes]
            if self.internal_onset and self._speech_run >= self.onset_frames:
                events += self._open()
            return events
        events += self._interim(self.rec.feed(pcm))
        if sp:
            self._silence = 0.0
        else:
            self._silence += ns * self._vad.frame_length
        if self.rec.samples >= self.max_utterance_secs * SAMPLE_RATE:
            events += self._close(emit=True)
        elif self._silence >= self.endpoint_silence_secs and not self._confirmed:
            # Unconfirmed by the pipeline VAD: noise, unless there is no pipeline VAD.
            events += self._close(emit=not self._pipeline_vad_seen)
        return events

    def vad_present(self) -> None:
        """The pipeline has a VAD (its ``SpeechControlParamsFrame`` arrived at start)."""
        self._pipeline_vad_seen = True

    def vad_started(self) -> list[SttEvent]:
        self._pipeline_vad_seen = True
        self._confirmed = True
        if not self.rec.in_utterance:
            return self._open()
        pending, self._pending = self._pending, ""
        return self._interim(pending)

    def vad_stopped(self) -> list[SttEvent]:
        self._pipeline_vad_seen = True
        if not self.rec.in_utterance:
            return [SttEvent("final", "", self.audio_time, self._confirmed)]
        self._confirmed = True
        return self._close(emit=True)

    def flush(self) -> list[SttEvent]:
        """End of stream: finalize an utterance the pipeline VAD confirmed."""
        if not self.rec.in_utterance:
            return []
        return self._close(emit=self._confirmed or not self._pipeline_vad_seen)

    def reset(self) -> None:
        self.rec.abort()
        self._preroll.clear()
        self._vad_buf.clear()
        self._speech_run = 0
        self._silence = 0.0
        self._confirmed = False


# ---------------------------------------------------------------------------
# Pipecat service
# ---------------------------------------------------------------------------

from pipecat.audio.utils import create_stream_resampler  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    CancelFrame,
    EndFrame,
    Frame,
    InterimTranscriptionFrame,
    StartFrame,
    SpeechControlParamsFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection  # noqa: E402
from pipecat.services.settings import STTSettings  # noqa: E402
from pipecat.services.stt_service import STTService  # noqa: E402
from pipecat.transcriptions.language import Language  # noqa: E402
from pipecat.utils.time import time_now_iso8601  # noqa: E402
from pipecat.utils.tracing.service_decorators import traced_stt  # noqa: E402

# P99 of VADUserStoppedSpeakingFrame -> final TranscriptionFrame measured by
# bench/stt.py on 2 cores (the final is one end_utt() on already decoded audio).
POCKETSPHINX_TTFS_P99 = 0.15

_STOP = object()


class PocketsphinxSTTService(STTService):
    """Streaming offline STT with CMU PocketSphinx (bundled en-us model).

    Pushes ``InterimTranscriptionFrame`` while the user speaks and a
    ``TranscriptionFrame`` (``finalized=True``) right after
    ``VADUserStoppedSpeakingFrame``. Audio is resampled to 16 kHz when the
    pipeline runs at another rate. All decoding happens in one worker thread
    fed through a queue; results come back to the event loop through an
    asyncio queue read by a task that pushes the frames.
    """

    def __init__(
        self,
        *,
        params: PocketsphinxParams | None = None,
        preroll_secs: float = 0.3,
        internal_onset: bool = True,
        endpoint_silence_secs: float = 0.8,
        max_utterance_secs: float = 30.0,
        language: Language = Language.EN_US,
        ttfs_p99_latency: float | None = POCKETSPHINX_TTFS_P99,
        **kwargs,
    ):
        kwargs.setdefault("settings", STTSettings(model="pocketsphinx-en-us", language=language))
        super().__init__(ttfs_p99_latency=ttfs_p99_latency, **kwargs)
        self._params = params or PocketsphinxParams()
        self._stream_kwargs = dict(
            preroll_secs=preroll_secs,
            internal_onset=internal_onset,
            endpoint_silence_secs=endpoint_silence_secs,
            max_utterance_secs=max_utterance_secs,
        )
        self._language = language
        self._resampler = create_stream_resampler()
        self._in_q: queue.Queue | None = None
        self._out_q: asyncio.Queue | None = None
        self._thread: threading.Thread | None = None
        self._reader_task: asyncio.Task | None = None
        self._ready = threading.Event()
        self._load_error: BaseException | None = None

    def can_generate_metrics(self) -> bool:
        return True

    # -- lifecycle -------------------------------------------------------
    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self._start_worker()

    async def stop(self, frame: EndFrame):
        await self._stop_worker(flush=True)
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame):
        await self._stop_worker(flush=False)
        await super().cancel(frame)

    async def cleanup(self):
        await self._stop_worker(flush=False)
        await super().cleanup()

    async def _start_worker(self):
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._in_q = queue.Queue()
        self._out_q = asyncio.Queue()
        self._ready.clear()
        self._load_error = None
        self._thread = threading.Thread(
            target=self._worker, args=(loop, self._in_q, self._out_q), name=f"{self}-decoder", daemon=True
        )
        self._thread.start()
        self._reader_task = self.create_task(self._reader(), name="pocketsphinx_reader")
        # Model load takes ~0.3 s; wait off the event loop so a failure surfaces here.
        await asyncio.to_thread(self._ready.wait, 30.0)
        if self._load_error is not None:
            await self.push_error(f"{self}: PocketSphinx failed to load: {self._load_error}", exception=self._load_error)

    async def _stop_worker(self, flush: bool):
        thread, in_q = self._thread, self._in_q
        if thread is None or in_q is None:
            return
        self._thread = None
        in_q.put((_STOP, flush))
        await asyncio.to_thread(thread.join, 5.0)
        if thread.is_alive():  # pragma: no cover - decoder stuck
            logger.warning(f"{self}: decoder thread did not stop in time")
        if self._reader_task is not None:
            if flush and self._out_q is not None:
                # Push whatever the worker produced before it stopped.
                while not self._out_q.empty():
                    await self._handle_event(self._out_q.get_nowait())
            await self.cancel_task(self._reader_task)
            self._reader_task = None

    # -- worker thread ---------------------------------------------------
    def _worker(self, loop: asyncio.AbstractEventLoop, in_q: queue.Queue, out_q: asyncio.Queue):
        def post(events):
            for ev in events:
                loop.call_soon_threadsafe(out_q.put_nowait, ev)

        try:
            stream = PocketsphinxStream(PocketsphinxRecognizer(self._params), **self._stream_kwargs)
        except BaseException as e:  # noqa: BLE001
            self._load_error = e
            self._ready.set()
            return
        self._ready.set()
        while True:
            cmd, arg = in_q.get()
            try:
                if cmd == "audio":
                    post(stream.process(arg))
                elif cmd == "vad_present":
                    stream.vad_present()
                elif cmd == "vad_start":
                    post(stream.vad_started())
                elif cmd == "vad_stop":
                    post(stream.vad_stopped())
                elif cmd is _STOP:
                    if arg:
                        post(stream.flush())
                    stream.reset()
                    return
            except Exception as e:  # noqa: BLE001
                logger.exception(f"{self}: decoding error: {e}")
                stream.reset()

    # -- event loop side -------------------------------------------------
    def _send(self, cmd: str, arg: Any = None):
        if self._thread is not None and self._in_q is not None:
            self._in_q.put((cmd, arg))

    async def _reader(self):
        assert self._out_q is not None
        while True:
            ev = await self._out_q.get()
            await self._handle_event(ev)

    @traced_stt
    async def _handle_transcription(self, transcript: str, is_final: bool, language: Language | None = None):
        """Handle a transcription result with tracing."""
        pass

    async def _handle_event(self, ev: SttEvent):
        if ev.kind == "interim":
            await self.push_frame(
                InterimTranscriptionFrame(ev.text, self._user_id, time_now_iso8601(), self._language, result=ev)
            )
        elif ev.kind == "final":
            if not ev.text:
                return  # nothing heard; the base TTFB timeout closes the measurement
            self.confirm_finalize()
            await self.emit_stt_usage_metrics()
            await self.push_frame(
                TranscriptionFrame(ev.text, self._user_id, time_now_iso8601(), self._language, result=ev)
            )
            await self._handle_transcription(ev.text, True, self._language)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Queue audio for the decoder thread; frames are pushed by the reader task."""
        if self.sample_rate and self.sample_rate != SAMPLE_RATE:
            audio = await self._resampler.resample(audio, self.sample_rate, SAMPLE_RATE)
        if audio:
            self._send("audio", audio)
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        # Tell the decoder before the base class forwards the VAD frame, so the
        # final is on its way as early as possible.
        if isinstance(frame, SpeechControlParamsFrame) and frame.vad_params is not None:
            self._send("vad_present")
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._send("vad_start")
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self.request_finalize()
            self._send("vad_stop")
        await super().process_frame(frame, direction)
