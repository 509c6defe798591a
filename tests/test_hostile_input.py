"""Hostile and odd input (issue 12): each is decided by the rule or refused with an
error naming it.

Transcripts of 10,000 characters, emoji, right-to-left and mixed scripts, zero-width
and control characters, empty or None text, a thousand interims a second, a config
file of 100,000 soft-ack phrases, environment values with odd separators and
whitespace. How long each decision takes is measured by ``python -m bench fuzz``
(target 5 ms), never asserted here; frame-level cases run on the virtual clock
(``bench.soak.run_virtual``), where "bounded" is the rule's own bound.
"""

from __future__ import annotations

import tracemalloc

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    UserBackchannelFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from bench.soak import run_virtual
from pipecat_softack import (
    BackchannelClassifier,
    SoftAckConfigError,
    SoftAckInterruptionFilter,
    Verdict,
    load_settings,
    normalize,
)
from tests.frames import TS, USER, interim, paced

B, I, E = Verdict.BACKCHANNEL, Verdict.INTERRUPTION, Verdict.EMPTY

# (text, verdict, decided by a command keyword)
HOSTILE_TEXTS = {
    "10k soft-acks": (("yeah " * 2000)[:10_000], B, False),
    "10k content": (("price " * 2000)[:10_000], I, False),
    "10k soft-acks then stop": ("yeah " * 1999 + "stop", I, True),
    "10k question marks": ("?" * 10_000, E, False),
    "10k emoji": ("\U0001f602" * 10_000, E, False),
    "10k dotted letters": ("o.k." * 2_500, I, False),  # one 5,000-letter non-word
    "emoji only": ("\U0001f44d", E, False),
    "soft-ack and emoji": ("yeah \U0001f44d\U0001f602", B, False),
    "command and emoji": ("stop \U0001f6d1", I, True),
    "arabic": ("\u0646\u0639\u0645", I, False),  # "yes": a word outside the English lexicon
    "hebrew": ("\u05db\u05df", I, False),
    "mixed scripts": ("okay \u0646\u0639\u0645 right", I, False),
    "cyrillic look-alike": ("\u0443\u0435\u0430h", I, False),  # "уеаh" is not "yeah"
    "right-to-left override": ("\u202eyeah", B, False),
    "right-to-left mark": ("uh-huh\u200f", B, False),
    "zero-width space in a word": ("ye\u200bah", B, False),
    "zero-width space in a command": ("st\u200bop", I, True),
    "byte order mark": ("\ufeffokay", B, False),
    "control characters": ("\x00yeah\x07\r\n", B, False),
    "control characters and a command": ("\x1bstop\x00", I, True),
    "tabs and newlines": ("\tmm-hmm\n\n", B, False),
    "full-width letters": ("\uff59\uff45\uff41\uff48", B, False),
    "combining accents": ("ye\u0301ah", B, False),
    "no-break space": ("uh\u00a0huh", B, False),
    "empty": ("", E, False),
    "whitespace": ("  \t\n ", E, False),
    "punctuation": ("...!?", E, False),
}


# Odd characters around or inside a transcript that must not change its decision,
# whatever decides it (the lexicon, or the learned model where it is consulted).
SAME_AS = {
    "ye\u200bah": "yeah",
    "\u202eyeah\u200f": "yeah",
    "\ufeffokay": "okay",
    "\x00yeah\x07\r\n": "yeah",
    "\tmm-hmm\n\n": "mm-hmm",
    "\uff59\uff45\uff41\uff48": "yeah",
    "yeah \U0001f44d\U0001f602": "yeah",
    "uh\u00a0huh": "uh huh",
    "what about\u200b the price\x00": "what about the price",
    "I see \u0646\u0639\u0645": "i see \u0646\u0639\u0645",
}


@pytest.fixture(scope="module")
def classifier():
    return BackchannelClassifier()


@pytest.fixture(scope="module")
def lexicon():
    """The lexicon rule alone (no learned model): its verdicts are the documented rule's."""
    return BackchannelClassifier(model=False)


@pytest.mark.parametrize("name", HOSTILE_TEXTS)
@pytest.mark.parametrize("partial", [False, True], ids=["final", "interim"])
def test_hostile_transcripts_are_decided_by_the_rule(lexicon, classifier, name, partial):
    text, verdict, by_command = HOSTILE_TEXTS[name]
    assert lexicon.explain(text, partial=partial) == (verdict, by_command)
    if by_command or verdict == E:  # decided before any model is consulted
        assert classifier.explain(text, partial=partial) == (verdict, by_command)


