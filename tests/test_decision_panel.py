"""bot/decision_panel.py: the filter's decisions as RTVI server messages."""

import json

from pipecat.frames.frames import BotStartedSpeakingFrame, UserBackchannelFrame
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame
from pipecat.processors.frameworks.rtvi.models import ServerMessage
from pipecat.tests.utils import SleepFrame, run_test

from bot.decision_panel import MESSAGE_TYPE, attach_decision_panel, decision_message
from pipecat_softack import SoftAckInterruptionFilter
from pipecat_softack.softack_filter import SoftAckDecision
from tests.frames import paced, utterance


def test_decision_message_is_json_with_every_field():
    decision = SoftAckDecision(
        kind="interruption", text="wait", reason="content or command word",
        held_secs=0.08123, after_speech_stop_secs=None, frames=4,
    )
    data = decision_message(decision)
    assert data["type"] == MESSAGE_TYPE
    assert (data["kind"], data["text"], data["reason"], data["frames"]) == (
        "interruption", "wait", "content or command word", 4,
    )
    assert data["held_secs"] == 0.081 and data["after_speech_stop_secs"] is None
    assert isinstance(data["at"], float)
    # What the RTVI observer sends: {"label": "rtvi-ai", "type": "server-message", "data": ...}
    message = json.loads(ServerMessage(data=data).model_dump_json())
    assert message["type"] == "server-message" and message["data"]["text"] == "wait"


async def test_backchannel_decision_is_pushed_as_a_server_message():
    softack = attach_decision_panel(SoftAckInterruptionFilter())
    sent = paced(BotStartedSpeakingFrame(), *utterance("yeah", final_text="yeah"), SleepFrame(sleep=0.1))
    down, _ = await run_test(softack, frames_to_send=sent)
    messages = [f for f in down if isinstance(f, RTVIServerMessageFrame)]
    assert [m.data["kind"] for m in messages] == ["backchannel"]
    assert messages[0].data["text"] == "yeah" and messages[0].data["type"] == MESSAGE_TYPE
    assert any(isinstance(f, UserBackchannelFrame) for f in down)


async def test_interruption_decision_is_pushed_as_a_server_message():
    softack = attach_decision_panel(SoftAckInterruptionFilter())
    sent = paced(BotStartedSpeakingFrame(), *utterance("wait", final_text="wait"), SleepFrame(sleep=0.1))
    down, _ = await run_test(softack, frames_to_send=sent)
    messages = [f.data for f in down if isinstance(f, RTVIServerMessageFrame)]
    assert [(m["kind"], m["text"]) for m in messages] == [("interruption", "wait")]


async def test_echo_decision_is_pushed_as_a_server_message():
    from pipecat_softack.bot_speech import BotSpeechRecord

    record = BotSpeechRecord()
    softack = attach_decision_panel(SoftAckInterruptionFilter(bot_speech=record))
    record.add("I'm pretty sure the price is twenty dollars, but let me check the other store.")
    said = utterance("i'm", "i'm pretty", final_text="I'm pretty sure.")
    down, _ = await run_test(softack, frames_to_send=paced(BotStartedSpeakingFrame(), *said, SleepFrame(sleep=0.1)))
    messages = [f.data for f in down if isinstance(f, RTVIServerMessageFrame)]
    assert [(m["kind"], m["text"]) for m in messages] == [("echo", "I'm pretty sure.")]
