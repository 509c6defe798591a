"""Frame-level behaviour of SoftAckInterruptionFilter, driven by pipecat's run_test.

Every test runs on the virtual clock (``bench.soak.on_virtual_clock``): frames paced
20 ms apart stay in order however loaded the machine is, and timers fire at their
time exactly, so timings are asserted against the rule, not a wall-clock window.
"""

import asyncio
import re

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    TranscriptionFrame,
    UserBackchannelFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import SleepFrame, run_test

from bench.soak import on_virtual_clock
from pipecat_softack import SoftAckConfigError, SoftAckInterruptionFilter
from tests.frames import audio, final, interim, paced, recording_filter, utterance


def without_bot_frames(frames):
    return [f for f in frames if not isinstance(f, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame))]


@on_virtual_clock
async def test_backchannels_over_a_long_explanation_do_not_interrupt():
    f = recording_filter()
    sent = paced(
        BotStartedSpeakingFrame(),
        *utterance("okay", final_text="Okay."),
        *utterance("yeah", final_text="Yeah."),
        *utterance("uh", "uh huh", final_text="Uh-huh."),
        gap=0.05,
    )
    down, _ = await run_test(f, frames_to_send=sent)
    out = without_bot_frames(down)
    assert [type(x) for x in out] == [UserBackchannelFrame] * 3
    assert [x.text for x in out] == ["Okay.", "Yeah.", "Uh-huh."]
    assert [d.kind for d in f.decisions] == ["backchannel"] * 3
    assert all(d.reason == "utterance ended" for d in f.decisions)


@on_virtual_clock
async def test_yeah_while_the_bot_is_silent_passes_at_once():
    f = recording_filter()
    sent = utterance("yeah", final_text="Yeah")
    down, _ = await run_test(f, frames_to_send=paced(*sent))
    assert down == sent  # the very same frames, in order
    assert f.decisions == []


@on_virtual_clock
async def test_no_stop_interrupts_at_the_first_word():
    f = recording_filter()
    vad_start, speaking = VADUserStartedSpeakingFrame(), UserSpeakingFrame()
    no, no_stop = interim("no"), interim("no stop")
    rest = [VADUserStoppedSpeakingFrame(), final("No, stop.")]
    sent = paced(BotStartedSpeakingFrame(), vad_start, speaking, no, no_stop, *rest)
    down, _ = await run_test(f, frames_to_send=sent)
    assert without_bot_frames(down) == [vad_start, speaking, no, no_stop, *rest]
    assert [(d.kind, d.text) for d in f.decisions] == [("interruption", "no")]


@on_virtual_clock
async def test_yeah_okay_but_wait_releases_in_order_at_the_word_after_but():
    """A trailing "but" waits for the next word (a continuation keyword)."""
    f = recording_filter()
    held = [VADUserStartedSpeakingFrame(), InterruptionFrame(), UserSpeakingFrame()]
    interims = [interim("yeah"), interim("yeah okay"), interim("yeah okay but"), interim("yeah okay but wait")]
    after = [interim("yeah okay but wait now"), VADUserStoppedSpeakingFrame(), final("Yeah, okay, but wait now.")]
    sent = paced(BotStartedSpeakingFrame(), *held, *interims, *after)
    down, _ = await run_test(f, frames_to_send=sent)
    assert without_bot_frames(down) == held + interims + after
    decision = f.decisions[0]
    assert (decision.kind, decision.text, decision.frames) == ("interruption", "yeah okay but wait", 7)
    assert decision.after_speech_stop_secs is None  # released while the user still spoke


@on_virtual_clock
async def test_streaming_release_comes_before_any_final():
    f = recording_filter(transcript_timeout_secs=5)
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        interim("yeah"),
        interim("yeah but"),
        interim("yeah but what"),
        SleepFrame(sleep=0.3),
        final("yeah but what about the price"),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert [(d.kind, d.text) for d in f.decisions] == [("interruption", "yeah but what")]
    assert [type(x) for x in without_bot_frames(down)] == [
        VADUserStartedSpeakingFrame,
        InterimTranscriptionFrame,
        InterimTranscriptionFrame,
        InterimTranscriptionFrame,
        TranscriptionFrame,
    ]


@on_virtual_clock
async def test_audio_is_never_held():
    f = recording_filter()
    vad_start, a1, a2, word = VADUserStartedSpeakingFrame(), audio(), audio(), interim("stop")
    sent = paced(BotStartedSpeakingFrame(), vad_start, a1, a2, word)
    down, _ = await run_test(f, frames_to_send=sent)
    # The audio went out while the start frame was still held.
    assert without_bot_frames(down) == [a1, a2, vad_start, word]


