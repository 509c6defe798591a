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
silence of its own.

Decoding runs in a separate *process*, not a thread: the binding holds the GIL
while it decodes, so a decoder thread stalled the whole bot, speaker, microphone
and VAD included. Measured on 2 shared cores with an asyncio ticker (a 5 ms sleep,
how late it wakes) over a session of 6 clips: the worst event-loop lag was 270-370 ms
with a decoder thread (the model load at session start holds the GIL ~0.4 s, an
``end_utt`` up to 0.14 s, a 20 ms chunk up to 80 ms) and 27-68 ms with the decoder
process, audio fed in real time; 330-480 ms against 22-85 ms fed as fast as it
decodes (idle loop: 3-12 ms).

Each session borrows a long-lived decoder process from a shared pool
(:class:`DecoderPool`, ``multiprocessing`` "spawn" context; started by the first
service constructed, or by :func:`preload`): the process loads the model once,
serves one session at a time, builds a fresh recognizer for the next session while
idle, and is stopped at interpreter exit (or exits when its parent dies). Audio and
VAD commands go out over a pipe without ever blocking the event loop (a bounded
window of unanswered commands, the rest queued here); events come back on the same
pipe, read by an event-loop reader callback. :class:`PocketsphinxStream` (the
synchronous state machine ``bench stt`` uses) is what the process runs, unchanged.
Like any "spawn" child, the process imports the program's main script as a module:
its top level must be guarded by ``if __name__ == "__main__":`` (run.py is).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import multiprocessing
import os
import pickle
import re
import signal
import threading
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
# Commands a user says as one short word, which Silero (start_secs 0.1) can miss
# outright (a quick "wait" in some phases of its 32 ms window against 20 ms frames):
# without a pipeline VAD start they still go out, for the barge-in filter to judge,
# if the decoded text is that short (at most UNCONFIRMED_MAX_WORDS words): the VAD
# misses short sounds only, and noise or echo decodes to longer strings of words
# ("sword oath the pause"). Not "no", "but", "sorry", "actually": short words noise
# and echo decode to.
UNCONFIRMED_COMMANDS = frozenset({"wait", "stop", "hold on", "hang on", "pause", "quiet", "enough", "cancel"})
UNCONFIRMED_MAX_WORDS = 2
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
    ever seen, the stream endpoints by itself and emits that final. An
    unconfirmed utterance that decodes to a short command (``_holds_command``)
    goes out all the same, interims and final (``confirmed=False``): the
    pipeline VAD misses short commands, and the barge-in filter judges them.
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
        # This unconfirmed utterance went out anyway: it holds a command (see
        # UNCONFIRMED_COMMANDS), so its final goes out too.
        self._command_heard = False
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
            self._command_heard = self._command_heard or _holds_command(text)
            if not self._command_heard:
                self._pending = text
                return []
        return [SttEvent("interim", text, self.audio_time, self._confirmed)]

    def _close(self, emit: bool) -> list[SttEvent]:
        text = self.rec.finish()
        confirmed = self._confirmed
        emit = emit or self._command_heard or (not confirmed and _holds_command(text))
        self._confirmed = False
        self._command_heard = False
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
        self._command_heard = False


def _holds_command(text: str) -> bool:
    """Whether decoded ``text`` is a short command: at most
    :data:`UNCONFIRMED_MAX_WORDS` words, one of :data:`UNCONFIRMED_COMMANDS` in them."""
    words = text.split()
    if len(words) > UNCONFIRMED_MAX_WORDS:
        return False
    pairs = {" ".join(words[i : i + 2]) for i in range(len(words) - 1)}
    return not UNCONFIRMED_COMMANDS.isdisjoint({*words, *pairs})

# ---------------------------------------------------------------------------
# Decoder process: the decoding runs outside this interpreter (and its GIL)
# ---------------------------------------------------------------------------

