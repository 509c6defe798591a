"""Smoke test of an installed pipecat-softack wheel, run by tests/test_wheel.py in a
fresh virtualenv outside the repository (so nothing here may import from the repo).

Checks the documented imports, then a short pipeline, the filter in front of Pipecat's
user aggregator while the bot speaks: "yeah" is a backchannel (no interruption,
nothing in the context), "wait" interrupts and reaches the context. Exits non-zero
with a message on the first failure.
"""

import asyncio
import sys

import pipecat_softack
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    TranscriptionFrame,
    UserBackchannelFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_start import VADUserTurnStartStrategy, TranscriptionUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from pipecat_softack import (  # the documented imports
    BackchannelClassifier,
    SoftAckInterruptionFilter,
    SoftAckUserTurnStartStrategy,
    Verdict,
)

TS = "2026-12-02T00:00:00.000Z"


def paced(*frames):
    out = []
    for f in frames:
        out += [f, SleepFrame(sleep=0.05)]
    return out


async def main() -> None:
    assert "site-packages" in pipecat_softack.__file__, pipecat_softack.__file__
    assert BackchannelClassifier().classify("uh-huh") == Verdict.BACKCHANNEL
    assert SoftAckUserTurnStartStrategy() is not None
    context = LLMContext()
    aggregator = LLMUserAggregator(
        context,
        params=LLMUserAggregatorParams(
            user_turn_strategies=UserTurnStrategies(
                start=[VADUserTurnStartStrategy(), TranscriptionUserTurnStartStrategy()],
                stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.2)],
            )
        ),
    )
    softack = SoftAckInterruptionFilter()
    frames = paced(
        BotStartedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        InterimTranscriptionFrame(text="yeah", user_id="u", timestamp=TS),
        VADUserStoppedSpeakingFrame(),
        TranscriptionFrame(text="Yeah.", user_id="u", timestamp=TS),
    )
    frames.append(SleepFrame(sleep=0.3))
    frames += paced(
        VADUserStartedSpeakingFrame(),
        InterimTranscriptionFrame(text="wait", user_id="u", timestamp=TS),
        VADUserStoppedSpeakingFrame(),
        TranscriptionFrame(text="Wait.", user_id="u", timestamp=TS),
    )
    frames.append(SleepFrame(sleep=1.0))
    down, _ = await run_test(Pipeline([softack, aggregator]), frames_to_send=frames)
    backchannels = [f.text for f in down if isinstance(f, UserBackchannelFrame)]
    interruptions = sum(isinstance(f, InterruptionFrame) for f in down)
    users = [m["content"] for m in context.get_messages() if m.get("role") == "user"]
    if backchannels != ["Yeah."] or interruptions != 1 or users != ["Wait."]:
        sys.exit(f"smoke test failed: backchannels={backchannels} interruptions={interruptions} users={users}")
    print("wheel smoke test passed: one backchannel, one interruption")


if __name__ == "__main__":
    asyncio.run(main())
