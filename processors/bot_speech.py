"""What the bot has said aloud, and when: the record echo rejection and the
classifier's context read (the texts), and the acoustic echo check (the audio).

Pipecat's output transport pushes each ``TTSTextFrame`` on only once the audio queued
before it has played (``pipecat/transports/base_output.py``), so the moment the output
transport pushes one is the moment its text starts playing: sentence by sentence with
Piper, word by word with TTS services that give word timestamps (Cartesia, ElevenLabs).
:class:`BotSpeechRecord` is a Pipecat observer that keeps those texts with their play
times. It pushes each audio frame on once written to the speaker (or the network), so
the same event gives the played audio, kept in an :class:`AudioHistory`. The soft-ack
filter attaches its record at setup to the first output transport after it (Pipecat's
public ``on_after_push_frame`` processor event, so only that processor's pushes are
looked at: no pipeline observer, which would see every frame).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from pipecat.frames.frames import Frame, OutputAudioRawFrame, TTSTextFrame
from pipecat.processors.frame_processor import FrameProcessor

from pipecat_softack.acoustic_echo import AudioHistory
from pipecat_softack.classifier import normalize


@dataclass(frozen=True)
class Spoken:
    """One text the bot played.

    Attributes:
        t: ``time.monotonic()`` seconds when it started playing.
        text: The text as the TTS was given it.
        tokens: ``normalize(text)``.
    """

    t: float
    text: str
    tokens: tuple[str, ...]


class BotSpeechRecord:
    """The texts the bot's output transport has played, newest last, and the last
    ``AudioHistory`` seconds of its audio (:attr:`audio`).

    Fed by :meth:`watch` (a processor that pushes ``TTSTextFrame``s on as they play
    and audio frames once written: Pipecat's output transport) or by :meth:`add` and
    ``audio.add``.

    Args:
        keep_secs: Seconds of played text to keep (default 30.0); older entries are
            pruned as new ones arrive, except the newest, which is kept whatever its
            age (the context of a bot that has been quiet a while).
        max_entries: Bound on the entries kept (default 64), so a long session uses
            constant memory.
        keep_audio: Keep the played audio too (default True; the acoustic echo check
            reads it). False leaves :attr:`audio` None.

    Raises:
        ValueError: ``keep_secs`` not positive or ``max_entries`` below 1.
    """

    def __init__(self, *, keep_secs: float = 30.0, max_entries: int = 64, keep_audio: bool = True):
        if not keep_secs > 0:
            raise ValueError(f"keep_secs must be a positive number of seconds, got {keep_secs!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        self._keep_secs = keep_secs
        self._spoken: deque[Spoken] = deque(maxlen=max_entries)
        self.audio = AudioHistory() if keep_audio else None
        """The played audio, each frame as ending when the transport pushed it on
        (None with ``keep_audio=False``)."""

        self._watched: list[FrameProcessor] = []

    def watch(self, processor: FrameProcessor):
        """Record every ``TTSTextFrame`` ``processor`` pushes on, as played then, and
        every audio frame it pushes on, as played by then.

        Args:
            processor: The output transport (``transport.output()``), or any processor
                that pushes ``TTSTextFrame``s as their audio starts playing.
        """
        if processor not in self._watched:
            processor.add_event_handler("on_after_push_frame", self._on_pushed)
            self._watched.append(processor)

    def unwatch(self):
        """Stop recording what the watched processors push."""
        for processor in self._watched:
            processor.remove_event_handler("on_after_push_frame", self._on_pushed)
        self._watched.clear()

    async def _on_pushed(self, _processor: FrameProcessor, frame: Frame):
        if isinstance(frame, TTSTextFrame):
            self.add(frame.text)
        elif self.audio is not None and isinstance(frame, OutputAudioRawFrame):
            self.audio.add(frame.audio, frame.sample_rate, frame.num_channels)

    def add(self, text: str, t: float | None = None):
        """Record ``text`` as starting to play at ``t`` (default: now, monotonic seconds)."""
        tokens = normalize(text or "")
        if not tokens:
            return
        now = time.monotonic() if t is None else t
        self._spoken.append(Spoken(now, text, tokens))
        while self._spoken and self._spoken[0].t < now - self._keep_secs and len(self._spoken) > 1:
            self._spoken.popleft()

    def tokens_since(self, t: float) -> list[str]:
        """Tokens of every text that started playing at or after ``t``, and of the one
        that was playing at ``t`` (it may still have been heard after ``t``)."""
        tokens: list[str] = []
        playing = None
        for spoken in self._spoken:
            if spoken.t < t:
                playing = spoken
            else:
                tokens.extend(spoken.tokens)
        return [*(playing.tokens if playing else ()), *tokens]

    def last_text(self) -> str | None:
        """The text the bot played last, or None."""
        return self._spoken[-1].text if self._spoken else None

    def context_text(self, max_chars: int = 600) -> str | None:
        """What the bot said last, as the classifier's context: the newest played
        texts joined, up to about ``max_chars`` characters (so word-by-word
        ``TTSTextFrame``s still give whole sentences), or None if nothing was played."""
        parts: list[str] = []
        size = 0
        for spoken in reversed(self._spoken):
            parts.append(spoken.text.strip())
            size += len(spoken.text) + 1
            if size >= max_chars:
                break
        return " ".join(reversed(parts)) if parts else None

    def clear(self):
        """Forget everything played (a new session)."""
        self._spoken.clear()
        if self.audio is not None:
            self.audio.clear()

