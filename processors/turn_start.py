"""SoftAckUserTurnStartStrategy: the soft-ack decision as a Pipecat user turn start
strategy, for bots whose VAD runs inside the user aggregator.

Modelled on Pipecat's ``MinWordsUserTurnStartStrategy``; use it in place of the
default start strategies::

    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
            user_turn_strategies=UserTurnStrategies(start=[SoftAckUserTurnStartStrategy()]),
        ),
    )
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    UserBackchannelFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy

from pipecat_softack.bot_speech import BotSpeechRecord
from pipecat_softack.classifier import BackchannelClassifier, Verdict
from pipecat_softack.config import (
    SoftAckConfigError,
    check_content_confirmations,
    check_interim_min_speech,
)
from pipecat_softack.placement import first_output_transport


class SoftAckUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """Starts a user turn at once while the bot is silent, and only on words while it speaks.

    - Bot silent: the turn starts on ``VADUserStartedSpeakingFrame`` (as Pipecat's
      default ``VADUserTurnStartStrategy``) or on the first transcript.
    - Bot speaking: every interim (if ``use_interim``) and final transcript of the
      current utterance (text since the last VAD start) is classified with the same
      :class:`BackchannelClassifier` as :class:`SoftAckInterruptionFilter`. An
      INTERRUPTION starts the turn (and so interrupts the bot). A final transcript
      that is only soft-acks resets the aggregation, so the acknowledgment stays out
      of the LLM context, and is reported as a ``UserBackchannelFrame`` (the
      aggregator fires ``on_user_backchannel``).

    - Context: as in the filter, the classifier is given what the bot last played
      (a :class:`BotSpeechRecord` the strategy attaches at setup to the pipeline's
      first output transport), so "yeah" answering the bot's question starts a turn.

    Unlike the filter, a strategy cannot hold the VAD frames: they reach the
    aggregator's other parts (e.g. the turn stop strategy) as usual.

    Args:
        classifier: The decision core; by default built from the arguments below.
        soft_acks: Backchannel phrases replacing the defaults.
        command_keywords: Phrases that always interrupt.
        language: Built-in defaults to use (``"en"`` default, ``"es"``).
        config_file: TOML file overriding the built-in lists.
        use_interim: Classify interim transcripts too, for earlier interruptions
            (default True, as in ``MinWordsUserTurnStartStrategy``).
        content_confirmations: Consecutive interims that must hold a content word
            before it starts the turn (default 2, as in the filter); a command keyword
            or a final transcript starts it at once.
        interim_min_speech_secs: Seconds the speech must have gone on (from its VAD
            start, or its first transcript without a VAD) before a content word on an
            interim starts the turn (default 0.6, as in the filter: shorter speech is
            judged on its final transcript); command keywords are exempt; 0 is off.
        bot_speech: The record of played bot speech to read as context; by default
            the strategy makes one and attaches it at setup to the first output
            transport of the pipeline it runs in.
        **kwargs: Passed to :class:`BaseUserTurnStartStrategy`.

    Raises:
        SoftAckConfigError: a bad setting, or ``classifier`` given with lexicon args.
    """

    def __init__(
        self,
        *,
        classifier: BackchannelClassifier | None = None,
        soft_acks: Iterable[str] | None = None,
        command_keywords: Iterable[str] | None = None,
        language: str | None = None,
        config_file: str | os.PathLike | None = None,
        use_interim: bool = True,
        content_confirmations: int = 2,
        interim_min_speech_secs: float = 0.6,
        bot_speech: BotSpeechRecord | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._own_bot_speech = bot_speech is None
        self._bot_speech = bot_speech or BotSpeechRecord()
        if classifier is not None and any(
            a is not None for a in (soft_acks, command_keywords, language, config_file)
        ):
            raise SoftAckConfigError("pass either classifier= or the lexicon arguments, not both")
        self._classifier = classifier or BackchannelClassifier(
            soft_acks=soft_acks,
            command_keywords=command_keywords,
            language=language,
            config_file=config_file,
        )
        self._use_interim = use_interim
        self._content_confirmations = check_content_confirmations(content_confirmations)
        self._interim_min_speech = check_interim_min_speech(interim_min_speech_secs)
        self._speech_started_at: float | None = None  # time.monotonic() of this utterance's start
        self._speech_stopped_at: float | None = None
        self._bot_speaking = False
        self._vad_seen = False  # VAD frames flow: words with no VAD start are not speech
        self._speaking = False
        self._content_interims = 0
        self._finals: list[str] = []
        self._in_turn = False

    async def setup(self, setup: FrameProcessorSetup):
        """Attach the bot-speech record to the pipeline's output transport."""
        await super().setup(setup)
        worker = setup.pipeline_worker
        if self._own_bot_speech and worker is not None:
            output = first_output_transport(worker.pipeline)
            if output is not None:
                self._bot_speech.watch(output)

    async def cleanup(self):
        """Detach the bot-speech record."""
        await super().cleanup()
        if self._own_bot_speech:
            self._bot_speech.unwatch()

    async def handle_user_turn_started(self):
        """Forget the utterance text: the next turn is judged afresh."""
        self._finals = []
        self._in_turn = True

    async def handle_user_turn_stopped(self):
        """The turn is over: transcripts while the bot speaks are judged again."""
        self._in_turn = False

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Decide whether this frame starts a user turn.

        Args:
            frame: The frame seen by the user aggregator.

        Returns:
            STOP when the turn was started (the frame was consumed by the decision),
            CONTINUE otherwise.
        """
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_seen, self._speaking = True, False
            self._speech_stopped_at = time.monotonic()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._finals, self._content_interims = [], 0
            self._vad_seen, self._speaking = True, True
            self._speech_started_at, self._speech_stopped_at = time.monotonic(), None
            if not self._bot_speaking:
                await self.trigger_user_turn_started()
                return ProcessFrameResult.STOP
        elif isinstance(frame, TranscriptionFrame):
            return await self._handle_transcription(frame, final=True)
        elif isinstance(frame, InterimTranscriptionFrame) and self._use_interim:
            return await self._handle_transcription(frame, final=False)
        return ProcessFrameResult.CONTINUE

    def _short_so_far(self) -> bool:
        """The speech has not yet lasted ``interim_min_speech_secs``."""
        if self._speech_started_at is None:
            return False
        end = self._speech_stopped_at or time.monotonic()
        return end - self._speech_started_at < self._interim_min_speech

    async def _handle_transcription(self, frame, *, final: bool) -> ProcessFrameResult:
        # None (an STT with nothing to say) or another non-string is no words.
        said = frame.text.strip() if isinstance(frame.text, str) else ""
        text = " ".join([*self._finals, said]).strip()
        if final:
            self._finals.append(said)
        if not self._vad_seen:
            # No VAD: an utterance starts with its first words and ends with its final
            # (the duration rule reads interims only).
            self._speech_started_at = None if final else self._speech_started_at or time.monotonic()
        if self._in_turn:
            return ProcessFrameResult.CONTINUE  # part of a turn already started
        if not self._bot_speaking:
            if not text:
                return ProcessFrameResult.CONTINUE
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP

        verdict, by_command = self._classifier.explain(
            text, partial=not final, context=self._bot_speech.context_text()
        )
        logger.debug(f"{self}: [{text}] -> {verdict.name} (final={final}, bot speaking)")
        unconfirmed = self._vad_seen and not self._speaking and not final and not by_command
        if verdict == Verdict.INTERRUPTION and unconfirmed:
            # Content words without speech: noise or echo. A command keyword counts as
            # speech (the VAD misses short ones, as in SoftAckInterruptionFilter).
            return ProcessFrameResult.CONTINUE
        if verdict == Verdict.INTERRUPTION and not final and not by_command:
            self._content_interims += 1  # wait until the STT stands by the word
            if self._content_interims < self._content_confirmations or self._short_so_far():
                return ProcessFrameResult.CONTINUE
        elif not final:
            self._content_interims = 0
        if verdict == Verdict.INTERRUPTION:
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        if final:
            await self.trigger_reset_aggregation()
            if verdict == Verdict.BACKCHANNEL:
                await self.push_frame(
                    UserBackchannelFrame(text=text, user_id=frame.user_id, timestamp=frame.timestamp)
                )
        return ProcessFrameResult.CONTINUE