@on_virtual_clock
async def test_noise_without_transcript_is_dropped_after_the_timeout():
    f = recording_filter(transcript_timeout_secs=0.2)
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        UserSpeakingFrame(),
        VADUserStoppedSpeakingFrame(),
        SleepFrame(sleep=0.4),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert without_bot_frames(down) == []
    [decision] = f.decisions
    assert (decision.kind, decision.reason, decision.frames) == ("noise", "transcript timeout", 3)
    assert decision.after_speech_stop_secs == pytest.approx(0.2, abs=1e-6)  # the timeout, exactly


@on_virtual_clock
async def test_default_backchannel_decision_without_final_comes_within_a_second_of_vad_stop():
    f = recording_filter()
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        interim("mm hmm"),
        VADUserStoppedSpeakingFrame(),
        SleepFrame(sleep=1.3),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert [type(x) for x in without_bot_frames(down)] == [UserBackchannelFrame]
    [decision] = f.decisions
    assert decision.reason == "transcript timeout"
    assert decision.after_speech_stop_secs == pytest.approx(1.0, abs=1e-6)  # the default timeout


@on_virtual_clock
async def test_long_speech_without_decision_is_released_after_max_hold():
    f = recording_filter(max_hold_secs=0.3)
    held = [VADUserStartedSpeakingFrame(), interim("yeah"), interim("yeah yeah")]
    sent = paced(BotStartedSpeakingFrame(), *held, SleepFrame(sleep=0.5))
    down, _ = await run_test(f, frames_to_send=sent)
    assert without_bot_frames(down) == held
    assert [(d.kind, d.reason) for d in f.decisions] == [("interruption", "max hold")]


@on_virtual_clock
async def test_bot_stopping_mid_hold_releases_the_utterance_as_a_turn():
    f = recording_filter()
    held = [VADUserStartedSpeakingFrame(), interim("yeah")]
    bot_stop = BotStoppedSpeakingFrame()
    rest = [VADUserStoppedSpeakingFrame(), final("Yeah.")]
    sent = paced(BotStartedSpeakingFrame(), *held, bot_stop, *rest)
    down, _ = await run_test(f, frames_to_send=sent)
    assert down[1:] == [*held, bot_stop, *rest]
    assert [(d.kind, d.reason) for d in f.decisions] == [("interruption", "bot stopped speaking")]


@on_virtual_clock
async def test_two_separate_backchannels_are_judged_separately():
    """livekit/livekit#4270, pipecat#3445: "okay" ... "mhm" is not a two-word turn."""
    f = recording_filter()
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        VADUserStoppedSpeakingFrame(),
        final("okay"),
        SleepFrame(sleep=0.3),
        VADUserStartedSpeakingFrame(),
        VADUserStoppedSpeakingFrame(),
        final("mhm"),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert [x.text for x in without_bot_frames(down)] == ["okay", "mhm"]
    assert all(isinstance(x, UserBackchannelFrame) for x in without_bot_frames(down))


@on_virtual_clock
async def test_utterance_closed_by_the_next_one_when_its_final_is_late():
    f = recording_filter(transcript_timeout_secs=5)
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        interim("okay"),
        VADUserStoppedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),  # before "okay" got its final
        interim("mhm"),
        VADUserStoppedSpeakingFrame(),
        final("mhm"),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert [x.text for x in without_bot_frames(down)] == ["okay", "mhm"]
    assert [d.reason for d in f.decisions] == ["next utterance", "utterance ended"]


@on_virtual_clock
async def test_rest_of_a_released_utterance_passes_and_the_next_one_is_held_again():
    f = recording_filter()
    first = [VADUserStartedSpeakingFrame(), interim("wait"), VADUserStoppedSpeakingFrame()]
    late_final = final("Wait.")
    sent = paced(
        BotStartedSpeakingFrame(),
        *first,
        late_final,
        *utterance("yeah", final_text="yeah"),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    out = without_bot_frames(down)
    assert out[:4] == [*first, late_final]
    assert [type(x) for x in out[4:]] == [UserBackchannelFrame]


@on_virtual_clock
async def test_bot_state_is_accepted_from_upstream():
    f = recording_filter()
    await run_test(
        f,
        frames_to_send=[BotStartedSpeakingFrame()],
        frames_to_send_direction=FrameDirection.UPSTREAM,
        expected_up_frames=[BotStartedSpeakingFrame],
    )
    assert f.bot_speaking


@on_virtual_clock
async def test_end_frame_mid_hold_reports_the_backchannel_and_leaves_no_timer():
    f = recording_filter()
    sent = paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("yeah"))
    down, _ = await asyncio.wait_for(run_test(f, frames_to_send=sent), timeout=5)
    assert [type(x) for x in without_bot_frames(down)] == [UserBackchannelFrame]
    assert [(d.kind, d.reason) for d in f.decisions] == [("backchannel", "pipeline ended")]
    assert f._timer is None and not f.holding


