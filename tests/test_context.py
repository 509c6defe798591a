"""What the bot said last is the classifier's context, in the filter and in the turn
start strategy: "yeah" answering the bot's question is a turn, after a statement a
backchannel."""

import pytest
from pipecat.frames.frames import BotStartedSpeakingFrame, UserBackchannelFrame
from pipecat.tests.utils import run_test
from pipecat.turns.types import ProcessFrameResult

from pipecat_softack import BotSpeechRecord, SoftAckInterruptionFilter, SoftAckUserTurnStartStrategy
from tests.frames import final, interim, paced, utterance

QUESTION = "The next train is at noon. Would you like me to book it for you?"
STATEMENT = "The next train is at noon, and it stops at every station on the way."


def record_of(text: str) -> BotSpeechRecord:
    record = BotSpeechRecord()
    record.add(text)
    return record


@pytest.mark.parametrize("bot_said, kind", [(QUESTION, "interruption"), (STATEMENT, "backchannel")])
async def test_the_filter_reads_yeah_by_what_the_bot_just_said(bot_said, kind):
    f = SoftAckInterruptionFilter(bot_speech=record_of(bot_said))
    decisions = []
    for event in ("on_backchannel", "on_interruption_released"):

        @f.event_handler(event)
        async def record(_filter, decision):
            decisions.append(decision.kind)

    down, _ = await run_test(f, frames_to_send=paced(BotStartedSpeakingFrame(), *utterance("yeah", final_text="Yeah.")))
    assert decisions == [kind]
    assert any(isinstance(x, UserBackchannelFrame) for x in down) == (kind == "backchannel")


@pytest.mark.parametrize("bot_said, started", [(QUESTION, 1), (STATEMENT, 0)])
async def test_the_strategy_reads_yeah_by_what_the_bot_just_said(bot_said, started):
    s = SoftAckUserTurnStartStrategy(bot_speech=record_of(bot_said))
    turns = []

    @s.event_handler("on_user_turn_started")
    async def on_started(strategy, params):
        turns.append(params)

    await s.process_frame(BotStartedSpeakingFrame())
    assert await s.process_frame(interim("yeah")) == ProcessFrameResult.CONTINUE  # interims wait
    await s.process_frame(final("Yeah."))
    assert len(turns) == started
