"""Uninterruptible bot speech, per utterance."""

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame, TTSSpeakFrame


@dataclass
class UninterruptibleSpeechFrame(SystemFrame):
    """Announces to :class:`~pipecat_softack.SoftAckInterruptionFilter` that the bot's next
    (or current) speech is uninterruptible.

    For code downstream of the filter (e.g. a user turn strategy inside the user
    aggregator) that queues an uninterruptible ``TTSSpeakFrame`` the filter never
    sees: push this one upstream beside it.
    """


def speech_frame(text: str, *, interruptible: bool = True, append_to_context: bool = True) -> TTSSpeakFrame:
    """A ``TTSSpeakFrame`` for ``text``; with ``interruptible=False`` nothing the user
    says stops it.

    Pipecat keeps the synthesis and audio of a frame whose ``interruptible`` is False
    through interruptions; :class:`~pipecat_softack.SoftAckInterruptionFilter` sees the
    frame go by and holds every user utterance until that speech has been played
    (then releases it as the next user turn, or drops it with
    ``user_speech_during_uninterruptible="discard"``).

    Args:
        text: What the bot says.
        interruptible: False for payment confirmations, legal disclaimers,
            one-time codes.
        append_to_context: Whether the spoken text joins the LLM context.
    """
    frame = TTSSpeakFrame(text, append_to_context=append_to_context)
    frame.interruptible = interruptible
    return frame


async def say(worker, text: str, *, interruptible: bool = True) -> None:
    """Queue ``text`` for the bot to speak on a running ``PipelineWorker``.

    Example: ``await say(worker, "Your code is 4 8 1 5.", interruptible=False)``.
    """
    await worker.queue_frames([speech_frame(text, interruptible=interruptible)])
