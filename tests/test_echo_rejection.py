"""Echo rejection: the bot's own recent words coming back through the microphone never
interrupt it, while a user who adds a word of their own still does."""

import time

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    TTSTextFrame,
    UserBackchannelFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from bench.audio_timeline import SpeakerOutputTransport, Timeline
from pipecat_softack import SoftAckConfigError, SoftAckInterruptionFilter
from pipecat_softack.bot_speech import BotSpeechRecord
from pipecat_softack.classifier import normalize
from pipecat_softack.echo import echo_explains, echo_residue
from tests.frames import paced, recording_filter, utterance

BOT = "I'm pretty sure the price is twenty dollars, but let me check the other store."


def explains(heard: str, bot: str = BOT, **kw) -> bool:
    return echo_explains(normalize(heard), normalize(bot), **kw)


@pytest.mark.parametrize(
    "heard",
    ["i'm pretty", "I'm pretty sure.", "i'm pritty sure the", "twenty dollars", "the price", "let me chec"],
)
def test_the_bots_own_words_with_recognizer_errors_are_echo(heard):
    assert explains(heard)


@pytest.mark.parametrize(
    "heard, has_command",
    [
        ("wait, the price?", True),  # the user's own "wait"
        ("no", True),  # short words match exactly: "no" is not the bot's "not"/"now"
        ("wait", True),  # a command matches exactly: "wait" is not the bot's "want"
        ("what about tomorrow", False),
        ("i'm pretty sure you're wrong about that", False),
        ("yes the price please", False),  # a word of their own, with the bot's words
    ],
)
def test_a_word_of_the_users_own_makes_it_theirs(heard, has_command):
    assert not explains(heard, "I'm not sure now, the price may change. Want one?", has_command=has_command)


def test_a_lower_share_tolerates_unexplained_words_but_never_in_a_command():
    assert explains("the price plz", min_share=0.6)
    assert not explains("stop the price", min_share=0.6, has_command=True)


def test_nothing_heard_or_nothing_said_is_not_echo():
    assert not explains("", BOT)
    assert not explains("the price", "")


@pytest.mark.parametrize("bad", [{"min_ratio": 0}, {"min_share": 1.5}])
def test_bad_thresholds_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        explains("the price", **bad)


def test_the_residue_is_what_the_bots_words_do_not_explain_in_order():
    assert echo_residue(normalize("it's pritty yeah sure"), normalize(BOT)) == ["its", "yeah"]
    assert echo_residue(normalize("the price?"), normalize(BOT)) == ["?"]
    assert echo_residue(normalize("yeah"), []) == ["yeah"]
    with pytest.raises(ValueError, match="min_ratio"):
        echo_residue(["yeah"], ["yes"], min_ratio=2)


class Speaker(FrameProcessor):
    """Pushes every TTSTextFrame on as it "plays", like Pipecat's output transport."""

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


async def test_record_keeps_what_the_watched_processor_pushed_on():
    record = BotSpeechRecord()
    speaker = Speaker()
    record.watch(speaker)
    await run_test(speaker, frames_to_send=[TTSTextFrame("Played.", aggregated_by="sentence")])
    assert record.last_text() == "Played."
    record.unwatch()
    await run_test(speaker, frames_to_send=[TTSTextFrame("Not recorded.", aggregated_by="sentence")])
    assert record.last_text() == "Played."
    t = time.monotonic()
    record.add("Later.", t + 10)
    assert record.tokens_since(t + 5) == ["played", "later"]  # the one playing at t+5, then later


async def test_the_filter_watches_the_output_transport_after_it():
    f = SoftAckInterruptionFilter()
    output = SpeakerOutputTransport(Timeline())  # a BaseOutputTransport that plays in real time
    sent = [TTSTextFrame("Played.", aggregated_by="sentence"), SleepFrame(sleep=0.2)]
    await run_test(Pipeline([f, output]), frames_to_send=sent)
    assert f.placement.output is output
    assert f.bot_speech.last_text() == "Played."