@on_virtual_clock
async def test_cancel_frame_mid_hold_discards_and_leaves_no_timer():
    f = recording_filter()
    sent = paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("yeah"))
    down, _ = await asyncio.wait_for(
        run_test(f, frames_to_send=[*sent, CancelFrame()], send_end_frame=False), timeout=5
    )
    assert not any(isinstance(x, (VADUserStartedSpeakingFrame, InterimTranscriptionFrame)) for x in down)
    assert f._timer is None and not f.holding


@on_virtual_clock
async def test_other_frames_and_audio_pass_untouched_while_bot_speaks():
    f = recording_filter()
    frames = [audio(), audio()]
    down, _ = await run_test(f, frames_to_send=paced(BotStartedSpeakingFrame(), *frames))
    assert without_bot_frames(down) == frames
    assert all(isinstance(x, InputAudioRawFrame) for x in frames)


def test_classifier_and_lexicon_arguments_are_exclusive():
    from pipecat_softack import BackchannelClassifier

    with pytest.raises(SoftAckConfigError, match="not both"):
        SoftAckInterruptionFilter(classifier=BackchannelClassifier(), soft_acks=["yeah"])


def test_bad_timing_names_the_value():
    with pytest.raises(SoftAckConfigError, match="max_hold_secs=.*-1"):
        SoftAckInterruptionFilter(max_hold_secs=-1)


@on_virtual_clock
async def test_content_word_in_one_interim_waits_for_the_stt_to_stand_by_it():
    """pocketsphinx on "oh really": "oh" -> "over" -> "oh really" (tests/test_real_audio.py)."""
    f = recording_filter()
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        interim("oh"),
        interim("over"),
        interim("oh really"),
        VADUserStoppedSpeakingFrame(),
        final("oh really"),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert [type(x) for x in without_bot_frames(down)] == [UserBackchannelFrame]
    assert [(d.kind, d.text) for d in f.decisions] == [("backchannel", "oh really")]


@on_virtual_clock
async def test_content_word_releases_on_its_second_interim_and_a_command_on_its_first():
    f = recording_filter(interim_min_speech_secs=0)
    sent = paced(
        BotStartedSpeakingFrame(),
        *utterance("refund", "refund is", "refund is late", final_text="refund is late"),
        *utterance("okay", "okay stop", final_text="okay stop"),
    )
    await run_test(f, frames_to_send=sent)
    assert [(d.kind, d.text) for d in f.decisions] == [
        ("interruption", "refund is"),
        ("interruption", "okay stop"),
    ]


@on_virtual_clock
async def test_content_confirmations_of_one_release_on_the_first_interim():
    f = recording_filter(content_confirmations=1, interim_min_speech_secs=0)
    sent = paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("over"))
    await run_test(f, frames_to_send=sent)
    assert [(d.kind, d.text) for d in f.decisions] == [("interruption", "over")]