@pytest.mark.parametrize("odd", SAME_AS)
@pytest.mark.parametrize("partial", [False, True], ids=["final", "interim"])
def test_odd_characters_do_not_change_the_decision(classifier, odd, partial):
    plain = SAME_AS[odd]
    assert normalize(odd) == normalize(plain)
    assert classifier.explain(odd, partial=partial) == classifier.explain(plain, partial=partial)


@pytest.mark.parametrize("bad", [None, b"yeah", 42, ["yeah"]])
def test_a_transcript_that_is_not_a_string_is_refused_naming_it(classifier, bad):
    with pytest.raises(TypeError, match=f"must be a str, got {type(bad).__name__}"):
        classifier.classify(bad)
    with pytest.raises(TypeError, match=type(bad).__name__):
        normalize(bad)


def test_format_characters_join_and_controls_split():
    assert normalize("uh\u200b-\u200bhuh") == ("uh", "huh")
    assert normalize("ye\u200dah\u2060") == ("yeah",)
    assert normalize("okay\x00right") == ("okay", "right")


# --- at frame level -------------------------------------------------------------


def decisions_of(f: SoftAckInterruptionFilter) -> list:
    f.decisions = []
    for event in ("on_backchannel", "on_interruption_released", "on_noise_dropped"):

        @f.event_handler(event)
        async def record(_filter, decision):
            _filter.decisions.append(decision)

    return f.decisions


def run_filter(frames, **kwargs):
    """The frames after a bot start and a VAD start, through a bare filter, on the
    virtual clock; returns (downstream frames, decisions)."""
    f = SoftAckInterruptionFilter(**kwargs)
    decisions = decisions_of(f)
    sent = paced(BotStartedSpeakingFrame(), VADUserStartedSpeakingFrame()) + list(frames)
    down, _ = run_virtual(run_test(f, frames_to_send=sent))
    assert not f.holding and f._timer is None
    return [x for x in down if not isinstance(x, BotStartedSpeakingFrame)], decisions


def test_a_10k_character_final_of_soft_acks_is_one_backchannel():
    text = ("yeah " * 2000)[:10_000]
    down, decisions = run_filter(paced(VADUserStoppedSpeakingFrame(), TranscriptionFrame(text, USER, TS)))
    assert [type(x) for x in down] == [UserBackchannelFrame] and down[0].text == text.strip()
    assert [(d.kind, d.reason) for d in decisions] == [("backchannel", "utterance ended")]


def test_a_10k_character_interim_with_content_is_released_in_order():
    held = [interim(("price " * 2000)[:10_000]), interim(("price " * 2000)[:10_000] + " more")]
    down, decisions = run_filter(paced(*held))
    assert down[1:] == held and isinstance(down[0], VADUserStartedSpeakingFrame)
    assert [d.kind for d in decisions] == ["interruption"]


@pytest.mark.parametrize(
    "text, kind",
    [(None, "noise"), ("", "noise"), ("\U0001f44d", "noise"), ("\x00yeah\x07", "backchannel")],
    ids=["none", "empty", "emoji", "controls"],
)
def test_odd_finals_are_decided(text, kind):
    final = TranscriptionFrame(text="", user_id=USER, timestamp=TS)
    final.text = text  # as an STT that sends null would
    _, decisions = run_filter(paced(VADUserStoppedSpeakingFrame(), final))
    assert [d.kind for d in decisions] == [kind]


def test_a_final_whose_text_is_not_a_string_is_read_as_no_words_and_named(caplog_loguru):
    final = TranscriptionFrame(text="", user_id=USER, timestamp=TS)
    final.text = b"yeah"
    down, decisions = run_filter(paced(VADUserStoppedSpeakingFrame(), final))
    assert [d.kind for d in decisions] == ["noise"]
    assert any("text of type bytes" in line for line in caplog_loguru)


@pytest.fixture
def caplog_loguru():
    from loguru import logger

    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(handler)


def burst(texts, per_sec: int = 1000, secs: float = 2.0) -> list:
    """Interims cycling through ``texts`` at ``per_sec`` for ``secs`` (virtual time)."""
    out = []
    for k in range(int(per_sec * secs)):
        out += [interim(texts[k % len(texts)]), SleepFrame(sleep=1 / per_sec)]
    return out


