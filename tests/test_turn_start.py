"""SoftAckUserTurnStartStrategy inside Pipecat's LLMUserAggregator (VAD in the aggregator)."""

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InterruptionFrame,
    UserBackchannelFrame,
    UserStartedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import run_test
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from pipecat_softack import BackchannelClassifier, SoftAckConfigError, SoftAckUserTurnStartStrategy
from tests.frames import final, interim, paced


class Recorder:
    """Collects what a strategy asks its aggregator to do."""

    def __init__(self, strategy):
        self.started, self.resets, self.pushed = 0, 0, []
        strategy.add_event_handler("on_user_turn_started", self._started)
        strategy.add_event_handler("on_reset_aggregation", self._reset)
        strategy.add_event_handler("on_push_frame", self._push)

    async def _started(self, strategy, params):
        self.started += 1

    async def _reset(self, strategy):
        self.resets += 1

    async def _push(self, strategy, frame, direction):
        self.pushed.append(frame)


async def test_bot_silent_turn_starts_on_vad():
    s = SoftAckUserTurnStartStrategy()
    r = Recorder(s)
    assert await s.process_frame(VADUserStartedSpeakingFrame()) == ProcessFrameResult.STOP
    assert r.started == 1


async def test_bot_speaking_backchannel_is_reported_and_reset():
    s = SoftAckUserTurnStartStrategy()
    r = Recorder(s)
    await s.process_frame(BotStartedSpeakingFrame())
    assert await s.process_frame(VADUserStartedSpeakingFrame()) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("uh")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(final("Uh-huh.")) == ProcessFrameResult.CONTINUE
    assert r.started == 0 and r.resets == 1
    assert [(type(f), f.text) for f in r.pushed] == [(UserBackchannelFrame, "Uh-huh.")]


async def test_bot_speaking_interim_with_a_command_starts_the_turn():
    s = SoftAckUserTurnStartStrategy()
    r = Recorder(s)
    await s.process_frame(BotStartedSpeakingFrame())
    await s.process_frame(VADUserStartedSpeakingFrame())
    assert await s.process_frame(interim("yeah")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("yeah wait")) == ProcessFrameResult.STOP
    assert r.started == 1


async def test_a_trailing_but_starts_the_turn_at_the_next_word():
    s = SoftAckUserTurnStartStrategy()
    r = Recorder(s)
    await s.process_frame(BotStartedSpeakingFrame())
    await s.process_frame(VADUserStartedSpeakingFrame())
    assert await s.process_frame(interim("yeah but")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("yeah but what")) == ProcessFrameResult.STOP
    assert r.started == 1


async def test_a_final_that_only_starts_a_soft_ack_phrase_starts_the_turn():
    s = SoftAckUserTurnStartStrategy()
    r = Recorder(s)
    await s.process_frame(BotStartedSpeakingFrame())
    await s.process_frame(VADUserStartedSpeakingFrame())
    await s.process_frame(final("I"))  # alone it is not a soft-ack...
    assert r.started == 1  # ...so the turn starts


async def test_separate_utterances_are_two_backchannels():
    s = SoftAckUserTurnStartStrategy()
    r = Recorder(s)
    await s.process_frame(BotStartedSpeakingFrame())
    for text in ("okay", "mhm"):
        await s.process_frame(VADUserStartedSpeakingFrame())
        await s.process_frame(final(text))
    assert r.started == 0
    assert [f.text for f in r.pushed] == ["okay", "mhm"]


def test_classifier_and_lexicon_arguments_are_exclusive():
    with pytest.raises(SoftAckConfigError, match="not both"):
        SoftAckUserTurnStartStrategy(classifier=BackchannelClassifier(), language="es")


def aggregator():
    params = LLMUserAggregatorParams(
        user_turn_strategies=UserTurnStrategies(
            start=[SoftAckUserTurnStartStrategy()],
            stop=[SpeechTimeoutUserTurnStopStrategy()],
        )
    )
    return LLMUserAggregator(LLMContext(), params=params)