def test_old_entries_are_pruned_but_the_newest_is_kept():
    record = BotSpeechRecord(keep_secs=5.0)
    record.add("old", t=0.0)
    record.add("new", t=100.0)
    assert record.tokens_since(-1.0) == ["new"]
    record = BotSpeechRecord(keep_secs=5.0)
    record.add("alone", t=0.0)
    assert record.last_text() == "alone"


def test_record_is_bounded_and_checks_its_arguments():
    record = BotSpeechRecord(max_entries=3)
    for i in range(10):
        record.add(f"sentence {i}", t=float(i))
    assert record.tokens_since(0.0) == ["sentence", "7", "sentence", "8", "sentence", "9"]
    with pytest.raises(ValueError, match="keep_secs"):
        BotSpeechRecord(keep_secs=0)
    with pytest.raises(SoftAckConfigError, match="echo_window_secs"):
        SoftAckInterruptionFilter(echo_window_secs=-1)


async def test_echo_of_the_bot_is_dropped_and_reported_never_an_interruption():
    record = BotSpeechRecord()
    record.add(BOT)
    f = recording_filter(bot_speech=record)
    sent = paced(BotStartedSpeakingFrame(), *utterance("i'm", "i'm pretty", final_text="I'm pretty sure."))
    down, _ = await run_test(f, frames_to_send=sent)
    assert [(d.kind, d.reason) for d in f.decisions] == [("echo", "utterance ended")]
    assert not any(isinstance(x, (VADUserStartedSpeakingFrame, UserBackchannelFrame)) for x in down)


async def test_wait_the_price_over_the_bot_saying_the_price_interrupts():
    record = BotSpeechRecord()
    record.add(BOT)
    f = recording_filter(bot_speech=record)
    sent = paced(BotStartedSpeakingFrame(), *utterance("wait", "wait the price", final_text="Wait, the price?"))
    down, _ = await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["interruption"]
    assert any(isinstance(x, VADUserStartedSpeakingFrame) for x in down)


@pytest.mark.parametrize(
    "interim, final",
    [("i'm pretty yeah", "I'm pretty yeah."), ("the other uh-huh", "The other uh-huh."), ("check yeah", "Check, yeah.")],
)
async def test_a_backchannel_heard_with_the_bots_echo_is_a_backchannel(interim, final):
    """The STT hears the user's "yeah" and the bot's echo together."""
    record = BotSpeechRecord()
    record.add(BOT)
    f = recording_filter(bot_speech=record)
    sent = paced(BotStartedSpeakingFrame(), *utterance(interim, final_text=final))
    down, _ = await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["backchannel"]
    assert not any(isinstance(x, VADUserStartedSpeakingFrame) for x in down)


ASKED = "Do you want the blue one?"
LISTED = "We have the blue one or the green one."  # a statement: no answer context


@pytest.mark.parametrize(
    "interim, final, bot_said",
    [
        ("i'm pretty yeah stop", "I'm pretty, yeah, stop.", ASKED),  # a command is never taken apart
        ("check yeah but", "Check, yeah, but.", LISTED),  # the bot said "but" too: it still counts
        ("no the price okay", "No, the price, okay.", ASKED),  # "no" is a command keyword
        ("yeah tell me the price", "Yeah, tell me the price.", ASKED),  # "tell me" is the user's own
        ("yeah the blue one", "Yeah, the blue one.", ASKED),  # "yeah" answers the bot's question
        ("yes the blue one", "Yes, the blue one.", LISTED),  # the user's own word first: choosing
        ("okay the green one", "Okay, the green one.", LISTED),
        ("check yeah the price", "Check, yeah, the price?", LISTED),  # a question
    ],
)
async def test_the_users_own_words_under_the_echo_still_interrupt(interim, final, bot_said):
    record = BotSpeechRecord()
    record.add(BOT)
    record.add(bot_said)
    f = recording_filter(bot_speech=record)
    sent = paced(BotStartedSpeakingFrame(), *utterance(interim, final_text=final))
    down, _ = await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["interruption"]
    assert any(isinstance(x, VADUserStartedSpeakingFrame) for x in down)


