"""The learned English model: its weights file, its decisions with the lexicon, and
the training script (on a committed toy TSV; the MRDA corpus is not needed)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipecat_softack import BackchannelClassifier, SoftAckConfigError, Verdict
from pipecat_softack.model import (
    MODEL_FORMAT,
    BackchannelModel,
    ModelFileError,
    default_model,
    load_model,
)

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "configs" / "model_en.json"
TOY_DATA = REPO / "tests" / "data" / "toy_mrda.tsv"
TOY_HAND = REPO / "tests" / "data" / "toy_hand.tsv"
TOY_MODEL = REPO / "tests" / "data" / "toy_model.json"

BC, INT = Verdict.BACKCHANNEL, Verdict.INTERRUPTION
BOOK_IT = "Would you like me to book it?"
STATEMENT = "The hotel is a short walk from the beach."
FEATURE_NAME = re.compile(r"^(w=|b=|u=|n=|lex=(bc|c1|c2|c3\+|pre)$|c=|cq&|cp&)")


def stub(p_backchannel: float) -> BackchannelModel:
    """A model that gives every utterance the same P(BACKCHANNEL)."""
    bias = math.log(p_backchannel / (1 - p_backchannel))
    # A weight for every phrase used below, so that the known-phrase rule applies too.
    phrases = ("u=yeah", "u=roger that", "u=okay", "u=uh huh")
    return BackchannelModel({p: 0.0 for p in phrases}, bias, 0.5, 0.5, 0.5)


@pytest.fixture(scope="module")
def combined():
    return BackchannelClassifier()


# --- the weights file -------------------------------------------------------------


def test_weights_file_has_the_documented_shape():
    raw = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    assert WEIGHTS.stat().st_size < 1_000_000
    assert raw["format"] == MODEL_FORMAT and raw["language"] == "en"
    assert set(raw) == {
        "format", "language", "bias", "weights", "meta",
        "threshold_known_phrase", "threshold_after_question", "threshold_content",
    }  # fmt: skip
    model = default_model("en")
    assert 1_000 <= len(model.weights) <= 50_000
    bad = [name for name in model.weights if not FEATURE_NAME.match(name)]
    assert not bad, bad[:10]
    for name in ("lex=bc", "lex=pre", "c=none", "c=q", "c=aux", "cp&lex=bc", "u=yeah", "w=interesting"):
        assert name in model.weights, name
    assert all(math.isfinite(w) for w in model.weights.values())
    for t in (model.threshold_known_phrase, model.threshold_after_question, model.threshold_content):
        assert 0.0 <= t <= 1.0
    meta = model.meta
    assert re.fullmatch(r"[0-9a-f]{64}", meta["data_sha256"])
    assert meta["data"] == "mrda_backchannel.tsv" and meta["rows"]["train"] > 40_000
    # The val figures recorded at training time: better than the lexicon alone.
    assert meta["val_with_context"]["false_interrupt_rate"] < meta["val_lexicon_only"]["false_interrupt_rate"]
    assert meta["val_with_context"]["missed_interrupt_rate"] <= meta["val_lexicon_only"]["missed_interrupt_rate"]


def test_the_default_english_classifier_uses_the_model(combined):
    assert combined.model is default_model("en")
    assert BackchannelClassifier(model=False).model is None


def test_a_broken_weights_file_is_refused_naming_it(tmp_path):
    bad = tmp_path / "weights.json"
    bad.write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(ModelFileError, match="weights.json.*format"):
        load_model(bad)
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError, match="weights.json"):
        load_model(bad)
    with pytest.raises(ModelFileError, match="no_such.json"):
        load_model(tmp_path / "no_such.json")
    good = default_model("en").to_dict()
    good["threshold_content"] = 1.5
    bad.write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(ModelFileError, match="threshold_content.*1.5"):
        load_model(bad)


def test_a_model_round_trips_through_its_json_layout():
    model = default_model("en")
    again = BackchannelModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model


# --- decisions --------------------------------------------------------------------


def test_yeah_after_a_question_is_an_answer_after_a_statement_a_backchannel(combined):
    assert combined.classify("yeah", context=BOOK_IT) == INT
    assert combined.explain("Yeah.", context=BOOK_IT) == (INT, False)  # the model, not a command
    assert combined.classify("yeah", context=STATEMENT) == BC
    assert combined.classify("yeah") == BC  # context unknown: the lexicon's verdict
    assert BackchannelClassifier(model=False).classify("yeah", context=BOOK_IT) == BC


def test_only_the_last_sentence_of_the_context_counts(combined):
    assert combined.classify("yeah", context=f"{STATEMENT} {BOOK_IT}") == INT
    assert combined.classify("yeah", context=f"{BOOK_IT} {STATEMENT}") == BC


def test_an_interim_answer_waits_for_the_final(combined):
    assert combined.classify("yeah", partial=True, context=BOOK_IT) == BC  # still holding
    assert combined.classify("yeah", partial=False, context=BOOK_IT) == INT


def test_reactions_outside_the_lexicon_pass_and_content_after_a_soft_ack_interrupts(combined):
    lexicon = BackchannelClassifier(model=False)
    for text in ("that sounds interesting", "well that's good"):
        assert lexicon.classify(text) == INT
        assert combined.classify(text) == BC, text
    for text in ("okay, book it", "yeah so what about the price", "tuesday", "can you repeat that"):
        assert combined.classify(text) == INT, text


def test_command_keywords_interrupt_at_once_whatever_the_model_says():
    clf = BackchannelClassifier(model=stub(0.999))  # the model would let anything pass
    assert clf.explain("wait", context=STATEMENT) == (INT, True)
    assert clf.explain("yeah but the price", context=STATEMENT) == (INT, True)
    assert clf.classify("the price please") == BC  # the stub does decide the rest


def test_a_users_soft_ack_is_a_backchannel_whatever_the_model_says():
    clf = BackchannelClassifier(soft_acks=["yeah", "roger that"], model=stub(0.001))
    assert clf.classify("roger that", context=BOOK_IT) == BC
    assert clf.classify("Yeah.", context=STATEMENT) == BC
    assert clf.classify("the price please") == INT  # not the user's: the stub interrupts
    # With the real model too: the user's "yeah" stays one after the question.
    assert BackchannelClassifier().classify("yeah", context=BOOK_IT) == INT
    assert BackchannelClassifier(soft_acks=["yeah"], model=True).classify("yeah", context=BOOK_IT) == BC


def test_a_users_command_interrupts_whatever_the_model_says():
    clf = BackchannelClassifier(command_keywords=["okay", "abort"], model=stub(0.999))
    assert clf.explain("okay", context=STATEMENT) == (INT, True)
    assert clf.explain("abort", context=STATEMENT) == (INT, True)
    assert clf.classify("uh-huh") == BC


def test_a_users_soft_ack_list_keeps_its_meaning_by_default():
    """A user's list replaces the built-in one: auto mode then takes it literally."""
    clf = BackchannelClassifier(soft_acks=["roger that"], command_keywords=["abort"])
    assert clf.model is None
    assert clf.classify("that sounds interesting") == INT
    assert clf.classify("roger that", context=BOOK_IT) == BC