async def test_in_the_aggregator_a_backchannel_does_not_interrupt():
    sent = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        interim("yeah"),
        VADUserStoppedSpeakingFrame(),
        final("Yeah."),
    )
    down, _ = await run_test(aggregator(), frames_to_send=sent)
    assert not any(isinstance(f, (InterruptionFrame, UserStartedSpeakingFrame)) for f in down)
    assert [f.text for f in down if isinstance(f, UserBackchannelFrame)] == ["Yeah."]


async def test_in_the_aggregator_wait_interrupts():
    sent = paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame(), interim("wait"))
    down, _ = await run_test(aggregator(), frames_to_send=sent)
    assert any(isinstance(f, InterruptionFrame) for f in down)
    assert any(isinstance(f, UserStartedSpeakingFrame) for f in down)


async def test_content_word_needs_two_interims_and_noise_without_speech_is_ignored():
    s = SoftAckUserTurnStartStrategy(interim_min_speech_secs=0)
    r = Recorder(s)
    await s.process_frame(VADUserStartedSpeakingFrame())  # bot silent: a turn...
    await s.handle_user_turn_started()
    await s.handle_user_turn_stopped()  # ...that ended
    await s.process_frame(VADUserStoppedSpeakingFrame())
    await s.process_frame(BotStartedSpeakingFrame())
    r.started = 0
    assert await s.process_frame(interim("the starters")) == ProcessFrameResult.CONTINUE  # no VAD start
    await s.process_frame(VADUserStartedSpeakingFrame())
    assert await s.process_frame(interim("over")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("oh really")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("refund")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("refund is")) == ProcessFrameResult.STOP
    assert r.started == 1


async def test_a_command_interim_without_a_vad_start_starts_the_turn():
    """Silero misses a quick one-word "wait": its interim starts the turn all the same."""
    s = SoftAckUserTurnStartStrategy()
    r = Recorder(s)
    await s.process_frame(VADUserStartedSpeakingFrame())  # the VAD runs in this pipeline
    await s.process_frame(VADUserStoppedSpeakingFrame())
    await s.process_frame(BotStartedSpeakingFrame())
    r.started = 0
    assert await s.process_frame(interim("the starters")) == ProcessFrameResult.CONTINUE
    assert r.started == 0
    assert await s.process_frame(interim("wait")) == ProcessFrameResult.STOP
    assert r.started == 1


async def test_content_interims_of_speech_shorter_than_a_backchannel_wait_for_the_final(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("pipecat_softack.turn_start.time.monotonic", lambda: now[0])
    s = SoftAckUserTurnStartStrategy()  # interim_min_speech_secs=0.6
    r = Recorder(s)
    await s.process_frame(BotStartedSpeakingFrame())
    await s.process_frame(VADUserStartedSpeakingFrame())
    now[0] += 0.3
    assert await s.process_frame(interim("exam")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("exam")) == ProcessFrameResult.CONTINUE  # 0.3 s of speech
    await s.process_frame(VADUserStoppedSpeakingFrame())
    now[0] += 0.5
    assert await s.process_frame(interim("exam")) == ProcessFrameResult.CONTINUE  # it lasted 0.3 s
    assert await s.process_frame(final("Exactly.")) == ProcessFrameResult.CONTINUE
    assert r.started == 0 and [f.text for f in r.pushed] == ["Exactly."]

    await s.process_frame(VADUserStartedSpeakingFrame())
    now[0] += 0.3
    assert await s.process_frame(interim("stop")) == ProcessFrameResult.STOP  # a command: at once
    await s.handle_user_turn_started()
    await s.handle_user_turn_stopped()

    await s.process_frame(VADUserStartedSpeakingFrame())
    now[0] += 0.3
    assert await s.process_frame(interim("refund")) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("refund is")) == ProcessFrameResult.CONTINUE
    now[0] += 0.4
    assert await s.process_frame(interim("refund is late")) == ProcessFrameResult.STOP  # 0.7 s
    assert r.started == 2


@pytest.mark.parametrize("bad", [-1, "0.6", None])
def test_bad_interim_min_speech_secs_is_named(bad):
    with pytest.raises(SoftAckConfigError, match="interim_min_speech_secs="):
        SoftAckUserTurnStartStrategy(interim_min_speech_secs=bad)
