"""Faults around the filter: never stuck, never lost (issue 12).

The painful barge-in reports are a bot left silent or "speaking" after a stray
event (pipecat#4308, livekit/agents#3418, #6548, #1229). Each case here sends one
fault through the filter in every placement it supports (``tests/shapes.py``: a
``VADProcessor`` ahead of it, or the VAD inside the user aggregator, adopted by the
filter) and in a bare ``run_test`` of the filter alone, and checks the same
invariants every time (:meth:`Run.check`):

- every held utterance is decided within ``max_hold_secs + transcript_timeout_secs``
  of the last frame it got (plus a scheduling allowance, :data:`SLACK`);
- every frame of a user utterance that went into the filter came out, in order, or
  was dropped in a reported decision (``decision.frames``); an ``InterruptionFrame``
  from elsewhere is never held or dropped;
- nothing comes out of the filter after an ``EndFrame`` or a ``CancelFrame``, and no
  hold or timer outlives them;
- after the rule's bound and the aggregator's ``user_turn_stop_timeout``, the
  filter holds nothing and every user turn the aggregator started has stopped.

The cases run on a virtual clock (:func:`bench.soak.run_virtual`): the event loop's
clock jumps to the next timer whenever nothing is ready to run, so a 20 ms frame gap
is 20 ms however loaded the machine is, the bounds are checked exactly, and the
seconds of simulated speech cost only CPU time. Two cases also run on the real clock,
with a scheduling allowance, to show nothing depends on the virtual one.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field

import pytest
from pipecat.frames.frames import (
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallFromLLM,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    SystemFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserBackchannelFrame,
    UserSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies

import pipecat_softack.softack_filter as softack_filter_module
from bench.soak import run_virtual
from pipecat_softack import SoftAckInterruptionFilter
from tests.frames import final, interim, paced
from tests.shapes import LoudnessVAD, silence, speech

CONTEXTS = ("bare", "vad-processor", "vad-in-aggregator")
SHAPES = ("vad-processor", "vad-in-aggregator")

TRANSCRIPT_TIMEOUT = 0.2  # seconds
MAX_HOLD = 0.4  # seconds
BOUND = MAX_HOLD + TRANSCRIPT_TIMEOUT  # the rule: a held utterance is decided within this
TURN_STOP_TIMEOUT = 0.3  # seconds: the aggregator's watchdog ends a turn nothing else ends
# Seconds allowed on top of a bound: on the virtual clock a due timer runs at its
# time exactly, so only float rounding; on the real clock, time for the event loop to
# run a due timer on a loaded machine (not a speed target: see bench load).
SLACK = {"virtual": 0.001, "real": 0.5}

DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM
GATED = (
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserSpeakingFrame,
    InterruptionFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
)
ADOPTED_VAD = (VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame, UserSpeakingFrame)


# --- the harness --------------------------------------------------------------


@dataclass
class Probe(SystemFrame):
    """Runs ``callback`` when it reaches the first processor (a snapshot mid-run)."""

    callback: object = None


@dataclass
class SttFails(SystemFrame):
    """Makes :class:`FakeSTT` report an error upstream, as a failing STT service does."""

    fatal: bool = False


class FakeSTT(FrameProcessor):
    """Stands where the STT is: passes frames, turns :class:`SttFails` into an ErrorFrame
    pushed upstream (``push_error``), and runs :class:`Probe` callbacks."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, Probe):
            frame.callback()
        elif isinstance(frame, SttFails):
            await self.push_error("STT connection lost, reconnecting", fatal=frame.fatal)
        else:
            await self.push_frame(frame, direction)


@dataclass
class InterruptAfter(SystemFrame):
    """Makes :class:`Kicker` (after the filter) broadcast an InterruptionFrame."""


