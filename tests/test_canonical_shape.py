"""The filter added in one line to both pipeline shapes, with Pipecat's default user
turn strategies (VAD and transcription start, Smart Turn v3 stop).

The canonical shape is Pipecat's examples/getting-started/06a-voice-agent-local.py:
``LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())``, the filter between the
STT and the user aggregator. Here a loudness VAD stands in for Silero (tests/shapes.py);
tests/test_real_audio.py runs real Silero in the aggregator.
"""

from __future__ import annotations

import pytest
from loguru import logger
from pipecat.frames.frames import BotStartedSpeakingFrame, InterruptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_softack import SoftAckInterruptionFilter
from tests.frames import final, interim
from tests.shapes import (
    SHAPES,
    LoudnessVAD,
    backchannels,
    build_shape,
    interrupted,
    llm_runs,
    silence,
    speech,
)

# Seconds: Pipecat's user_turn_stop_timeout (5 s) ends a turn Smart Turn has not
# ended on synthetic audio; wait past it for the user message to reach the context.
TURN_END_WAIT = 5.5


def said(text_interims: list[str], final_text: str, *, secs: float = 0.3) -> list:
    """Speech with the interims spread over it, silence, then the final transcript."""
    frames = []
    for t in text_interims:
        frames += [*speech(secs / max(1, len(text_interims))), interim(t)]
    return [*frames, *speech(0.04), *silence(0.2), final(final_text), *silence(0.2)]


@pytest.mark.parametrize("shape", SHAPES)
async def test_yeah_while_the_bot_speaks_is_a_backchannel(shape):
    f = SoftAckInterruptionFilter()
    s = build_shape(shape, f)
    down, _ = await run_test(
        s.pipeline,
        frames_to_send=[BotStartedSpeakingFrame(), *silence(0.1), *said(["yeah"], "Yeah."), *silence(1.2)],
    )
    assert f.placement.shape == shape
    assert not interrupted(down), [type(x).__name__ for x in down]
    assert backchannels(down) == ["Yeah."]
    assert s.user_messages() == [] and llm_runs(down) == 0


@pytest.mark.parametrize("shape", SHAPES)
async def test_wait_stop_while_the_bot_speaks_interrupts_and_reaches_the_llm(shape):
    f = SoftAckInterruptionFilter()
    s = build_shape(shape, f)
    down, _ = await run_test(
        s.pipeline,
        frames_to_send=[
            BotStartedSpeakingFrame(),
            *silence(0.1),
            *said(["wait", "wait stop"], "Wait, stop."),
            SleepFrame(sleep=TURN_END_WAIT),
        ],
    )
    assert any(isinstance(x, InterruptionFrame) for x in down)
    assert backchannels(down) == []
    assert s.user_messages() == ["Wait, stop."] and llm_runs(down) == 1


@pytest.mark.parametrize("shape", SHAPES)
async def test_yeah_to_a_silent_bot_is_answered(shape):
    f = SoftAckInterruptionFilter()
    s = build_shape(shape, f)
    down, _ = await run_test(
        s.pipeline,
        frames_to_send=[*silence(0.1), *said(["yeah"], "Yeah."), SleepFrame(sleep=TURN_END_WAIT)],
    )
    assert backchannels(down) == []
    assert s.user_messages() == ["Yeah."] and llm_runs(down) == 1


async def test_the_adopted_vad_leaves_the_aggregator():
    f = SoftAckInterruptionFilter()
    s = build_shape("vad-in-aggregator", f)
    await run_test(s.pipeline, frames_to_send=[*silence(0.04)])
    assert f.placement.aggregator is s.aggregator
    assert s.aggregator._vad_controller is None  # one VAD, run by the filter
    assert f.placement.warnings == []


class Warnings:
    def __init__(self):
        self.lines: list[str] = []

    def __enter__(self):
        self._id = logger.add(lambda m: self.lines.append(m.record["message"]), level="WARNING")
        return self

    def __exit__(self, *exc):
        logger.remove(self._id)


def _aggregator(vad=None) -> LLMUserAggregator:
    return LLMUserAggregator(LLMContext(), params=LLMUserAggregatorParams(vad_analyzer=vad))


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda f: f, "no LLMUserAggregator follows it"),
        (lambda f: Pipeline([_aggregator(LoudnessVAD()), f]), "placed after the user aggregator"),
        (
            lambda f: Pipeline([VADProcessor(vad_analyzer=LoudnessVAD()), f, _aggregator(LoudnessVAD())]),
            "two VADs",
        ),
    ],
    ids=["no-aggregator", "after-aggregator", "two-vads"],
)
async def test_a_placement_that_cannot_gate_warns_once_naming_the_fix(build, expected):
    f = SoftAckInterruptionFilter()
    with Warnings() as w:
        await run_test(build(f), frames_to_send=[*silence(0.04)])
    ours = [line for line in w.lines if "cannot gate every user turn start" in line]
    assert len(ours) == 1 and expected in ours[0], w.lines


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_good_placement_warns_nothing(shape):
    f = SoftAckInterruptionFilter()
    with Warnings() as w:
        await run_test(build_shape(shape, f).pipeline, frames_to_send=[*silence(0.04)])
    assert not [line for line in w.lines if "cannot gate" in line], w.lines