@on_virtual_clock
async def test_interim_before_the_vad_start_is_one_utterance_with_it():
    """An STT's own speech detector can beat Silero: "oh" arrives before the VAD start."""
    f = recording_filter()
    early = interim("oh")
    sent = paced(
        BotStartedSpeakingFrame(),
        early,
        VADUserStartedSpeakingFrame(),
        interim("oh really"),
        VADUserStoppedSpeakingFrame(),
        final("Oh, really?"),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    assert [x.text for x in without_bot_frames(down)] == ["Oh, really?"]
    [decision] = f.decisions
    assert (decision.kind, decision.frames) == ("backchannel", 5)


@on_virtual_clock
async def test_short_speech_is_decided_on_its_final_not_on_a_misheard_interim():
    """A backchannel shorter than interim_min_speech_secs (0.6 s): its content
    interims ("exam", as pocketsphinx hears the start of "exactly") wait for the final."""
    f = recording_filter()
    sent = paced(BotStartedSpeakingFrame(), *utterance("exam", "exam", "exam", final_text="exactly"))
    down, _ = await run_test(f, frames_to_send=sent)
    assert [(d.kind, d.text, d.reason) for d in f.decisions] == [("backchannel", "exactly", "utterance ended")]
    assert not [x for x in down if isinstance(x, InterimTranscriptionFrame)]

    # The same short speech with content in its final interrupts, on the final.
    f = recording_filter()
    await run_test(f, frames_to_send=paced(BotStartedSpeakingFrame(), *utterance("refund", "refund", final_text="refund")))
    assert [(d.kind, d.text, d.reason) for d in f.decisions] == [("interruption", "refund", "content or command word")]
    assert f.decisions[0].after_speech_stop_secs is not None


@on_virtual_clock
async def test_longer_speech_releases_on_a_content_interim_and_a_command_at_once():
    f = recording_filter()
    sent = [BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("refund"), SleepFrame(sleep=0.1),
            interim("refund is"), SleepFrame(sleep=0.3), interim("refund is late"), SleepFrame(sleep=0.3),
            interim("refund is late again"), SleepFrame(sleep=0.3)]  # fmt: skip
    await run_test(f, frames_to_send=sent)
    [decision] = f.decisions
    assert (decision.kind, decision.text, decision.after_speech_stop_secs) == ("interruption", "refund is late again", None)
    assert decision.held_secs >= 0.6

    f = recording_filter()
    await run_test(f, frames_to_send=paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("stop")))
    assert [(d.kind, d.text, d.after_speech_stop_secs) for d in f.decisions] == [("interruption", "stop", None)]


@pytest.mark.parametrize("bad", [-0.1, "0.6", True, float("inf")])
def test_bad_interim_min_speech_secs_is_named(bad):
    with pytest.raises(SoftAckConfigError, match=f"interim_min_speech_secs=.*{re.escape(repr(bad))}"):
        SoftAckInterruptionFilter(interim_min_speech_secs=bad)


def test_bad_content_confirmations_is_named():
    with pytest.raises(SoftAckConfigError, match="content_confirmations=.*0"):
        SoftAckInterruptionFilter(content_confirmations=0)


async def words_without_a_vad_start(*transcripts, bot_said: str | None = None):
    """Transcripts heard while the bot speaks, in a pipeline whose VAD runs (one
    earlier utterance) but gave them no speech start. Returns (filter, transcripts
    that went downstream)."""
    f = recording_filter(transcript_timeout_secs=0.3)
    if bot_said:
        f.bot_speech.add(bot_said)
    sent = paced(
        VADUserStartedSpeakingFrame(),  # the VAD runs in this pipeline
        VADUserStoppedSpeakingFrame(),
        BotStartedSpeakingFrame(),
        *transcripts,
        SleepFrame(sleep=0.5),
    )
    down, _ = await run_test(f, frames_to_send=sent)
    return f, [x for x in down if isinstance(x, (InterimTranscriptionFrame, TranscriptionFrame))]


@on_virtual_clock
async def test_words_without_a_vad_start_are_noise_once_the_vad_is_known():
    """bench audio: pocketsphinx's own detector transcribed noise ("the starters")."""
    f, passed = await words_without_a_vad_start(interim("the"), interim("the starters"))
    assert passed == []
    assert [(d.kind, d.text) for d in f.decisions] == [("noise", "the starters")]


@on_virtual_clock
async def test_a_command_without_a_vad_start_still_interrupts():
    """Silero misses a quick one-word "wait" (tests/audio/wait__joe_x125.wav in every
    window phase): the command keyword releases at once, with no VAD start."""
    wait, wait_final = interim("wait"), final("Wait.")
    f, passed = await words_without_a_vad_start(wait, wait_final)
    assert passed == [wait, wait_final]
    assert [(d.kind, d.text) for d in f.decisions] == [("interruption", "wait")]


@on_virtual_clock
async def test_a_command_in_the_bots_own_words_without_a_vad_start_is_echo():
    """The exception for commands keeps echo rejection: the bot said "wait"."""
    f, passed = await words_without_a_vad_start(
        interim("wait"), final("wait"), bot_said="Please wait while I check that."
    )
    assert passed == []
    assert [(d.kind, d.text) for d in f.decisions] == [("echo", "wait")]
