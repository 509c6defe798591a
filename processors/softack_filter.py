"""SoftAckInterruptionFilter: a Pipecat FrameProcessor that lets backchannels through
without stopping the bot.

Place it between the STT service and the user context aggregator. Either VAD shape
works: the VAD inside the user aggregator (Pipecat's getting-started examples)::

    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()))
    pipeline = Pipeline([transport.input(), stt, SoftAckInterruptionFilter(),
                         user_aggregator, llm, tts, transport.output(), assistant_aggregator])

or a ``VADProcessor`` right after ``transport.input()``. In the first shape the filter
takes the VAD over from the aggregator at setup (:mod:`pipecat_softack.placement`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.audio.vad.vad_controller import VADController
from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EagerTranscriptionFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    STTMetadataFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserBackchannelFrame,
    UserSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADParamsUpdateFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.utils.time import time_now_iso8601

from pipecat_softack.acoustic_echo import KEEP_SECS, MIN_CORRELATION, AudioHistory, echo_correlation
from pipecat_softack.bot_speech import BotSpeechRecord
from pipecat_softack.classifier import BackchannelClassifier, Verdict, normalize
from pipecat_softack.config import (
    SoftAckConfigError,
    check_content_confirmations,
    check_interim_min_speech,
    load_settings,
)
from pipecat_softack.confidence import transcript_confidence
from pipecat_softack.echo import echo_explains, echo_residue
from pipecat_softack.placement import Placement, inspect_placement
from pipecat_softack.speech import UninterruptibleSpeechFrame

# Speech start/stop frames, by source. Speech is "on" while any source has started
# and not stopped; a start frame arriving while speech is off begins a new utterance.
_SPEECH_STARTS = {
    VADUserStartedSpeakingFrame: "vad",
    UserStartedSpeakingFrame: "user",
    ProposedUserStartedSpeakingFrame: "proposed",
}
_SPEECH_STOPS = {
    VADUserStoppedSpeakingFrame: "vad",
    UserStoppedSpeakingFrame: "user",
    ProposedUserStoppedSpeakingFrame: "proposed",
}
_START_TYPES = tuple(_SPEECH_STARTS)
_STOP_TYPES = tuple(_SPEECH_STOPS)
# Every frame of a user utterance that the filter holds while the bot speaks. Audio
# is not among them: the STT and the turn analyzer keep hearing everything.
_GATED = (
    *_SPEECH_STARTS,
    *_SPEECH_STOPS,
    UserSpeakingFrame,
    InterruptionFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    EagerTranscriptionFrame,
)

# Frames the VAD adopted from the user aggregator analyses (see placement.py).
_VAD_INPUT = (InputAudioRawFrame, VADParamsUpdateFrame)

# Frames besides the gated ones that change the filter's state.
_STATEFUL = (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    UninterruptibleSpeechFrame,
    TTSSpeakFrame,
    EndFrame,
    CancelFrame,
    STTMetadataFrame,  # the STT's P99 transcript latency (see _arm_timer)
)

# Seconds without a BotSpeakingFrame after which the bot counts as silent, once this
# bot utterance has sent any: Pipecat's output transport broadcasts one every 0.2 s
# while bot audio plays and declares the bot stopped itself after 3 s without audio
# (BOT_VAD_STOP_FALLBACK_SECS), so past 3.5 s its BotStoppedSpeakingFrame was lost.
BOT_SPEAKING_STALE_SECS = 3.5
# The decision reason when no final came after the speech stopped.
TRANSCRIPT_TIMEOUT = "transcript timeout"
# The decision reason of an utterance reopened by its final, and the mark on other
# decisions of a reopened utterance (see _reopens).
LATE_FINAL = "late final"
REOPENED = "reopened"

# Seconds of microphone audio before the speech start that the acoustic echo check
# reads (Silero's start_secs and its 32 ms windows: the VAD start comes that late), and
# the most it reads from there (an echo burst shows in its first seconds); and the new
# audio after which a held utterance is correlated again (each interim asks).
ECHO_PREROLL_SECS = 0.3
ECHO_CHECK_MAX_SECS = 3.0
ECHO_RECHECK_SECS = 0.25
# Microphone audio kept while nothing is held (the pre-roll and the VAD's lag behind
# the audio); from a hold's start on, all of it until the hold is decided.
HEARD_KEEP_SECS = 1.0

DecisionKind = Literal["backchannel", "interruption", "noise", "echo", "discarded"]
_EVENTS = {
    "backchannel": "on_backchannel",
    "interruption": "on_interruption_released",
    "noise": "on_noise_dropped",
    "echo": "on_echo_dropped",
    "discarded": "on_speech_discarded",
}
SpeechPolicy = Literal["keep", "discard"]


@dataclass(frozen=True)
class SoftAckDecision:
    """One decision of the filter on a held utterance, passed to its event handlers.

    Attributes:
        kind: ``"backchannel"`` (dropped, reported as ``UserBackchannelFrame``),
            ``"interruption"`` (held frames released in order), ``"noise"`` (voice
            activity with no words, dropped), ``"echo"`` (words the bot's own recent
            speech explains, or sound that follows the audio it played, dropped; see
            :mod:`pipecat_softack.echo` and :mod:`pipecat_softack.acoustic_echo`) or
            ``"discarded"`` (said during
            uninterruptible speech with ``user_speech_during_uninterruptible=
            "discard"``, dropped).
        text: What the user said so far (finals joined, then the latest interim).
        reason: Why the decision was taken now, e.g. ``"content or command word"``,
            ``"utterance ended"``, ``"transcript timeout"``, ``"max hold"``,
            ``"bot stopped speaking"``, ``"bot speech stale"``, ``"next utterance"``,
            ``"pipeline ended"``, ``"bot grace period over"``, ``"late transcript"``
            (a transcript of the utterance dropped just before: one frame, dropped
            with it, no second ``UserBackchannelFrame``), ``"late final"`` (the
            final of an utterance dropped at the transcript timeout as ``"noise"``
            for want of one, arriving next: the utterance judged again, its frames
            and the final, which were counted in the noise decision too; an interim
            going on from the dropped words reopens it the same way, and its
            decision's reason ends in ``", reopened"``).
        deferred: Why the interruption had to wait before this decision
            (``"uninterruptible speech"``, ``"bot grace period"``, ``"min_words"``,
            ``"min_speech_secs"``), or None.
        held_secs: Seconds from the first held frame to the decision.
        after_speech_stop_secs: Seconds from the end of the user's speech to the
            decision, or None if the decision came while the user still spoke.
        frames: Number of frames released or dropped.
    """

    kind: DecisionKind
    text: str
    reason: str
    held_secs: float
    after_speech_stop_secs: float | None
    frames: int
    deferred: str | None = None


@dataclass
class _Utterance:
    """The frames of one user utterance held while the bot speaks."""

    started_at: float = field(default_factory=lambda: time.monotonic())  # a clock a test swaps in applies
    frames: list[Frame] = field(default_factory=list)
    finals: list[str] = field(default_factory=list)
    interim: str = ""
    last_transcript: TranscriptionFrame | InterimTranscriptionFrame | None = None
    stopped_at: float | None = None
    speech_started_at: float | None = None
    content_interims: int = 0  # consecutive interims with a content word
    low_confidence: bool = False  # the latest interim's content was a low-confidence guess
    deferred: str | None = None  # why an interruption is waiting (see _gate)
    recheck: tuple[str, bool] = ("", False)  # (reason, by_command) to look again with
    awaits_final: bool = False  # dropped for want of a final: a late one reopens it
    reopened: bool = False  # held again after such a drop (its decision says so)

    @property
    def text(self) -> str:
        return " ".join([*self.finals, self.interim]).strip()


class SoftAckInterruptionFilter(FrameProcessor):
    """Holds the start of a user turn while the bot speaks until the words say what it is.

    Behaviour (DESIGN.md section 2, "release early, drop late"):

    - Bot state comes from ``BotStartedSpeakingFrame``/``BotStoppedSpeakingFrame``,
      accepted in either direction.
    - While the bot is silent every frame passes through at once.
    - While the bot speaks, the downstream frames of a user utterance that could start
      a turn or interrupt (VAD/user/proposed start and stop frames,
      ``UserSpeakingFrame``, ``InterruptionFrame``, interim and final transcriptions)
      are held. Audio and every other frame pass untouched.
    - On each transcript the utterance's text so far is classified: a command keyword
      or a non-soft-ack word releases the held frames in their original order, and the
      rest of the utterance passes through. A command keyword releases at once; a
      content word in an interim releases once it has stood in
      ``content_confirmations`` consecutive interims (or reaches a final), because a
      streaming STT's first guesses at a short backchannel are often content words
      ("oh" -> "over" -> "oh really"), and only once the speech has lasted
      ``interim_min_speech_secs`` (longer than most backchannels); shorter speech is
      decided on its final transcript.
    - When the utterance ends (speech stopped and a final transcript with no newer
      interim) with only soft-acks, its held frames are dropped and one
      ``UserBackchannelFrame`` with its text is pushed downstream instead.
    - If no final comes within ``transcript_timeout_secs`` of the speech stopping (or
      the P99 latency the STT advertises in its ``STTMetadataFrame``, if longer), the
      utterance is dropped as noise: with no words, or with content that only an
      interim held and that never met the rule above (a streaming STT whose final comes
      back empty has taken its guess back: PocketSphinx and Deepgram then send no
      frame; a user's "uh-huh" over the bot, interim "but", final empty). Soft-acks
      only are a backchannel. If its final still comes next (no other frame and no
      speech start in between), it reopens the utterance: judged again on its final,
      with its frames, in a decision of its own (released as a user turn if the bot
      has stopped). An interim that goes on from the dropped words reopens it too.
    - Speech held longer than ``max_hold_secs`` without a decision is released. Once
      the VAD has heard the speech end, an STT's own turn that stays open (Flux,
      AssemblyAI, Speechmatics) gets ``max_hold_secs`` from there to end, and the
      utterance is then decided on its words.
    - Once VAD frames have been seen in the pipeline, transcripts that no speech
      start confirms (an STT with its own speech detector hearing noise or echo) do
      not interrupt: they wait for the VAD, and are dropped as noise at the timeout.
      A command keyword is the exception: it releases with or without a VAD start,
      because Silero misses short one-word commands (a quick "wait" in some phases
      of its 32 ms window against 20 ms transport frames, measured on
      ``tests/audio/wait__joe_x125.wav``), and a missed "stop" costs more than
      a rare command heard in noise. Echo rejection still applies to it.
    - If the bot stops speaking while an utterance is held, it is released as a
      normal user turn. A bot that sent ``BotSpeakingFrame`` s and then none for
      ``BOT_SPEAKING_STALE_SECS`` (3.5 s) counts as stopped: its
      ``BotStoppedSpeakingFrame`` was lost, and soft-acks answering a silent bot
      must not be dropped forever.
    - A transcript that arrives after its utterance was dropped, before the next
      speech start (a late or repeated final, an interim after its final: its words
      and the dropped ones a prefix of each other, no interruption in them), is
      dropped with it (reason ``"late transcript"``), never a user turn of its own.
    - An ``InterruptionFrame`` is held only right after a speech start (a turn
      processor upstream interrupting for it). Any other one (the app, a function
      call result, RTVI) passes at once, past a held utterance.
    - A new speech start after the speech stopped closes the held utterance: separate
      utterances are judged separately ("okay" ... "mhm" are two backchannels).
    - Interruption controls, composed with the verdict: while the bot plays
      uninterruptible speech (``uninterruptible=True``, or a ``TTSSpeakFrame`` whose
      ``interruptible`` is False, e.g. from :func:`pipecat_softack.say`, or after an
      ``UninterruptibleSpeechFrame`` from either side), during the first
      ``bot_grace_secs`` of a bot utterance, and while an utterance has fewer than
      ``min_words`` words or ``min_speech_secs`` of speech (command keywords are
      exempt from these two), an interruption is deferred: held until the condition
      clears, then released. After uninterruptible speech, what the user said
      becomes the next user turn (``user_speech_during_uninterruptible="keep"``) or
      is dropped and reported (``"discard"``).
    - Confidence: where the STT reports one (:mod:`pipecat_softack.confidence`:
      Deepgram, AssemblyAI), an interim that leaves the utterance at most
      ``low_confidence_max_words`` words, with a content word, and that the STT
      gives a confidence (of the whole transcript) below ``min_interim_confidence``
      does not count towards ``content_confirmations``: it waits for the final, and
      with no final it is dropped as noise. Command keywords release at once
      whatever the confidence. With an STT that reports no confidence (Whisper,
      pocketsphinx) the rule does not apply.
    - Context: the classifier is given what the bot last played (the same
      :class:`BotSpeechRecord`), so "yeah" right after "Would you like me to book
      it?" is an answer and interrupts, while after a statement it is a backchannel.
    - Echo rejection (``echo_rejection=True``): the filter records what the output
      transport has played (a :class:`BotSpeechRecord` it attaches at setup to the
      first output transport after it). A held utterance whose words the bot's own words
      since ``echo_window_secs`` before the speech began explain (a fuzzy match that
      tolerates recognizer errors; rule in :mod:`pipecat_softack.echo`) never
      interrupts: it is dropped as ``"echo"`` when it ends (also at ``EndFrame``).
      Any word of the user's own, such as "wait" in "wait, the price?", makes it
      an interruption. A backchannel said over the bot and heard after some of the
      bot's echo ("it yeah") is judged without the words the bot's recent speech
      explains: a backchannel (:func:`pipecat_softack.echo.echo_residue`; never
      with a command keyword or a question mark in the utterance, nor when it opens
      with the user's own words, as "yes, the blue one" does).
    - Acoustic echo check (``echo_min_correlation``, with ``echo_rejection``): the
      filter keeps the last second of microphone audio (the ``InputAudioRawFrame`` s
      it passes while the bot speaks), and a held utterance's until it is decided;
      the record keeps the last 6 s of the audio the output transport played. A held utterance whose sound follows the played sound, at
      some delay up to 0.6 s (envelope correlation at least ``echo_min_correlation``,
      from ``ECHO_PREROLL_SECS`` before its speech start; rule and figures in
      :mod:`pipecat_softack.acoustic_echo`), is echo whatever words the STT made of
      it ("i but per", a misheard "hold on"); with a command keyword in it, only at
      halfway from that threshold to 1.
    - ``EndFrame`` decides a held utterance (soft-acks are reported, noise dropped);
      ``CancelFrame`` discards it with a log line. No timer outlives either.
    - Placement, found at setup (:mod:`pipecat_softack.placement`): with the VAD
      inside the downstream user aggregator (``LLMUserAggregatorParams(vad_analyzer=
      ...)``), the filter takes that VAD over and runs it as a ``VADProcessor`` would,
      so its frames are gated like a ``VADProcessor``'s. Where it cannot gate turn
      starts (no user aggregator downstream, placed after it, two VADs), it logs one
      WARNING at setup naming what to change. :attr:`placement` tells what it found.

    Event handlers, each called with ``(filter, decision: SoftAckDecision)``:
    ``on_backchannel``, ``on_interruption_released``, ``on_noise_dropped``,
    ``on_echo_dropped``, ``on_speech_discarded``.

    Args:
        classifier: The decision core; by default a :class:`BackchannelClassifier`
            built from the lexicon arguments below.
        soft_acks: Backchannel phrases (replace the defaults; see
            :mod:`pipecat_softack.config` for the precedence with environment variables).
        command_keywords: Phrases that always interrupt.
        language: Built-in defaults to use: ``"en"`` (default) or ``"es"``.
        config_file: TOML file overriding the built-in lists and timings.
        transcript_timeout_secs: Seconds after the user's speech stops to wait for a
            final transcript (default 1.0; the STT's advertised P99 latency if longer).
        max_hold_secs: Seconds an undecided utterance may be held while the user
            keeps speaking (default 3.0).
        content_confirmations: Consecutive interims that must hold a content word
            before it releases (default 2; 1 releases on the first interim). Measured
            on pocketsphinx, whose interims pass through content words on the way to
            "oh really" or "i see" (tests/test_real_audio.py).
        interim_min_speech_secs: Seconds the user's speech must have gone on (from
            its VAD start, or from the first held frame without a VAD) before a
            content word on an interim may release (default 0.6: backchannels
            mostly last 200-600 ms, Ward & Tsukahara 2000; not fitted on any set).
            Shorter speech is decided on its final transcript, because a streaming
            STT's first interims of a short backchannel are often content words
            ("exactly" -> "exam", "i see" -> "fight"). Command keywords are exempt.
            0 turns it off. While the speech goes on, the next interim looks again.
        min_words: Words an interruption needs (default 0: off).
        min_speech_secs: Seconds of speech an interruption needs (default 0: off).
        bot_grace_secs: Seconds at the start of each bot utterance that nothing
            interrupts (default 0: off).
        uninterruptible: Make every bot utterance uninterruptible (default False).
        user_speech_during_uninterruptible: ``"keep"`` (default): what the user says
            during uninterruptible speech becomes the next user turn when it ends;
            ``"discard"``: it is dropped and reported (``on_speech_discarded``).
        min_interim_confidence: STT confidence (0..1) below which a short content
            interim does not count (default 0.6; chosen, not fitted on any set:
            Deepgram's interims of clear words sit well above it).
        low_confidence_max_words: Words up to which an interim counts as short for
            the confidence rule (default 2).
        echo_rejection: Drop held utterances the bot's own recent words explain
            (default True).
        echo_window_secs: Seconds before the user's speech began from which the bot's
            played words count as possible echo (default 2.0: a streaming STT's
            latency plus an echo path's delay; the text playing at that moment always
            counts).
        echo_min_correlation: Envelope correlation (0..1] of the heard with the played
            audio at or above which a held utterance is echo (default 0.9, from
            measurements on the tuned clips: :mod:`pipecat_softack.acoustic_echo`);
            one holding a command keyword needs halfway from it to 1 (0.95). None
            turns the acoustic check off (the text rule stays) and the default
            record then keeps no audio.
        echo_warmup_secs: Seconds of bot speech, counted from the session's start
            over all bot utterances, during which anything heard over the bot is
            dropped as echo, command keywords included (default 0: off). An echo
            canceller starts cold and lets the first echo through until it has
            converged (measured on the virtual sound card of
            tests/test_local_soundcard.py: "wait nope" released 4 s into the
            greeting). The rule and the 3.0 s the reference bot sets for its local
            transport are LiveKit Agents' ``AgentSession(aec_warmup_duration=3.0)``
            default; a browser transport, whose echo canceller has run since the
            call began, needs none.
        bot_speech: The record of played bot speech to read; by default the filter
            makes one and attaches it at setup to the first output transport after it
            (pass your own, fed by ``watch``/``add``, for any other source).
        **kwargs: Passed to :class:`FrameProcessor`.

    Raises:
        SoftAckConfigError: a bad setting, or ``classifier`` given together with
            ``soft_acks``/``command_keywords``/``language``.
    """

    def __init__(
        self,
        *,
        classifier: BackchannelClassifier | None = None,
        soft_acks: Iterable[str] | None = None,
        command_keywords: Iterable[str] | None = None,
        language: str | None = None,
        config_file: str | os.PathLike | None = None,
        transcript_timeout_secs: float | None = None,
        max_hold_secs: float | None = None,
        content_confirmations: int = 2,
        interim_min_speech_secs: float = 0.6,
        min_words: int | None = None,
        min_speech_secs: float | None = None,
        bot_grace_secs: float | None = None,
        uninterruptible: bool = False,
        user_speech_during_uninterruptible: SpeechPolicy = "keep",
        min_interim_confidence: float = 0.6,
        low_confidence_max_words: int = 2,
        echo_rejection: bool = True,
        echo_window_secs: float = 2.0,
        echo_min_correlation: float | None = MIN_CORRELATION,
        echo_warmup_secs: float = 0.0,
        bot_speech: BotSpeechRecord | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._content_confirmations = check_content_confirmations(content_confirmations)
        self._interim_min_speech = check_interim_min_speech(interim_min_speech_secs)
        if classifier is not None and any(
            a is not None for a in (soft_acks, command_keywords, language)
        ):
            raise SoftAckConfigError(
                "pass either classifier= or soft_acks=/command_keywords=/language=, not both"
            )
        settings = load_settings(
            language=language,
            soft_acks=soft_acks,
            command_keywords=command_keywords,
            config_file=config_file,
            transcript_timeout_secs=transcript_timeout_secs,
            max_hold_secs=max_hold_secs,
            min_words=min_words,
            min_speech_secs=min_speech_secs,
            bot_grace_secs=bot_grace_secs,
        )
        if user_speech_during_uninterruptible not in ("keep", "discard"):
            raise SoftAckConfigError(
                "user_speech_during_uninterruptible= must be 'keep' or 'discard', got "
                f"{user_speech_during_uninterruptible!r}"
            )
        if not isinstance(echo_window_secs, (int, float)) or not 0 <= echo_window_secs < float("inf"):
            raise SoftAckConfigError(
                f"echo_window_secs= must be a number of seconds >= 0, got {echo_window_secs!r}"
            )
        warmup_ok = (
            isinstance(echo_warmup_secs, (int, float))
            and not isinstance(echo_warmup_secs, bool)
            and 0 <= echo_warmup_secs < float("inf")
        )
        if not warmup_ok:
            raise SoftAckConfigError(
                f"echo_warmup_secs= must be a number of seconds >= 0, got {echo_warmup_secs!r}"
            )
        correlation_ok = echo_min_correlation is None or (
            isinstance(echo_min_correlation, (int, float))
            and not isinstance(echo_min_correlation, bool)
            and 0 < echo_min_correlation <= 1
        )
        if not correlation_ok:
            raise SoftAckConfigError(
                f"echo_min_correlation= must be a number in (0, 1] or None, got {echo_min_correlation!r}"
            )
        confidence_ok = isinstance(min_interim_confidence, (int, float)) and 0 <= min_interim_confidence <= 1
        if not confidence_ok:
            raise SoftAckConfigError(
                f"min_interim_confidence= must be a number in [0, 1], got {min_interim_confidence!r}"
            )
        max_words_ok = type(low_confidence_max_words) is int and low_confidence_max_words >= 0
        if not max_words_ok:
            raise SoftAckConfigError(
                f"low_confidence_max_words= must be an integer >= 0, got {low_confidence_max_words!r}"
            )
        self._classifier = classifier or BackchannelClassifier(settings=settings)
        self._min_interim_confidence = float(min_interim_confidence)
        self._low_confidence_words = low_confidence_max_words
        self._echo_rejection = echo_rejection
        self._echo_window = float(echo_window_secs)
        self._echo_min_correlation = echo_min_correlation
        self._echo_warmup = float(echo_warmup_secs)
        self._bot_spoken_secs = 0.0  # bot speech before the current utterance (echo warm-up)
        self._listening_for_echo = echo_rejection and echo_min_correlation is not None
        # What the microphone heard while the bot spoke (the acoustic echo check),
        # and the last correlation computed: (utterance start, window end bucket, value).
        self._heard_audio = AudioHistory(keep_secs=HEARD_KEEP_SECS, max_keep_secs=KEEP_SECS)
        self._correlation_memo: tuple[float, int, float | None] | None = None
        # The last echo residue, keyed by (text, bot words): _judge and _is_echo ask
        # for it on the same evaluation, and its fuzzy match is the costly part.
        self._residue_memo: tuple[tuple, list[str]] = ((), [])
        self._own_bot_speech = bot_speech is None  # ours to add to the worker at setup
        self._bot_speech = bot_speech or BotSpeechRecord(keep_audio=self._listening_for_echo)
        self._transcript_timeout = settings.transcript_timeout_secs
        # P99 seconds from the end of speech to the STT's final transcript, from its
        # STTMetadataFrame (0 until one arrives).
        self._stt_latency = 0.0
        self._max_hold = settings.max_hold_secs
        self._min_words = settings.min_words
        self._min_speech = settings.min_speech_secs
        self._bot_grace = settings.bot_grace_secs
        self._all_uninterruptible = uninterruptible
        self._keep_uninterruptible_speech = user_speech_during_uninterruptible == "keep"
        self._bot_started_at = 0.0
        # An uninterruptible TTSSpeakFrame went by: the bot speech it starts (or the
        # current one) is uninterruptible until the bot stops speaking.
        self._uninterruptible_next = False
        self._uninterruptible_now = False

        self._bot_speaking = False
        # time.monotonic() of the last BotSpeakingFrame of this bot utterance, or None
        # if it sent none (see BOT_SPEAKING_STALE_SECS).
        self._bot_alive_at: float | None = None
        # VAD frames flow in this pipeline: words no VAD start confirms are not speech.
        self._vad_seen = False
        self._speech_sources: set[str] = set()
        # The last gated frame was a speech start: an InterruptionFrame now is the one
        # a turn processor upstream sends for it, and is held with the utterance.
        self._after_speech_start = False
        # The utterance dropped last, and its kind, until the next speech start: its
        # late, repeated or trailing transcripts are dropped with it.
        self._dropped: tuple[_Utterance, DecisionKind] | None = None
        self._held: _Utterance | None = None
        # The current utterance was let through (bot silent, or released): its
        # remaining frames pass until the next utterance starts while the bot speaks.
        self._passing = False
        self._timer: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._placement: Placement | None = None
        self._vad: VADController | None = None  # adopted from the user aggregator
        self._vad_running = False  # between StartFrame and EndFrame/CancelFrame

        self._register_event_handler("on_backchannel")
        self._register_event_handler("on_interruption_released")
        self._register_event_handler("on_noise_dropped")
        self._register_event_handler("on_echo_dropped")
        self._register_event_handler("on_speech_discarded")

    @property
    def classifier(self) -> BackchannelClassifier:
        """The decision core in use."""
        return self._classifier

    @property
    def bot_speaking(self) -> bool:
        """Whether the filter believes the bot is speaking."""
        return self._bot_speaking

    @property
    def holding(self) -> bool:
        """Whether an utterance is being held right now."""
        return self._held is not None

    @property
    def bot_speech(self) -> BotSpeechRecord:
        """The record of played bot speech the filter reads (echo, context)."""
        return self._bot_speech

    @property
    def placement(self) -> Placement | None:
        """What the filter found around itself at setup (None before setup)."""
        return self._placement

    async def setup(self, setup: FrameProcessorSetup):
        """Find the user aggregator downstream, adopt its VAD, warn what cannot work."""
        await super().setup(setup)
        self._placement = inspect_placement(self)
        if self._own_bot_speech and self._placement.output is not None:
            self._bot_speech.watch(self._placement.output)
        for warning in self._placement.warnings:
            logger.warning(f"{self}: cannot gate every user turn start: {warning}")
        if self._placement.vad_analyzer is not None:
            self._vad = self._make_vad(
                self._placement.vad_analyzer, self._placement.audio_idle_timeout
            )
            await self._vad.setup(setup)
            logger.debug(f"{self}: runs the VAD of {self._placement.aggregator}")

    def _make_vad(self, analyzer: VADAnalyzer, audio_idle_timeout: float) -> VADController:
        """A VAD controller whose frames go out as a ``VADProcessor``'s would, except
        that the downstream copy passes the gate (the upstream copy is never held:
        STT services such as Whisper segment on it)."""
        vad = VADController(analyzer, audio_idle_timeout=audio_idle_timeout)

        async def on_started(_vad):
            await self._vad_frame(VADUserStartedSpeakingFrame, start_secs=analyzer.params.start_secs)

        async def on_stopped(_vad):
            await self._vad_frame(VADUserStoppedSpeakingFrame, stop_secs=analyzer.params.stop_secs)

        async def on_activity(_vad):
            await self._vad_frame(UserSpeakingFrame)

        async def on_push(_vad, frame, direction=FrameDirection.DOWNSTREAM):
            await self.push_frame(frame, direction)

        async def on_broadcast(_vad, frame_cls, **kwargs):
            await self.broadcast_frame(frame_cls, **kwargs)

        vad.add_event_handler("on_speech_started", on_started)
        vad.add_event_handler("on_speech_stopped", on_stopped)
        vad.add_event_handler("on_speech_activity", on_activity)
        vad.add_event_handler("on_push_frame", on_push)
        vad.add_event_handler("on_broadcast_frame", on_broadcast)
        return vad

    async def _vad_frame(self, frame_cls, **kwargs):
        downstream, upstream = frame_cls(**kwargs), frame_cls(**kwargs)
        downstream.broadcast_sibling_id, upstream.broadcast_sibling_id = upstream.id, downstream.id
        await self.push_frame(upstream, FrameDirection.UPSTREAM)
        async with self._lock:
            await self._handle_gated(downstream)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Gate the frames of user utterances while the bot speaks.

        Args:
            frame: The frame to process.
            direction: The direction of frame flow.
        """
        gated = direction == FrameDirection.DOWNSTREAM and isinstance(frame, _GATED)
        if gated and isinstance(frame, InterruptionFrame) and not self._after_speech_start:
            # Not the user's: the app, a function call result, RTVI or a DTMF
            # aggregator interrupts. It passes at once, past any held utterance.
            gated = False
        if isinstance(frame, BotSpeakingFrame):
            if self._bot_speaking:
                self._bot_alive_at = time.monotonic()
        elif self._bot_alive_at is not None and (
            time.monotonic() - self._bot_alive_at > BOT_SPEAKING_STALE_SECS
        ):
            async with self._lock:
                await self._expire_bot_speech()
        if not gated and not isinstance(frame, _STATEFUL):
            # The hot path (audio and every other frame): no state, no lock.
            await super().process_frame(frame, direction)
            if self._listening_for_echo and self._bot_speaking and isinstance(frame, InputAudioRawFrame):
                # Before the push: the arrival time is the capture time, not the
                # next processor's.
                self._heard_audio.add(frame.audio, frame.sample_rate, frame.num_channels)
            await self.push_frame(frame, direction)
            if self._vad is not None and direction == FrameDirection.DOWNSTREAM:
                # After the push, as VADProcessor does: audio is never delayed.
                if isinstance(frame, StartFrame):
                    self._vad_running = True
                    await self._vad.start()
                elif isinstance(frame, _VAD_INPUT) and self._vad_running:
                    await self._vad.process_frame(frame)
            return
        # One lock orders frame handling and the decision timer, so released frames
        # never interleave with frames that arrive during the release.
        async with self._lock:
            # A held InterruptionFrame is not an interruption yet: skip the base
            # class's handling, which would flush this processor's pending frames.
            if not (gated and isinstance(frame, InterruptionFrame) and self._would_hold(frame)):
                await super().process_frame(frame, direction)

            if gated:
                await self._handle_gated(frame)
                return

            if isinstance(frame, BotStartedSpeakingFrame):
                if not self._bot_speaking:
                    self._bot_started_at = time.monotonic()
                    self._bot_alive_at = None
                self._bot_speaking = True
                self._uninterruptible_now |= self._uninterruptible_next
                self._uninterruptible_next = False
                if self._passing and not self._speech_sources:
                    self._passing = False
                if self._held and self._held.deferred == "bot grace period":
                    await self._arm_timer()
            elif isinstance(frame, BotStoppedSpeakingFrame):
                await self._bot_stopped("bot stopped speaking")
            elif isinstance(frame, UninterruptibleSpeechFrame) or (
                isinstance(frame, TTSSpeakFrame) and not frame.interruptible
            ):
                if self._bot_speaking:
                    self._uninterruptible_now = True
                else:
                    self._uninterruptible_next = True
            elif isinstance(frame, EndFrame):
                if self._held:
                    await self._decide_end("pipeline ended", force=True)
                await self._cancel_timer()
                self._heard_audio.clear()
            elif isinstance(frame, CancelFrame):
                if self._held:
                    logger.debug(
                        f"{self}: discarding {len(self._held.frames)} held frames "
                        f"([{self._held.text}]) on CancelFrame"
                    )
                    self._held = None
                await self._cancel_timer()
                self._heard_audio.clear()
            elif isinstance(frame, STTMetadataFrame) and direction == FrameDirection.DOWNSTREAM:
                # The STT feeding the filter (the latest one, after a ServiceSwitcher
                # switch). Segmented STTs transcribe only after the VAD stop, and cloud
                # ones advertise P99s past the transcript timeout (OpenAISTTService:
                # 2.01 s): a timer shorter than that drops real interruptions as noise.
                self._stt_latency = max(0.0, frame.ttfs_p99_latency or 0.0)
            await self.push_frame(frame, direction)
            if self._vad is not None and isinstance(frame, (EndFrame, CancelFrame)):
                self._vad_running = False  # no speech, hold or timer after the end
                await self._vad.stop()

    async def _bot_stopped(self, reason: str):
        """The bot is silent: a held utterance becomes a normal user turn (or, after
        uninterruptible speech with ``"discard"``, is dropped)."""
        if self._bot_speaking:
            self._bot_spoken_secs += max(0.0, time.monotonic() - self._bot_started_at)
        self._bot_speaking = False
        self._bot_alive_at = None
        uninterruptible = self._uninterruptible_now or self._all_uninterruptible
        self._uninterruptible_now = False
        if self._held:
            if uninterruptible and not self._keep_uninterruptible_speech:
                await self._drop("discarded", "uninterruptible speech ended")
            else:
                await self._release(reason)

    async def _expire_bot_speech(self):
        """Call the bot silent if its BotSpeakingFrames stopped long ago (its
        BotStoppedSpeakingFrame was lost: livekit/agents#3418). Under the lock."""
        alive_at = self._bot_alive_at
        if alive_at is None or time.monotonic() - alive_at <= BOT_SPEAKING_STALE_SECS:
            return
        logger.warning(
            f"{self}: no BotSpeakingFrame for {time.monotonic() - alive_at:.1f}s and no "
            "BotStoppedSpeakingFrame: the bot counts as silent"
        )
        await self._bot_stopped("bot speech stale")

    async def cleanup(self):
        """Cancel the decision timer; release the adopted VAD."""
        await super().cleanup()
        await self._cancel_timer()
        if self._own_bot_speech:
            self._bot_speech.unwatch()
        if self._vad is not None:
            await self._vad.cleanup()

    # -- gating -----------------------------------------------------------------

    def _starts_new_utterance(self, frame: Frame) -> bool:
        return isinstance(frame, _START_TYPES) and not self._speech_sources

    def _would_hold(self, frame: Frame) -> bool:
        if self._held is not None:
            return True
        if not self._bot_speaking:
            return False
        return not self._passing or self._starts_new_utterance(frame)

    async def _handle_gated(self, frame: Frame):
        new_utterance = self._starts_new_utterance(frame)
        if new_utterance and self._held is not None and self._held.stopped_at is not None:
            if self._held.deferred:
                # A waiting interruption: what follows joins it, as one user turn.
                self._held.stopped_at = None
            else:
                # The previous utterance's speech had stopped: judge it on its own.
                await self._decide_end("next utterance")
        self._track_speech(frame)
        self._after_speech_start = isinstance(frame, _START_TYPES)
        if self._dropped is not None:
            if isinstance(frame, _START_TYPES):
                self._dropped = None
            elif self._held is None and self._reopens(frame):
                if await self._reopen(frame):
                    return
            elif self._held is None and self._late_transcript(frame):
                await self._drop_late(frame)
                return
            else:
                # Anything else went on after the drop: a transcript now would come
                # after it, so it can no longer join the dropped frames in order.
                self._dropped[0].awaits_final = False

        if self._held is None:
            if not self._bot_speaking or (self._passing and not new_utterance):
                self._passing = True
                await self.push_frame(frame)
                return
            self._held = _Utterance()
            self._heard_audio.pin(self._held.started_at - HEARD_KEEP_SECS)
            self._passing = False
            await self._arm_timer()
            created = True
        else:
            created = False

        utterance = self._held
        utterance.frames.append(frame)
        if utterance.speech_started_at is None and (new_utterance or (created and self._speech_sources)):
            # A hold opened inside speech already going on (the rest of a segment
            # whose start was decided before, e.g. an echo dropped at max hold) is
            # confirmed speech too: a "stop" in it must not count as noise.
            utterance.speech_started_at = time.monotonic()
        if new_utterance and not created:
            # Speech confirmed after a transcript opened the hold (an STT's own
            # speech detector can be faster than the VAD): same utterance.
            await self._arm_timer()
        if isinstance(frame, TranscriptionFrame):
            utterance.finals.append(self._text_of(frame))
            utterance.interim = ""
            utterance.last_transcript = frame
        elif isinstance(frame, InterimTranscriptionFrame):
            utterance.interim = self._text_of(frame)
            utterance.last_transcript = frame
        elif isinstance(frame, _STOP_TYPES) and not self._speech_sources:
            utterance.stopped_at = time.monotonic()
            await self._arm_timer()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            # The VAD heard the speech end inside an STT's own turn (Flux, AssemblyAI,
            # Speechmatics end theirs later, Flux up to eot_timeout_ms): max hold now
            # counts from here, and then decides on the words (_on_max_hold).
            await self._arm_timer()
        if isinstance(frame, UserSpeakingFrame):
            return  # neither the words nor the speech state changed: nothing to decide
        await self._evaluate()

    def _track_speech(self, frame: Frame):
        if isinstance(frame, (VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame)):
            self._vad_seen = True
        source = _SPEECH_STARTS.get(type(frame))
        if source:
            self._speech_sources.add(source)
        source = _SPEECH_STOPS.get(type(frame))
        if source:
            self._speech_sources.discard(source)

    async def _evaluate(self):
        utterance = self._held
        complete = not self._speech_sources and utterance.finals and not utterance.interim
        verdict, by_command = self._judge(utterance, partial=not complete)
        if verdict == Verdict.INTERRUPTION and self._unconfirmed(utterance, by_command):
            return  # words without speech: wait for the VAD, or time out as noise
        if verdict == Verdict.INTERRUPTION and self._is_echo(utterance, by_command):
            if complete:
                await self._drop("echo", "utterance ended")
            return  # the bot's own words so far: wait for more, or drop at the end
        if verdict == Verdict.INTERRUPTION and utterance.interim and not by_command:
            # A content word in an interim: wait until the STT stands by it.
            last = utterance.frames[-1]
            if isinstance(last, InterimTranscriptionFrame):
                utterance.low_confidence = self._low_confidence(last, utterance)
                if utterance.low_confidence:
                    return  # a short low-confidence guess: wait for the final
                utterance.content_interims += 1
            if utterance.content_interims < self._content_confirmations:
                return
            if self._short_so_far(utterance):
                return  # as short as a backchannel yet: the next interim or the final decides
        elif isinstance(utterance.frames[-1], InterimTranscriptionFrame):
            utterance.content_interims = 0
        if verdict == Verdict.INTERRUPTION:
            await self._release_or_defer("content or command word", by_command)
        elif complete:
            await self._decide_end("utterance ended")

    # -- decisions --------------------------------------------------------------

    async def _decide_end(self, reason: str, *, force: bool = False):
        """Decide a held utterance whose speech is over, on the text it has.

        ``force`` releases an interruption even if it would have to wait (the
        pipeline is ending: held frames are released, never lost).
        """
        verdict, by_command = self._judge(self._held)
        if verdict == Verdict.INTERRUPTION and self._is_echo(self._held, by_command):
            await self._drop("echo", reason)
        elif verdict == Verdict.INTERRUPTION and not force and self._guess_only(self._held):
            self._held.awaits_final = reason == TRANSCRIPT_TIMEOUT  # as below
            await self._drop("noise", f"{reason}, low-confidence interim only")
        elif verdict == Verdict.INTERRUPTION and reason == TRANSCRIPT_TIMEOUT and self._interim_only(self._held):
            # Words the STT put in an interim and never stood by: an interim alone
            # releases only once confirmed (see _evaluate), and a streaming STT whose
            # final comes back empty (PocketSphinx, Deepgram: no frame then) has
            # taken its guess back. A final that still comes reopens it.
            self._held.awaits_final = True
            await self._drop("noise", f"{reason}, unconfirmed interim only")
        elif verdict == Verdict.INTERRUPTION and force:
            await self._release(reason)
        elif verdict == Verdict.INTERRUPTION and self._unconfirmed(self._held, by_command):
            await self._drop("noise", f"{reason}, words without a VAD start")
        elif verdict == Verdict.INTERRUPTION:
            await self._release_or_defer(reason, by_command)
        else:
            await self._drop("backchannel" if verdict == Verdict.BACKCHANNEL else "noise", reason)

    def _low_confidence(self, frame: InterimTranscriptionFrame, utterance: _Utterance) -> bool:
        """A short interim the STT itself is unsure of (see ``min_interim_confidence``)."""
        confidence = transcript_confidence(frame)
        if confidence is None or confidence >= self._min_interim_confidence:
            return False
        words = [t for t in normalize(utterance.text) if t != "?"]
        return len(words) <= self._low_confidence_words

    def _short_so_far(self, utterance: _Utterance) -> bool:
        """The speech has not yet lasted ``interim_min_speech_secs``."""
        began = utterance.speech_started_at or utterance.started_at
        return (utterance.stopped_at or time.monotonic()) - began < self._interim_min_speech

    def _interim_only(self, utterance: _Utterance) -> bool:
        """No final, and no command keyword that counts in an interim: what is held
        never met the interim release rule. A lone "but" is a command only once the
        utterance is complete (it may begin "but what about..."): without a final
        nothing says it is."""
        return not utterance.finals and not self._judge(utterance, partial=True)[1]

    @staticmethod
    def _guess_only(utterance: _Utterance) -> bool:
        return utterance.low_confidence and not utterance.finals

    def _explain(self, text: str, *, partial: bool = False) -> tuple[Verdict, bool]:
        """The classifier's verdict, with what the bot said last as its context (an
        answer to the bot's question is a turn, not a backchannel)."""
        return self._classifier.explain(
            text, partial=partial, context=self._bot_speech.context_text()
        )

    def _judge(self, utterance: _Utterance, *, partial: bool = False) -> tuple[Verdict, bool]:
        """The verdict on what was heard, the bot's echo under it taken away: content
        words that the bot's recent words explain do not make a backchannel said
        over the bot an interruption ("it yeah"; :func:`pipecat_softack.echo.echo_residue`).
        An utterance the echo explains in full is left to :meth:`_is_echo`."""
        verdict, by_command = self._explain(utterance.text, partial=partial)
        if verdict != Verdict.INTERRUPTION or by_command or not self._echo_rejection:
            return verdict, by_command
        heard = normalize(utterance.text)
        if "?" in heard:
            return verdict, by_command  # "yeah, the price?" asks: never taken apart
        rest = self._echo_residue(utterance)
        # The echo must come first: an utterance that opens with the user's own words
        # and goes on with the bot's ("yes, the blue one") is the user choosing.
        if rest and len(rest) < len(heard) and rest[0] != heard[0]:
            if self._explain(" ".join(rest), partial=partial)[0] == Verdict.BACKCHANNEL:
                return Verdict.BACKCHANNEL, False
        return verdict, by_command

    def _echo_words(self, utterance: _Utterance) -> list[str]:
        """Tokens the bot played from ``echo_window_secs`` before the speech began."""
        began = utterance.speech_started_at or utterance.started_at
        return self._bot_speech.tokens_since(began - self._echo_window)

    def _echo_residue(self, utterance: _Utterance) -> list[str]:
        """The words heard that the bot's recent words do not explain (memoized)."""
        bot = self._echo_words(utterance)
        key = (utterance.text, tuple(bot))
        if self._residue_memo[0] != key:
            self._residue_memo = (key, echo_residue(normalize(utterance.text), bot))
        return self._residue_memo[1]

    def _is_echo(self, utterance: _Utterance, by_command: bool) -> bool:
        """The bot's own words, played from ``echo_window_secs`` before the speech
        began, explain what was heard (:func:`pipecat_softack.echo.echo_explains`:
        every word, exactly for an utterance holding a command keyword), or it began
        during the echo canceller's warm-up (``echo_warmup_secs``)."""
        if self._in_echo_warmup(utterance):
            return True
        if not self._echo_rejection:
            return False
        if self._sounds_like_echo(utterance, by_command):
            return True
        heard = normalize(utterance.text)
        if by_command:
            return echo_explains(heard, self._echo_words(utterance), has_command=True)
        # The same test as echo_explains(min_share=1.0), from the residue _judge made.
        return any(w != "?" for w in heard) and not any(w != "?" for w in self._echo_residue(utterance))

    def _in_echo_warmup(self, utterance: _Utterance) -> bool:
        """The utterance's speech began within the first ``echo_warmup_secs`` of bot
        speech of the session."""
        if not self._echo_warmup:
            return False
        began = utterance.speech_started_at or utterance.started_at
        spoken = self._bot_spoken_secs
        if self._bot_speaking:
            spoken += max(0.0, began - self._bot_started_at)
        if spoken >= self._echo_warmup:
            return False
        logger.debug(f"{self}: [{utterance.text}] heard {spoken:.1f}s into the bot's speech: echo warm-up")
        return True

    def _sounds_like_echo(self, utterance: _Utterance, by_command: bool) -> bool:
        """The microphone audio of the utterance follows the bot's played audio
        (:func:`pipecat_softack.acoustic_echo.echo_correlation`): at least
        ``echo_min_correlation``, or halfway from it to 1 for an utterance holding a
        command keyword (a dropped "stop" costs more than a false interrupt; the
        user over an echo as loud as the speech reached 0.89 on the tuned clips)."""
        if not self._listening_for_echo or self._bot_speech.audio is None:
            return False
        began = (utterance.speech_started_at or utterance.started_at) - ECHO_PREROLL_SECS
        end = min(utterance.stopped_at or time.monotonic(), began + ECHO_CHECK_MAX_SECS)
        if end <= began:
            return False
        # Interims come every 100 ms or so and each asks again: one correlation per
        # ECHO_RECHECK_SECS of new audio (a few ms of FFTs each on the event loop).
        key = (utterance.started_at, int(end / ECHO_RECHECK_SECS))
        if self._correlation_memo is not None and self._correlation_memo[:2] == key:
            correlation = self._correlation_memo[2]
        else:
            try:
                correlation = echo_correlation(self._heard_audio, self._bot_speech.audio, began, end)
            except ValueError as e:
                # A check that cannot run must not stall the hold: the text rule decides.
                logger.warning(f"{self}: acoustic echo check skipped: {e}")
                correlation = None
            self._correlation_memo = (*key, correlation)
        if correlation is None:
            return False
        threshold = (1 + self._echo_min_correlation) / 2 if by_command else self._echo_min_correlation
        if correlation >= threshold:
            logger.debug(f"{self}: [{utterance.text}] sounds like the bot (correlation {correlation:.2f})")
            return True
        return False

    def _unconfirmed(self, utterance: _Utterance, by_command: bool) -> bool:
        """Content words with no speech start in a pipeline whose VAD is running: an
        STT with its own speech detector transcribing noise or the bot's echo. A
        command keyword counts as speech: the VAD misses short ones."""
        return self._vad_seen and utterance.speech_started_at is None and not by_command

    def _gate(self, utterance: _Utterance, by_command: bool) -> tuple[str | None, float | None]:
        """Whether an interruption may stop the bot now.

        Returns:
            ``(None, None)`` if it may; else ``(why, recheck_at)``: the reason it must
            wait and the ``time.monotonic()`` at which to look again, or None to wait
            for more words or for the bot to stop speaking.
        """
        now = time.monotonic()
        if self._uninterruptible_now or self._all_uninterruptible:
            return "uninterruptible speech", None
        if self._bot_grace and now < self._bot_started_at + self._bot_grace:
            return "bot grace period", self._bot_started_at + self._bot_grace
        if by_command:
            return None, None
        if self._min_words:
            words = [t for t in normalize(utterance.text) if t != "?"]
            if len(words) < self._min_words:
                return "min_words", None
        if self._min_speech:
            start = utterance.speech_started_at or utterance.started_at
            if (utterance.stopped_at or now) - start < self._min_speech:
                still_speaking = utterance.stopped_at is None
                return "min_speech_secs", start + self._min_speech if still_speaking else None
        return None, None

    async def _release_or_defer(self, reason: str, by_command: bool):
        utterance = self._held
        why, recheck_at = self._gate(utterance, by_command)
        if why is None:
            await self._release(reason)
            return
        if utterance.deferred != why:
            logger.debug(f"{self}: interruption [{utterance.text}] waits: {why}")
        utterance.deferred = why
        utterance.recheck = (reason, by_command)
        await self._arm_timer(recheck_at)

    async def _release(self, reason: str):
        utterance = await self._take("interruption", reason)
        self._passing = True
        for frame in utterance.frames:
            await self.push_frame(frame)

    async def _drop(self, kind: DecisionKind, reason: str):
        utterance = await self._take(kind, reason)
        self._dropped = (utterance, kind)
        if kind == "backchannel":
            last = utterance.last_transcript
            await self.push_frame(
                UserBackchannelFrame(
                    text=utterance.text,
                    user_id=last.user_id if last else "",
                    timestamp=last.timestamp if last else time_now_iso8601(),
                )
            )

    async def _take(self, kind: DecisionKind, reason: str) -> _Utterance:
        """Detach the held utterance, log the decision and fire its event."""
        utterance, self._held = self._held, None
        self._heard_audio.pin(None)
        # Cancel without waiting for the timer to finish: an await here, before the
        # held frames are pushed, is where an interruption passing through could
        # cancel this task and lose them.
        if self._timer is not None:
            timer, self._timer = self._timer, None
            timer.cancel()
        now = time.monotonic()
        if utterance.reopened and reason != LATE_FINAL:
            reason = f"{reason}, {REOPENED}"
        decision = SoftAckDecision(
            kind=kind,
            text=utterance.text,
            reason=reason,
            held_secs=now - utterance.started_at,
            after_speech_stop_secs=(now - utterance.stopped_at) if utterance.stopped_at else None,
            frames=len(utterance.frames),
            deferred=utterance.deferred,
        )
        logger.debug(
            f"{self}: {kind} [{decision.text}] ({reason}; held {decision.held_secs:.3f}s, "
            f"{decision.frames} frames)"
        )
        # Non-sync event handlers run in their own tasks: a slow one never delays frames.
        await self._call_event_handler(_EVENTS[kind], decision)
        return utterance

    def _text_of(self, frame: TranscriptionFrame | InterimTranscriptionFrame) -> str:
        """A transcript's text, stripped. None (an STT with nothing to say) is no
        words; any other non-string is logged, naming it, and read as no words."""
        text = frame.text
        if isinstance(text, str):
            return text.strip()
        if text is not None:
            logger.warning(
                f"{self}: {frame.name} has text of type {type(text).__name__} "
                f"({text!r:.60}), not str: read as no words"
            )
        return ""

    def _reopens(self, frame: Frame) -> bool:
        """The next transcript of the utterance dropped last for want of a final
        (:attr:`_Utterance.awaits_final`), with no other frame and no new speech start
        in between: its final, or an interim that goes on from the dropped words (an
        STT still transcribing after the timeout)."""
        dropped = self._dropped[0]
        if not dropped.awaits_final or not isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            return False
        tokens = normalize(self._text_of(frame))
        if not tokens:
            return False
        before = normalize(dropped.text)
        return isinstance(frame, TranscriptionFrame) or tokens[: len(before)] == before

    async def _reopen(self, frame: TranscriptionFrame | InterimTranscriptionFrame) -> bool:
        """Hold the dropped utterance again, ``frame`` after its frames. A final decides
        it now (reason ``"late final"``); an interim goes on as the utterance's latest
        (returns False: the caller adds it and judges it as usual). With the bot
        silent, either is released at once as a normal user turn. Returns whether
        ``frame`` was taken."""
        self._held, self._dropped = self._dropped[0], None
        self._held.awaits_final = False
        self._held.reopened = True
        self._heard_audio.pin(self._held.started_at - HEARD_KEEP_SECS)
        logger.debug(f"{self}: [{self._text_of(frame)}] reopens [{self._held.text}]")
        final = isinstance(frame, TranscriptionFrame)
        if self._bot_speaking and not final:
            await self._arm_timer()
            return False
        utterance = self._held
        utterance.frames.append(frame)
        if final:
            utterance.finals.append(self._text_of(frame))
            utterance.interim = ""
        else:
            utterance.interim = self._text_of(frame)
        utterance.last_transcript = frame
        if self._bot_speaking:
            await self._decide_end(LATE_FINAL)
        else:
            await self._release(LATE_FINAL)  # the bot has stopped: a normal user turn
        return True

    def _late_transcript(self, frame: Frame) -> bool:
        """A transcript of the utterance dropped last, arriving before any new speech
        start: a late or repeated final, or an interim after its final. Its words and
        the dropped ones are a prefix of each other, and they hold no interruption."""
        if not isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            return False
        if self._speech_sources or not self._vad_seen:
            return False  # speech on, or no VAD to tell utterances apart
        text = self._text_of(frame)
        tokens, dropped = normalize(text), normalize(self._dropped[0].text)
        n = min(len(tokens), len(dropped))
        if n == 0 or tokens[:n] != dropped[:n]:
            return False
        return self._explain(text)[0] != Verdict.INTERRUPTION

    async def _drop_late(self, frame: TranscriptionFrame | InterimTranscriptionFrame):
        """Drop a late transcript with its utterance, in a decision of its own (reason
        ``"late transcript"``, one frame, no second ``UserBackchannelFrame``)."""
        utterance, kind = self._dropped
        decision = SoftAckDecision(
            kind=kind,
            text=self._text_of(frame),
            reason="late transcript",
            held_secs=0.0,
            after_speech_stop_secs=None,
            frames=1,
        )
        logger.debug(f"{self}: {kind} [{decision.text}] (late transcript of [{utterance.text}])")
        await self._call_event_handler(_EVENTS[kind], decision)

    # -- timer ------------------------------------------------------------------

    async def _arm_timer(self, recheck_at: float | None = None):
        """(Re)start the one timer of the held utterance.

        A deferred interruption looks again at ``recheck_at`` (no timer if None: it
        waits for words or for the bot to stop). Otherwise: max hold while speech
        goes on, else the transcript timeout, never shorter than the STT's advertised
        P99 latency to its final transcript.
        """
        await self._cancel_timer()
        utterance = self._held
        if utterance.deferred:
            if utterance.deferred == "bot grace period":
                recheck_at = self._bot_started_at + self._bot_grace
            if recheck_at is None:
                return
            delay, on_fire = max(0.0, recheck_at - time.monotonic()), self._on_recheck
        elif self._speech_sources:
            delay, on_fire = self._max_hold, self._on_max_hold
        else:
            delay = max(self._transcript_timeout, self._stt_latency)
            on_fire = self._on_transcript_timeout
        self._timer = self.create_task(
            self._run_timer(delay, on_fire, utterance), f"{self}::decision_timer"
        )

    async def _run_timer(self, delay: float, on_fire, utterance: _Utterance):
        await asyncio.sleep(delay)
        async with self._lock:
            # The utterance may have been decided while this timer waited for the lock.
            if self._held is utterance and self._timer is asyncio.current_task():
                self._timer = None  # so the decision does not cancel this very task
                await self._expire_bot_speech()
                if self._held is utterance:
                    await on_fire()

    async def _on_max_hold(self):
        if "vad" not in self._speech_sources and any(
            isinstance(f, VADUserStoppedSpeakingFrame) for f in self._held.frames
        ):
            # The VAD heard this speech end: only an STT's turn keeps the utterance
            # open. A release here would turn a backchannel into an interruption
            # whenever the STT ends its turn late; decide on the words instead.
            await self._decide_end("max hold")
            return
        verdict, by_command = self._explain(self._held.text, partial=True)
        if verdict == Verdict.INTERRUPTION and self._is_echo(self._held, by_command):
            await self._drop("echo", "max hold")  # the bot hearing itself at length
        else:
            await self._release_or_defer("max hold", False)

    async def _on_recheck(self):
        reason, by_command = self._held.recheck
        await self._release_or_defer(reason, by_command)

    async def _on_transcript_timeout(self):
        await self._decide_end(TRANSCRIPT_TIMEOUT)

    async def _cancel_timer(self):
        if self._timer is not None:
            timer, self._timer = self._timer, None
            await self.cancel_task(timer)