class Kicker(FrameProcessor):
    """The last processor: broadcasts an interruption on :class:`InterruptAfter`, as a
    processor downstream of the filter does (both directions)."""

    def __init__(self):
        super().__init__()
        self.kicked = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptAfter):
            self.kicked += 1
            await self.broadcast_interruption()
        else:
            await self.push_frame(frame, direction)


class ToolCallingLLM(OpenAILLMService):
    """Asks for one tool call; once its result is in the context, answers with it."""

    async def _process_context(self, context: LLMContext):
        await self.push_frame(LLMFullResponseStartFrame())
        if any(m.get("role") == "tool" for m in context.messages):
            await self.push_frame(LLMTextFrame("Your order has shipped."))
        else:
            call = FunctionCallFromLLM(
                function_name="lookup_order", tool_call_id="call-1", arguments={"id": 7}, context=context
            )
            await self.run_function_calls([call])
        await self.push_frame(LLMFullResponseEndFrame())


class Timeline(BaseObserver):
    """What went into and out of the filter, and into the aggregator, with times."""

    def __init__(self, run: Run):
        super().__init__()
        self.run = run
        self.gated_in: list[tuple[float, int, Frame]] = []  # (time, id, frame)
        self.adopted: set[int] = set()  # ids made by the adopted VAD inside the filter
        self.out: list[tuple[float, Frame]] = []  # pushed downstream by the filter
        self.up_in: set[int] = set()
        self.end_out_at: float | None = None

    async def on_push_frame(self, data: FramePushed):
        now, f, frame = time.monotonic(), self.run.filter, data.frame
        if data.destination is f and data.direction == DOWN and isinstance(frame, GATED):
            self.gated_in.append((now, frame.id, frame))
        elif data.destination is f and data.direction == UP:
            self.up_in.add(frame.id)
        elif (
            data.source is f
            and data.direction == UP
            and isinstance(frame, ADOPTED_VAD)
            and frame.id not in self.up_in
            and frame.broadcast_sibling_id is not None
        ):
            # The adopted VAD's upstream copy: its downstream sibling enters the gate now.
            self.gated_in.append((now, frame.broadcast_sibling_id, frame))
            self.adopted.add(frame.broadcast_sibling_id)
        if data.source is f and data.direction == DOWN:
            self.out.append((now, frame))