#: Seconds a session's decoder gets to open (a new process: interpreter start, imports
#: and model load, 1.1-1.7 s measured on 2 busy cores; a pooled one: a fresh
#: recognizer, usually built while it was idle, else ~0.8 s) before the session reports
#: an ErrorFrame instead of hanging. StartFrame does not wait for it: audio queues
#: meanwhile and is decoded, faster than real time, once the decoder is open.
DECODER_START_TIMEOUT_SECS = 30.0
#: Seconds the decoder gets at EndFrame to decode what is still queued and end the
#: utterance (one ``end_utt``, 0.03-0.15 s), or at CancelFrame to drop it, before the
#: process is killed.
DECODER_STOP_TIMEOUT_SECS = 5.0
#: Seconds a decoder process gets to exit when told to, then again after SIGTERM,
#: before SIGKILL.
DECODER_EXIT_TIMEOUT_SECS = 2.0
#: Idle decoder processes kept per parameter set for the next sessions; a session
#: ending with one idle already stops its own. Each holds a loaded model: 158 MB
#: resident measured (the recognizer ~100 MB, the interpreter with this module's
#: imports the rest), and a cold one takes 1-2 s to load, so one spare, not more.
POOL_MAX_IDLE = 1
#: Bytes of commands written to a decoder process and not answered yet, at most
#: (~0.45 s of 20 ms chunks); the rest wait in this process. Far below a Unix
#: socket's buffer (Linux: ~200 kB), so a write never blocks the event loop; the
#: process answers every command, so the window reopens as fast as it decodes, and a
#: CancelFrame waits for at most this much audio to be decoded.
COMMAND_WINDOW_BYTES = 16384

_PR_SET_PDEATHSIG = 1
_PATH_KEYS = ("hmm", "lm", "dict", "fdict", "jsgf", "kws", "fsg", "mdef", "featparams", "mllr")


def describe_load_error(error: BaseException, params: PocketsphinxParams) -> str:
    """Why building a recognizer failed, in words: the exception plus the model files
    (``params.config`` paths, or the bundled model) that do not exist, since
    PocketSphinx itself only says "Failed to initialize PocketSphinx"."""
    text = f"{type(error).__name__}: {error}"
    missing = [
        f"{key}={value!r}"
        for key, value in params.config.items()
        if key in _PATH_KEYS and isinstance(value, str) and not os.path.exists(value)
    ]
    if "hmm" not in params.config and not os.path.isdir(pocketsphinx.get_model_path()):
        missing.append(f"bundled model {pocketsphinx.get_model_path()!r}")
    if missing:
        text += f" (not found: {', '.join(missing)})"
    return text


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the thread that spawned it exits (best effort;
    the closed pipe is what stops it everywhere else)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - not Linux, or no prctl
        pass