def test_spanish_gets_the_lexicon_alone():
    es = BackchannelClassifier(language="es")
    assert es.model is None
    assert es.classify("Sí, claro.", context="¿Quieres que lo reserve?") == BC
    assert es.classify("pero espera", context="Está cerca de la playa.") == INT
    with pytest.raises(SoftAckConfigError, match="'es'"):
        BackchannelClassifier(language="es", model=True)


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_a_bad_model_argument_is_refused_naming_it(bad):
    with pytest.raises(SoftAckConfigError, match=re.escape(repr(bad))):
        BackchannelClassifier(model=bad)


def test_a_context_that_is_not_a_string_is_refused_naming_it(combined):
    with pytest.raises(TypeError, match="context must be a string or None, got int"):
        combined.classify("yeah", context=42)


# --- the training script ------------------------------------------------------------


def _train(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "train", "--data", str(TOY_DATA), "--out", str(out),
         "--min-count", "1", "--hand-set", str(TOY_HAND)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_training_reproduces_the_committed_toy_weights(tmp_path):
    """End to end on a committed toy TSV: the same bytes twice, and the committed toy
    weights (to 4 decimals, as written) from a fresh run."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for out in (first, second):
        proc = _train(out)
        assert proc.returncode == 0, proc.stderr
        assert "wrote" in proc.stdout
    assert first.read_bytes() == second.read_bytes()
    fresh, committed = load_model(first), load_model(TOY_MODEL)
    assert fresh.meta == committed.meta
    assert (fresh.threshold_known_phrase, fresh.threshold_after_question, fresh.threshold_content) == (
        committed.threshold_known_phrase, committed.threshold_after_question, committed.threshold_content,
    )  # fmt: skip
    assert fresh.bias == pytest.approx(committed.bias, abs=2e-4)
    assert set(fresh.weights) == set(committed.weights)
    for name, w in committed.weights.items():
        assert fresh.weights[name] == pytest.approx(w, abs=2e-4), name
    # What it learned from the toy: an accepting "yeah" after a polar question is an answer.
    toy = BackchannelClassifier(model=fresh)
    assert toy.classify("yeah", context="do you want to present first?") == INT
    assert toy.classify("yeah", context="the meeting is on thursday this week") == BC


def test_training_data_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nyeah\tBACKCHANNEL\n", encoding="utf-8")
    proc = _train_on(bad, tmp_path / "out.json")
    assert proc.returncode == 2 and "bad.tsv" in proc.stderr and "'split'" in proc.stderr
    proc = _train_on(tmp_path / "missing.tsv", tmp_path / "out.json")
    assert proc.returncode == 2 and "missing.tsv" in proc.stderr
    assert not (tmp_path / "out.json").exists()


def _train_on(data: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "train", "--data", str(data), "--out", str(out), "--no-hand-sets"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_extra_train_rows_join_the_fit_and_fixed_thresholds_are_kept(tmp_path):
    """``--extra-train`` adds hand-written rows (with ``bot_said`` context) to the fit:
    a reaction the toy corpus never has becomes a backchannel; ``--threshold-*``
    replaces the chosen thresholds and both are recorded in the meta."""
    extra = tmp_path / "extra.tsv"
    extra.write_text(
        "text\tlabel\tbot_said\n"
        + "".join(f"{t}\tBACKCHANNEL\tthe parcel leaves the depot at noon\n" for t in ("that tracks", "oh that tracks", "that tracks yeah"))
        + "".join(f"{t}\tTURN\tthe parcel leaves the depot at noon\n" for t in ("the parcel is late", "call the depot", "noon is late")),
        encoding="utf-8",
    )  # fmt: skip
    out = tmp_path / "model.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "train", "--data", str(TOY_DATA), "--out", str(out), "--min-count", "1",
         "--no-hand-sets", "--extra-train", str(extra), "--extra-weight", "5", "--threshold-content", "0.3"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    model = load_model(out)
    assert model.threshold_content == 0.3
    assert model.meta["extra_train"] == ["extra.tsv"] and model.meta["extra_weight"] == 5.0
    assert model.meta["thresholds_set_by_caller"] == {"threshold_content": 0.3}
    feats = BackchannelClassifier(model=False).model_inputs("that tracks")[0]
    without = load_model(TOY_MODEL)  # the same toy corpus, no extra rows
    assert model.probability(feats) > without.probability(feats) + 0.2
    late = BackchannelClassifier(model=False).model_inputs("noon is late")[0]
    assert model.probability(late) < without.probability(late)


@pytest.mark.parametrize("flag", [["--extra-weight", "0"], ["--threshold-content", "1.5"]])
def test_bad_extra_training_flags_are_named(tmp_path, flag):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "train", "--data", str(TOY_DATA), "--out", str(tmp_path / "m.json"),
         "--no-hand-sets", *flag],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and flag[0] in proc.stderr and flag[1] in proc.stderr
    assert not (tmp_path / "m.json").exists()