@dataclass
class Run:
    """One pipeline around a filter, its timeline, decisions and snapshots."""

    context: str
    clock: str
    filter: SoftAckInterruptionFilter
    pipeline: object
    aggregator: LLMUserAggregator | None
    llm_context: LLMContext
    decisions: list = field(default_factory=list)  # (time, SoftAckDecision)
    turns: list = field(default_factory=lambda: [0, 0])  # [started, stopped]
    snapshots: list = field(default_factory=list)
    timeline: Timeline | None = None
    down: list = field(default_factory=list)
    kicker: Kicker | None = None

    def user_messages(self) -> list[str]:
        return [
            str(m.get("content"))
            for m in self.llm_context.get_messages()
            if isinstance(m, dict) and m.get("role") == "user"
        ]

    def kinds(self) -> list[tuple[str, str]]:
        return [(d.kind, d.text) for _, d in self.decisions]

    def reasons(self) -> list[str]:
        return [d.reason for _, d in self.decisions]

    def backchannel_frames(self) -> list[str]:
        return [fr.text for _, fr in self.timeline.out if isinstance(fr, UserBackchannelFrame)]

    def probe(self) -> Probe:
        def snapshot():
            self.snapshots.append(
                {
                    "holding": self.filter.holding,
                    "timer": self.filter._timer is not None,
                    "turns_started": self.turns[0],
                    "turns_stopped": self.turns[1],
                }
            )

        return Probe(callback=snapshot)

    def settle(self) -> list[Frame]:
        """Wait out the rule's bound and the aggregator's watchdog, then snapshot."""
        wait = BOUND + TURN_STOP_TIMEOUT + SLACK[self.clock] + 0.05
        return [*pause(self.context, wait), self.probe()]

    async def go(self, frames: list[Frame], *, end: Frame | None = None, timeout: float = 30):
        """Run ``frames``, then ``end`` (an EndFrame by default), and check the invariants."""
        end = end or EndFrame()
        self.timeline = Timeline(self)
        down, _ = await asyncio.wait_for(
            run_test(
                self.pipeline,
                frames_to_send=[*frames, end],
                send_end_frame=False,
                observers=[self.timeline],
            ),
            timeout=timeout,
        )
        self.down = list(down)
        self.check(end)
        return self.down

    def check(self, end: Frame):
        tl = self.timeline
        # Never stuck: each decision within the bound of the last frame before it.
        for t, decision in self.decisions:
            before = [t_in for t_in, _, _ in tl.gated_in if t_in <= t]
            assert before, decision
            waited = t - before[-1]
            assert waited <= BOUND + SLACK[self.clock], (decision, waited)
        # ... and, once the bound and the aggregator's watchdog have passed, nothing
        # held and every user turn finished.
        for snap in self.snapshots:
            assert not snap["holding"] and not snap["timer"], snap
            assert snap["turns_started"] == snap["turns_stopped"], snap
        assert not self.filter.holding and self.filter._timer is None

        # Never lost, never reordered: what went in came out in order, or was dropped
        # in a reported decision.
        in_ids = [i for _, i, _ in tl.gated_in]
        out_gated = [fr for _, fr in tl.out if isinstance(fr, GATED)]
        out_ids = [fr.id for fr in out_gated]
        assert len(set(out_ids)) == len(out_ids), "a frame came out twice"
        assert set(out_ids) <= set(in_ids), "a gated frame came out that never went in"
        position = {i: k for k, i in enumerate(in_ids)}
        # Two streams: frames that came down the pipeline, and the adopted VAD's frames
        # (made inside the filter, in step with the audio, not with the transcripts).
        for adopted in (False, True):
            stream = [position[i] for i in out_ids if (i in tl.adopted) == adopted]
            assert stream == sorted(stream), "reordered: " + str(
                [type(fr).__name__ for fr in out_gated]
            )
        dropped = sum(d.frames for _, d in self.decisions if d.kind != "interruption")
        # A late transcript reopens the utterance a noise decision dropped: those
        # frames are counted again in the reopened utterance's own decision.
        decisions = [d for _, d in self.decisions if d.reason != "late transcript"]
        dropped -= sum(
            before.frames
            for before, d in zip(decisions, decisions[1:])
            if d.reason == "late final" or d.reason.endswith(", reopened")
        )
        if not isinstance(end, CancelFrame):
            assert len(in_ids) == len(out_ids) + dropped, (
                len(in_ids), len(out_ids), dropped, self.kinds()
            )
        # Interruptions from elsewhere (none of these pipelines has a turn processor
        # upstream of the filter) are never held or dropped.
        for _, i, fr in tl.gated_in:
            if isinstance(fr, InterruptionFrame):
                assert i in out_ids, "an InterruptionFrame from elsewhere was dropped"

        # Nothing outlives the EndFrame/CancelFrame.
        ends = [k for k, (_, fr) in enumerate(tl.out) if isinstance(fr, (EndFrame, CancelFrame))]
        if isinstance(end, EndFrame) or ends:
            assert ends, "the end frame never left the filter"
            assert len(tl.out) == ends[0] + 1, [type(fr).__name__ for _, fr in tl.out[ends[0]:]]


def make_filter(**kwargs) -> SoftAckInterruptionFilter:
    kwargs.setdefault("transcript_timeout_secs", TRANSCRIPT_TIMEOUT)
    kwargs.setdefault("max_hold_secs", MAX_HOLD)
    return SoftAckInterruptionFilter(**kwargs)


