"""What the user heard of an interrupted answer, and resuming it."""

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import run_test

from pipecat_softack.heard import HeardSpeechTracker, ResumeProcessor
from tests.frames import paced


class PassThrough(FrameProcessor):
    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


def tts_text(text):
    return TTSTextFrame(text, text_type="sentence")


def stand_ins():
    tts, output = PassThrough(name="tts"), PassThrough(name="output")
    tracker = HeardSpeechTracker(tts=tts, output=output)
    tracker.interruptions = []

    @tracker.event_handler("on_bot_interrupted")
    async def on_interrupted(_tracker, interruption):
        _tracker.interruptions.append(interruption)

    return tts, output, tracker


async def test_interruption_reports_heard_and_unheard_text_and_progress():
    tts, output, tracker = stand_ins()
    answer = ["Bicycles appeared in 1817. ", "The first ones had no pedals. ", "Chains came later."]
    sent = paced(
        *[LLMTextFrame(t) for t in answer],
        BotStartedSpeakingFrame(),
        tts_text("Bicycles appeared in 1817."),  # played
        InterruptionFrame(),
    )
    await run_test(Pipeline([tts, output]), frames_to_send=sent, observers=[tracker])
    [cut] = tracker.interruptions
    assert cut.heard == "Bicycles appeared in 1817."
    assert cut.unheard == "The first ones had no pedals. Chains came later."
    assert cut.progress == 4 / 13  # words
    assert tracker.last_interruption == cut


def context_frame(user_text):
    context = LLMContext(messages=[{"role": "user", "content": "tell me about bicycles"}])
    context.add_message({"role": "assistant", "content": "Bicycles appeared in 1817."})
    context.add_message({"role": "user", "content": user_text})
    return LLMContextFrame(context=context)


async def test_resume_request_speaks_the_unheard_rest_instead_of_running_the_llm():
    tts, output, tracker = stand_ins()
    resume = ResumeProcessor(tracker=tracker)
    sent = paced(
        LLMTextFrame("Bicycles appeared in 1817. "),
        LLMTextFrame("Chains came later."),
        tts_text("Bicycles appeared in 1817."),
        InterruptionFrame(),
        context_frame("Oh sorry, go ahead."),
    )
    down, _ = await run_test(Pipeline([resume, tts, output]), frames_to_send=sent, observers=[tracker])
    spoken = [f for f in down if isinstance(f, TTSSpeakFrame)]
    assert [f.text for f in spoken] == ["Chains came later."]
    assert not any(isinstance(f, LLMContextFrame) for f in down)
    assert tracker.last_interruption is None  # resumed once


async def test_other_turns_after_an_interruption_go_to_the_llm():
    tts, output, tracker = stand_ins()
    resume = ResumeProcessor(tracker=tracker)
    sent = paced(
        LLMTextFrame("Bicycles appeared in 1817. Chains came later."),
        InterruptionFrame(),
        context_frame("what about cars"),
    )
    down, _ = await run_test(Pipeline([resume, tts, output]), frames_to_send=sent, observers=[tracker])
    assert any(isinstance(f, LLMContextFrame) for f in down)
    assert not any(isinstance(f, TTSSpeakFrame) for f in down)


def test_resume_phrases():
    resume = ResumeProcessor(tracker=HeardSpeechTracker(tts=PassThrough(), output=PassThrough()))
    for text in ["continue", "Go on.", "where were you?", "Sorry, go ahead.", "oh please continue"]:
        assert resume.is_resume_request(text), text
    for text in ["what about cars", "go", "stop", "continue with the next topic"]:
        assert not resume.is_resume_request(text), text
