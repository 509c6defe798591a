"""Text benchmark (`python -m bench text`): metrics, CLI, errors and the dev set."""

import importlib.util
import json
import subprocess
import sys
import types
from collections import Counter
from enum import Enum
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import text as bt  # noqa: E402
from bench.__main__ import main as bench_main  # noqa: E402

DEVSET = REPO / "tests" / "data" / "devset_en.tsv"
TOY_MRDA = REPO / "tests" / "data" / "toy_mrda.tsv"
ALL_BUT_NO_CONTEXT = {
    "ours", "lexicon-only", "seed-naive", "min-words-3", "vapi-default", "vapi-numwords-2",
    "livekit-legacy", "vad-only",
}  # fmt: skip

# 5 BACKCHANNEL, 4 TURN, 2 other (unknown label, missing label). Expected values are worked out by hand below.
TINY = (
    "text\tlabel\tcategory\n"
    "uh-huh\tBACKCHANNEL\tcontinuer\n"
    "Yeah, yeah.\tBACKCHANNEL\trepeat\n"
    "oh really\tBACKCHANNEL\tnews_marker\n"
    "that's really great news\tBACKCHANNEL\tassessment\n"
    "\tBACKCHANNEL\tempty\n"
    "yeah but wait\tTURN\tmixed\n"
    "hmm?\tTURN\trepair\n"
    "wait\tTURN\tcommand\n"
    "no, stop\tTURN\tcommand\n"
    "maybe\tUNSURE\tother\n"
    "foo\n"
)

COUNTS = {"n_backchannel": 5, "n_turn": 4, "n_other": 2}

EXPECTED = {
    # passes: uh-huh, "Yeah, yeah.", "" (3 of 5 BC) and "hmm?" (1 of 4 TURN)
    "seed-naive": dict(precision=3 / 4, recall=3 / 5, f1=2 / 3, false_interrupt_rate=2 / 5,
                       missed_interrupt_rate=1 / 4, n_false_interrupt=2, n_missed_interrupt=1),
    # passes < 3 words: 4 of 5 BC (not the 4-word one); hmm?, wait, "no, stop" (3 of 4 TURN)
    "min-words-3": dict(precision=4 / 7, recall=4 / 5, f1=2 / 3, false_interrupt_rate=1 / 5,
                        missed_interrupt_rate=3 / 4, n_false_interrupt=1, n_missed_interrupt=3),
    # nothing passes: precision/recall defined as 0.0
    "vad-only": dict(precision=0.0, recall=0.0, f1=0.0, false_interrupt_rate=1.0,
                     missed_interrupt_rate=0.0, n_false_interrupt=5, n_missed_interrupt=0),
    # Vapi numWords 0: passes uh-huh, "Yeah, yeah." (acknowledgements only) and ""; "oh really" and
    # the 4-word assessment interrupt (not acknowledgements); every TURN has an interruption
    # phrase (but, wait, no) or is not an acknowledgement (hmm?)
    "vapi-default": dict(precision=1.0, recall=3 / 5, f1=3 / 4, false_interrupt_rate=2 / 5,
                         missed_interrupt_rate=0.0, n_false_interrupt=2, n_missed_interrupt=0),
    # numWords 2: the same, and the one-word "hmm?" now passes
    "vapi-numwords-2": dict(precision=3 / 4, recall=3 / 5, f1=2 / 3, false_interrupt_rate=2 / 5,
                            missed_interrupt_rate=1 / 4, n_false_interrupt=2, n_missed_interrupt=1),
    # LiveKit legacy: more than 3 words interrupt: only the 4-word assessment; every TURN passes
    "livekit-legacy": dict(precision=1 / 2, recall=4 / 5, f1=8 / 13, false_interrupt_rate=1 / 5,
                           missed_interrupt_rate=1.0, n_false_interrupt=1, n_missed_interrupt=4),
    # with FakeClassifier: 3 BACKCHANNEL verdicts + EMPTY for "" pass; every TURN interrupts
    "ours": dict(precision=1.0, recall=4 / 5, f1=8 / 9, false_interrupt_rate=1 / 5,
                 missed_interrupt_rate=0.0, n_false_interrupt=1, n_missed_interrupt=0),
}


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.tsv"
    p.write_text(TINY, encoding="utf-8")
    return p