def on_clock(test):
    """Run an async test on the clock its ``clock`` argument names (default virtual)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        coro = test(*args, **kwargs)
        return asyncio.run(coro) if kwargs.get("clock") == "real" else run_virtual(coro)

    return run


def build(
    context: str,
    *,
    clock: str = "virtual",
    after=(),
    llm_context: LLMContext | None = None,
    **filter_kwargs,
) -> Run:
    """The filter in ``context``: "bare", "vad-processor" or "vad-in-aggregator"."""
    f = make_filter(**filter_kwargs)
    llm_context = llm_context or LLMContext()
    stt, kicker = FakeSTT(), Kicker()
    aggregator = None
    if context == "bare":
        pipeline = Pipeline([stt, f, kicker])
    else:
        in_aggregator = context == "vad-in-aggregator"
        aggregator = LLMUserAggregator(
            llm_context,
            params=LLMUserAggregatorParams(
                vad_analyzer=LoudnessVAD() if in_aggregator else None,
                user_turn_strategies=UserTurnStrategies(
                    stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.2)]
                ),
                user_turn_stop_timeout=TURN_STOP_TIMEOUT,
            ),
        )
        vad = [] if in_aggregator else [VADProcessor(vad_analyzer=LoudnessVAD())]
        pipeline = Pipeline([*vad, stt, f, aggregator, *after, kicker])
    run = Run(context, clock, f, pipeline, aggregator, llm_context, kicker=kicker)

    for event in ("on_backchannel", "on_interruption_released", "on_noise_dropped", "on_speech_discarded"):

        @f.event_handler(event)
        async def record(_filter, decision):
            run.decisions.append((time.monotonic(), decision))

    if aggregator is not None:

        @aggregator.event_handler("on_user_turn_started")
        async def started(_aggregator, _strategy):
            run.turns[0] += 1

        @aggregator.event_handler("on_user_turn_stopped")
        async def stopped(_aggregator, _strategy, _message):
            run.turns[1] += 1

    return run


def says(
    context: str, *interims: str, final_text: str | None = None, secs: float = 0.2, ends: bool = True
) -> list:
    """One user utterance: speech (so a VAD start), the interims spread over it, the
    speech stopping (a VAD stop; not if ``ends`` is False), then the final if any."""
    if context == "bare":
        frames = paced(VADUserStartedSpeakingFrame(), UserSpeakingFrame(), *map(interim, interims))
    else:
        frames = []
        for text in interims:
            frames += [*speech(secs / len(interims)), interim(text)]
        if not interims:
            frames += speech(secs)
    if not ends:
        return frames
    frames += speech_ends(context)
    if final_text is not None:
        frames += paced(final(final_text))
    return frames


def speech_ends(context: str) -> list:
    """The user stops speaking: a VAD stop (after stop_secs of silence where a VAD listens)."""
    if context == "bare":
        return paced(VADUserStoppedSpeakingFrame())
    return silence(0.16)


def pause(context: str, secs: float) -> list:
    """``secs`` with nothing said (silent audio where a VAD listens)."""
    return [SleepFrame(sleep=secs)] if context == "bare" else silence(secs)


def bot_starts() -> list:
    return [BotStartedSpeakingFrame(), SleepFrame(sleep=0.02)]


def bot_stops() -> list:
    return [BotStoppedSpeakingFrame(), SleepFrame(sleep=0.02)]


# --- the cases ----------------------------------------------------------------


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_stt_error_mid_hold_then_no_final(context):
    """The STT fails (a non-fatal ErrorFrame upstream) while "yeah" is held; its final
    never comes. The interim decides it at the transcript timeout."""
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "yeah", ends=False),
            SttFails(),
            *speech_ends(context),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("backchannel", "yeah")]
    assert run.decisions[0][1].reason == "transcript timeout"


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_fatal_stt_error_mid_hold_cancels_and_leaves_nothing(context):
    """A fatal STT error cancels the pipeline: the held frames go with it, no timer stays."""
    run = build(context)
    down = await run.go(
        [
            *bot_starts(),
            *says(context, "yeah", "yeah okay", ends=False),
            SttFails(fatal=True),
            SleepFrame(sleep=0.3),
        ],
        end=CancelFrame(),
    )
    assert any(isinstance(x, CancelFrame) for x in down)
    assert not any(isinstance(x, InterimTranscriptionFrame) for x in down)
    assert run.kinds() == []


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_stt_that_reconnects_loses_one_final_and_the_next_utterance_still_interrupts(context):
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "yeah", ends=False),
            SttFails(),  # the STT reconnects; the audio of this utterance is lost to it
            *speech_ends(context),
            *pause(context, BOUND + 0.1),
            *says(context, "stop", final_text="Stop."),
            *run.settle(),
        ]
    )
    assert [k for k, _ in run.kinds()] == ["backchannel", "interruption"]
    assert run.kinds()[1] == ("interruption", "stop")
    if run.aggregator:
        assert run.user_messages() == ["Stop."]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize(
    "interims, kind, reason",
    [
        (("mm hmm",), "backchannel", "transcript timeout"),
        (("refund",), "noise", "transcript timeout, unconfirmed interim only"),
        ((), "noise", "transcript timeout"),
    ],
    ids=["soft-ack", "content", "no-words"],
)
@on_clock
async def test_a_final_that_never_comes(context, interims, kind, reason, clock="virtual"):
    """Decided at the transcript timeout: a soft-ack is dropped as a backchannel; one
    content word that only a short interim held (the STT never stood by it) and
    speech without words are noise. The bot is not interrupted."""
    run = build(context, clock=clock)
    down = await run.go([*bot_starts(), *says(context, *interims), *run.settle()])
    assert [k for k, _ in run.kinds()] == [kind]
    assert not any(isinstance(x, InterruptionFrame) for x in down)
    decision = run.decisions[0][1]
    assert decision.reason == reason
    assert decision.after_speech_stop_secs == pytest.approx(TRANSCRIPT_TIMEOUT, abs=SLACK[clock])


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_a_final_after_the_bot_stopped_is_a_user_turn(context):
    """The bot stops between the end of "yeah" and its final: the utterance is released
    as a normal user turn and its final reaches the context."""
    run = build(context)
    await run.go(
        [*bot_starts(), *says(context, "yeah"), *bot_stops(), final("Yeah."), *run.settle()]
    )
    assert run.kinds() == [("interruption", "yeah")]
    assert run.decisions[0][1].reason == "bot stopped speaking"
    if run.aggregator:
        assert run.user_messages() == ["Yeah."]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_a_late_final_after_the_timeout_decided_it_is_part_of_that_backchannel(context):
    """The transcript timeout dropped "yeah" on its interim; its final comes later, after
    the bot stopped. It belongs to the backchannel already decided: no second report,
    and no user turn for a "yeah" the bot already heard as one."""
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "yeah"),
            *pause(context, TRANSCRIPT_TIMEOUT + 0.1),
            *bot_stops(),
            final("Yeah."),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("backchannel", "yeah"), ("backchannel", "Yeah.")]
    assert run.reasons() == ["transcript timeout", "late transcript"]
    assert run.backchannel_frames() == ["yeah"]
    if run.aggregator:
        assert run.user_messages() == [] and run.turns == [0, 0]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize(
    "final_text, kind",
    [("But what about the price?", "interruption"), ("Uh-huh.", "backchannel")],
    ids=["content", "soft-ack"],
)
@on_clock
async def test_a_final_after_the_timeout_dropped_an_unconfirmed_interim_reopens_it(context, final_text, kind):
    """"but" stood in one short interim and no final came: dropped as noise at the
    timeout. The final then still comes, while the bot speaks and before any new speech:
    the utterance is judged again on it, with its held frames, in order."""
    run = build(context)
    down = await run.go(
        [
            *bot_starts(),
            *says(context, "but"),
            *pause(context, TRANSCRIPT_TIMEOUT + 0.1),
            final(final_text),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("noise", "but"), (kind, final_text)]
    assert run.reasons() == ["transcript timeout, unconfirmed interim only", "late final"]
    released = [x.text for x in down if isinstance(x, (InterimTranscriptionFrame, TranscriptionFrame))]
    if kind == "interruption" and run.aggregator:
        assert run.turns[0] == 1 and run.user_messages() == [final_text]
    elif kind == "interruption":
        assert released == ["but", final_text]
    else:
        assert released == [] and run.backchannel_frames() == [final_text]
        assert not run.aggregator or run.turns == [0, 0]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_a_late_final_after_the_bot_stopped_is_a_user_turn_with_the_dropped_frames(context):
    """The bot stops between the drop and the final: the reopened utterance is released
    as a normal user turn, its old frames first (never held with the bot silent)."""
    run = build(context, min_words=3)  # a deferral here would wait for a bot that is gone
    down = await run.go(
        [
            *bot_starts(),
            *says(context, "truck"),
            *pause(context, TRANSCRIPT_TIMEOUT + 0.1),
            *bot_stops(),
            final("My truck."),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("noise", "truck"), ("interruption", "My truck.")]
    assert run.reasons() == ["transcript timeout, unconfirmed interim only", "late final"]
    if run.aggregator:
        assert run.user_messages() == ["My truck."]
    else:
        texts = [x.text for x in down if isinstance(x, (InterimTranscriptionFrame, TranscriptionFrame))]
        assert texts == ["truck", "My truck."]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_an_stt_still_transcribing_after_the_timeout_reopens_the_utterance(context):
    """Interims that go on from the dropped words (a slow STT) reopen it; its final
    then decides it, and every frame comes out once, in order."""
    run = build(context)
    down = await run.go(
        [
            *bot_starts(),
            *says(context, "truck"),
            *pause(context, TRANSCRIPT_TIMEOUT + 0.1),
            *paced(interim("truck broke"), interim("truck broke down"), final("My truck broke down.")),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("noise", "truck"), ("interruption", "My truck broke down.")]
    assert run.reasons()[1].endswith(", reopened")
    if run.aggregator:
        assert run.user_messages() == ["My truck broke down."]
    else:
        texts = [x.text for x in down if isinstance(x, (InterimTranscriptionFrame, TranscriptionFrame))]
        assert texts == ["truck", "truck broke", "truck broke down", "My truck broke down."]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_a_final_after_other_frames_went_out_is_not_reopened(context):
    """After the drop the bot stops and a new interim passes straight through: the
    dropped frames can no longer come out before it, so the final is not a reopening."""
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "truck"),
            *pause(context, TRANSCRIPT_TIMEOUT + 0.1),
            *bot_stops(),
            *paced(interim("hello there")),
            final("Hello there."),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("noise", "truck")]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_a_final_after_an_unconfirmed_interim_and_a_new_speech_start_is_not_reopened(context):
    """Once new speech has started, a late final no longer belongs to the dropped
    utterance: "but" stays dropped and the new utterance is judged on its own."""
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "but"),
            *pause(context, TRANSCRIPT_TIMEOUT + 0.1),
            *says(context, "yeah", final_text="Yeah."),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("noise", "but"), ("backchannel", "Yeah.")]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_duplicate_finals_are_one_backchannel(context):
    run = build(context)
    await run.go(
        [*bot_starts(), *says(context, "yeah", final_text="Yeah."), final("Yeah."), *run.settle()]
    )
    assert run.kinds() == [("backchannel", "Yeah."), ("backchannel", "Yeah.")]
    assert run.reasons() == ["utterance ended", "late transcript"]
    assert run.backchannel_frames() == ["Yeah."]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_duplicate_finals_of_an_interruption_pass_with_it(context):
    run = build(context)
    await run.go(
        [*bot_starts(), *says(context, "stop", final_text="Stop."), final("Stop."), *run.settle()]
    )
    assert run.kinds() == [("interruption", "stop")]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_an_interim_after_its_final(context):
    """A stray interim after the final of a backchannel: one backchannel, nothing held
    over, and the next utterance is judged on its own."""
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "yeah", final_text="Yeah."),
            interim("yeah"),
            *pause(context, 0.1),
            *says(context, "okay", final_text="Okay."),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("backchannel", "Yeah."), ("backchannel", "yeah"), ("backchannel", "Okay.")]
    assert run.reasons() == ["utterance ended", "late transcript", "utterance ended"]
    assert run.backchannel_frames() == ["Yeah.", "Okay."]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_bot_stopped_speaking_never_arrives(context, monkeypatch):
    """The bot's audio ended (no more BotSpeakingFrame) but its BotStoppedSpeakingFrame
    was lost. Once BotSpeakingFrames have been missing for BOT_SPEAKING_STALE_SECS the
    filter treats the bot as silent, so "yeah" answering it is a user turn, not a
    backchannel dropped forever."""
    monkeypatch.setattr(softack_filter_module, "BOT_SPEAKING_STALE_SECS", 1.0)
    run = build(context)
    speaking = [x for _ in range(3) for x in (BotSpeakingFrame(), *pause(context, 0.2))]
    await run.go(
        [
            *bot_starts(),
            *speaking,
            *says(context, "yeah", final_text="Yeah."),  # still "speaking": a backchannel
            *pause(context, 1.2),  # no BotSpeakingFrame for longer than the stale bound
            *says(context, "yeah", final_text="Yeah."),
            *run.settle(),
        ]
    )
    assert [k for k, _ in run.kinds()] == ["backchannel"]
    assert not run.filter.bot_speaking
    if run.aggregator:
        assert run.user_messages() == ["Yeah."]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_no_bot_speaking_frames_at_all_keeps_the_bot_speaking(context):
    """Without BotSpeakingFrames (a transport that sends none) the state is the frames'."""
    run = build(context)
    await run.go(
        [*bot_starts(), *pause(context, 0.6), *says(context, "yeah", final_text="Yeah."), *run.settle()]
    )
    assert run.kinds() == [("backchannel", "Yeah.")] and run.filter.bot_speaking


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_a_second_bot_started_without_a_stop(context):
    """A second BotStartedSpeakingFrame with no stop between (a TTS that restarts):
    still one bot utterance; after the one stop, "okay" is a user turn."""
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "yeah"),
            *bot_starts(),
            *says(context, "okay", final_text="Okay."),
            *bot_stops(),
            *says(context, "okay", final_text="Okay."),
            *run.settle(),
        ]
    )
    # The repeated start changes nothing; the one stop ends the bot's speech.
    assert run.kinds() == [("backchannel", "yeah"), ("backchannel", "Okay.")]
    assert run.reasons() == ["next utterance", "utterance ended"]
    assert not run.filter.bot_speaking
    if run.aggregator:
        assert run.user_messages() == ["Okay."]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("direction", ["downstream", "upstream"])
