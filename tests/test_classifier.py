"""The decision core on text: normalisation, lexicons, precedence of commands."""

import pytest

from pipecat_softack import BackchannelClassifier, Verdict, normalize

BC, INT, EMPTY = Verdict.BACKCHANNEL, Verdict.INTERRUPTION, Verdict.EMPTY


@pytest.fixture(scope="module")
def clf():
    return BackchannelClassifier()


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Uh-huh.", ("uh", "huh")),
        ("That’s RIGHT!", ("thats", "right")),
        ("O.K.", ("ok",)),
        ("yeahhh", ("yeahh",)),
        ("Mmmhmm", ("mmhmm",)),
        ("Huh?", ("huh", "?")),
        ("¿Sí?", ("si", "?")),
        ("  ...  ", ()),
    ],
)
def test_normalize(text, tokens):
    assert normalize(text) == tokens


@pytest.mark.parametrize(
    "text",
    [
        # continuers and their STT spellings
        "uh-huh", "Uhhuh", "uh huh", "mm-hmm", "mmhmm", "mhm", "mm hmm", "um-hum", "hmm", "hm", "mm",
        "Yeah.", "right", "Okay", "ok", "O.K.", "alright", "all right",
        # repeats and elongations
        "yeah yeah yeah", "Right, right.", "okay okay", "yeahhh", "hmmm",
        # acknowledgements, news markers, assessments, agreement
        "I see.", "got it", "sure", "gotcha", "oh", "oh really?", "really", "wow", "huh",
        "that's great", "oh no", "oh my god", "that's true", "I know", "nice",
        "yes", "yep", "exactly", "absolutely", "makes sense", "that's right",
        # mixed soft-acks
        "Oh, okay, I see.", "yeah, that makes sense",
    ],
)
def test_soft_acks_are_backchannels(clf, text):
    assert clf.classify(text) == BC


@pytest.mark.parametrize(
    "text",
    [
        "No, stop.", "wait", "Yeah okay but wait", "yeah but what about the price", "hold on",
        "hang on a second", "pause", "actually", "excuse me", "sorry", "cancel that", "never mind",
        "nope", "nah", "quiet", "enough", "uh-uh", "huh-uh", "no", "no no no", "oh no wait",
        "yeah no", "okay stop", "what?", "tell me more about mars", "I think so", "tuesday",
    ],
)
def test_commands_and_content_are_interruptions(clf, text):
    assert clf.classify(text) == INT


def test_empty_text(clf):
    assert clf.classify("") == EMPTY
    assert clf.classify(" ... ") == EMPTY


def test_partial_text_waits_for_the_end_of_a_multi_word_soft_ack(clf):
    assert clf.classify("I", partial=True) == BC  # may become "i see"
    assert clf.classify("I", partial=False) == INT
    assert clf.classify("I want", partial=True) == INT
    assert clf.classify("no", partial=True) == INT  # a command never waits


def test_command_keyword_beats_a_soft_ack_listed_in_both():
    clf = BackchannelClassifier(soft_acks=["yeah", "okay"], command_keywords=["okay"])
    assert clf.classify("yeah") == BC
    assert clf.classify("yeah okay") == INT


def test_custom_lexicon_replaces_the_defaults():
    clf = BackchannelClassifier(soft_acks=["roger that"], command_keywords=["abort"])
    assert clf.classify("Roger that.") == BC
    assert clf.classify("yeah") == INT
    assert clf.classify("roger that abort") == INT


def test_second_language():
    clf = BackchannelClassifier(language="es")
    assert clf.classify("Sí, claro.") == BC
    assert clf.classify("ajá") == BC
    assert clf.classify("pero espera") == INT
    assert clf.classify("no") == INT


def test_partial_text_cut_inside_a_soft_ack_word_waits():
    # The lexicon's rule (the model then judges content words on their own: trained
    # on STT-style hand-written rows, it reads "oh real" as the "oh really" it
    # usually is, so the rule is checked on the lexicon alone).
    lexicon = BackchannelClassifier(model=False)
    assert lexicon.classify("oh real", partial=True) == BC
    assert lexicon.classify("oh real", partial=False) == INT
    assert lexicon.classify("oh realistic", partial=True) == INT


def test_the_lexicon_alone_ignores_the_context():
    lexicon = BackchannelClassifier(model=False)
    for text in ("yeah", "that sounds interesting", "wait"):
        for context in (None, "Would you like me to book it?", "It is near the beach."):
            assert lexicon.explain(text, context=context) == lexicon.explain(text)


def test_interims_keep_the_lexicon_prefix_rule_with_the_model(clf):
    assert clf.model is not None
    assert clf.classify("I", partial=True, context="Would you like me to book it?") == BC
    assert clf.classify("oh real", partial=True) == BC
    assert clf.explain("no", partial=True, context="It is near the beach.") == (INT, True)


@pytest.mark.parametrize("text", ["but", "yeah but", "okay though"])
def test_a_continuation_keyword_ending_an_interim_waits_for_the_next_word(clf, text):
    # pocketsphinx hears a lone "but" in the start of "okay" or "uh-huh".
    assert clf.explain(text, partial=True) == (Verdict.BACKCHANNEL, False)
    assert clf.explain(text) == (Verdict.INTERRUPTION, True)  # on a final it interrupts
    assert clf.explain(f"{text} what about the refund", partial=True) == (Verdict.INTERRUPTION, True)


def test_a_non_continuation_command_ending_an_interim_still_interrupts_at_once(clf):
    for text in ("stop", "yeah wait", "no"):
        assert clf.explain(text, partial=True) == (Verdict.INTERRUPTION, True)