class FakeVerdict(Enum):
    BACKCHANNEL = "backchannel"
    INTERRUPTION = "interruption"
    EMPTY = "empty"


class FakeClassifier:
    BC = {"uh-huh", "Yeah, yeah.", "oh really"}
    contexts: list = []  # (model argument, text, context) of every call, shared by instances

    def __init__(self, model=None):
        self.model = model

    def classify(self, text, context=None):
        FakeClassifier.contexts.append((self.model, text, context))
        if not text.strip():
            return FakeVerdict.EMPTY
        return FakeVerdict.BACKCHANNEL if text in self.BC else FakeVerdict.INTERRUPTION


@pytest.fixture
def fake_processors(monkeypatch):
    FakeClassifier.contexts = []
    mod = types.ModuleType("pipecat_softack")
    mod.BackchannelClassifier = FakeClassifier
    mod.Verdict = FakeVerdict
    monkeypatch.setitem(sys.modules, "pipecat_softack", mod)


def _check(metrics, expected):
    for key, value in {**expected, **COUNTS}.items():
        assert metrics[key] == pytest.approx(value), key


@pytest.mark.parametrize(
    "name", ["seed-naive", "min-words-3", "vad-only", "vapi-default", "vapi-numwords-2", "livekit-legacy"]
)
def test_baseline_metrics_by_hand(tiny, name):
    rows = bt.load_rows(str(tiny))
    _check(bt.score(rows, bt.STRATEGIES[name]()), EXPECTED[name])


def test_ours_maps_verdicts_empty_does_not_interrupt(tiny, fake_processors):
    rows = bt.load_rows(str(tiny))
    ours = bt.make_ours()
    _check(bt.score(rows, ours), EXPECTED["ours"])
    wrong = bt.misclassified(rows, ours)
    assert [(r.text, pred) for r, pred in wrong] == [("that's really great news", False)]
    _check(bt.score(rows, bt.make_lexicon_only()), EXPECTED["ours"])
    assert {model for model, _, _ in FakeClassifier.contexts} == {None, False}  # default, and model=False


def test_bot_said_is_the_context_of_ours_only(tmp_path, fake_processors):
    p = tmp_path / "ctx.tsv"
    p.write_text(
        "text\tlabel\tbot_said\nyeah\tTURN\tWould you like me to book it?\nuh-huh\tBACKCHANNEL\t\n",
        encoding="utf-8",
    )
    rows = bt.load_rows(str(p))
    assert [r.context for r in rows] == ["Would you like me to book it?", None]
    for make in (bt.make_ours, bt.make_ours_no_context, bt.make_lexicon_only):
        bt.score(rows, make())
    seen = {(model, text, context) for model, text, context in FakeClassifier.contexts}
    assert seen == {
        (None, "yeah", "Would you like me to book it?"), (None, "uh-huh", None),  # ours
        (None, "yeah", None),  # ours-no-context
        (False, "yeah", None), (False, "uh-huh", None),  # lexicon-only
    }  # fmt: skip