@on_clock
async def test_an_interruption_from_elsewhere_mid_hold(context, direction, clock="virtual"):
    """Something else interrupts while the filter holds "yeah": downstream, the app cuts
    the bot (an InterruptionFrame, then its own TTSSpeakFrame); upstream, a processor
    after the filter broadcasts one (as a function call result can). The
    InterruptionFrame passes at once and "yeah" is decided as usual."""
    run = build(context, clock=clock)
    cut = [InterruptionFrame(), TTSSpeakFrame("One moment please.")]
    if direction == "upstream":
        cut = [InterruptAfter()]
    await run.go(
        [*bot_starts(), *says(context, "yeah", ends=False), *cut, *speech_ends(context), *run.settle()]
    )
    assert [k for k, _ in run.kinds()] == ["backchannel"]
    out = [type(fr) for _, fr in run.timeline.out]
    if direction == "downstream":
        assert InterruptionFrame in out and TTSSpeakFrame in out
    else:
        assert run.kicker.kicked == 1


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_an_interruption_from_elsewhere_while_nobody_speaks_passes_at_once(context):
    run = build(context)
    cut = InterruptionFrame()
    await run.go([*bot_starts(), cut, *pause(context, 0.1), *run.settle()])
    assert run.kinds() == []
    (t_out,) = [t for t, fr in run.timeline.out if fr is cut]
    (t_in,) = [t for t, i, _ in run.timeline.gated_in if i == cut.id]
    assert t_out - t_in < TRANSCRIPT_TIMEOUT  # not held until a timer


