"""A function call in flight when the user interrupts completes, and its result stays
in the context: Pipecat's per-function ``cancel_on_interruption=False``."""

import asyncio

from pipecat.frames.frames import (
    FunctionCallFromLLM,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.tests.utils import SleepFrame, run_test


class ToolCallingLLM(OpenAILLMService):
    """An OpenAI service that, instead of calling the API, asks for one tool call and,
    once the result is in the context, answers with it."""

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


async def run_interrupted_tool_call(cancel_on_interruption: bool):
    llm = ToolCallingLLM(api_key="test-key-not-used")
    finished = []

    async def lookup_order(params):
        await asyncio.sleep(0.4)  # still running when the user interrupts
        finished.append(params.arguments["id"])
        await params.result_callback({"order": 7, "status": "shipped"})

    llm.register_function("lookup_order", lookup_order, cancel_on_interruption=cancel_on_interruption)
    context = LLMContext(messages=[{"role": "user", "content": "where is my order 7?"}])
    _, assistant = LLMContextAggregatorPair(context)
    sent = [LLMContextFrame(context=context), SleepFrame(sleep=0.1), InterruptionFrame(), SleepFrame(sleep=0.8)]
    down, _ = await run_test(Pipeline([llm, assistant]), frames_to_send=sent)
    return finished, context, down


async def test_tool_call_registered_not_cancellable_survives_an_interruption():
    finished, context, down = await run_interrupted_tool_call(cancel_on_interruption=False)
    assert finished == [7]
    tool_messages = [m for m in context.messages if m.get("role") == "tool"]
    assert tool_messages and "shipped" in str(tool_messages[-1]["content"])
    # With the result in, the LLM ran again and answered from it.
    assert context.messages[-1] == {"role": "assistant", "content": "Your order has shipped."}


async def test_default_tool_call_is_cancelled_by_the_interruption():
    finished, context, _ = await run_interrupted_tool_call(cancel_on_interruption=True)
    assert finished == []
    assert not any("shipped" in str(m.get("content")) for m in context.messages)