def test_the_table_has_ours_no_context_only_when_rows_have_context(tmp_path, fake_processors, capsys):
    p = tmp_path / "ctx.tsv"
    p.write_text("text\tlabel\tbot_said\nyeah\tTURN\tShall I?\n", encoding="utf-8")
    assert bt.main([str(p), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == ALL_BUT_NO_CONTEXT | {"ours-no-context"}


def test_peer_rules_read_the_documented_defaults():
    vapi, vapi2, livekit = (bt.STRATEGIES[n]() for n in ("vapi-default", "vapi-numwords-2", "livekit-legacy"))
    assert vapi("I'm listening") and vapi("yeah okay") and not vapi("oh really")
    assert not vapi("that's not bad")  # "not" and "bad" are interruption phrases
    assert vapi2("really") and not vapi2("oh really") and not vapi2("no")
    assert livekit("one two three") and not livekit("one two three four")


@pytest.mark.parametrize(
    "text, seed, minw",
    [
        ("Uh-huh.", True, True),
        ("okay, right?", True, True),
        ("OK ok Okay", True, False),
        ("", True, True),
        ("okay so", False, True),
        ("yeah yeah but", False, False),
        ("mm-hmm", False, True),
    ],
)
def test_baseline_predicates(text, seed, minw):
    assert bt.seed_naive_is_backchannel(text) is seed
    assert bt.min_words_is_backchannel(text) is minw
    assert bt.vad_only_is_backchannel(text) is False


def test_cli_table_and_errors_in_process(tiny, fake_processors, capsys):
    assert bt.main([str(tiny), "--errors"]) == 0
    out = capsys.readouterr().out
    for name in ALL_BUT_NO_CONTEXT:
        assert name in out
    assert "ours-no-context" not in out  # no bot_said column
    assert "misclassified by ours: 1" in out
    assert "that's really great news" in out


def test_cli_json_is_one_object_with_every_strategy(tiny):
    """Real classifier, real subprocess: stdout must be exactly one JSON object."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "text", str(tiny), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == ALL_BUT_NO_CONTEXT
    for name in ("seed-naive", "min-words-3", "vad-only", "vapi-default", "vapi-numwords-2", "livekit-legacy"):
        _check(data[name], EXPECTED[name])
    for metrics in data.values():
        assert {"precision", "recall", "f1", "false_interrupt_rate", "missed_interrupt_rate"} <= set(metrics)


def test_real_classifier_on_clear_cases(tmp_path):
    """The two examples from the classifier's documented API, plus unmistakable ones."""
    p = tmp_path / "clear.tsv"
    p.write_text(
        "text\tlabel\nYeah, yeah.\tBACKCHANNEL\nuh-huh\tBACKCHANNEL\n"
        "yeah but wait\tTURN\nno, stop\tTURN\nwait\tTURN\n",
        encoding="utf-8",
    )
    m = bt.score(bt.load_rows(str(p)), bt.make_ours())
    assert (m["precision"], m["recall"], m["missed_interrupt_rate"]) == (1.0, 1.0, 0.0)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_mrda_mode_scores_a_split_with_and_without_context():
    """The committed toy MRDA file (tests/data/toy_mrda.tsv): val has 8 BACKCHANNEL, 10 TURN
    and 4 AMBIGUOUS rows, 3 of them accepts after a polar question (answers)."""
    proc = _run("text", "--mrda", str(TOY_MRDA), "--split", "val", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == ALL_BUT_NO_CONTEXT | {"ours-no-context"}
    for m in data.values():
        assert (m["n_backchannel"], m["n_turn"], m["n_other"], m["n_answer"]) == (8, 10, 4, 3)
    assert data["vad-only"]["answer_interrupted_rate"] == 1.0
    assert data["lexicon-only"]["answer_interrupted_rate"] == 0.0  # "yeah", "yes", "sure"
    assert data["ours-no-context"]["answer_interrupted_rate"] == 0.0
    assert data["ours"]["answer_interrupted_rate"] > 0.0  # the context makes them answers
    table = _run("text", "--mrda", str(TOY_MRDA), "--split", "val")
    assert "4 AMBIGUOUS rows left out of the rates" in table.stdout
    assert "answers to a polar question (AMBIGUOUS aa/aap, n=3) interrupted" in table.stdout


def test_mrda_mode_errors_name_the_problem(tmp_path):
    bad = tmp_path / "not_mrda.tsv"
    bad.write_text("text\tlabel\nyeah\tBACKCHANNEL\n", encoding="utf-8")
    with pytest.raises(bt.BenchInputError, match="not_mrda.tsv.*'split'"):
        bt.load_mrda_rows(str(bad))
    with pytest.raises(bt.BenchInputError, match="unknown split 'dev'"):
        bt.load_mrda_rows(str(TOY_MRDA), "dev")
    proc = _run("text", "--mrda", str(tmp_path / "none.tsv"))
    assert proc.returncode == 2 and "none.tsv" in proc.stderr
    proc = _run("text", str(TOY_MRDA), "--mrda", str(TOY_MRDA))
    assert proc.returncode == 2 and "either FILE.tsv or --mrda" in proc.stderr


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "no_such_file.tsv"
    proc = _run("text", str(missing), "--strategies", "vad-only")
    assert proc.returncode == 2
    assert "no_such_file.tsv" in proc.stderr and proc.stdout == ""


def test_unreadable_file_is_named(tmp_path):
    proc = _run("text", str(tmp_path), "--strategies", "vad-only")  # a directory
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr and str(tmp_path) in proc.stderr


@pytest.mark.parametrize(
    "content, missing",
    [("txt\tlabel\nhi\tTURN\n", "'text'"), ("text\tlab\nhi\tTURN\n", "'label'"), ("text,label\nhi,TURN\n", "'text', 'label'")],
)
def test_missing_column_is_named(tmp_path, content, missing):
    p = tmp_path / "bad.tsv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(bt.BenchInputError, match=missing):
        bt.load_rows(str(p))
    assert bt.main([str(p), "--strategies", "vad-only"]) == 2


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tsv"
    p.write_text("", encoding="utf-8")
    with pytest.raises(bt.BenchInputError, match="empty"):
        bt.load_rows(str(p))


def test_unknown_strategy(tiny, capsys):
    assert bt.main([str(tiny), "--strategies", "vad-only,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_unseen_in_keeps_only_texts_no_training_file_holds(tiny, tmp_path, capsys):
    """--unseen-in compares texts as the classifier normalizes them ("Uh-huh." is
    "uh-huh"), so only rows whose phrase the other file lacks are scored."""
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\nUh-huh.\tBACKCHANNEL\nWAIT\tTURN\n", encoding="utf-8")
    assert bt.main([str(tiny), "--json", "--strategies", "vad-only", "--unseen-in", str(train)]) == 0
    m = json.loads(capsys.readouterr().out)["vad-only"]
    # TINY's 5 BACKCHANNEL and 4 TURN rows less "uh-huh" and "wait"
    assert (m["n_backchannel"], m["n_turn"]) == (4, 3)
    assert bt.main([str(tiny), "--strategies", "vad-only", "--unseen-in", str(train)]) == 0
    assert "unseen texts only: 9 of 11 rows" in capsys.readouterr().out


def test_unseen_in_names_a_file_without_a_text_column(tiny, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("words\tlabel\nhi\tTURN\n", encoding="utf-8")
    assert bt.main([str(tiny), "--strategies", "vad-only", "--unseen-in", str(bad)]) == 2
    assert "bad.tsv" in capsys.readouterr().err


def test_unbuilt_subcommand_exits_2(monkeypatch, capsys):
    import bench.__main__ as dispatcher

    monkeypatch.setitem(dispatcher.SUBCOMMANDS, "future", "not written yet")
    assert bench_main(["future"]) == 2
    assert "not built yet" in capsys.readouterr().err


def test_devset_shape():
    rows = bt.load_rows(str(DEVSET))
    labels = Counter(r.label for r in rows)
    assert len(rows) >= 300
    assert set(labels) == {bt.BACKCHANNEL, bt.TURN}, labels
    assert 0.35 <= labels[bt.BACKCHANNEL] / len(rows) <= 0.65, labels
    dups = [t for t, n in Counter(r.text for r in rows).items() if n > 1]
    assert not dups, dups
    assert all(r.text.strip() and r.category for r in rows)
    header = DEVSET.read_text(encoding="utf-8").splitlines()[0]
    assert header == "text\tlabel\tcategory"
