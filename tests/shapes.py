"""The two pipeline shapes the filter supports, for frame-level tests.

- ``"vad-processor"``: ``VADProcessor -> filter -> LLMUserAggregator``;
- ``"vad-in-aggregator"``: ``filter -> LLMUserAggregator(vad_analyzer=...)``, the
  shape of Pipecat's getting-started examples (06a-voice-agent-local.py).

Both run a :class:`LoudnessVAD` on synthetic audio (:func:`speech`, :func:`silence`),
so the VAD frames come from a real ``VADController`` in both shapes, and Pipecat's
default user turn strategies unless a test passes its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    UserBackchannelFrame,
    UserStartedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.tests.utils import SleepFrame
from pipecat.turns.user_turn_strategies import UserTurnStrategies

SHAPES = ("vad-processor", "vad-in-aggregator")
SAMPLE_RATE = 16000
FRAME_SECS = 0.02
# Seconds. Short, so tests stay short; the VAD state machine is Pipecat's own.
VAD_PARAMS = VADParams(confidence=0.5, start_secs=0.04, stop_secs=0.1, min_volume=0.0)


class LoudnessVAD(VADAnalyzer):
    """Voice wherever the audio is not silent: a VAD whose answer a test controls."""

    def __init__(self):
        super().__init__(sample_rate=SAMPLE_RATE, params=VAD_PARAMS)

    def num_frames_required(self) -> int:
        return 160  # 10 ms at 16 kHz

    def voice_confidence(self, buffer: bytes) -> float:
        return 1.0 if any(buffer) else 0.0


def _audio(loud: bool) -> InputAudioRawFrame:
    sample = b"\x00\x40" if loud else b"\x00\x00"
    samples = int(SAMPLE_RATE * FRAME_SECS)
    return InputAudioRawFrame(audio=sample * samples, sample_rate=SAMPLE_RATE, num_channels=1)


def _paced_audio(secs: float, loud: bool) -> list[Frame]:
    frames = []
    for _ in range(round(secs / FRAME_SECS)):
        frames += [_audio(loud), SleepFrame(sleep=FRAME_SECS)]
    return frames


def speech(secs: float) -> list[Frame]:
    """``secs`` of voiced audio, 20 ms frames at real-time pace."""
    return _paced_audio(secs, True)


def silence(secs: float) -> list[Frame]:
    """``secs`` of silent audio, 20 ms frames at real-time pace."""
    return _paced_audio(secs, False)


@dataclass
class Shape:
    """One pipeline around a filter, and what a test reads afterwards."""

    name: str
    pipeline: Pipeline
    aggregator: LLMUserAggregator
    context: LLMContext

    def user_messages(self) -> list[str]:
        return [
            str(m.get("content"))
            for m in self.context.get_messages()
            if isinstance(m, dict) and m.get("role") == "user"
        ]


def build_shape(
    name: str, softack_filter, *, strategies: UserTurnStrategies | None = None, before=()
) -> Shape:
    """``softack_filter`` and a user aggregator in the shape ``name`` (see SHAPES).

    Args:
        name: ``"vad-processor"`` or ``"vad-in-aggregator"``.
        softack_filter: The filter under test.
        strategies: User turn strategies (default: Pipecat's defaults).
        before: Processors to put ahead of everything (e.g. a fake STT).
    """
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; shapes: {SHAPES}")
    context = LLMContext()
    in_aggregator = name == "vad-in-aggregator"
    aggregator = LLMUserAggregator(
        context,
        params=LLMUserAggregatorParams(
            vad_analyzer=LoudnessVAD() if in_aggregator else None,
            user_turn_strategies=strategies,
        ),
    )
    vad = [] if in_aggregator else [VADProcessor(vad_analyzer=LoudnessVAD())]
    pipeline = Pipeline([*vad, *before, softack_filter, aggregator])
    return Shape(name, pipeline, aggregator, context)


def count(frames, frame_type) -> int:
    return sum(isinstance(f, frame_type) for f in frames)


def interrupted(frames) -> bool:
    """Whether the user aggregator started a user turn (and so interrupted the bot)."""
    return count(frames, InterruptionFrame) > 0 or count(frames, UserStartedSpeakingFrame) > 0


def backchannels(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, UserBackchannelFrame)]


def llm_runs(frames) -> int:
    return count(frames, LLMContextFrame)
