"""Text benchmark: would this transcript stop a talking bot?

``python -m bench text FILE.tsv [--json] [--errors] [--strategies a,b] [--unseen-in TSV ...]``
``python -m bench text --mrda [PATH] [--split test] [--json] [--errors]``

FILE is tab-separated (no quoting) with a header holding at least ``text``
and ``label``. ``label`` is ``BACKCHANNEL`` (the listener means "go on": the
bot should keep talking) or ``TURN`` (the listener takes the floor: the bot
should stop). Rows with any other label are counted as ``n_other`` and left
out of every metric. An optional ``bot_said`` column is what the bot said
last: the strategies that read context get it (an empty cell is no context).

``--mrda`` scores one split (default ``test``) of the MRDA backchannel TSV
(default ``/work/shared/data/mrda_backchannel.tsv``; see ``bench/train.py``):
BACKCHANNEL and TURN rows, with the other speaker's last utterance
(``prev_other_text``) as context for ``ours`` and without it for
``ours-no-context``, every other strategy in the same table. AMBIGUOUS rows are
left out of the rates (``n_other``); of them, the accepts (MRDA ``aa``, ``aap``)
that follow a polar question of the other speaker are answers, and the share
of them each strategy interrupts is reported apart (``answer_interrupted``).

``--unseen-in TSV`` (repeatable) keeps only the rows whose text, as the classifier
normalizes it (:func:`pipecat_softack.classifier.normalize`), is in none of those
files' ``text`` columns (labelled TSVs, read like FILE): how a model does on
phrases it was not trained on, rather than on the "yeah"s and "mm-hmm"s every set
shares. The header line says how many
rows were left out.

Every strategy is a predicate ``is_backchannel(text, context=None) -> bool``:
True means the bot keeps talking, False means the utterance interrupts it.
Only ``ours`` reads ``context``.

Metrics (the positive class is BACKCHANNEL):

* ``precision``: of the rows a strategy let pass (did not interrupt), the
  share labelled BACKCHANNEL. 0.0 when it lets nothing pass.
* ``recall``: of the BACKCHANNEL rows, the share it let pass. 0.0 when there
  are no BACKCHANNEL rows.
* ``f1``: harmonic mean of precision and recall (0.0 when both are 0).
* ``false_interrupt_rate``: BACKCHANNEL rows that would stop the bot /
  BACKCHANNEL rows (= 1 - recall); the "bot stops for uh-huh" failure.
* ``missed_interrupt_rate``: TURN rows that would not stop the bot / TURN
  rows; the "bot talks over 'wait'" failure, usually the worse of the two.
* ``n_backchannel``, ``n_turn``, ``n_other``: row counts;
  ``n_false_interrupt`` and ``n_missed_interrupt``: the error counts behind
  the two rates.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
import sys
from dataclasses import dataclass
from typing import Callable, Iterable

from bench.peers import livekit_legacy_interrupts, vapi_interrupts

BACKCHANNEL = "BACKCHANNEL"
TURN = "TURN"
MRDA_DEFAULT = "/work/shared/data/mrda_backchannel.tsv"
MRDA_SPLITS = ("train", "val", "test")

Predicate = Callable[..., bool]  # (text, context=None) -> bool

# --- strategies -------------------------------------------------------------

#: Words the naive "seed" filter ignores (after lowercasing, punctuation removed).
SEED_WORDS = frozenset({"okay", "yeah", "uhhuh", "ok", "hmm", "right"})
_PUNCT_RE = re.compile(r"[^\w\s]")


def seed_naive_is_backchannel(text: str) -> bool:
    """Naive word-list filter: every word is one of SEED_WORDS.

    Lowercases and deletes punctuation first, so "Uh-huh." becomes "uhhuh".
    Empty text (nothing left) does not interrupt.
    """
    words = _PUNCT_RE.sub("", text.lower()).split()
    return all(w in SEED_WORDS for w in words)


def min_words_is_backchannel(text: str, min_words: int = 3) -> bool:
    """Pipecat's MinWordsUserTurnStartStrategy while the bot speaks.

    It interrupts when ``len(text.split()) >= min_words``; fewer words pass.
    """
    return len(text.split()) < min_words


def vad_only_is_backchannel(text: str) -> bool:
    """Plain VAD barge-in: any speech interrupts."""
    return False


def _classifier_predicate(model: bool | None, use_context: bool) -> Predicate:
    """A BackchannelClassifier as a predicate: BACKCHANNEL and EMPTY do not interrupt.

    ``pipecat_softack`` is imported here, not at module import, with stdout sent
    to stderr so that no banner can pollute ``--json`` output. ``model=None`` is
    the classifier's default (the combined model for English); ``model=False``
    the lexicon alone.
    """
    with contextlib.redirect_stdout(sys.stderr):
        from pipecat_softack import BackchannelClassifier, Verdict

        clf = BackchannelClassifier() if model is None else BackchannelClassifier(model=model)
    passes = {Verdict.BACKCHANNEL, Verdict.EMPTY}

    if use_context:

        def is_backchannel(text: str, context: str | None = None) -> bool:
            verdict = clf.classify(text) if context is None else clf.classify(text, context=context)
            return verdict in passes

    else:

        def is_backchannel(text: str, context: str | None = None) -> bool:
            return clf.classify(text) in passes

    return is_backchannel


def make_ours() -> Predicate:
    """Ours, as it ships: the lexicon with the English model, reading the context."""
    return _classifier_predicate(None, use_context=True)


def make_ours_no_context() -> Predicate:
    """Ours with the context withheld (what the bot said is unknown)."""
    return _classifier_predicate(None, use_context=False)


def make_lexicon_only() -> Predicate:
    """The lexicon alone (``BackchannelClassifier(model=False)``): the decision before the model."""
    return _classifier_predicate(False, use_context=False)


def _text_only(rule: Callable[[str], bool]) -> Predicate:
    def is_backchannel(text: str, context: str | None = None) -> bool:
        return rule(text)

    is_backchannel.__doc__ = rule.__doc__
    return is_backchannel


#: name -> factory returning a predicate (factories keep imports lazy). The peers'
#: rules and their sources are in bench/peers.py: Vapi's documented
#: ``stopSpeakingPlan`` defaults (numWords 0, and 2), LiveKit's legacy
#: ``interrupt_min_words=3``; their VAD and timing conditions (Vapi's 0.2 s
#: ``voiceSeconds``, LiveKit's 0.65 s ``interrupt_speech_duration`` and no
#: interruption in the first second of a bot utterance) do not apply to text.
STRATEGIES: dict[str, Callable[[], Predicate]] = {
    "ours": make_ours,
    "ours-no-context": make_ours_no_context,
    "lexicon-only": make_lexicon_only,
    "seed-naive": lambda: _text_only(seed_naive_is_backchannel),
    "min-words-3": lambda: _text_only(min_words_is_backchannel),
    "vapi-default": lambda: _text_only(lambda text: not vapi_interrupts(text, num_words=0)),
    "vapi-numwords-2": lambda: _text_only(lambda text: not vapi_interrupts(text, num_words=2)),
    "livekit-legacy": lambda: _text_only(lambda text: not livekit_legacy_interrupts(text, text)),
    "vad-only": lambda: _text_only(vad_only_is_backchannel),
}
#: Strategies that read the context; the others score the same with or without it.
CONTEXT_STRATEGIES = frozenset({"ours"})

# --- data -------------------------------------------------------------------


class BenchInputError(Exception):
    """The input file cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Row:
    """One labelled utterance.

    Attributes:
        line: Line number in the file (1 = header).
        text: The transcript.
        label: BACKCHANNEL, TURN, or whatever else the file says.
        category: Free tag (``category`` column; the MRDA act tag in ``--mrda``).
        context: What the bot (MRDA: the other speaker) said last, or None.
        answer: An AMBIGUOUS MRDA accept that follows a polar question (``--mrda``).
    """

    line: int
    text: str
    label: str  # BACKCHANNEL, TURN, or whatever else the file says
    category: str = ""
    context: str | None = None
    answer: bool = False