def test_a_thousand_soft_ack_interims_a_second_are_one_backchannel():
    """2,000 jittery interims in 2 s, then the final: every frame held and dropped as
    one backchannel, decided at the final like any other."""
    frames = burst(["yeah", "yeah yeah", "mm", "mm hmm"])
    down, decisions = run_filter(
        [*frames, *paced(VADUserStoppedSpeakingFrame(), TranscriptionFrame("Mm-hmm.", USER, TS))]
    )
    assert [type(x) for x in down] == [UserBackchannelFrame]
    [decision] = decisions
    assert (decision.kind, decision.reason, decision.frames) == ("backchannel", "utterance ended", 2003)


def test_a_thousand_interims_a_second_release_at_the_first_command():
    frames = burst(["yeah", "yeah yeah"], secs=0.5) + [interim("yeah yeah stop")] + burst(["stop it"], secs=0.5)
    down, decisions = run_filter(frames)
    interims = [x for x in down if isinstance(x, InterimTranscriptionFrame)]
    assert len(interims) == 1001 and interims == [x for x in frames if isinstance(x, InterimTranscriptionFrame)]
    [decision] = decisions
    assert (decision.kind, decision.text, decision.reason) == ("interruption", "yeah yeah stop", "content or command word")


def test_a_thousand_interims_a_second_without_an_end_are_released_at_max_hold():
    """Soft-acks that never end (a stuck STT): released within max_hold_secs."""
    down, decisions = run_filter(burst(["yeah", "okay"], secs=2.0), max_hold_secs=1.0)
    [decision] = decisions
    assert (decision.kind, decision.reason) == ("interruption", "max hold")
    assert decision.held_secs == pytest.approx(1.0, abs=0.01)  # virtual clock: exact


# --- a config file of 100,000 phrases ---------------------------------------------


@pytest.fixture(scope="module")
def big_config(tmp_path_factory):
    """100,000 distinct made-up soft-ack phrases of one to three words."""
    letters = "bcdfghjklmnpqrstvwxz"

    def word(n: int) -> str:  # n in base 20, four letters and an "a": distinct words
        return "".join(letters[n // 20**d % 20] for d in range(4)) + "a"

    phrases = [
        " ".join(word((k * 7**w + w) % 160_000) for w in range(1 + k % 3)) for k in range(100_000)
    ]
    path = tmp_path_factory.mktemp("big") / "acks.toml"
    path.write_text("soft_acks = [\n" + "".join(f'  "{p}",\n' for p in phrases) + "]\n")
    return path, phrases


def test_a_config_file_of_100000_phrases_decides_and_is_shared(big_config):
    path, phrases = big_config
    first = BackchannelClassifier(config_file=path)
    assert len(first.settings.soft_acks) == len(set(phrases)) == 100_000
    for phrase in (phrases[0], phrases[50_001], phrases[-1], f"{phrases[3]} {phrases[4]}"):
        assert first.classify(phrase) == B, phrase
    assert first.classify(f"{phrases[0]} price") == I
    assert first.explain("stop", partial=True) == (I, True)  # the built-in commands stay

    # Every session's filter builds a classifier: the lexicon index is built once.
    tracemalloc.start()
    try:
        second = SoftAckInterruptionFilter(config_file=path).classifier
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second.classify(phrases[7]) == B
    assert kept < 4 * 2**20, f"a second classifier kept {kept / 2**20:.1f} MiB"


def test_a_bad_phrase_among_many_is_named(tmp_path):
    path = tmp_path / "acks.toml"
    path.write_text("soft_acks = [" + ", ".join(f'"ack{k}"' for k in range(10_000)) + ', "!!!"]\n')
    with pytest.raises(SoftAckConfigError, match="'!!!' has no words"):
        BackchannelClassifier(config_file=path)


def test_an_edited_config_file_is_read_again(tmp_path):
    path = tmp_path / "acks.toml"
    path.write_text('soft_acks = ["roger"]\n')
    assert BackchannelClassifier(config_file=path).classify("roger") == B
    path.write_text('soft_acks = ["wilco", "over"]\n')
    assert BackchannelClassifier(config_file=path).classify("roger") == I


# --- environment values -------------------------------------------------------------


@pytest.mark.parametrize(
    "value, phrases",
    [
        (" yeah ,, uh-huh ,\tokay \n", ("yeah", "uh-huh", "okay")),
        ("yeah\nokay\r\nmhm", ("yeah", "okay", "mhm")),
        ("yeah\uff0cokay\u3001right", ("yeah", "okay", "right")),
        ("\u00a0roger\u00a0, wilco", ("roger", "wilco")),
        ("uh huh, i  see", ("uh huh", "i  see")),
    ],
    ids=["spaces-and-empties", "line-breaks", "full-width-commas", "no-break-spaces", "inner-spaces"],
)
def test_environment_phrases_with_odd_separators(value, phrases):
    assert load_settings(environ={"SOFT_ACKS": value}).soft_acks == phrases


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SOFT_ACKS": "yeah;okay"}, "SOFT_ACKS holds 'yeah;okay': separate phrases with commas, not ';'"),
        ({"COMMAND_KEYWORDS": "stop | wait"}, "COMMAND_KEYWORDS holds 'stop | wait'.*not '\\|'"),
        ({"SOFT_ACKS": " ,\n, "}, "SOFT_ACKS is empty"),
        ({"SOFT_ACK_MAX_HOLD_SECS": "2,5"}, "SOFT_ACK_MAX_HOLD_SECS must be a number of seconds, got '2,5'"),
        ({"SOFT_ACK_MAX_HOLD_SECS": "3s"}, "got '3s'"),
        ({"SOFT_ACK_TRANSCRIPT_TIMEOUT_SECS": "nan"}, "positive number of seconds, got 'nan'"),
        ({"SOFT_ACK_TRANSCRIPT_TIMEOUT_SECS": "1e999"}, "got '1e999'"),
        ({"SOFT_ACK_MAX_HOLD_SECS": "  "}, "SOFT_ACK_MAX_HOLD_SECS must be a number of seconds, got ''"),
        ({"SOFT_ACK_MIN_WORDS": "two"}, "SOFT_ACK_MIN_WORDS must be a whole number, got 'two'"),
        ({"SOFT_ACK_LANGUAGE": "en-US"}, "unknown language SOFT_ACK_LANGUAGE='en-us'"),
    ],
)
def test_bad_environment_values_are_named(env, message):
    with pytest.raises(SoftAckConfigError, match=message):
        load_settings(environ=env)


