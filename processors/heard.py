"""What the user actually heard of an interrupted bot answer, and resuming it.

- :class:`HeardSpeechTracker` (a Pipecat observer) compares the text sent to the TTS
  with the text the output transport played (Pipecat's output transport pushes each
  ``TTSTextFrame`` on only after the audio queued before it has played; with word
  timestamps, e.g. Cartesia, word by word, else sentence by sentence) and fires
  ``on_bot_interrupted(tracker, interruption: BotInterruption)`` on each interruption.
  Pipecat's assistant aggregator already keeps only that played text in the LLM
  context; the tracker says what was cut.
- :class:`ResumeProcessor`, placed between the user aggregator and the LLM, answers a
  user turn such as "continue", "go on", "where were you", "sorry, go ahead" right
  after an interruption by speaking the unheard rest of the answer instead of
  running the LLM.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from loguru import logger
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    TTSTextFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_softack.classifier import normalize

# Phrases that ask the bot to pick up where it was cut, after normalisation; polite
# fillers around them ("oh sorry, please go on") are ignored.
DEFAULT_RESUME_PHRASES = (
    "continue", "go on", "go ahead", "carry on", "keep going", "where were you",
    "where were we", "you were saying", "what were you saying", "as you were saying",
    "sorry go ahead", "go on please", "please continue", "resume",
)
_POLITE = {"sorry", "oh", "okay", "ok", "yeah", "yes", "please", "um", "uh", "so", "and", "right"}


@dataclass(frozen=True)
class BotInterruption:
    """An interrupted bot answer.

    Attributes:
        heard: Text the user heard (played before the interruption).
        unheard: The rest of the text sent to the TTS, not played.
        progress: Share of the answer's words that were heard, 0.0 to 1.0.
    """

    heard: str
    unheard: str
    progress: float


class HeardSpeechTracker(BaseObserver):
    """Observer that works out what the user heard when the bot is interrupted.

    Args:
        tts: The pipeline's TTS service: text pushed into it is what the bot says.
        output: The transport's output processor (``transport.output()``): text frames
            it pushes on are what was played.

    Event handlers: ``on_bot_interrupted(tracker, interruption: BotInterruption)``.
    The latest interruption is also kept in :attr:`last_interruption` until the bot
    says something new.
    """

    def __init__(self, *, tts: FrameProcessor, output: FrameProcessor, **kwargs):
        super().__init__(**kwargs)
        self._tts = tts
        self._output = output
        self._said: list[str] = []
        self._heard: list[str] = []
        self._seen_interruptions: set[int] = set()
        self.last_interruption: BotInterruption | None = None
        self._register_event_handler("on_bot_interrupted")

    async def on_push_frame(self, data: FramePushed):
        """Follow text into the TTS, text out of the output transport, interruptions."""
        frame = data.frame
        if isinstance(frame, (LLMTextFrame, TTSSpeakFrame)) and data.destination is self._tts:
            if not self._said:
                self.last_interruption = None  # the bot says something new
            self._said.append(frame.text)
        elif isinstance(frame, TTSTextFrame) and data.source is self._output:
            self._heard.append(frame.text)
        elif isinstance(frame, InterruptionFrame) and data.source is self._output:
            if frame.id not in self._seen_interruptions and self._said:
                self._seen_interruptions.add(frame.id)
                await self._interrupted()
        elif isinstance(frame, BotStoppedSpeakingFrame) and data.source is self._output:
            if self._said and self.split()[1] == "":
                self._said, self._heard = [], []  # all of it was heard

    def split(self) -> tuple[str, str]:
        """``(heard, unheard)`` of the current answer, word-aligned."""
        said = "".join(self._said).split()
        heard_count = min(len(" ".join(self._heard).split()), len(said))
        return " ".join(said[:heard_count]), " ".join(said[heard_count:])

    async def _interrupted(self):
        heard, unheard = self.split()
        total = len(heard.split()) + len(unheard.split())
        interruption = BotInterruption(
            heard=heard, unheard=unheard, progress=len(heard.split()) / total if total else 1.0
        )
        self._said, self._heard = [], []
        self.last_interruption = interruption
        logger.debug(f"{self}: interrupted at {interruption.progress:.0%}; unheard: [{unheard}]")
        await self._call_event_handler("on_bot_interrupted", interruption)


class ResumeProcessor(FrameProcessor):
    """Resumes an interrupted answer when the user asks for it.

    Place it between the user aggregator and the LLM. When the user turn that just
    ended is a resume request ("continue", "go on", "where were you", "sorry, go
    ahead"; see ``DEFAULT_RESUME_PHRASES``) and the tracker holds an interrupted
    answer, the context frame is not sent to the LLM: the unheard rest of the answer
    is spoken instead (and joins the context, as the assistant's words).

    Args:
        tracker: The :class:`HeardSpeechTracker` of the same pipeline.
        resume_phrases: Phrases that ask to resume (default ``DEFAULT_RESUME_PHRASES``).
    """

    def __init__(
        self,
        *,
        tracker: HeardSpeechTracker,
        resume_phrases: Iterable[str] = DEFAULT_RESUME_PHRASES,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._tracker = tracker
        self._phrases = {" ".join(normalize(p)) for p in resume_phrases}

    def is_resume_request(self, text: str) -> bool:
        """Whether ``text`` asks the bot to pick up where it was cut."""
        words = [w for w in normalize(text) if w != "?"]
        core = " ".join(w for w in words if w not in _POLITE)
        return core in self._phrases or " ".join(words) in self._phrases

    async def process_frame(self, frame, direction: FrameDirection):
        """Turn a resume request after an interruption into the rest of the answer."""
        await super().process_frame(frame, direction)
        interruption = self._tracker.last_interruption
        if isinstance(frame, LLMContextFrame) and interruption and interruption.unheard:
            text = _last_user_text(frame.context.messages)
            if text and self.is_resume_request(text):
                logger.debug(f"{self}: resuming at {interruption.progress:.0%}")
                self._tracker.last_interruption = None
                await self.push_frame(TTSSpeakFrame(interruption.unheard), direction)
                return
        await self.push_frame(frame, direction)


def _last_user_text(messages) -> str | None:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return None
    return None
