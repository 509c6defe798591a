"""The barge-in rules of the peers a user would pick instead of this project, as pure
functions on text (and the timing constants that go with them).

Shared by ``bench audio`` (bench/audio.py runs each as a branch fed by the same
Silero VAD and STT as ours) and by any text bench. Nothing here imports Pipecat.

**Vapi** (``stopSpeakingPlan``; documented defaults, the implementation is not
public). Source: Vapi's API reference, schema ``StopSpeakingPlan`` (the OpenAPI
model the Vapi SDKs are generated from, e.g. the ``vapi-client`` crate's
``models/stop_speaking_plan.rs``): ``numWords`` "is the number of words that the
customer has to say before the assistant will stop talking. Words like 'stop',
'actually', 'no', etc. will always interrupt immediately regardless of this value.
Words like 'okay', 'yeah', 'right' will never interrupt. When set to 0,
``voiceSeconds`` is used in addition to the transcriptions ... Defaults to 0";
``voiceSeconds`` defaults to 0.2 s; ``acknowledgementPhrases`` ("phrases that will
never interrupt the assistant, even if numWords threshold is met") and
``interruptionPhrases`` ("will always interrupt") default to the lists
:data:`VAPI_ACKNOWLEDGEMENT_PHRASES` and :data:`VAPI_INTERRUPTION_PHRASES`.

**LiveKit legacy** (livekit-agents' ``VoiceAssistant`` before ``VoicePipelineAgent``,
``livekit-agents/livekit/agents/voice_assistant/assistant.py``): constructor defaults
``interrupt_speech_duration=0.65``, ``interrupt_min_words=3``; its 10 ms update loop
calls ``_interrupt_if_needed`` while the VAD says the user speaks (a moving average
over ``interrupt_speech_duration`` of "user speaking" >= 0.1); that returns early
``if len(final words) <= interrupt_min_words`` and ``len(interim words) <=
interrupt_min_words`` (so it needs *more* than 3 words, final text or interim), and
``if time.time() - self._playout_start_time < 1`` ("don't interrupt new speech").
Later versions (``pipeline/pipeline_agent.py``) changed the defaults to 0.5 s and 0
words; the legacy rule is the one that filtered backchannels.
"""

from __future__ import annotations

import re

# --------------------------------------------------------------------------- #
# Vapi
# --------------------------------------------------------------------------- #

#: Vapi's default ``stopSpeakingPlan.acknowledgementPhrases``.
VAPI_ACKNOWLEDGEMENT_PHRASES = (
    "i understand", "i see", "i got it", "i hear you", "im listening", "im with you",
    "right", "okay", "ok", "sure", "alright", "got it", "understood", "yeah", "yes",
    "uh-huh", "mm-hmm", "gotcha", "mhmm", "ah", "yeah okay", "yeah sure",
)  # fmt: skip
#: Vapi's default ``stopSpeakingPlan.interruptionPhrases`` (all single words).
VAPI_INTERRUPTION_PHRASES = (
    "stop", "shut", "up", "enough", "quiet", "silence", "but", "dont", "not", "no",
    "hold", "wait", "cut", "pause", "nope", "nah", "nevermind", "never", "bad", "actually",
)  # fmt: skip
#: Vapi's default ``numWords`` (0), and the second setting the bench runs (2).
VAPI_NUM_WORDS = 0
#: Seconds of VAD speech Vapi's ``voiceSeconds`` asks for when ``numWords`` is 0.
VAPI_VOICE_SECONDS = 0.2

_ACKS = {tuple(p.split()) for p in VAPI_ACKNOWLEDGEMENT_PHRASES}
_ACK_MAX = max(len(p) for p in _ACKS)
_INTERRUPTS = set(VAPI_INTERRUPTION_PHRASES)


def _words(text: str) -> list[str]:
    """Lower-case words, apostrophes dropped ("don't" -> "dont", "I'm" -> "im", the
    spelling of Vapi's lists), other punctuation but hyphens a separator."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^a-z0-9\- ]+", " ", text).split()


def _only_acknowledgements(words: list[str]) -> bool:
    """True if ``words`` are one or more acknowledgement phrases in a row."""
    i = 0
    while i < len(words):
        for n in range(min(_ACK_MAX, len(words) - i), 0, -1):
            if tuple(words[i : i + n]) in _ACKS:
                i += n
                break
        else:
            return False
    return bool(words)


def vapi_interrupts(text: str, num_words: int = VAPI_NUM_WORDS) -> bool:
    """Whether Vapi's documented stop-speaking rule stops the bot on ``text``.

    An interruption phrase anywhere interrupts; text made only of acknowledgement
    phrases never does; anything else interrupts once it has ``num_words`` words
    (at least one). With ``num_words=0`` Vapi also asks ``voiceSeconds`` (0.2 s) of
    VAD speech, which ``bench audio`` checks; on text alone it is one word.

    Args:
        text: What the user said so far (any STT spelling).
        num_words: Vapi's ``numWords`` (default 0).
    """
    words = _words(text)
    if not words:
        return False
    if any(w in _INTERRUPTS for w in words):
        return True
    if _only_acknowledgements(words):
        return False
    return len(words) >= max(1, num_words)


# --------------------------------------------------------------------------- #
# LiveKit legacy
# --------------------------------------------------------------------------- #

#: ``interrupt_min_words`` of livekit-agents' legacy ``VoiceAssistant``.
LIVEKIT_INTERRUPT_MIN_WORDS = 3
#: ``interrupt_speech_duration`` (seconds): the window of its "user speaking" average.
LIVEKIT_INTERRUPT_SPEECH_DURATION = 0.65
#: The average of "user speaking" over that window must reach this (10 % of it).
LIVEKIT_SPEAKING_AVG = 0.1
#: Seconds after the bot's playout starts during which it never interrupts.
LIVEKIT_NO_INTERRUPT_FIRST_SECS = 1.0


def livekit_legacy_interrupts(text: str, interim: str = "", min_words: int = LIVEKIT_INTERRUPT_MIN_WORDS) -> bool:
    """Whether LiveKit's legacy word rule lets an interruption through.

    True when the final text or the interim has *more than* ``min_words`` words
    (``if len(txt) <= self._opts.int_min_words: return``, for both). The timing
    conditions (the VAD says the user is speaking, 1 s of playout) are the caller's.

    Args:
        text: Final transcripts of the user's speech so far, joined.
        interim: The latest interim transcript.
        min_words: ``interrupt_min_words`` (default 3).
    """
    return len(text.split()) > min_words or len(interim.split()) > min_words
