"""Interrupt the user: cut in politely when one user turn runs past N sentences."""

from __future__ import annotations

import re

from loguru import logger
from pipecat.frames.frames import Frame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop.base_user_turn_stop_strategy import BaseUserTurnStopStrategy

from pipecat_softack.speech import UninterruptibleSpeechFrame, speech_frame

DEFAULT_CUT_IN_PHRASE = "Sorry, can I pause you there?"
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


def count_sentences(finals: list[str], interim: str = "", *, words_per_sentence: int = 15) -> int:
    """Sentences in a live transcript (final transcripts, then the current interim).

    Punctuated text (Deepgram, Whisper) counts its sentence ends, plus one for an
    unfinished tail. Text without any punctuation (pocketsphinx) counts one sentence
    per ``words_per_sentence`` words begun (default 15, about the mean length of a
    spoken English sentence), so a long unpunctuated monologue still counts.
    """
    text = " ".join([*finals, interim]).strip()
    if not text:
        return 0
    ends = len(_SENTENCE_END.findall(text))
    if ends == 0:
        return -(-len(text.split()) // words_per_sentence)  # ceil
    return ends + (0 if _SENTENCE_END.search(text[-1:]) else 1)


class LongTurnCutInStrategy(BaseUserTurnStopStrategy):
    """A user turn stop strategy that ends a user turn once it passes ``max_sentences``.

    Counted on the live transcript of the turn, interim included. When the count
    passes the limit, the bot says ``cut_in_phrase`` as uninterruptible speech (an
    ``UninterruptibleSpeechFrame`` goes upstream, so a
    :class:`~pipecat_softack.SoftAckInterruptionFilter` holds what the user says over it)
    and the strategy ends the turn. Pipecat 1.14 never ends a turn while the user is
    audibly speaking, so the turn ends, and the LLM answers what the user said, as
    soon as the user yields to the cut-in. The count resets at each turn and after
    each cut-in (only words after the cut-in count). Use it beside the default stop strategy::

        UserTurnStrategies(stop=[LongTurnCutInStrategy(), *default_user_turn_stop_strategies()])

    Args:
        max_sentences: Sentences one turn may hold before the bot cuts in (default 3).
        cut_in_phrase: What the bot says to cut in.

    Raises:
        ValueError: ``max_sentences`` is not a positive integer.
    """

    def __init__(
        self,
        *,
        max_sentences: int = 3,
        cut_in_phrase: str = DEFAULT_CUT_IN_PHRASE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(max_sentences, int) or max_sentences < 1:
            raise ValueError(f"max_sentences must be a positive integer, got {max_sentences!r}")
        self._max_sentences = max_sentences
        self._phrase = cut_in_phrase
        self._finals: list[str] = []
        self._counted = 0  # words of the turn's live transcript before the last cut-in
        self._in_turn = False
        self.cut_ins = 0

    async def handle_user_turn_started(self):
        """A new turn: count from zero."""
        self._finals, self._counted, self._in_turn = [], 0, True

    async def handle_user_turn_stopped(self):
        """The turn ended (by us or another strategy): count from zero."""
        self._finals, self._counted, self._in_turn = [], 0, False

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Count sentences of the current turn; cut in when there are too many."""
        if not self._in_turn:
            return ProcessFrameResult.CONTINUE
        if isinstance(frame, TranscriptionFrame):
            self._finals.append(frame.text)
            interim = ""
        elif isinstance(frame, InterimTranscriptionFrame):
            interim = frame.text
        else:
            return ProcessFrameResult.CONTINUE
        # An STT's interim may repeat the whole utterance (pocketsphinx): count only
        # the words after the last cut-in.
        words = " ".join([*self._finals, interim]).split()
        sentences = count_sentences([" ".join(words[self._counted :])])
        if sentences <= self._max_sentences:
            return ProcessFrameResult.CONTINUE
        logger.debug(f"{self}: user turn at {sentences} sentences > {self._max_sentences}: cutting in")
        self.cut_ins += 1
        self._counted = len(words)
        await self.push_frame(UninterruptibleSpeechFrame(), FrameDirection.UPSTREAM)
        await self.push_frame(speech_frame(self._phrase, interruptible=False))
        await self.trigger_user_turn_stopped()
        return ProcessFrameResult.STOP
