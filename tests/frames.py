"""Small builders for the frames of a user utterance, shared by the tests."""

from pipecat.frames.frames import (
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame

USER = "user-1"
TS = "2026-11-21T00:00:00.000Z"
GAP = 0.02  # seconds between frames, so system and data frames keep their order


def interim(text: str) -> InterimTranscriptionFrame:
    return InterimTranscriptionFrame(text=text, user_id=USER, timestamp=TS)


def final(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id=USER, timestamp=TS)


def audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=b"\x00\x00" * 320, sample_rate=16000, num_channels=1)


def paced(*frames, gap: float = GAP) -> list:
    """The frames with a short sleep after each one."""
    out = []
    for f in frames:
        out += [f, SleepFrame(sleep=gap)]
    return out


def utterance(*interims: str, final_text: str | None = None) -> list:
    """VAD start, a UserSpeakingFrame, the interims, VAD stop, then the final transcript."""
    frames = [VADUserStartedSpeakingFrame(), UserSpeakingFrame()]
    frames += [interim(t) for t in interims]
    frames.append(VADUserStoppedSpeakingFrame())
    if final_text is not None:
        frames.append(final(final_text))
    return frames


def recording_filter(**kwargs):
    """A ``SoftAckInterruptionFilter`` whose decisions (every event kind) are appended
    to ``filter.decisions``."""
    from pipecat_softack import SoftAckInterruptionFilter

    f = SoftAckInterruptionFilter(**kwargs)
    f.decisions = []
    for event in (
        "on_backchannel", "on_interruption_released", "on_noise_dropped",
        "on_echo_dropped", "on_speech_discarded",
    ):  # fmt: skip

        @f.event_handler(event)
        async def record(_filter, decision):
            _filter.decisions.append(decision)

    return f
