"""The STT's own confidence: a short low-confidence content interim while the bot
speaks does not release on its own; a command keyword still does at once."""

from types import SimpleNamespace

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InterimTranscriptionFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_softack import SoftAckConfigError, SoftAckInterruptionFilter
from pipecat_softack.confidence import transcript_confidence
from tests.frames import TS, USER, final, paced, recording_filter


def deepgram(text: str, confidence: float) -> InterimTranscriptionFrame:
    """An interim as pipecat/services/deepgram/stt.py pushes it: result=the live result,
    whose channel.alternatives[0].confidence Deepgram sets."""
    result = SimpleNamespace(channel=SimpleNamespace(alternatives=[SimpleNamespace(transcript=text, confidence=confidence)]))
    return InterimTranscriptionFrame(text=text, user_id=USER, timestamp=TS, result=result)


def test_confidence_is_read_where_each_stt_puts_it():
    assert transcript_confidence(deepgram("car", 0.42)) == 0.42
    words = SimpleNamespace(words=[SimpleNamespace(confidence=0.5), SimpleNamespace(confidence=0.7)])
    assert transcript_confidence(SimpleNamespace(result=words)) == pytest.approx(0.6)  # AssemblyAI
    assert transcript_confidence(SimpleNamespace(result={"confidence": 0.9})) == 0.9
    assert transcript_confidence(final("no result")) is None  # Whisper in Pipecat sets none
    assert transcript_confidence(SimpleNamespace(result={"confidence": 7})) is None  # not a 0..1 value


def spoken(*interims, final_text=None):
    frames = [BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), UserSpeakingFrame(), *interims,
              VADUserStoppedSpeakingFrame()]
    if final_text:
        frames.append(final(final_text))
    return [*paced(*frames), SleepFrame(sleep=1.3)]  # past the 1 s transcript timeout


async def test_a_low_confidence_content_guess_never_releases_and_is_dropped_as_noise():
    f = recording_filter()
    await run_test(f, frames_to_send=spoken(deepgram("truck", 0.3), deepgram("truck", 0.3), deepgram("truck", 0.3)))
    assert [(d.kind, d.reason) for d in f.decisions] == [("noise", "transcript timeout, low-confidence interim only")]


async def test_a_final_after_the_guess_was_dropped_still_decides():
    """The final comes after the timeout dropped the low-confidence guess, while the bot
    still speaks: the utterance is judged again on it (reason "late final")."""
    f = recording_filter()
    frames = spoken(deepgram("truck", 0.3))
    await run_test(f, frames_to_send=[*frames, final("My truck broke down."), SleepFrame(sleep=0.1)])
    assert [(d.kind, d.reason) for d in f.decisions] == [
        ("noise", "transcript timeout, low-confidence interim only"),
        ("interruption", "late final"),
    ]


async def test_the_same_words_with_high_confidence_release_on_the_second_interim():
    # interim_min_speech_secs=0: these paced frames are speech of a few ms, which the
    # duration rule would leave to a final (none comes: the timeout drops it as noise).
    f = recording_filter(interim_min_speech_secs=0)
    await run_test(f, frames_to_send=spoken(deepgram("truck", 0.95), deepgram("truck", 0.95)))
    assert [(d.kind, d.text, d.reason) for d in f.decisions] == [("interruption", "truck", "content or command word")]


async def test_a_final_decides_whatever_the_interims_confidence():
    f = recording_filter()
    await run_test(f, frames_to_send=spoken(deepgram("car", 0.3), final_text="My car broke down."))
    assert [d.kind for d in f.decisions] == ["interruption"]


async def test_a_command_keyword_releases_at_once_even_at_low_confidence():
    f = recording_filter()
    await run_test(f, frames_to_send=spoken(deepgram("stop", 0.1)))
    assert [(d.kind, d.text, d.reason) for d in f.decisions] == [("interruption", "stop", "content or command word")]


async def test_longer_content_is_not_short_and_releases_as_usual():
    f = recording_filter(low_confidence_max_words=2, interim_min_speech_secs=0)
    await run_test(f, frames_to_send=spoken(deepgram("my car broke", 0.3), deepgram("my car broke", 0.3)))
    assert [(d.kind, d.reason) for d in f.decisions] == [("interruption", "content or command word")]


@pytest.mark.parametrize("bad", [{"min_interim_confidence": 1.5}, {"low_confidence_max_words": -1}])
def test_bad_confidence_settings_are_named(bad):
    with pytest.raises(SoftAckConfigError, match=next(iter(bad))):
        SoftAckInterruptionFilter(**bad)