async def test_echo_rejection_off_lets_the_echo_interrupt():
    record = BotSpeechRecord()
    record.add(BOT)
    f = recording_filter(bot_speech=record, echo_rejection=False)
    sent = paced(BotStartedSpeakingFrame(), *utterance("i'm pretty", final_text="I'm pretty sure."))
    await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["interruption"]


async def test_words_the_bot_said_long_before_the_speech_are_not_echo():
    record = BotSpeechRecord()
    record.add("The price is twenty dollars.", t=time.monotonic() - 20)
    record.add("Shipping takes a week.", t=time.monotonic() - 10)  # playing when the user speaks
    f = recording_filter(bot_speech=record)
    sent = paced(BotStartedSpeakingFrame(), *utterance("the price", final_text="The price?"))
    await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["interruption"]


def test_context_is_the_newest_played_text_joined_word_by_word_or_by_sentence():
    record = BotSpeechRecord()
    assert record.context_text() is None
    for word in ["Would", "you", "like", "me", "to", "book", "it?"]:  # word timestamps (Cartesia)
        record.add(word)
    assert record.context_text().endswith("Would you like me to book it?")
    record.add("It leaves at noon. " * 100)
    assert record.context_text(max_chars=50).endswith("It leaves at noon.")


# -- the echo canceller's warm-up (echo_warmup_secs) ---------------------------------


async def test_during_the_warm_up_even_a_command_over_the_bot_is_dropped_as_echo():
    """The first seconds of bot speech of a session, while an echo canceller converges:
    whatever is heard is taken for echo ("wait nope" on the sound card)."""
    f = recording_filter(echo_warmup_secs=3.0)
    sent = paced(BotStartedSpeakingFrame(), *utterance("wait", "wait nope", final_text="Wait, nope."))
    down, _ = await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["echo"]
    assert not any(isinstance(x, VADUserStartedSpeakingFrame) for x in down)


async def test_after_the_warm_up_a_command_interrupts_at_once():
    f = recording_filter(echo_warmup_secs=0.3)
    sent = [BotStartedSpeakingFrame(), SleepFrame(sleep=0.4)]
    sent += paced(*utterance("wait", final_text="Wait."))
    down, _ = await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["interruption"]
    assert any(isinstance(x, VADUserStartedSpeakingFrame) for x in down)


async def test_the_warm_up_counts_bot_speech_only_across_utterances():
    """A 0.6 s warm-up: 0.4 s of bot speech, a 1 s pause, 0.4 s more, and it is over
    ("wait" interrupts); 0.2 s, the same pause, 0.2 s more, and it is not: the pause
    does not count."""

    def heard_after(secs: float) -> list:
        sent = [BotStartedSpeakingFrame(), SleepFrame(sleep=secs), BotStoppedSpeakingFrame(), SleepFrame(sleep=1.0)]
        return sent + [BotStartedSpeakingFrame(), SleepFrame(sleep=secs)] + paced(*utterance("wait", final_text="Wait."))

    f = recording_filter(echo_warmup_secs=0.6)
    await run_test(f, frames_to_send=heard_after(0.4))
    assert [d.kind for d in f.decisions] == ["interruption"]
    f = recording_filter(echo_warmup_secs=0.6)
    await run_test(f, frames_to_send=heard_after(0.2))
    assert [d.kind for d in f.decisions] == ["echo"]


async def test_the_warm_up_is_off_by_default():
    f = recording_filter()
    sent = paced(BotStartedSpeakingFrame(), *utterance("wait", final_text="Wait."))
    await run_test(f, frames_to_send=sent)
    assert [d.kind for d in f.decisions] == ["interruption"]


@pytest.mark.parametrize("bad", [-1, float("inf"), float("nan"), True, "3"])
def test_a_bad_warm_up_is_named(bad):
    with pytest.raises(SoftAckConfigError, match="echo_warmup_secs"):
        SoftAckInterruptionFilter(echo_warmup_secs=bad)
