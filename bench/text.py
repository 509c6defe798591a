"""Text benchmark: would this transcript stop a talking bot?

``python -m bench text FILE.tsv [--json] [--errors] [--strategies a,b]``

FILE is tab-separated (no quoting) with a header holding at least ``text``
and ``label``. ``label`` is ``BACKCHANNEL`` (the listener means "go on": the
bot should keep talking) or ``TURN`` (the listener takes the floor: the bot
should stop). Rows with any other label are counted as ``n_other`` and left
out of every metric.

Every strategy is a predicate ``is_backchannel(text) -> bool``: True means
the bot keeps talking, False means the utterance interrupts it.

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

BACKCHANNEL = "BACKCHANNEL"
TURN = "TURN"

Predicate = Callable[[str], bool]

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


def make_ours() -> Predicate:
    """Our classifier: BACKCHANNEL and EMPTY verdicts do not interrupt.

    ``pipecat_softack`` is imported here, not at module import, with stdout sent
    to stderr so that no banner can pollute ``--json`` output.
    """
    with contextlib.redirect_stdout(sys.stderr):
        from pipecat_softack import BackchannelClassifier, Verdict

        clf = BackchannelClassifier()
    passes = {Verdict.BACKCHANNEL, Verdict.EMPTY}

    def ours_is_backchannel(text: str) -> bool:
        return clf.classify(text) in passes

    return ours_is_backchannel


#: name -> factory returning a predicate (factories keep imports lazy).
STRATEGIES: dict[str, Callable[[], Predicate]] = {
    "ours": make_ours,
    "seed-naive": lambda: seed_naive_is_backchannel,
    "min-words-3": lambda: min_words_is_backchannel,
    "vad-only": lambda: vad_only_is_backchannel,
}

# --- data -------------------------------------------------------------------


class BenchInputError(Exception):
    """The input file cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Row:
    line: int
    text: str
    label: str  # BACKCHANNEL, TURN, or whatever else the file says
    category: str = ""


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
            rows = []
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue  # blank line
                get = lambda i: fields[i] if i is not None and i < len(fields) else ""  # noqa: E731
                rows.append(Row(reader.line_num, get(ti), get(li).strip().upper(), get(ci).strip()))
            return rows
    except OSError as e:
        raise BenchInputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise BenchInputError(f"{path}: not UTF-8 text ({e})") from e
    except csv.Error as e:
        raise BenchInputError(f"{path}: malformed TSV ({e})") from e


# --- scoring ----------------------------------------------------------------


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def score(rows: Iterable[Row], is_backchannel: Predicate) -> dict[str, float | int]:
    """Metrics of one strategy on rows (see the module docstring)."""
    n_bc = n_turn = n_other = tp = fp = 0
    for row in rows:
        if row.label == BACKCHANNEL:
            n_bc += 1
            tp += bool(is_backchannel(row.text))
        elif row.label == TURN:
            n_turn += 1
            fp += bool(is_backchannel(row.text))
        else:
            n_other += 1
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_bc)
    f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
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
    }


def misclassified(rows: Iterable[Row], is_backchannel: Predicate) -> list[tuple[Row, bool]]:
    """(row, predicted_backchannel) for BACKCHANNEL/TURN rows the predicate gets wrong."""
    out = []
    for row in rows:
        if row.label in (BACKCHANNEL, TURN):
            pred = bool(is_backchannel(row.text))
            if pred != (row.label == BACKCHANNEL):
                out.append((row, pred))
    return out


# --- output -----------------------------------------------------------------

_COLUMNS = [
    ("strategy", "{:<12}"),
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


def format_errors(errors: list[tuple[Row, bool]]) -> str:
    lines = [f"misclassified by ours: {len(errors)}"]
    for row, pred in errors:
        what = "false interrupt" if row.label == BACKCHANNEL else "missed interrupt"
        cat = f" [{row.category}]" if row.category else ""
        lines.append(f"  line {row.line:>4}  {row.label:<11} {what:<16}{cat} {row.text!r}")
    return "\n".join(lines)


# --- CLI --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench text",
        description="Score barge-in strategies on a labelled transcript TSV (columns text, label).",
        epilog="Metrics: precision/recall/F1 for the BACKCHANNEL class; false_interrupt = "
        "BACKCHANNEL rows that stop the bot / BACKCHANNEL rows; missed_interrupt = TURN rows "
        "that do not stop it / TURN rows.",
    )
    p.add_argument("file", metavar="FILE.tsv", help="tab-separated file with header columns text, label")
    p.add_argument("--json", action="store_true", help="print one JSON object {strategy: {metric: value}} only")
    p.add_argument("--errors", action="store_true", help="list rows 'ours' gets wrong (stderr with --json)")
    p.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help=f"comma-separated subset of: {', '.join(STRATEGIES)} (default: all)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        print(f"error: unknown strategy {', '.join(unknown) or '(none given)'}; choose from {', '.join(STRATEGIES)}",
              file=sys.stderr)
        return 2
    try:
        rows = load_rows(args.file)
    except BenchInputError as e:
        print(f"error: {e}", file=sys.stderr)
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
        print(format_table(results))
    if args.errors:
        if "ours" in predicates:
            report = format_errors(misclassified(rows, predicates["ours"]))
        else:
            report = "--errors: strategy 'ours' was not run"
        print(report, file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