def test_environment_numbers_and_names_with_whitespace():
    s = load_settings(
        environ={
            "SOFT_ACK_MAX_HOLD_SECS": " 2.5\n",
            "SOFT_ACK_TRANSCRIPT_TIMEOUT_SECS": "\t0.8 ",
            "SOFT_ACK_MIN_WORDS": " 2 ",
            "SOFT_ACK_LANGUAGE": " ES ",
        }
    )
    assert (s.max_hold_secs, s.transcript_timeout_secs, s.min_words, s.language) == (2.5, 0.8, 2, "es")


def test_environment_config_file_path_with_whitespace(tmp_path):
    path = tmp_path / "acks.toml"
    path.write_text('soft_acks = ["roger"]\n')
    assert load_settings(environ={"SOFT_ACK_CONFIG_FILE": f"  {path}\n"}).soft_acks == ("roger",)


# --- the turn start strategy ---------------------------------------------------------


@pytest.mark.parametrize("text", [None, b"yeah", "", "\x00\U0001f44d"], ids=["none", "bytes", "empty", "odd"])
async def test_the_start_strategy_reads_odd_finals_as_no_words(text):
    """While the bot speaks a final with no words starts no turn; said to a silent
    bot, nothing either (a turn starts on words or on the VAD)."""
    from pipecat.turns.types import ProcessFrameResult

    from pipecat_softack import SoftAckUserTurnStartStrategy

    s = SoftAckUserTurnStartStrategy()
    started = []

    async def on_started(_strategy, _params):
        started.append(True)

    s.add_event_handler("on_user_turn_started", on_started)
    odd = TranscriptionFrame(text="", user_id=USER, timestamp=TS)
    odd.text = text
    await s.process_frame(BotStartedSpeakingFrame())
    assert await s.process_frame(VADUserStartedSpeakingFrame()) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(odd) == ProcessFrameResult.CONTINUE
    assert await s.process_frame(interim("stop")) == ProcessFrameResult.STOP  # still listening
    assert started == [True]
