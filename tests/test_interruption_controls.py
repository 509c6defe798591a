"""Interruption controls composed with the soft-ack verdict: uninterruptible speech,
bot grace period, minimum words and minimum speech duration."""

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterimTranscriptionFrame,
    TTSSpeakFrame,
    UserBackchannelFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_softack import SoftAckConfigError, speech_frame
from tests.frames import final, interim, paced, utterance
from tests.test_softack_filter import recording_filter, without_bot_frames


def user_frames(frames):
    return [f for f in without_bot_frames(frames) if not isinstance(f, TTSSpeakFrame)]


def test_speech_frame_is_uninterruptible_on_request():
    assert speech_frame("Your code is 4 8 1 5.", interruptible=False).interruptible is False
    assert speech_frame("Hello").interruptible is True


async def test_stop_during_uninterruptible_speech_waits_and_becomes_the_next_turn():
    f = recording_filter()
    stop = utterance("stop", final_text="Stop.")
    bot_stop = BotStoppedSpeakingFrame()
    sent = paced(speech_frame("Terms and conditions...", interruptible=False), BotStartedSpeakingFrame(), *stop)
    sent += [SleepFrame(sleep=0.3), *paced(bot_stop)]
    down, _ = await run_test(f, frames_to_send=sent)
    out = [x for x in down if not isinstance(x, (TTSSpeakFrame, BotStartedSpeakingFrame))]
    assert out == [*stop, bot_stop]  # nothing went out before the speech ended
    [decision] = f.decisions
    assert (decision.kind, decision.reason, decision.deferred) == (
        "interruption", "bot stopped speaking", "uninterruptible speech")


async def test_discard_policy_drops_and_reports_what_was_said():
    f = recording_filter(user_speech_during_uninterruptible="discard")
    f.discarded = []

    @f.event_handler("on_speech_discarded")
    async def on_discarded(_f, decision):
        _f.discarded.append(decision)

    sent = paced(
        speech_frame("Your one-time code is 4 8 1 5.", interruptible=False),
        BotStartedSpeakingFrame(),
        *utterance("wait what", final_text="wait what"),
        BotStoppedSpeakingFrame(),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert user_frames(down) == []
    assert [(d.kind, d.text) for d in f.discarded] == [("discarded", "wait what")]


async def test_bot_level_uninterruptible_holds_until_the_end_and_loses_nothing():
    f = recording_filter(uninterruptible=True)
    said = utterance("no stop", final_text="no stop")
    down, _ = await run_test(f, frames_to_send=paced(BotStartedSpeakingFrame(), *said))
    # Held while the bot spoke; the EndFrame released it: held frames are never lost.
    assert [(d.reason, d.deferred) for d in f.decisions] == [("pipeline ended", "uninterruptible speech")]
    assert without_bot_frames(down) == said


async def test_backchannel_during_uninterruptible_speech_is_still_a_backchannel():
    f = recording_filter()
    sent = paced(
        speech_frame("Please listen carefully.", interruptible=False),
        BotStartedSpeakingFrame(),
        *utterance("mhm", final_text="mhm"),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert [type(x) for x in user_frames(down)] == [UserBackchannelFrame]


async def test_interruption_in_the_bot_grace_period_waits_until_it_ends():
    f = recording_filter(bot_grace_secs=0.5)
    sent = paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("stop"), SleepFrame(sleep=0.8))
    await run_test(f, frames_to_send=sent)
    [decision] = f.decisions
    assert (decision.kind, decision.deferred) == ("interruption", "bot grace period")
    assert 0.3 <= decision.held_secs <= 0.7  # released when the 0.5 s grace ended


async def test_min_words_defers_content_but_not_commands():
    # interim_min_speech_secs=0: the interims may release at once, so min_words alone defers.
    f = recording_filter(min_words=3, interim_min_speech_secs=0)
    sent = paced(
        BotStartedSpeakingFrame(),
        *utterance("my card", "my card", final_text="my card"),  # 2 words: waits
        SleepFrame(sleep=0.1),
        *utterance("was charged", "was charged twice", final_text="was charged twice"),  # joins it
    )
    await run_test(f, frames_to_send=sent)
    [decision] = f.decisions
    assert (decision.kind, decision.deferred, decision.text) == ("interruption", "min_words", "my card was charged")  # released at 3+ words

    f = recording_filter(min_words=3)
    await run_test(f, frames_to_send=paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("stop")))
    assert [(d.text, d.deferred) for d in f.decisions] == [("stop", None)]


async def test_min_speech_secs_waits_for_enough_speech():
    f = recording_filter(min_speech_secs=0.4, interim_min_speech_secs=0)
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        interim("refund"),
        interim("refund is"),
        SleepFrame(sleep=0.6),
    )
    await run_test(f, frames_to_send=sent)
    [decision] = f.decisions
    assert (decision.kind, decision.deferred) == ("interruption", "min_speech_secs")
    assert decision.held_secs >= 0.4


async def test_short_speech_below_min_speech_secs_waits_for_the_bot_to_stop():
    f = recording_filter(min_speech_secs=5)
    bot_stop = BotStoppedSpeakingFrame()
    held = [VADUserStartedSpeakingFrame(), interim("refund"), interim("refund is"), VADUserStoppedSpeakingFrame(), final("refund is")]
    sent = paced(BotStartedSpeakingFrame(), *held, SleepFrame(sleep=0.3), bot_stop)
    down, _ = await run_test(f, frames_to_send=sent)
    assert without_bot_frames(down) == held
    assert down[-1] is bot_stop
    assert [(d.reason, d.deferred) for d in f.decisions] == [("bot stopped speaking", "min_speech_secs")]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_words": -1}, "min_words= must be a whole number >= 0"),
        ({"bot_grace_secs": -0.5}, "bot_grace_secs= must be a number of seconds >= 0"),
        ({"user_speech_during_uninterruptible": "queue"}, "'queue'"),
    ],
)
def test_bad_controls_are_named(kwargs, message):
    from pipecat_softack import SoftAckInterruptionFilter

    with pytest.raises(SoftAckConfigError, match=message):
        SoftAckInterruptionFilter(**kwargs)
