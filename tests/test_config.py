"""Settings precedence: constructor > environment > config file > built-in defaults."""

import pytest

from pipecat_softack import BackchannelClassifier, SoftAckConfigError, Verdict, load_settings
from pipecat_softack.config import available_languages


def test_builtin_defaults():
    s = load_settings(environ={})
    assert s.language == "en"
    assert "uh-huh" in s.soft_acks and "stop" in s.command_keywords
    assert (s.transcript_timeout_secs, s.max_hold_secs) == (1.0, 3.0)
    assert set(available_languages()) >= {"en", "es"}


def test_config_file_overrides_builtin(tmp_path):
    cfg = tmp_path / "acks.toml"
    cfg.write_text('soft_acks = ["roger"]\n[timings]\nmax_hold_secs = 2.5\n')
    s = load_settings(config_file=cfg, environ={})
    assert s.soft_acks == ("roger",)
    assert "stop" in s.command_keywords  # not in the file: built-in
    assert (s.transcript_timeout_secs, s.max_hold_secs) == (1.0, 2.5)


def test_environment_overrides_config_file(tmp_path):
    cfg = tmp_path / "acks.toml"
    cfg.write_text('soft_acks = ["roger"]\ncommand_keywords = ["abort"]\n')
    env = {
        "SOFT_ACKS": "yeah, uh-huh ,okay",
        "SOFT_ACK_CONFIG_FILE": str(cfg),
        "SOFT_ACK_MAX_HOLD_SECS": "4",
    }
    s = load_settings(environ=env)
    assert s.soft_acks == ("yeah", "uh-huh", "okay")
    assert s.command_keywords == ("abort",)
    assert s.max_hold_secs == 4.0


def test_constructor_overrides_environment():
    env = {"SOFT_ACKS": "yeah", "COMMAND_KEYWORDS": "stop", "SOFT_ACK_LANGUAGE": "es"}
    s = load_settings(soft_acks=["mhm"], language="en", max_hold_secs=1.5, environ=env)
    assert s.soft_acks == ("mhm",)
    assert s.command_keywords == ("stop",)  # from the environment
    assert (s.language, s.max_hold_secs) == ("en", 1.5)


def test_environment_reaches_the_classifier(monkeypatch):
    monkeypatch.setenv("SOFT_ACKS", "roger")
    assert BackchannelClassifier().classify("roger").name == "BACKCHANNEL"
    assert BackchannelClassifier().classify("yeah").name == "INTERRUPTION"


@pytest.mark.parametrize(
    "kwargs, env, message",
    [
        ({"soft_acks": []}, {}, "soft_acks= is empty"),
        ({}, {"SOFT_ACKS": " , "}, "SOFT_ACKS is empty"),
        ({}, {"COMMAND_KEYWORDS": ""}, "COMMAND_KEYWORDS is empty"),
        ({"language": "xx"}, {}, "unknown language language='xx'"),
        ({}, {"SOFT_ACK_LANGUAGE": "klingon"}, "SOFT_ACK_LANGUAGE='klingon'"),
        ({"config_file": "/nonexistent/acks.toml"}, {}, "/nonexistent/acks.toml"),
        ({}, {"SOFT_ACK_MAX_HOLD_SECS": "soon"}, "SOFT_ACK_MAX_HOLD_SECS must be a number.*'soon'"),
        ({"transcript_timeout_secs": 0}, {}, "transcript_timeout_secs= must be a positive"),
        ({"soft_acks": "yeah"}, {}, "not the string 'yeah'"),
    ],
)
def test_bad_values_are_named(kwargs, env, message):
    with pytest.raises(SoftAckConfigError, match=message):
        load_settings(environ=env, **kwargs)


def test_malformed_config_file_is_named(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("soft_acks = [1, 2]\n")
    with pytest.raises(SoftAckConfigError, match="bad.toml"):
        load_settings(config_file=cfg, environ={})
    cfg.write_text("soft_acks = [\n")
    with pytest.raises(SoftAckConfigError, match="cannot read config file"):
        load_settings(config_file=cfg, environ={})


def test_phrase_without_words_is_named():
    with pytest.raises(SoftAckConfigError, match="'!!!'"):
        BackchannelClassifier(soft_acks=["yeah", "!!!"])


def test_continuation_keywords_come_from_the_config_file_else_the_builtin(tmp_path):
    assert "but" in load_settings(environ={}).continuation_keywords
    assert load_settings(language="es", environ={}).continuation_keywords[0] == "pero"
    cfg = tmp_path / "acks.toml"
    cfg.write_text('[continuation_keywords]\nmine = ["except"]\n')
    s = load_settings(config_file=cfg, environ={})
    assert s.continuation_keywords == ("except",)
    clf = BackchannelClassifier(settings=s)
    assert clf.explain("but", partial=True) == (Verdict.INTERRUPTION, True)
    assert clf.explain("except", partial=True)[0] == Verdict.BACKCHANNEL
    cfg.write_text("continuation_keywords = [3]\n")
    with pytest.raises(SoftAckConfigError, match="continuation_keywords"):
        load_settings(config_file=cfg, environ={})


@pytest.mark.parametrize("language", available_languages())
def test_builtin_continuation_keywords_are_command_keywords(language):
    s = load_settings(language=language, environ={})
    assert set(s.continuation_keywords) <= set(s.command_keywords)


def test_actually_is_a_command_that_does_not_wait_for_the_next_word():
    clf = BackchannelClassifier()
    assert clf.explain("actually", partial=True) == (Verdict.INTERRUPTION, True)
    assert clf.explain("um actually") == (Verdict.INTERRUPTION, True)
