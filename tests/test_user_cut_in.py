"""Interrupt the user: the bot cuts in when one user turn passes N sentences."""

import pytest
from pipecat.frames.frames import LLMContextFrame, TTSSpeakFrame, VADUserStartedSpeakingFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import run_test
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from pipecat_softack.user_cut_in import LongTurnCutInStrategy, count_sentences
from tests.frames import final, interim, paced


@pytest.mark.parametrize(
    "finals, interim_text, expected",
    [
        ([], "", 0),
        (["I went to the shop."], "", 1),
        (["I went to the shop. It was closed!"], "so I", 3),
        (["i went to the shop", "it was closed"], "", 1),  # no punctuation: 15 words a sentence
        ([" ".join(["word"] * 31)], "", 3),
        ([], "first. second? third", 3),
    ],
)
def test_count_sentences(finals, interim_text, expected):
    assert count_sentences(finals, interim_text) == expected


def aggregator(strategy):
    params = LLMUserAggregatorParams(
        user_turn_strategies=UserTurnStrategies(stop=[strategy, SpeechTimeoutUserTurnStopStrategy()])
    )
    context = LLMContext()
    return LLMUserAggregator(context, params=params), context


async def test_fourth_sentence_makes_the_bot_cut_in_with_uninterruptible_speech_then_reply():
    strategy = LongTurnCutInStrategy(max_sentences=3)
    agg, context = aggregator(strategy)
    sent = paced(
        VADUserStartedSpeakingFrame(),
        final("So I bought a bike last week."),
        final("It was red and it had a bell."),
        interim("Then I rode it to"),  # 3 sentences: no cut-in yet
        final("Then I rode it to the lake."),
        interim("And at the lake"),  # the fourth
    )
    down, _ = await run_test(agg, frames_to_send=sent)
    speech = [f for f in down if isinstance(f, TTSSpeakFrame)]
    assert [(f.text, f.interruptible) for f in speech] == [("Sorry, can I pause you there?", False)]
    assert any(isinstance(f, LLMContextFrame) for f in down)
    assert context.messages[-1]["role"] == "user"
    assert "the lake" in context.messages[-1]["content"]
    assert strategy.cut_ins == 1


async def test_three_sentences_do_not_cut_in():
    strategy = LongTurnCutInStrategy(max_sentences=3)
    agg, _ = aggregator(strategy)
    sent = paced(VADUserStartedSpeakingFrame(), final("One thing."), final("Two things."), interim("Three"))
    down, _ = await run_test(agg, frames_to_send=sent)
    assert not any(isinstance(f, TTSSpeakFrame) for f in down)
    assert strategy.cut_ins == 0


async def test_count_resets_after_a_cut_in():
    strategy = LongTurnCutInStrategy(max_sentences=1)
    agg, _ = aggregator(strategy)
    sent = paced(
        VADUserStartedSpeakingFrame(),
        final("One."),
        interim("Two"),  # cut-in 1
        VADUserStartedSpeakingFrame(),
        final("Three."),  # the new turn holds one sentence: no cut-in
    )
    await run_test(agg, frames_to_send=sent)
    assert strategy.cut_ins == 1


def test_bad_max_sentences_is_named():
    with pytest.raises(ValueError, match="max_sentences.*0"):
        LongTurnCutInStrategy(max_sentences=0)


async def test_cut_in_tells_the_filter_upstream_and_happens_once_per_long_interim():
    """pocketsphinx's interim repeats the whole utterance: only words after a cut-in count."""
    from pipecat_softack.speech import UninterruptibleSpeechFrame

    strategy = LongTurnCutInStrategy(max_sentences=3)
    agg, _ = aggregator(strategy)
    words = " ".join(f"word{i}" for i in range(80))  # unpunctuated: 15 words a sentence
    growing = [interim(" ".join(words.split()[:n])) for n in (30, 46, 50, 55, 60, 70)]
    down, up = await run_test(agg, frames_to_send=paced(VADUserStartedSpeakingFrame(), *growing))
    assert strategy.cut_ins == 1  # at 46 words; 60 more would be needed for another
    assert sum(isinstance(f, TTSSpeakFrame) for f in down) == 1
    assert any(isinstance(f, UninterruptibleSpeechFrame) for f in up)