REQUIRED_COLUMNS = ("text", "label")


def load_rows(path: str) -> list[Row]:
    """Read FILE; raise BenchInputError naming the file and the problem."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None:
                raise BenchInputError(f"{path}: file is empty (expected a header with columns text, label)")
            header = [h.strip() for h in header]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise BenchInputError(
                    f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
                    f"(header has: {', '.join(repr(h) for h in header)}; columns must be tab-separated)"
                )
            ti, li = header.index("text"), header.index("label")
            ci = header.index("category") if "category" in header else None
            bi = header.index("bot_said") if "bot_said" in header else None
            rows = []
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue  # blank line
                get = lambda i: fields[i] if i is not None and i < len(fields) else ""  # noqa: E731
                context = get(bi).strip() or None
                rows.append(Row(reader.line_num, get(ti), get(li).strip().upper(), get(ci).strip(), context))
            return rows
    except OSError as e:
        raise BenchInputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise BenchInputError(f"{path}: not UTF-8 text ({e})") from e
    except csv.Error as e:
        raise BenchInputError(f"{path}: malformed TSV ({e})") from e


MRDA_COLUMNS = ("text", "label", "split", "prev_other_text")
_ANSWER_TAGS = frozenset({"aa", "aap"})


def load_mrda_rows(path: str, split: str = "test") -> list[Row]:
    """The rows of one split of the MRDA backchannel TSV (see the module docstring).

    Raises:
        BenchInputError: unreadable file, a missing column, or an unknown or empty
            split, naming the file and the value.
    """
    if split not in MRDA_SPLITS:
        raise BenchInputError(f"unknown split {split!r}; choose from {', '.join(MRDA_SPLITS)}")
    with contextlib.redirect_stdout(sys.stderr):
        from bench.train import is_polar_question
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if reader.fieldnames is None:
                raise BenchInputError(f"{path}: file is empty (expected the MRDA columns {', '.join(MRDA_COLUMNS)})")
            missing = [c for c in MRDA_COLUMNS if c not in reader.fieldnames]
            if missing:
                raise BenchInputError(
                    f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} of the MRDA TSV "
                    f"(header has: {', '.join(repr(h) for h in reader.fieldnames)})"
                )
            rows = []
            for r in reader:
                if (r["split"] or "").strip() != split:
                    continue
                label = (r["label"] or "").strip().upper()
                tag = (r.get("act_tag") or "").strip()
                context = (r["prev_other_text"] or "").strip() or None
                answer = label == "AMBIGUOUS" and tag in _ANSWER_TAGS and is_polar_question(context or "")
                rows.append(Row(reader.line_num, r["text"] or "", label, tag, context, answer))
    except OSError as e:
        raise BenchInputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise BenchInputError(f"{path}: not UTF-8 text ({e})") from e
    except csv.Error as e:
        raise BenchInputError(f"{path}: malformed TSV ({e})") from e
    if not rows:
        raise BenchInputError(f"{path}: no rows with split {split!r}")
    return rows


# --- scoring ----------------------------------------------------------------


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def score(rows: Iterable[Row], is_backchannel: Predicate) -> dict[str, float | int]:
    """Metrics of one strategy on rows (see the module docstring).

    With answer rows (``--mrda``) also ``answer_interrupted_rate`` (answers the
    strategy interrupts / answers) and ``n_answer``.
    """
    n_bc = n_turn = n_other = tp = fp = n_answer = answer_stopped = 0
    for row in rows:
        if row.label == BACKCHANNEL:
            n_bc += 1
            tp += bool(is_backchannel(row.text, row.context))
        elif row.label == TURN:
            n_turn += 1
            fp += bool(is_backchannel(row.text, row.context))
        else:
            n_other += 1
            if row.answer:
                n_answer += 1
                answer_stopped += not is_backchannel(row.text, row.context)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_bc)
    f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
    answers = {"answer_interrupted_rate": _ratio(answer_stopped, n_answer), "n_answer": n_answer} if n_answer else {}
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_interrupt_rate": _ratio(n_bc - tp, n_bc),
        "missed_interrupt_rate": _ratio(fp, n_turn),
        "n_backchannel": n_bc,
        "n_turn": n_turn,
        "n_other": n_other,
        "n_false_interrupt": n_bc - tp,
        "n_missed_interrupt": fp,
        **answers,
    }


def misclassified(rows: Iterable[Row], is_backchannel: Predicate) -> list[tuple[Row, bool]]:
    """(row, predicted_backchannel) for BACKCHANNEL/TURN rows the predicate gets wrong."""
    out = []
    for row in rows:
        if row.label in (BACKCHANNEL, TURN):
            pred = bool(is_backchannel(row.text, row.context))
            if pred != (row.label == BACKCHANNEL):
                out.append((row, pred))
    return out


# --- output -----------------------------------------------------------------

_COLUMNS = [
    ("strategy", "{:<15}"),
    ("precision", "{:>9.3f}"),
    ("recall", "{:>6.3f}"),
    ("f1", "{:>6.3f}"),
    ("false_interrupt_rate", "{:>16.3f}"),
    ("missed_interrupt_rate", "{:>16.3f}"),
    ("n_backchannel", "{:>5}"),
    ("n_turn", "{:>6}"),
    ("n_other", "{:>7}"),
]
_HEADERS = ["strategy", "precision", "recall", "f1", "false_interrupt", "missed_interrupt", "n_bc", "n_turn", "n_other"]


def format_table(results: dict[str, dict[str, float | int]]) -> str:
    widths = [len(fmt.format(0 if i else "")) for i, (_, fmt) in enumerate(_COLUMNS)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(_HEADERS, widths)))]
    for name, m in results.items():
        cells = [_COLUMNS[0][1].format(name)] + [fmt.format(m[key]) for key, fmt in _COLUMNS[1:]]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def format_answers(results: dict[str, dict[str, float | int]]) -> str:
    """One line: the share of answers each strategy interrupts (``--mrda``), or ""."""
    with_answers = {k: m for k, m in results.items() if m.get("n_answer")}
    if not with_answers:
        return ""
    n = next(iter(with_answers.values()))["n_answer"]
    cells = ", ".join(f"{k} {m['answer_interrupted_rate']:.1%}" for k, m in with_answers.items())
    return f"answers to a polar question (AMBIGUOUS aa/aap, n={n}) interrupted: {cells}"


def format_errors(errors: list[tuple[Row, bool]]) -> str:
    lines = [f"misclassified by ours: {len(errors)}"]
    for row, pred in errors:
        what = "false interrupt" if row.label == BACKCHANNEL else "missed interrupt"
        cat = f" [{row.category}]" if row.category else ""
        ctx = f"  (after {row.context!r})" if row.context else ""
        lines.append(f"  line {row.line:>4}  {row.label:<11} {what:<16}{cat} {row.text!r}{ctx}")
    return "\n".join(lines)


# --- CLI --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench text",
        description="Score barge-in strategies on a labelled transcript TSV (columns text, label; "
        "optional bot_said), or on a split of the MRDA backchannel TSV (--mrda).",
        epilog="Metrics: precision/recall/F1 for the BACKCHANNEL class; false_interrupt = "
        "BACKCHANNEL rows that stop the bot / BACKCHANNEL rows; missed_interrupt = TURN rows "
        "that do not stop it / TURN rows.",
    )
    p.add_argument("file", metavar="FILE.tsv", nargs="?", help="tab-separated file with header columns text, label")
    p.add_argument("--mrda", nargs="?", const=MRDA_DEFAULT, metavar="PATH",
                   help=f"score the MRDA backchannel TSV instead (default path {MRDA_DEFAULT})")
    p.add_argument("--split", default="test", choices=MRDA_SPLITS, help="MRDA split with --mrda (default: test)")
    p.add_argument("--json", action="store_true", help="print one JSON object {strategy: {metric: value}} only")
    p.add_argument("--errors", action="store_true", help="list rows 'ours' gets wrong (stderr with --json)")
    p.add_argument(
        "--strategies",
        default=None,
        help=f"comma-separated subset of: {', '.join(STRATEGIES)} (default: all; ours-no-context only "
        "when the rows have context)",
    )
    p.add_argument("--unseen-in", action="append", default=[], metavar="TSV",
                   help="keep only rows whose normalized text is in none of these files (repeatable)")
    return p


def unseen_rows(rows: list[Row], paths: list[str]) -> list[Row]:
    """The rows whose normalized text occurs in no ``text`` cell of ``paths`` (each read
    with :func:`load_rows`, which raises BenchInputError naming a bad file)."""
    from pipecat_softack.classifier import normalize

    seen = {tuple(normalize(r.text)) for path in paths for r in load_rows(path)}
    return [r for r in rows if tuple(normalize(r.text)) not in seen]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.file is None) == (args.mrda is None):
        print("error: give either FILE.tsv or --mrda [PATH]", file=sys.stderr)
        return 2
    try:
        rows = load_rows(args.file) if args.mrda is None else load_mrda_rows(args.mrda, args.split)
        n_all = len(rows)
        if args.unseen_in:
            rows = unseen_rows(rows, args.unseen_in)
    except BenchInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.strategies is None:
        has_context = any(r.context for r in rows)
        names = [n for n in STRATEGIES if has_context or n != "ours-no-context"]
    else:
        names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        print(f"error: unknown strategy {', '.join(unknown) or '(none given)'}; choose from {', '.join(STRATEGIES)}",
              file=sys.stderr)
        return 2

    predicates: dict[str, Predicate] = {}
    for name in names:
        try:
            predicates[name] = STRATEGIES[name]()
        except ImportError as e:
            print(f"error: strategy {name!r} unavailable: {e}", file=sys.stderr)
            return 2

    results = {name: score(rows, pred) for name, pred in predicates.items()}
    if args.json:
        json.dump(results, sys.stdout, sort_keys=False)
        sys.stdout.write("\n")
    else:
        if args.mrda is not None:
            n = {BACKCHANNEL: 0, TURN: 0}
            for r in rows:
                if r.label in n:
                    n[r.label] += 1
            print(f"MRDA {args.split} split ({args.mrda}): {n[BACKCHANNEL]} BACKCHANNEL, {n[TURN]} TURN; "
                  f"{len(rows) - sum(n.values())} AMBIGUOUS rows left out of the rates (n_other). "
                  "Context: prev_other_text, read by 'ours' only.")
        if args.unseen_in:
            print(f"unseen texts only: {len(rows)} of {n_all} rows (left out: text in {', '.join(args.unseen_in)})")
        print(format_table(results))
        answers = format_answers(results)
        if answers:
            print(answers)
    if args.errors:
        if "ours" in predicates:
            report = format_errors(misclassified(rows, predicates["ours"]))
        else:
            report = "--errors: strategy 'ours' was not run"
        print(report, file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