@pytest.mark.parametrize("context", SHAPES)
@pytest.mark.parametrize("bot_speaking", [True, False], ids=["bot-speaking", "bot-silent"])
@on_clock
async def test_a_backchannel_while_a_function_call_runs(context, bot_speaking):
    """The LLM runs a tool (0.6 s) while the user says "yeah". With the bot speaking
    ("let me check") it is a backchannel: the call is not cancelled and its answer comes.
    With the bot silent it is a user turn: Pipecat cancels the call, and the LLM answers
    the new turn. Either way nothing is left waiting."""
    llm = ToolCallingLLM(api_key="test-key-not-used")
    finished = []

    async def lookup_order(params):
        await asyncio.sleep(0.6)
        finished.append(params.arguments["id"])
        await params.result_callback({"order": 7, "status": "shipped"})

    llm.register_function("lookup_order", lookup_order)
    ctx = LLMContext(messages=[{"role": "user", "content": "where is my order 7?"}])
    run = build(context, after=[llm, LLMAssistantAggregator(ctx)], llm_context=ctx)
    frames = [
        *(bot_starts() if bot_speaking else []),
        LLMContextFrame(context=ctx),
        *pause(context, 0.1),
        *says(context, "yeah", final_text="Yeah."),
        *pause(context, 0.6),
        *(bot_stops() if bot_speaking else []),
        *run.settle(),
    ]
    await run.go(frames)
    assistant = [m.get("content") for m in ctx.get_messages() if m.get("role") == "assistant"]
    if bot_speaking:
        assert run.kinds() == [("backchannel", "Yeah.")]
        assert finished == [7] and assistant[-1:] == ["Your order has shipped."]
    else:
        assert run.kinds() == []
        assert run.user_messages()[-1] == "Yeah."
    assert run.turns[0] == run.turns[1]


@pytest.mark.parametrize("context", CONTEXTS)
@on_clock
async def test_a_second_start_frame(context):
    """A second StartFrame mid-session (a pipeline restarted around the filter) changes
    nothing: backchannels are still dropped and commands still released."""
    run = build(context)
    await run.go(
        [
            *bot_starts(),
            *says(context, "yeah", final_text="Yeah."),
            StartFrame(),
            *pause(context, 0.1),
            *says(context, "okay", final_text="Okay."),
            *says(context, "stop", final_text="Stop."),
            *run.settle(),
        ]
    )
    assert run.kinds() == [("backchannel", "Yeah."), ("backchannel", "Okay."), ("interruption", "stop")]


@pytest.mark.parametrize("context", SHAPES)
def test_on_the_real_clock_too(context):
    """Two of the cases on the real clock (a scheduling allowance of SLACK["real"]):
    nothing above depends on the virtual one."""
    asyncio.run(
        test_a_final_that_never_comes.__wrapped__(
            context, ("refund",), "noise", "transcript timeout, unconfirmed interim only", "real"
        )
    )
    asyncio.run(test_an_interruption_from_elsewhere_mid_hold.__wrapped__(context, "downstream", "real"))
