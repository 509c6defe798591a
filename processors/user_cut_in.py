"""Interrupt the user: cut in politely when one user turn runs past N sentences."""

from __future__ import annotations

import re

from loguru import logger
from pipecat.frames.frames import Frame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop.base_user_turn_stop_strategy import BaseUserTurnStopStrategy

from processors.speech import speech_frame

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
    passes the limit, the bot says ``cut_in_phrase`` as uninterruptible speech and the
    strategy ends the turn, so the aggregator runs the LLM on what the user said so
    far (the final transcripts). Pipecat 1.14 generates that reply at once but writes
    the turn only when the user falls silent. The count resets at each turn and after
    each cut-in. Use it beside the default stop strategy::

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
        self._in_turn = False
        self.cut_ins = 0

    async def handle_user_turn_started(self):
        """A new turn: count from zero."""
        self._finals, self._in_turn = [], True

    async def handle_user_turn_stopped(self):
        """The turn ended (by us or another strategy): count from zero."""
        self._finals, self._in_turn = [], False

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
        sentences = count_sentences(self._finals, interim)
        if sentences <= self._max_sentences:
            return ProcessFrameResult.CONTINUE
        logger.debug(f"{self}: user turn at {sentences} sentences > {self._max_sentences}: cutting in")
        self.cut_ins += 1
        # Pipecat keeps the turn open while the user is still audibly speaking (the
        # reply is generated now, the turn is written when they stop): count afresh.
        self._finals = []
        await self.push_frame(speech_frame(self._phrase, interruptible=False))
        await self.trigger_user_turn_stopped()
        return ProcessFrameResult.STOP
