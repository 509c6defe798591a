"""The peers' barge-in rules (bench/peers.py) as Pipecat user turn start strategies,
so ``bench audio`` runs each as a branch fed by the same Silero VAD and STT as ours.

A strategy starts the user turn (and, while the bot speaks, the user aggregator
broadcasts the ``InterruptionFrame`` that stops it) when its rule says so; while the
bot is silent any word starts the turn, as in Pipecat's ``MinWordsUserTurnStartStrategy``.
What each rule reads, and the modelling choices where the peer's code is not public:

* Vapi (:class:`VapiUserTurnStartStrategy`): on every interim or final transcript,
  the text of the user's speech since the bot started talking (finals joined, then
  the latest interim) is judged by :func:`bench.peers.vapi_interrupts`; with
  ``numWords`` 0 it must also come after ``voiceSeconds`` (0.2 s) of VAD speech
  (Vapi: "voiceSeconds is used in addition to the transcriptions").
* LiveKit legacy (:class:`LiveKitLegacyUserTurnStartStrategy`): the legacy
  ``VoiceAssistant`` checks every 10 ms while its VAD says the user speaks; here the
  check runs on every VAD, user-speaking and transcript frame, which arrive at least
  that often while anything changes. It interrupts when the VAD has heard speech
  for 10 % of the last 0.65 s (65 ms since the VAD start), the final text since the
  bot started or the interim has more than 3 words, and the bot's playout started
  at least 1 s ago.
"""

from __future__ import annotations

import time

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy

from bench.peers import (
    LIVEKIT_INTERRUPT_MIN_WORDS,
    LIVEKIT_INTERRUPT_SPEECH_DURATION,
    LIVEKIT_NO_INTERRUPT_FIRST_SECS,
    LIVEKIT_SPEAKING_AVG,
    VAPI_VOICE_SECONDS,
    livekit_legacy_interrupts,
    vapi_interrupts,
)


class _PeerStrategy(BaseUserTurnStartStrategy):
    """Bot state, VAD state and the user's text since the bot started talking."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._bot_speaking = False
        self._bot_started_at = 0.0
        self._vad_started_at: float | None = None  # monotonic s; None while the VAD hears silence
        self._finals: list[str] = []
        self._interim = ""

    async def handle_user_turn_started(self):
        self._finals, self._interim = [], ""

    def _decide(self) -> bool:
        raise NotImplementedError

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, BotStartedSpeakingFrame):
            if not self._bot_speaking:
                self._bot_started_at = time.monotonic()
                self._finals, self._interim = [], ""
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._vad_started_at = time.monotonic()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_started_at = None
        elif isinstance(frame, TranscriptionFrame):
            self._finals.append(frame.text.strip())
            self._interim = ""
        elif isinstance(frame, InterimTranscriptionFrame):
            self._interim = frame.text.strip()
        elif not isinstance(frame, UserSpeakingFrame):
            return ProcessFrameResult.CONTINUE
        words = self._text.split()
        if not self._bot_speaking:
            if isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)) and words:
                await self.trigger_user_turn_started()
                return ProcessFrameResult.STOP
            return ProcessFrameResult.CONTINUE
        if self._decide():
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        return ProcessFrameResult.CONTINUE

    @property
    def _text(self) -> str:
        return " ".join([*self._finals, self._interim]).strip()


class VapiUserTurnStartStrategy(_PeerStrategy):
    """Vapi's ``stopSpeakingPlan`` (documented defaults; see bench/peers.py).

    Args:
        num_words: ``numWords`` (Vapi's default 0).
        voice_seconds: ``voiceSeconds`` (default 0.2 s), used when ``num_words`` is 0.
    """

    def __init__(self, *, num_words: int = 0, voice_seconds: float = VAPI_VOICE_SECONDS, **kwargs):
        super().__init__(**kwargs)
        self._num_words = num_words
        self._voice_seconds = voice_seconds
        self._voiced = False  # voiceSeconds of VAD speech heard in this bot turn

    def _decide(self) -> bool:
        if self._vad_started_at is not None and time.monotonic() - self._vad_started_at >= self._voice_seconds:
            self._voiced = True
        if self._num_words == 0 and not self._voiced:
            return False
        return vapi_interrupts(self._text, self._num_words)

    async def handle_user_turn_started(self):
        await super().handle_user_turn_started()
        self._voiced = False


class LiveKitLegacyUserTurnStartStrategy(_PeerStrategy):
    """LiveKit's legacy ``VoiceAssistant`` interruption rule (see bench/peers.py).

    Args:
        min_words: ``interrupt_min_words`` (default 3: more than 3 words interrupt).
        speech_duration: ``interrupt_speech_duration`` (default 0.65 s).
        no_interrupt_secs: Seconds of playout that nothing interrupts (default 1.0).
    """

    def __init__(
        self,
        *,
        min_words: int = LIVEKIT_INTERRUPT_MIN_WORDS,
        speech_duration: float = LIVEKIT_INTERRUPT_SPEECH_DURATION,
        no_interrupt_secs: float = LIVEKIT_NO_INTERRUPT_FIRST_SECS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._min_words = min_words
        self._min_speaking = LIVEKIT_SPEAKING_AVG * speech_duration
        self._no_interrupt_secs = no_interrupt_secs

    def _decide(self) -> bool:
        now = time.monotonic()
        if self._vad_started_at is None or now - self._vad_started_at < self._min_speaking:
            return False  # checked only while the VAD hears the user
        if now - self._bot_started_at < self._no_interrupt_secs:
            return False
        return livekit_legacy_interrupts(" ".join(self._finals), self._interim, self._min_words)
