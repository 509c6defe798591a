"""Every STT family Pipecat 1.14 ships, in both pipeline shapes (tests/shapes.py).

Each family runs Pipecat's own service class against a scripted vendor server
(tests/stt_sequences.py, which cites the service file and functions for each), so
the frames reaching the filter are the ones the service really pushes, in its order
and timing relative to the VAD, with its casing, punctuation, ``result``,
``finalized`` and ``language`` (each test checks those on the service's final
transcript):

- streaming with interims, final on the vendor's endpointing or on the finalize the
  service sends at the VAD stop: ``DeepgramSTTService`` (services/deepgram/stt.py),
  ``AssemblyAISTTService`` in its default Pipecat mode (services/assemblyai/stt.py),
  ``SpeechmaticsSTTService`` in its default ``EXTERNAL`` mode
  (services/speechmatics/stt.py);
- segmented, one final after the VAD stop: ``WhisperSTTService`` (services/whisper/
  stt.py on services/stt_service.py ``SegmentedSTTService``), ``OpenAISTTService``
  (services/openai/stt.py on services/whisper/base_stt.py);
- STTs that detect turns themselves, broadcast ``ProposedUserStartedSpeakingFrame`` /
  ``ProposedUserStoppedSpeakingFrame`` (none in 1.14 broadcasts ``UserStarted…``
  itself) and recommend ``ExternalUserTurnStrategies`` in their ``STTMetadataFrame``:
  ``DeepgramFluxSTTService`` (services/deepgram/flux/stt_base.py),
  ``AssemblyAISTTService(vad_force_turn_endpoint=False)``, ``SpeechmaticsSTTService``
  with ``turn_detection_mode=VAD``. With no ``user_turn_strategies`` passed, the user
  aggregator applies the recommendation itself (processors/aggregators/
  llm_response_universal.py ``_handle_service_user_turn_strategies``), as here.

Per family and shape: (a) a backchannel while the bot speaks: no interruption, no
user message, exactly one ``UserBackchannelFrame``; (b) a real interruption while the
bot speaks: it interrupts and its words reach the context; (c) speech to a silent
bot becomes a user turn. Beyond that matrix, in both shapes: Flux with user-passed
strategies (its recommendation ignored), Flux with eager end of turn, Flux ending its
turn late (max hold must not release a backchannel once the VAD heard it end), and a
segmented cloud STT transcribing later than the 1.0 s transcript timeout but within
the latency it advertises (the filter waits for it).

Strategies: (a) passes none, so it runs on Pipecat's defaults (VAD and transcription
start, Smart Turn v3 stop) or on what the service recommends. (b) and (c) need the
turn to end: the turn-detecting families end it on their own proposal; the others
use :func:`short_stop` (``SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.2)``),
because Smart Turn on synthetic audio waits for the 5 s ``user_turn_stop_timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    EagerTranscriptionFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import run_test
from pipecat.transcriptions.language import Language
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies, UserTurnStrategies

from pipecat_softack import SoftAckInterruptionFilter
from tests.shapes import SHAPES, Shape, backchannels, build_shape, count, llm_runs, silence, speech
from tests.stt_sequences import (
    AssemblyAIServer,
    DeepgramServer,
    FluxServer,
    PushedBy,
    Said,
    ScriptedAssemblyAISTTService,
    ScriptedDeepgramFluxSTTService,
    ScriptedDeepgramSTTService,
    ScriptedOpenAISTTService,
    SegmentModel,
    SpeechmaticsServer,
    speechmatics_stt,
    whisper_stt,
)


def short_stop() -> UserTurnStrategies:
    """Pipecat's default start strategies, and a turn that ends 0.2 s after the VAD
    stop once a transcript is in, or once the STT's P99 latency has passed (Smart Turn
    would wait 5 s on synthetic audio)."""
    return UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.2)])


@dataclass(frozen=True)
class Family:
    """One STT service: how to build it on a script, what its user says, and the
    fields it sets on its final ``TranscriptionFrame`` (``check``)."""

    name: str
    make: Callable[..., object]
    backchannel: Said
    interruption: Said
    turn: Said
    check: Callable[[TranscriptionFrame], None]
    proposes_turns: bool = False  # broadcasts Proposed… frames, recommends External
    segmented: bool = False  # one final per VAD segment, no interims
    eager: bool = False  # pushes an EagerTranscriptionFrame before the final
    # What the service sends its vendor on VADUserStoppedSpeakingFrame (either
    # direction: in the vad-in-aggregator shape it is the filter's upstream copy).
    on_vad_stop: str | None = None

    def strategies(self) -> UserTurnStrategies | None:
        """For (b) and (c): none (the service's recommendation), or the short stop."""
        return None if self.proposes_turns else short_stop()


# -- what each service sets on its final transcript -------------------------------


def _deepgram_final(frame: TranscriptionFrame):
    # services/deepgram/stt.py _on_message: result is the SDK's ListenV1Results
    # (confidence per alternative and word); no language without multilingual
    # detection; finalized only for the answer to the Finalize sent on the VAD stop
    # (request_finalize / confirm_finalize), not for a final of Deepgram's endpointing.
    from deepgram.listen.v1.types import ListenV1Results

    assert isinstance(frame.result, ListenV1Results)
    assert frame.result.is_final and frame.result.channel.alternatives[0].confidence > 0
    assert frame.finalized == bool(frame.result.from_finalize)
    assert frame.language is None


def _whisper_final(frame: TranscriptionFrame):
    # services/whisper/stt.py run_stt: f"{segment.text} " (faster-whisper's text
    # starts with a space), the Whisper language code, no result;
    # SegmentedSTTService.push_frame marks every transcription finalized.
    assert frame.text.startswith(" ") and frame.text.endswith(" ")
    assert frame.language == "en" and frame.result is None and frame.finalized


def _openai_final(frame: TranscriptionFrame):
    # services/whisper/base_stt.py run_stt: the stripped text, the API's
    # Transcription as result, no language; finalized by SegmentedSTTService.
    from openai.types.audio import Transcription

    assert isinstance(frame.result, Transcription) and frame.text == frame.result.text.strip()
    assert frame.finalized and frame.language is None


def _flux_final(frame: TranscriptionFrame):
    # services/deepgram/flux/stt_base.py _handle_end_of_turn: the TurnInfo dict as
    # result (words with confidences), finalized=True, Language.EN for
    # flux-general-en.
    assert frame.finalized and frame.language == Language.EN
    assert frame.result["event"] == "EndOfTurn" and frame.result["words"][0]["confidence"] > 0


def _assemblyai_final(turn_detection: bool):
    def check(frame: TranscriptionFrame):
        # services/assemblyai/stt.py _handle_transcription: the formatted end-of-turn
        # TurnMessage as result (word confidences), Language.EN unless detected;
        # finalized=True in turn detection mode. (In Pipecat mode it is finalized
        # only if the ForceEndpoint of the VAD stop beat AssemblyAI's own 100 ms
        # endpoint, a race not asserted here.)
        assert frame.result.end_of_turn and frame.result.turn_is_formatted
        assert frame.result.words[0].confidence > 0 and frame.language == Language.EN
        if turn_detection:
            assert frame.finalized

    return check


def _speechmatics_final(service_vad: bool):
    def check(frame: TranscriptionFrame):
        # services/speechmatics/stt.py _segment_to_frame: the configured language
        # code, no result (Agent STT has no wire field for it); _handle_segment
        # confirms the finalize the service requested on the VAD stop (EXTERNAL), so
        # only that final is finalized.
        assert frame.language == "en" and frame.result is None
        assert frame.finalized == (not service_vad)

    return check


# -- the families -------------------------------------------------------------------

DEEPGRAM = Family(
    "deepgram",
    # DeepgramServer: interims while speaking, is_final/speech_final on Deepgram's
    # 10 ms endpointing (before the VAD stops), empty from_finalize answer to the
    # Finalize of the VAD stop (services/deepgram/stt.py _on_message, process_frame).
    lambda *said: ScriptedDeepgramSTTService(DeepgramServer(*said)),
    backchannel=Said("Yeah.", ("Yeah.",)),
    interruption=Said("Wait, stop.", ("Wait,", "Wait, stop.")),
    turn=Said("Tell me a story about a dog.", ("Tell me", "Tell me a story", "Tell me a story about a dog.")),
    check=_deepgram_final,
    on_vad_stop="Finalize",
)
WHISPER = Family(
    "whisper",
    # One segment per VAD stop (SegmentedSTTService._handle_user_stopped_speaking),
    # transcribed in 0.15 s by the model (WhisperSTTService.run_stt); no interims.
    lambda *said: whisper_stt(SegmentModel(*said, latency=0.15)),
    backchannel=Said(" Mm-hmm."),
    interruption=Said(" No, stop."),
    turn=Said(" What's the weather like on Mars?"),
    check=_whisper_final,
    segmented=True,
)
FLUX = Family(
    "deepgram-flux",
    # FluxServer: StartOfTurn (ProposedUserStartedSpeakingFrame, broadcast), Update
    # every 0.25 s (interims), EndOfTurn (final, then ProposedUserStoppedSpeakingFrame)
    # (services/deepgram/flux/stt_base.py _handle_turn_info and the handlers it calls).
    lambda *said: ScriptedDeepgramFluxSTTService(FluxServer(*said)),
    backchannel=Said("Yeah", ("Yeah",)),
    interruption=Said(
        "Yeah but what about the price", ("Yeah", "Yeah but what", "Yeah but what about the price")
    ),
    turn=Said("Tell me a story about a dog", ("Tell me a", "Tell me a story about a dog")),
    check=_flux_final,
    proposes_turns=True,
)
ASSEMBLYAI_TURNS = Family(
    "assemblyai-turn-detection",
    # AssemblyAIServer: SpeechStarted (ProposedUserStartedSpeakingFrame,
    # _handle_speech_started), partials, formatted end of turn 0.25 s into the
    # silence (final, then ProposedUserStoppedSpeakingFrame; _handle_transcription).
    lambda *said: ScriptedAssemblyAISTTService(
        AssemblyAIServer(*said, turn_silence=0.25), vad_force_turn_endpoint=False
    ),
    backchannel=Said("Mm-hmm.", ("mm-hmm",)),
    interruption=Said("No, stop.", ("no", "no stop")),
    turn=Said("What's the weather like on Mars?", ("what's the", "what's the weather like on mars")),
    check=_assemblyai_final(turn_detection=True),
    proposes_turns=True,
)
SPEECHMATICS_VAD = Family(
    "speechmatics-vad",
    # SpeechmaticsServer(service_vad=True): StartOfTurn, partial segments, AddSegment
    # and EndOfTurn 0.25 s into the silence; the VAD stop is only logged
    # (services/speechmatics/stt.py _handle_message, process_frame).
    lambda *said: speechmatics_stt(
        SpeechmaticsServer(*said, service_vad=True, end_of_turn_silence=0.25)
    ),
    backchannel=Said("Uh-huh.", ("Uh-huh.",)),
    interruption=Said("Wait.", ("Wait.",)),
    turn=Said("Tell me a story about a dog.", ("Tell me a", "Tell me a story about a dog.")),
    check=_speechmatics_final(service_vad=True),
    proposes_turns=True,
)
FAMILIES = [DEEPGRAM, WHISPER, FLUX, ASSEMBLYAI_TURNS, SPEECHMATICS_VAD]

# The other orderings of the streaming families: the final arrives only after the
# VAD stop, in answer to what the service sends on it.
DEEPGRAM_FINALIZE = Family(
    "deepgram-finalize",
    # Endpointing that does not fire before the VAD stops: the final is the
    # from_finalize answer to the Finalize of the VAD stop.
    lambda *said: ScriptedDeepgramSTTService(DeepgramServer(*said, endpointing=None)),
    backchannel=Said("Mhmm.", ("Mhmm.",)),
    interruption=DEEPGRAM.interruption,
    turn=DEEPGRAM.turn,
    check=_deepgram_final,
    on_vad_stop="Finalize",
)
FLUX_EAGER = Family(
    "deepgram-flux-eager",
    # enable_eager_end_of_turn=True: EagerEndOfTurn before EndOfTurn, pushed as an
    # EagerTranscriptionFrame (turns/eager_end_of_turn_mixin.py
    # _push_eager_end_of_turn); the service then recommends EagerUserTurnStrategies,
    # which start an LLM inference on it (turns/user_stop/
    # eager_user_turn_stop_strategy.py).
    lambda *said: ScriptedDeepgramFluxSTTService(
        FluxServer(*said, eager_silence=0.12), enable_eager_end_of_turn=True
    ),
    backchannel=Said("Mm-hmm", ("Mm-hmm",)),
    interruption=FLUX.interruption,
    turn=FLUX.turn,
    check=_flux_final,
    proposes_turns=True,
    eager=True,
)
ASSEMBLYAI = Family(
    "assemblyai",
    # Pipecat mode (the default): min/max_turn_silence 100 ms, ForceEndpoint on the
    # VAD stop, no turn frames, no recommendation (_configure_pipecat_turn_mode,
    # process_frame, service_metadata_frame).
    lambda *said: ScriptedAssemblyAISTTService(AssemblyAIServer(*said)),
    backchannel=Said("Yeah.", ("yeah",)),
    interruption=Said("Yeah, but what about the price?", ("yeah", "yeah but what about the price")),
    turn=Said("Tell me a story about a dog.", ("tell me a", "tell me a story about a dog")),
    check=_assemblyai_final(turn_detection=False),
    on_vad_stop="ForceEndpoint",
)
SPEECHMATICS = Family(
    "speechmatics",
    # EXTERNAL mode (the default): client.finalize() on the VAD stop, answered by
    # the final AddSegment; no turn frames, no recommendation.
    lambda *said: speechmatics_stt(SpeechmaticsServer(*said)),
    backchannel=Said("Mm-hmm.", ("Mm-hmm.",)),
    interruption=Said("No, stop.", ("No,", "No, stop.")),
    turn=Said("What's the weather like on Mars?", ("What's the", "What's the weather like on Mars?")),
    check=_speechmatics_final(service_vad=False),
    on_vad_stop="finalize",
)
# A segmented cloud STT: OpenAISTTService advertises a P99 of 2.01 s from the end of
# speech to its transcript (services/stt_latency.py OPENAI_TTFS_P99, in its
# STTMetadataFrame); a transcript 1.15 s after the VAD stop is an ordinary one.
OPENAI_SLOW = Family(
    "openai-slow",
    lambda *said: ScriptedOpenAISTTService(SegmentModel(*said, latency=1.15)),
    backchannel=Said("Yeah."),
    interruption=Said("Wait, stop."),
    turn=Said("Tell me a story about a dog."),
    check=_openai_final,
    segmented=True,
)


def cases(families) -> list:
    return [pytest.param(f, s, id=f"{f.name}-{s}") for f in families for s in SHAPES]


# -- running one conversation -------------------------------------------------------


@dataclass
class Run:
    down: list
    shape: Shape
    stt: object  # the service, with its scripted far end (.server or .model)
    stt_pushed: PushedBy
    turn_started_by: list[str]  # the start strategy of each user turn
    turn_stopped_by: list[str | None]  # the stop strategy (None: the pipeline ended)
    decisions: list  # the filter's SoftAckDecisions, in order

    def decided(self) -> list[tuple[str, str]]:
        return [(d.kind, d.reason) for d in self.decisions]

    def said_in_context(self) -> list[str]:
        return [m.strip() for m in self.shape.user_messages()]

    def final(self) -> TranscriptionFrame:
        finals = self.stt_pushed.of(TranscriptionFrame, FrameDirection.DOWNSTREAM)
        assert len(finals) == 1, [f.text for f in finals]
        return finals[0]


async def converse(
    family: Family, said: Said, shape: str, frames: list, filter_kwargs=None, **shape_kwargs
) -> Run:
    """``said`` to ``family``'s service in ``shape``, the filter between it and the
    user aggregator; ``frames`` (audio and bot frames) sent from the source."""
    stt = family.make(said)
    softack = SoftAckInterruptionFilter(**(filter_kwargs or {}))
    s = build_shape(shape, softack, before=[stt], **shape_kwargs)
    starts: list[str] = []
    stops: list[str | None] = []
    decisions: list = []

    @s.aggregator.event_handler("on_user_turn_started")
    async def on_user_turn_started(_aggregator, strategy):
        starts.append(type(strategy).__name__)

    @s.aggregator.event_handler("on_user_turn_stopped")
    async def on_user_turn_stopped(_aggregator, strategy, _message):
        stops.append(type(strategy).__name__ if strategy else None)

    for event in ("on_backchannel", "on_interruption_released", "on_noise_dropped"):

        @softack.event_handler(event)
        async def on_decision(_filter, decision):
            decisions.append(decision)

    pushed = PushedBy(stt)
    down, _ = await run_test(s.pipeline, frames_to_send=frames, observers=[pushed])
    assert softack.placement.shape == shape and softack.placement.warnings == []
    return Run(list(down), s, stt, pushed, starts, stops, decisions)


def assert_service_sequence(family: Family, run: Run):
    """What the service did: what it sent its vendor on the VAD stop, one
    STTMetadataFrame (with its recommendation), its own turn frames where it has them
    (broadcast: a copy each way), interims unless segmented, one final."""
    (meta,) = run.stt_pushed.of(STTMetadataFrame, FrameDirection.DOWNSTREAM)
    if family.proposes_turns:
        # EagerUserTurnStrategies is an ExternalUserTurnStrategies
        assert isinstance(meta.user_turn_strategies, ExternalUserTurnStrategies)
        for frame_type in (ProposedUserStartedSpeakingFrame, ProposedUserStoppedSpeakingFrame):
            assert len(run.stt_pushed.of(frame_type, FrameDirection.DOWNSTREAM)) == 1
            assert len(run.stt_pushed.of(frame_type, FrameDirection.UPSTREAM)) == 1
    else:
        assert meta.user_turn_strategies is None
        assert run.stt_pushed.of(ProposedUserStartedSpeakingFrame) == []
    if family.segmented:
        assert len(run.stt.model.segments) == 1  # one segment, cut at the VAD stop
    else:
        sent = [c.get("type") or c.get("message") for c in run.stt.server.controls]
        finalizes = [c for c in sent if c in ("Finalize", "ForceEndpoint", "finalize")]
        assert finalizes == ([family.on_vad_stop] if family.on_vad_stop else []), sent
    interims = run.stt_pushed.of(InterimTranscriptionFrame, FrameDirection.DOWNSTREAM)
    assert (interims == []) if family.segmented else interims
    assert bool(run.stt_pushed.of(EagerTranscriptionFrame)) == family.eager
    family.check(run.final())


def expected_start(family: Family) -> list[str]:
    """The strategy that opens the user turn: the recommended external one resolving
    the service's proposal, else Pipecat's VAD start strategy (the VAD start is the
    first frame the filter releases)."""
    return ["ExternalUserTurnStartStrategy" if family.proposes_turns else "VADUserTurnStartStrategy"]


def expected_stop(family: Family) -> list[str]:
    """The strategy that ends the turn before the pipeline does (an end left to the
    EndFrame would show as None)."""
    return ["ExternalUserTurnStopStrategy" if family.proposes_turns else "SpeechTimeoutUserTurnStopStrategy"]


# Seconds. Each case ends well after its slowest decision: the turn-detecting
# families propose the end of a turn 0.26-0.3 s after the speech ends, the short stop
# ends it 0.3-0.35 s after (the VAD's 0.1 s stop, then 0.2 s, or Deepgram's P99).
WHILE_SPEAKING = [BotStartedSpeakingFrame(), *silence(0.06)]


# -- (a) a backchannel while the bot speaks --------------------------------------


@pytest.mark.parametrize(
    "family, shape", cases([*FAMILIES, DEEPGRAM_FINALIZE, ASSEMBLYAI, SPEECHMATICS, FLUX_EAGER])
)
async def test_backchannel_while_the_bot_speaks_is_reported_not_answered(family, shape):
    """(a) The service's own spelling of "yeah" / "mm-hmm" / "uh-huh" over the bot,
    with no strategies passed (Pipecat's defaults, or the service's recommendation):
    no InterruptionFrame, no user turn, no LLM inference (not even a speculative one
    on Flux's eager end of turn), nothing in the context, one UserBackchannelFrame
    with the service's text, decided when the utterance ended."""
    run = await converse(
        family, family.backchannel, shape, [*WHILE_SPEAKING, *speech(0.3), *silence(0.5)]
    )
    assert_service_sequence(family, run)
    assert count(run.down, InterruptionFrame) == 0
    assert count(run.down, UserStartedSpeakingFrame) == 0 and run.turn_started_by == []
    assert llm_runs(run.down) == 0
    assert backchannels(run.down) == [family.backchannel.final.strip()]
    assert run.decided() == [("backchannel", "utterance ended")]
    assert run.shape.user_messages() == []


# -- (b) a real interruption while the bot speaks ----------------------------------


@pytest.mark.parametrize("family, shape", cases(FAMILIES))
async def test_interruption_while_the_bot_speaks_interrupts_and_reaches_the_llm(family, shape):
    """(b) "wait, stop" / "no, stop" / "yeah but what about the price" over the bot,
    as the service transcribes it: released on its words, one InterruptionFrame, the
    words in the LLM context, no UserBackchannelFrame; the turn is opened by the
    strategy the service implies (its recommended ExternalUserTurnStartStrategy, or
    Pipecat's VADUserTurnStartStrategy)."""
    run = await converse(
        family,
        family.interruption,
        shape,
        [*WHILE_SPEAKING, *speech(0.45), *silence(0.55)],
        strategies=family.strategies(),
    )
    assert_service_sequence(family, run)
    assert run.decided() == [("interruption", "content or command word")]
    assert count(run.down, InterruptionFrame) == 1
    assert backchannels(run.down) == []
    assert run.turn_started_by == expected_start(family)
    assert run.turn_stopped_by == expected_stop(family)
    assert run.said_in_context() == [family.interruption.final.strip()]


# -- (c) speech while the bot is silent -------------------------------------------


@pytest.mark.parametrize("family, shape", cases(FAMILIES))
async def test_speech_to_a_silent_bot_becomes_a_user_turn(family, shape):
    """(c) With the bot silent the filter holds and decides nothing: the service's
    frames open the turn as they would without it, and the words reach the context."""
    run = await converse(
        family,
        family.turn,
        shape,
        [*silence(0.06), *speech(0.35), *silence(0.5)],
        strategies=family.strategies(),
    )
    assert_service_sequence(family, run)
    assert run.decisions == []
    assert backchannels(run.down) == []
    assert run.turn_started_by == expected_start(family)
    assert run.turn_stopped_by == expected_stop(family)
    assert run.said_in_context() == [family.turn.final.strip()]


# -- a recommendation the user overrides ----------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
async def test_flux_with_user_strategies_interrupts_on_the_vad_and_reaches_the_llm(shape):
    """User-passed strategies win over Flux's recommendation (llm_response_universal.py
    ``_handle_service_user_turn_strategies``): Pipecat's VAD start strategy opens the
    turn on the VAD start the filter releases, Flux's Proposed frames pass the
    aggregator unresolved, and the interruption still reaches the LLM."""
    run = await converse(
        FLUX,
        FLUX.interruption,
        shape,
        [*WHILE_SPEAKING, *speech(0.45), *silence(0.55)],
        strategies=short_stop(),
    )
    assert_service_sequence(FLUX, run)
    assert run.decided() == [("interruption", "content or command word")]
    assert count(run.down, InterruptionFrame) == 1
    assert run.turn_started_by == ["VADUserTurnStartStrategy"]
    assert run.turn_stopped_by == ["SpeechTimeoutUserTurnStopStrategy"]
    assert count(run.down, ProposedUserStartedSpeakingFrame) == 1  # not resolved
    assert run.said_in_context() == [FLUX.interruption.final.strip()]


# -- a segmented STT slower than the transcript timeout ------------------------------


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_segmented_stt_within_its_advertised_latency_still_interrupts(shape):
    """A segmented STT transcribes only after the VAD stop, and a cloud one can take
    longer than the filter's 1.0 s transcript timeout while staying within the
    latency it advertises in its STTMetadataFrame (OpenAISTTService: 2.01 s).
    "Wait, stop." transcribed 1.15 s after the VAD stop must interrupt when it
    arrives, not be dropped as noise at 1.0 s (and then held as words without a VAD
    start until the pipeline ends). The silence after it runs 2.4 s: past the
    transcript (1.15 s) and the 0.2 s speech timeout with a second to spare, since a
    loaded CI machine ended the pipeline before the turn stop at 1.4 s."""
    run = await converse(
        OPENAI_SLOW,
        OPENAI_SLOW.interruption,
        shape,
        [*WHILE_SPEAKING, *speech(0.4), *silence(2.4)],
        strategies=short_stop(),
    )
    assert_service_sequence(OPENAI_SLOW, run)
    assert run.decided() == [("interruption", "content or command word")]
    assert count(run.down, InterruptionFrame) == 1
    assert run.turn_started_by == ["VADUserTurnStartStrategy"]
    assert run.turn_stopped_by == ["SpeechTimeoutUserTurnStopStrategy"]
    assert run.said_in_context() == ["Wait, stop."]


# -- an STT that ends its turn late ------------------------------------------------

# Flux ends a turn when its end-of-turn confidence reaches eot_threshold, or
# eot_timeout_ms (5000 by default) after the speech: for a murmured "mm-hmm" it can be
# seconds after the VAD has heard the speech end (services/deepgram/flux/stt_base.py
# DeepgramFluxSTTSettings; the final and ProposedUserStoppedSpeakingFrame come only
# with EndOfTurn). Here 1.15 s after a 0.6 s "mm-hmm", 1.7 s after the hold began,
# against a filter whose max_hold_secs is 1.5 s so the test stays short: as an end of
# turn 2.45 s after it would against the default 3.0 s.
FLUX_LATE_EOT = Family(
    "deepgram-flux-late-eot",
    lambda *said: ScriptedDeepgramFluxSTTService(FluxServer(*said, eot_silence=1.15)),
    backchannel=Said("Mm-hmm", ("Mm-hmm",)),
    interruption=FLUX.interruption,
    turn=FLUX.turn,
    check=_flux_final,
    proposes_turns=True,
)


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_backchannel_the_stt_ends_its_turn_on_late_stays_a_backchannel(shape):
    """The utterance stays open until the STT's ProposedUserStoppedSpeakingFrame, but
    once the VAD has heard the speech end nobody is speaking: max_hold_secs (a bound
    on speech that goes on undecided) must not release "Mm-hmm" as an interruption
    because the STT ends its turn later than max_hold_secs after the speech began.
    Decided on its words when the STT's end of turn brings the final."""
    run = await converse(
        FLUX_LATE_EOT,
        FLUX_LATE_EOT.backchannel,
        shape,
        [*WHILE_SPEAKING, *speech(0.6), *silence(1.5)],
        filter_kwargs={"max_hold_secs": 1.5},
    )
    assert_service_sequence(FLUX_LATE_EOT, run)
    assert run.decided() == [("backchannel", "utterance ended")]
    assert count(run.down, InterruptionFrame) == 0 and run.turn_started_by == []
    assert backchannels(run.down) == ["Mm-hmm"]
    assert run.shape.user_messages() == []