def _decoder_process_main(conn, params: PocketsphinxParams, parent_pid: int, pdeathsig: bool) -> None:
    """Entry point of a decoder process (spawned: a fresh interpreter).

    Serves one session at a time over ``conn``, answering every command in order with
    exactly one message:

    * ``("open", stream_kwargs)`` -> ``("opened", pid)`` once a
      :class:`PocketsphinxStream` runs on a fresh recognizer, or ``("load_error",
      why)`` after which the process exits;
    * ``("audio", pcm)``, ``("vad_present"|"vad_start"|"vad_stop", None)`` ->
      ``("ack", events, problem)``;
    * ``("close", flush)`` -> ``("closed", events, problem)``; then, idle, it builds the
      next session's recognizer (each session gets a fresh one, as it did with a
      thread: the decoder's live cepstral mean would otherwise carry over).

    ``problem`` is None or the text of an exception the stream raised (the stream is
    then reset). ``("exit", None)``, or the parent's end of the pipe closing (it
    died), ends the process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
    if pdeathsig:
        _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return

    def build() -> tuple[PocketsphinxRecognizer | None, str | None]:
        try:
            return PocketsphinxRecognizer(params), None
        except Exception as e:  # noqa: BLE001 - reported to the session
            return None, describe_load_error(e, params)

    try:
        _serve(conn, build)
    except (EOFError, OSError):  # the parent closed its end, or died
        return


def _serve(conn, build) -> None:
    """The command loop of :func:`_decoder_process_main`."""
    rec, error = build()
    stream: PocketsphinxStream | None = None
    broken = False  # the stream raised and could not be rebuilt: ignore the session's commands
    kwargs: dict = {}
    while True:
        cmd, arg = conn.recv()
        if cmd == "exit":
            return
        if cmd == "open":
            if rec is None and error is None:
                rec, error = build()
            if error is not None:
                conn.send(("load_error", error))
                return
            assert rec is not None
            kwargs, broken = arg, False
            stream = PocketsphinxStream(rec, **kwargs)
            conn.send(("opened", os.getpid()))
            continue
        events: list[SttEvent] = []
        problem = None
        try:
            if stream is None:
                if not broken:
                    problem = f"command {cmd!r} outside a session"
            elif cmd == "audio":
                events = stream.process(arg)
            elif cmd == "vad_present":
                stream.vad_present()
            elif cmd == "vad_start":
                events = stream.vad_started()
            elif cmd == "vad_stop":
                events = stream.vad_stopped()
            elif cmd == "close":
                events = stream.flush() if arg else []
            else:
                problem = f"unknown command {cmd!r}"
        except Exception as e:  # noqa: BLE001 - reported to the session
            problem = f"{type(e).__name__}: {e}"
            try:
                stream.reset()  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - a broken recognizer: start afresh
                rec, error = build()
                stream = PocketsphinxStream(rec, **kwargs) if rec is not None else None
                broken = stream is None
                if broken:
                    problem += f"; rebuilding the recognizer failed: {error}"
        if cmd != "close":
            conn.send(("ack", events, problem))
            continue
        try:
            if stream is not None:
                stream.reset()
        except Exception:  # noqa: BLE001 - the recognizer is rebuilt anyway
            pass
        stream, rec = None, None
        conn.send(("closed", events, problem))
        rec, error = build()


class DecoderProcess:
    """This side of one decoder process (:func:`_decoder_process_main`).

    Attributes:
        conn: Our end of the duplex pipe (a Unix socket pair).
        process: The ``multiprocessing`` process ("spawn" context, daemonic).
        key: The parameter set it was built for (see :meth:`DecoderPool.key`).
        usable: False once a session saw it fail or time out: never pooled again.
    """

    def __init__(self, params: PocketsphinxParams, key: str):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe(duplex=True)
        pdeathsig = threading.current_thread() is threading.main_thread()
        self.process = ctx.Process(
            target=_decoder_process_main,
            args=(child_conn, params, os.getpid(), pdeathsig),
            name="pocketsphinx-decoder",
            daemon=True,
        )
        self.process.start()
        child_conn.close()
        self.key = key
        self.usable = True
        self._stopped = False
        self._pid = self.process.pid
        self._exitcode: int | None = None

    @property
    def pid(self) -> int | None:
        return self._pid

    def alive(self) -> bool:
        """Whether the process runs (reaps it if it has exited)."""
        return not self._stopped and self.process.is_alive()

    def exit_description(self) -> str:
        code = self._exitcode if self._stopped else self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def _request_exit(self) -> None:
        try:
            self.conn.send(("exit", None))
        except (OSError, ValueError):
            pass

    def _finish(self) -> None:
        if self._stopped:
            return
        self.conn.close()
        if not self.process.is_alive():
            self._exitcode = self.process.exitcode
            self._stopped = True
            self.process.close()

    def stop(self, timeout: float = DECODER_EXIT_TIMEOUT_SECS) -> None:
        """Stop and reap the process (blocking: at interpreter exit, not on the loop)."""
        if self._stopped:
            return
        self._request_exit()
        for signal_it in (None, self.process.terminate, self.process.kill):
            if signal_it is not None:
                signal_it()
            self.process.join(timeout)
            if not self.process.is_alive():
                break
        self._finish()

    async def astop(self, timeout: float = DECODER_EXIT_TIMEOUT_SECS) -> None:
        """:meth:`stop` without blocking the event loop (polls every 10 ms)."""
        if self._stopped:
            return
        self._request_exit()
        loop = asyncio.get_running_loop()
        for signal_it in (None, self.process.terminate, self.process.kill):
            if signal_it is not None:
                signal_it()
            deadline = loop.time() + timeout
            while self.process.is_alive() and loop.time() < deadline:
                await asyncio.sleep(0.01)
            if not self.process.is_alive():
                break
        self._finish()


class DecoderPool:
    """Decoder processes shared by the sessions of this interpreter.

    :meth:`acquire` hands a session an idle process built for its parameters, or
    spawns one; :meth:`release` takes it back (at most ``max_idle`` idle per parameter
    set). Every process still running at interpreter exit is stopped by
    :meth:`shutdown` (registered with ``atexit`` at the first spawn); a process whose
    parent dies sees its pipe close (and, on Linux, gets SIGTERM) and exits.
    """

    def __init__(self, max_idle: int = POOL_MAX_IDLE):
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: dict[str, list[DecoderProcess]] = {}
        self._live: set[DecoderProcess] = set()
        self._atexit_registered = False

    @staticmethod
    def key(params: PocketsphinxParams) -> str:
        return repr(params)

    def acquire(self, params: PocketsphinxParams) -> DecoderProcess:
        """A process for ``params`` for one session: an idle one, or a new one."""
        key = self.key(params)
        dead = []
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                proc = idle.pop()
                if proc.alive():
                    break
                self._live.discard(proc)  # died while idle (reaped by alive())
                dead.append(proc)
            else:
                proc = None
        for d in dead:
            d.stop()  # exited already: closes its pipe at once
        return proc if proc is not None else self._spawn(params, key)

    def _spawn(self, params: PocketsphinxParams, key: str) -> DecoderProcess:
        proc = DecoderProcess(params, key)
        with self._lock:
            self._live.add(proc)
            if not self._atexit_registered:
                atexit.register(self.shutdown)
                self._atexit_registered = True
        return proc

    def release(self, proc: DecoderProcess) -> bool:
        """Take back a process whose session ended cleanly. False: the pool has enough
        idle ones (or the process failed); the caller stops it and calls :meth:`forget`."""
        with self._lock:
            idle = self._idle.setdefault(proc.key, [])
            if proc.usable and proc.alive() and len(idle) < self.max_idle and proc in self._live:
                idle.append(proc)
                return True
        return False

    def forget(self, proc: DecoderProcess) -> None:
        with self._lock:
            self._live.discard(proc)
            idle = self._idle.get(proc.key, [])
            if proc in idle:
                idle.remove(proc)

    def preload(self, params: PocketsphinxParams | None = None) -> None:
        """Spawn an idle process for ``params`` now (it loads the model in the
        background), unless one is idle already, so the first session does not wait
        for it. Returns at once."""
        params = params or PocketsphinxParams()
        key = self.key(params)
        with self._lock:
            if any(p.alive() for p in self._idle.get(key, [])):
                return
        proc = self._spawn(params, key)
        with self._lock:
            self._idle.setdefault(key, []).append(proc)

    def pids(self) -> list[int]:
        """Pids of the processes started and not stopped yet (idle or in a session)."""
        with self._lock:
            return [p.pid for p in self._live if p.pid is not None]

    def idle_pids(self) -> list[int]:
        with self._lock:
            return [p.pid for ps in self._idle.values() for p in ps if p.pid is not None]

    def shutdown(self) -> None:
        """Stop every process (blocking, up to ~3 x DECODER_EXIT_TIMEOUT_SECS each)."""
        with self._lock:
            procs = list(self._live)
            self._live.clear()
            self._idle.clear()
        for proc in procs:
            proc.usable = False
            proc._request_exit()  # all at once, then wait for each
        for proc in procs:
            proc.stop()


_POOL = DecoderPool()


def decoder_pool() -> DecoderPool:
    """The pool of decoder processes the services of this interpreter share."""
    return _POOL


def preload(params: PocketsphinxParams | None = None) -> None:
    """Start a decoder process ahead of the first session (see :meth:`DecoderPool.preload`)."""
    _POOL.preload(params)


class _CommandWindow:
    """Commands on their way to a decoder process, written without blocking the loop.

    At most ``window_bytes`` of written commands are unanswered at any time (plus one
    command, however large); the others wait in :attr:`_unsent` until answers come
    back (:meth:`answered`). :meth:`empty` is True once every command put has been
    answered, i.e. decoded, its events already queued for the reader task
    (bench/audio.py's primed service waits on it as ``_in_q.empty()``).
    """

    def __init__(self, conn, window_bytes: int = COMMAND_WINDOW_BYTES):
        self._conn = conn
        self._window = window_bytes
        self._unsent: collections.deque[bytes] = collections.deque()
        self._in_flight: collections.deque[int] = collections.deque()
        self._in_flight_bytes = 0
        self.broken = False

    def put(self, command: tuple) -> None:
        if self.broken:
            return
        self._unsent.append(pickle.dumps(command, protocol=pickle.HIGHEST_PROTOCOL))
        self._pump()

    def _pump(self) -> None:
        while self._unsent and (
            not self._in_flight or self._in_flight_bytes + len(self._unsent[0]) <= self._window
        ):
            data = self._unsent.popleft()
            try:
                self._conn.send_bytes(data)
            except (OSError, ValueError):  # the process died: the reader reports it
                self.break_off()
                return
            self._in_flight.append(len(data))
            self._in_flight_bytes += len(data)

    def answered(self) -> None:
        if self._in_flight:
            self._in_flight_bytes -= self._in_flight.popleft()
        self._pump()

    def discard_unsent(self) -> None:
        self._unsent.clear()

    def break_off(self) -> None:
        self.broken = True
        self._unsent.clear()
        self._in_flight.clear()
        self._in_flight_bytes = 0

    def empty(self) -> bool:
        return not self._unsent and not self._in_flight

    def qsize(self) -> int:
        return len(self._unsent) + len(self._in_flight)


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


@dataclass
class _WorkerProblem:
    """A decoding error (``lost=False``) or the process gone (``lost=True``), queued
    for the reader task, which turns it into an ErrorFrame."""

    message: str
    lost: bool = False


_END_OF_EVENTS = object()


class PocketsphinxSTTService(STTService):
    """Streaming offline STT with CMU PocketSphinx (bundled en-us model).

    Pushes ``InterimTranscriptionFrame`` while the user speaks and a
    ``TranscriptionFrame`` (``finalized=True``) right after
    ``VADUserStoppedSpeakingFrame``. Audio is resampled to 16 kHz when the
    pipeline runs at another rate. Decoding happens in a decoder process borrowed
    from the shared :class:`DecoderPool` for the session (returned at EndFrame,
    CancelFrame or cleanup); its events come back through a reader callback on the
    event loop into an asyncio queue, read by a task that pushes the frames. A
    decoder that fails to load, dies or raises is reported as an ``ErrorFrame``
    naming the cause.
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
        self._decoder: DecoderProcess | None = None
        # Commands not yet answered by the decoder (bench/audio.py reads ``_in_q.empty()``).
        self._in_q: _CommandWindow | None = None
        self._out_q: asyncio.Queue | None = None
        self._reader_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._opened: asyncio.Future | None = None
        self._closed: asyncio.Future | None = None
        # Spawn the decoder now (if none is idle), so it has loaded by start().
        try:
            _POOL.preload(self._params)
        except Exception as e:  # noqa: BLE001 - start() tries again and reports it
            logger.warning(f"{self}: could not preload a PocketSphinx decoder process: {e}")

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
        """Borrow a decoder process and open the session on it, without waiting.

        StartFrame is not held up by a cold start (spawn, imports, model load: 1-2 s on
        2 busy cores; Pipecat's ``run_test`` gives a pipeline 1 s to start): commands
        queue behind the "open" and are decoded, faster than real time, once it is
        answered. The reader task waits for that answer and reports a failure.
        """
        if self._decoder is not None:
            return
        loop = self._loop = asyncio.get_running_loop()
        try:
            decoder = _POOL.acquire(self._params)
        except Exception as e:  # noqa: BLE001 - e.g. no more processes
            await self.push_error(f"{self}: could not start a PocketSphinx decoder process: {e}", exception=e)
            return
        self._decoder = decoder
        self._in_q = _CommandWindow(decoder.conn)
        self._out_q = asyncio.Queue()
        self._opened = loop.create_future()
        self._closed = None
        loop.add_reader(decoder.conn.fileno(), self._on_readable, decoder)
        self._reading = True
        self._in_q.put(("open", self._stream_kwargs))
        self._reader_task = self.create_task(self._reader(), name="pocketsphinx_reader")

    async def _stop_worker(self, flush: bool):
        """End the session: ``flush`` (EndFrame) finalizes a confirmed utterance and
        pushes every event first; otherwise queued audio is dropped. The process goes
        back to the pool if it ended the session cleanly, else it is stopped."""
        decoder = self._decoder
        if decoder is None:
            return
        commands, out_q, task, opened = self._in_q, self._out_q, self._reader_task, self._opened
        self._decoder = None
        clean = False
        if decoder.usable and commands is not None and not commands.broken:
            if not flush:
                commands.discard_unsent()
            self._closed = asyncio.get_running_loop().create_future()
            commands.put(("close", flush))
            timeout = DECODER_STOP_TIMEOUT_SECS
            if opened is not None and not opened.done():
                timeout += DECODER_START_TIMEOUT_SECS  # still loading: let it finish
            done, _ = await asyncio.wait({self._closed}, timeout=timeout)
            clean = bool(done) and self._closed.result() == "closed"
            if not done:
                logger.warning(f"{self}: decoder process (pid {decoder.pid}) did not stop; killing it")
        self._stop_reading(decoder)
        if task is not None:
            if flush and out_q is not None:
                # Let the reader push what the decoder produced before it stopped, in order.
                out_q.put_nowait(_END_OF_EVENTS)
                await asyncio.wait({task}, timeout=DECODER_STOP_TIMEOUT_SECS)
            await self.cancel_task(task)
            self._reader_task = None
        self._in_q = None
        self._out_q = None
        if not (clean and _POOL.release(decoder)):
            decoder.usable = False
            await decoder.astop()
            _POOL.forget(decoder)

    # -- decoder pipe (event-loop callbacks) ----------------------------
    def _stop_reading(self, decoder: DecoderProcess) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(decoder.conn.fileno())
            self._reading = False

    @staticmethod
    def _resolve(fut: asyncio.Future | None, value: Any) -> None:
        if fut is not None and not fut.done():
            fut.set_result(value)

    def _give_up_on(self, decoder: DecoderProcess) -> None:
        """The process can serve this session no more: stop reading it, drop commands
        (``_in_q.empty()`` turns True) and release a stop waiting for its "closed"."""
        decoder.usable = False
        self._stop_reading(decoder)
        if self._in_q is not None:
            self._in_q.break_off()
        self._resolve(self._closed, "lost")

    def _on_readable(self, decoder: DecoderProcess) -> None:
        """Read every whole message waiting on the pipe (the process writes each in one
        go, so ``recv`` after ``poll`` does not wait)."""
        try:
            while self._reading and decoder.conn.poll():
                self._on_message(decoder, decoder.conn.recv())
        except (EOFError, OSError):
            self._on_lost(decoder)

    def _on_message(self, decoder: DecoderProcess, msg: tuple) -> None:
        kind = msg[0]
        if self._in_q is not None:
            self._in_q.answered()  # every reply answers the oldest command
        if kind == "opened":
            self._resolve(self._opened, ("opened", msg[1]))
        elif kind == "load_error":
            self._give_up_on(decoder)  # the process exits next: its EOF is no news
            self._resolve(self._opened, ("load_error", msg[1]))
        elif kind in ("ack", "closed"):
            _, events, problem = msg
            if self._out_q is not None:
                for ev in events:
                    self._out_q.put_nowait(ev)
                if problem:
                    self._out_q.put_nowait(_WorkerProblem(f"{self}: PocketSphinx decoding error: {problem}"))
            if kind == "closed":
                self._resolve(self._closed, "closed")

    def _on_lost(self, decoder: DecoderProcess) -> None:
        self._give_up_on(decoder)
        if self._opened is not None and not self._opened.done():
            self._resolve(self._opened, ("lost", None))
        elif self._out_q is not None:
            self._out_q.put_nowait(_WorkerProblem("", lost=True))

    # -- event loop side -------------------------------------------------
    def _send(self, cmd: str, arg: Any = None):
        if self._decoder is not None and self._in_q is not None:
            self._in_q.put((cmd, arg))

    async def _reader(self):
        decoder, out_q, opened = self._decoder, self._out_q, self._opened
        assert decoder is not None and out_q is not None and opened is not None
        done, _ = await asyncio.wait({opened}, timeout=DECODER_START_TIMEOUT_SECS)
        kind, detail = opened.result() if done else ("timeout", None)
        if kind != "opened":
            await self._start_failed(decoder, kind, detail)
            return
        while True:
            ev = await out_q.get()
            if ev is _END_OF_EVENTS:
                return
            if not isinstance(ev, _WorkerProblem):
                await self._handle_event(ev)
            elif not ev.lost:
                await self.push_error(ev.message)
            else:
                how = await self._exit_description(decoder)
                message = (
                    f"{self}: PocketSphinx decoder process (pid {decoder.pid}) died: {how}; "
                    "no more transcriptions this session"
                )
                await self.push_error(message, exception=RuntimeError(message))
                return

    async def _exit_description(self, decoder: DecoderProcess) -> str:
        """How the process ended, once it is reaped (up to 1 s after its pipe closed)."""
        for _ in range(100):
            if not decoder.alive():
                break
            await asyncio.sleep(0.01)
        return decoder.exit_description()

    async def _start_failed(self, decoder: DecoderProcess, kind: str, detail: Any):
        self._give_up_on(decoder)
        if kind == "load_error":
            message = f"{self}: PocketSphinx failed to load: {detail}"
        elif kind == "lost":
            how = await self._exit_description(decoder)
            message = f"{self}: PocketSphinx decoder process (pid {decoder.pid}) died while loading: {how}"
        else:
            message = (
                f"{self}: PocketSphinx decoder process (pid {decoder.pid}) was not ready "
                f"after {DECODER_START_TIMEOUT_SECS:.0f} s"
            )
        await self.push_error(message, exception=RuntimeError(message))
        await decoder.astop()  # reap it (a load error exits by itself; a hung one is killed)
        _POOL.forget(decoder)

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
        """Send audio to the decoder process; frames are pushed by the reader task."""
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
