"""The reference bot's pipeline, for any Pipecat transport.

transport.input() -> VADProcessor(Silero) -> STT -> SoftAckInterruptionFilter ->
user aggregator -> LLM -> TTS -> transport.output() -> assistant aggregator

With ``vad_in_aggregator=True`` Silero runs inside the user aggregator instead
(``LLMUserAggregatorParams(vad_analyzer=...)``, the shape of Pipecat's getting-started
examples); the filter takes it over at setup, so both shapes behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loguru import logger
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_stop import (
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from bot.agents import AGENTS, Agent
from bot.decision_panel import attach_decision_panel
from bot.services import ServiceChoice, create_llm, create_stt, create_tts, transcript_timeout_secs
from pipecat_softack import SoftAckInterruptionFilter, speech_frame
from pipecat_softack.heard import HeardSpeechTracker, ResumeProcessor

SYSTEM_PROMPT = (
    "You are a friendly, talkative voice assistant. Your words are spoken aloud, so "
    "answer in plain spoken sentences: no lists, no markdown, no emojis. Answer every "
    "question with a paragraph of four or five sentences, so the listener has time to "
    "say 'uh-huh' or to cut in. If the user interrupts, stop and answer what they said."
)
# Seconds. Pipecat's VAD default start_secs (0.2) missed one-word clips such as
# "wait" and "yeah" (about 0.25 s of speech) in tests/test_real_audio.py.
VAD_START_SECS = 0.1
SMART_TURN_STOP_SECS = 1.0
# A held utterance released when the bot stops (after uninterruptible speech, say)
# reaches Smart Turn after its audio did, and Smart Turn then never ends the turn
# (measured: Pipecat's 5 s watchdog did); end such turns 1.5 s after the speech.
FALLBACK_STOP_SECS = 1.5


@dataclass
class BotPipeline:
    """The processors of one session that callers need to reach.

    Attributes:
        pipeline: The whole pipeline.
        context: The LLM context.
        softack: The soft-ack filter (decision events).
        observers: Observers to pass to the ``PipelineWorker`` (the heard-speech
            tracker, which the resume processor reads).
    """

    pipeline: Pipeline
    context: LLMContext
    softack: SoftAckInterruptionFilter
    observers: list = field(default_factory=list)


def build_pipeline(
    transport: BaseTransport,
    choice: ServiceChoice,
    agent: Agent = AGENTS["default"],
    *,
    vad_in_aggregator: bool = False,
    echo_warmup_secs: float = 0.0,
) -> BotPipeline:
    """Build the processors of one session.

    Args:
        transport: Any Pipecat transport with audio in and out.
        choice: Which STT/LLM/TTS to use (see :func:`bot.services.choose_services`).
        agent: The example behaviour (see :mod:`bot.agents`).
        vad_in_aggregator: Run Silero inside the user aggregator (Pipecat's canonical
            shape) instead of a ``VADProcessor`` after ``transport.input()``.
        echo_warmup_secs: The filter's ``echo_warmup_secs``: seconds of bot speech at
            the start of the session during which what is heard over the bot is taken
            for echo (default 0; ``run.py`` sets 3.0 for the local transport's echo
            canceller, which starts cold).
    """
    # Whisper's finals come later than the filter's default timeout (bot/services.py).
    softack = SoftAckInterruptionFilter(
        transcript_timeout_secs=transcript_timeout_secs(choice), echo_warmup_secs=echo_warmup_secs
    )

    @softack.event_handler("on_backchannel")
    async def on_backchannel(_filter, decision):
        logger.info(f"Backchannel ignored: {decision.text!r} (held {decision.held_secs:.2f}s)")

    @softack.event_handler("on_interruption_released")
    async def on_interruption(_filter, decision):
        logger.info(f"Interruption: {decision.text!r} ({decision.reason}, {decision.held_secs:.2f}s)")

    @softack.event_handler("on_echo_dropped")
    async def on_echo(_filter, decision):
        logger.info(f"Echo dropped: {decision.text!r} ({decision.reason}, {decision.held_secs:.2f}s)")

    prompt = f"{SYSTEM_PROMPT} {agent.system_hint}".strip()
    context = LLMContext()
    # Smart Turn's default waits up to 3 s when it judges a turn incomplete, which it
    # often does on short questions (measured: 4.0-4.8 s from VAD stop to first bot
    # audio); 1 s keeps the bot responsive. Default start strategies (VAD, then
    # transcription) see the frames the filter released.
    stop = TurnAnalyzerUserTurnStopStrategy(
        turn_analyzer=LocalSmartTurnAnalyzerV3(params=SmartTurnParams(stop_secs=SMART_TURN_STOP_SECS))
    )
    vad = SileroVADAnalyzer(params=VADParams(start_secs=VAD_START_SECS))
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=vad if vad_in_aggregator else None,
            user_turn_strategies=UserTurnStrategies(
                stop=[
                    *(make() for make in agent.stop_strategies),
                    stop,
                    SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=FALLBACK_STOP_SECS),
                ]
            )
        ),
    )
    tts, output = create_tts(choice), transport.output()
    tracker = HeardSpeechTracker(tts=tts, output=output)

    @tracker.event_handler("on_bot_interrupted")
    async def on_bot_interrupted(_tracker, cut):
        logger.info(f"Bot interrupted at {cut.progress:.0%}; unheard: {cut.unheard!r}")

    pipeline = Pipeline(
        [
            transport.input(),
            *([] if vad_in_aggregator else [VADProcessor(vad_analyzer=vad)]),
            create_stt(choice),
            softack,
            user_aggregator,
            ResumeProcessor(tracker=tracker),
            create_llm(choice, system_instruction=prompt),
            tts,
            output,
            assistant_aggregator,
        ]
    )
    return BotPipeline(pipeline, context, softack, observers=[tracker])


async def run_bot(
    transport: BaseTransport,
    choice: ServiceChoice,
    *,
    agent: Agent = AGENTS["default"],
    has_clients: bool = True,
    handle_sigint: bool = False,
    echo_warmup_secs: float = 0.0,
):
    """Run one conversation on ``transport`` until the client leaves or the task ends.

    Args:
        transport: Any Pipecat transport with audio in and out.
        choice: Which STT/LLM/TTS to use.
        agent: The example behaviour (see :mod:`bot.agents`).
        has_clients: True for transports that fire ``on_client_connected`` (WebRTC,
            Daily): the bot greets the client when it connects and ends when it
            leaves. False (local audio): the bot greets at once.
        handle_sigint: Let the runner stop on Ctrl-C (when not under Pipecat's runner).
        echo_warmup_secs: See :func:`build_pipeline`.
    """
    bot = build_pipeline(transport, choice, agent, echo_warmup_secs=echo_warmup_secs)
    attach_decision_panel(bot.softack)  # the filter's decisions to RTVI clients
    worker = PipelineWorker(
        bot.pipeline, params=PipelineParams(enable_metrics=True), observers=bot.observers
    )

    async def greet():
        # Spoken as is: the small offline LLM does not follow a "greet the user" prompt.
        await worker.queue_frames(
            [speech_frame(agent.greeting, interruptible=agent.greeting_interruptible)]
        )

    if has_clients:

        @transport.event_handler("on_client_connected")
        async def on_client_connected(_transport, _client):
            await greet()

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(_transport, _client):
            await worker.cancel()

    else:

        @worker.event_handler("on_pipeline_started")
        async def on_pipeline_started(_worker, _frame):
            await greet()

    runner = WorkerRunner(handle_sigint=handle_sigint)
    await runner.add_workers(worker)
    await runner.run()
