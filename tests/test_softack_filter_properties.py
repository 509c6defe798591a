"""Property-based test of the filter over random frame sequences (hypothesis).

Properties, for any mix of bot speech, audio and user utterances:
- nothing is lost or reordered, except utterances dropped on purpose;
- each dropped utterance with words is reported as one UserBackchannelFrame;
- an utterance heard while the bot speaks that is all soft-acks sends nothing that
  starts a turn downstream.
The expected outcome of each utterance comes from the classifier alone, so this
tests the filter's frame handling, not the lexicon. Timers are set far beyond the
test's length, and it runs on the virtual clock (``bench.soak.run_virtual``): frames
4 ms apart keep their order however loaded the machine is, because the clock moves
on only once every frame sent so far has been handled. ``python -m bench fuzz`` runs
the same kind of property over 100,000 sequences.
"""

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    UserBackchannelFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from bench.soak import run_virtual
from bench.stt import released_on_interims
from pipecat_softack import BackchannelClassifier, SoftAckInterruptionFilter, Verdict
from tests.frames import audio, final, interim

WORDS = ["yeah", "uh-huh", "okay", "mhm", "right", "i", "see", "oh", "but", "wait", "refund", "no"]
GAP = 0.004
CONFIRMATIONS = 2  # SoftAckInterruptionFilter's default content_confirmations

utterances = st.tuples(
    st.lists(st.sampled_from(WORDS), min_size=0, max_size=4),  # words, revealed by interims
    st.booleans(),  # final transcript before the VAD stop?
    st.booleans(),  # interims?
)
events = st.lists(
    st.one_of(st.just("bot_start"), st.just("bot_stop"), st.just("audio"), utterances),
    min_size=1,
    max_size=8,
)


def build(event_list, clf):
    """Frames to send, and the frames expected downstream with the expected reports."""
    sent, expected, reports = [], [], []
    bot_speaking = False
    for event in event_list:
        if event in ("bot_start", "bot_stop"):
            bot_speaking = event == "bot_start"
            frame = BotStartedSpeakingFrame() if bot_speaking else BotStoppedSpeakingFrame()
            sent.append(frame)
            expected.append(frame)
            continue
        if event == "audio":
            frame = audio()
            sent.append(frame)
            expected.append(frame)
            continue
        words, final_first, with_interims = event
        text = " ".join(words)
        frames = [VADUserStartedSpeakingFrame(), UserSpeakingFrame()]
        interims = [" ".join(words[: i + 1]) for i in range(len(words))] if with_interims else []
        frames += [interim(t) for t in interims]
        stop, fin = VADUserStoppedSpeakingFrame(), final(text)
        frames += [fin, stop] if final_first else [stop, fin]
        sent += frames
        released = released_on_interims(interims, clf, Verdict, CONFIRMATIONS)
        verdict = clf.classify(text)
        if not bot_speaking or released or verdict == Verdict.INTERRUPTION:
            expected += frames
        elif verdict == Verdict.BACKCHANNEL:
            reports.append(text)
    return sent, expected, reports


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(event_list=events)
@example(["bot_start", (["i"], False, True)])  # a soft-ack prefix that ends the utterance
@example(["bot_start", (["oh", "no"], True, True), (["okay"], False, False)])
@example(["bot_start", ([], False, False), "audio", (["mhm"], False, True), "bot_stop"])
@example(["bot_start", (["see", "yeah", "yeah", "yeah"], False, True)])  # content interims, soft-ack final
@example(["bot_start", (["see", "uh-huh"], False, True)])  # one content interim, soft-ack final
def test_nothing_lost_or_reordered_and_soft_acks_never_start_a_turn(event_list):
    clf = BackchannelClassifier()
    sent, expected, reports = build(event_list, clf)
    # interim_min_speech_secs=0: frames come 4 ms apart, so every utterance would be
    # shorter than the default 0.6 s and decided on its final; the oracle above
    # models release on interims (found by hypothesis: "see yeah yeah yeah", whose
    # interims "see", "see yeah" are content and whose final is a backchannel).
    f = SoftAckInterruptionFilter(
        classifier=clf, transcript_timeout_secs=60, max_hold_secs=60, interim_min_speech_secs=0
    )
    paced = [x for frame in sent for x in (frame, SleepFrame(sleep=GAP))]
    down, _ = run_virtual(run_test(f, frames_to_send=paced))

    passed = [x for x in down if not isinstance(x, UserBackchannelFrame)]
    assert passed == expected  # same frames, same order: nothing lost, nothing reordered
    assert [x.text for x in down if isinstance(x, UserBackchannelFrame)] == reports
    assert not f.holding and f._timer is None
