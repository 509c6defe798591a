"""The learned part of the decision: a logistic regression over words and context.

Pure Python (no numpy, no scikit-learn at run time): the weights are a small JSON
data file shipped in the package (``configs/model_en.json``), rebuilt
deterministically by ``python -m bench train`` from the MRDA backchannel TSV (see
``bench/train.py`` and ``tests/data/README.md``). English only.

The model scores one utterance heard while the bot speaks, given

* its tokens, as :func:`pipecat_softack.classifier.normalize` makes them (the
  classifier's elongation fix applied); when the lexicon does not cover them all,
  the soft-acks they start with are cut off first, so that "okay, book it" is
  judged as "book it" and "oh wow that sounds fun" as "that sounds fun" (MRDA
  splits such talk into two dialog acts, and a bot hears them as one transcript);
* what the built-in English lexicon says about them (:class:`LexiconView`);
* what the other speaker said last (the bot's last sentence at run time,
  ``prev_other_text`` in MRDA), or nothing when that is unknown.

and returns P(BACKCHANNEL); :meth:`BackchannelModel.decide` combines it with the
lexicon's verdict by three thresholds, which live in the weights file because they
were chosen on the validation split together with the weights. Command keywords and
a user's own soft-acks never reach the model
(:class:`pipecat_softack.classifier.BackchannelClassifier`).

Feature names (all binary; a feature absent from the weights file weighs 0):

=====================  =========================================================
``w=TOK``              each distinct token, ``?`` included
``b=A_B``              each bigram of ``<s> tokens </s>``
``u=TOKENS``           the whole utterance, when it has at most 3 words
``n=BUCKET``           word count: 0, 1, 2, 3, 4, 5-6, 7-9, 10+
``lex=bc``             every word is covered by soft-acks (the lexicon's verdict)
``lex=cK``             K words (1, 2, 3+) are in neither lexicon (content)
``lex=pre``            soft-acks were cut off the start (content only)
``c=none``             no context (unknown, or the speaker spoke first)
``c=q``                the context ends with a question mark
``c=aux``              the context starts, after fillers, with an auxiliary
                       ("do", "would", "can", "is", ...): a polar question form
``c=auxyou``           ... followed by "you", "i" or "we" ("would you", "can i")
``c=wh``               the context starts with a question word ("what", "how")
``c=nBUCKET``          context word count: 1-3, 4-9, 10+
``c=last=TOK``         the last word of the context
``cq&...``             ``lex=bc`` and ``u=`` crossed with "the context is a
                       question" (``c=q``, ``c=aux`` or ``c=wh``)
``cp&...``             the same crossed with "a polar question" (``c=q`` and
                       ``c=aux``): "yeah" after "Would you like me to book it?"
=====================  =========================================================
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

MODEL_FORMAT = "pipecat-softack/logistic-regression/v1"
"""The ``format`` field every weights file must carry."""

DEFAULT_MODEL_FILE = "model_en.json"
"""The built-in English weights, a resource of ``pipecat_softack.configs``."""

MODEL_LANGUAGES = ("en",)
"""Languages a built-in model exists for; every other language gets the lexicon alone."""

#: Words a context may start with before its first real word ("so, do you ...").
CONTEXT_FILLERS = frozenset({"uh", "um", "so", "and", "but", "well", "oh", "okay", "ok", "yeah", "or", "now", "alright"})
#: Auxiliaries that start a polar (yes/no) question in English.
AUXILIARIES = frozenset({
    "do", "does", "did", "would", "will", "can", "could", "should", "shall", "may", "might",
    "is", "are", "was", "were", "am", "have", "has", "had", "dont", "doesnt", "didnt",
    "wouldnt", "wont", "cant", "couldnt", "shouldnt", "isnt", "arent", "wasnt", "werent",
    "havent", "hasnt", "want", "wanna",
})  # fmt: skip
#: Question words that start a wh-question.
QUESTION_WORDS = frozenset({"what", "when", "where", "who", "whom", "whose", "why", "how", "which"})
_ADDRESSEES = frozenset({"you", "i", "we", "ya", "u"})
_QUESTION_MARK = "?"


class ModelFileError(ValueError):
    """A weights file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class LexiconView:
    """What the lexicon says about an utterance that holds no command keyword.

    Attributes:
        backchannel: Every word is covered by soft-ack phrases (the lexicon alone
            would let it pass).
        content_words: Words in neither lexicon (0 when ``backchannel``).
        soft_prefix: Soft-acks were cut off the start of an utterance with content
            ("yeah | that sounds good"); False when ``backchannel``.
    """

    backchannel: bool
    content_words: int
    soft_prefix: bool = False


def _count_bucket(n: int) -> str:
    if n <= 4:
        return str(n)
    if n <= 6:
        return "5-6"
    if n <= 9:
        return "7-9"
    return "10+"


def context_features(tokens: Sequence[str] | None) -> tuple[tuple[str, ...], bool, bool]:
    """Features of the context, and whether it is a question / a polar question.

    Args:
        tokens: The context's normalised tokens (its last sentence), or None when
            the context is unknown. An empty sequence counts as no context.

    Returns:
        ``(features, is_question, is_polar_question)``: the ``c=`` feature names (see
        the module docstring); ``is_question`` when the context ends with "?" or
        starts with an auxiliary or a question word; ``is_polar_question`` when it
        ends with "?" and starts with an auxiliary.
    """
    if not tokens:
        return ("c=none",), False, False
    words = [t for t in tokens if t != _QUESTION_MARK]
    if not words:
        return ("c=none",), False, False
    feats = []
    ends_q = tokens[-1] == _QUESTION_MARK
    if ends_q:
        feats.append("c=q")
    i = 0
    while i < len(words) - 1 and words[i] in CONTEXT_FILLERS:
        i += 1
    aux = words[i] in AUXILIARIES
    if aux:
        feats.append("c=aux")
        if i + 1 < len(words) and words[i + 1] in _ADDRESSEES:
            feats.append("c=auxyou")
    wh = words[i] in QUESTION_WORDS
    if wh:
        feats.append("c=wh")
    n = len(words)
    feats.append("c=n1-3" if n <= 3 else "c=n4-9" if n <= 9 else "c=n10+")
    feats.append("c=last=" + words[-1])
    return tuple(feats), ends_q or aux or wh, ends_q and aux


def phrase_feature(tokens: Sequence[str]) -> str | None:
    """The ``u=`` feature of an utterance of at most 3 words, else None."""
    if sum(t != _QUESTION_MARK for t in tokens) > 3:
        return None
    return "u=" + " ".join(tokens)


def features(
    tokens: Sequence[str],
    lexicon: LexiconView,
    context: tuple[tuple[str, ...], bool, bool] = (("c=none",), False, False),
) -> list[str]:
    """The feature names of one utterance (see the module docstring for the list).

    Args:
        tokens: The utterance's normalised tokens, "?" included (with content: from
            its first content word on, the soft-acks before it cut off).
        lexicon: What the lexicon says about the whole utterance.
        context: :func:`context_features` of the context (default: no context).

    Returns:
        Feature names; duplicates are possible and count once each time they occur.
    """
    words = [t for t in tokens if t != _QUESTION_MARK]
    feats = ["w=" + t for t in dict.fromkeys(tokens)]  # distinct, in a stable order
    seq = ("<s>", *tokens, "</s>")
    feats += ["b=" + a + "_" + b for a, b in zip(seq, seq[1:])]
    utterance = phrase_feature(tokens)
    if utterance:
        feats.append(utterance)
    feats.append("n=" + _count_bucket(len(words)))
    if lexicon.backchannel:
        lex = "lex=bc"
    else:
        lex = "lex=c" + (str(lexicon.content_words) if lexicon.content_words < 3 else "3+")
    feats.append(lex)
    if lexicon.soft_prefix:
        feats.append("lex=pre")
    ctx, question, polar = context
    feats += ctx
    if question:
        feats.append("cq&" + lex)
        if utterance:
            feats.append("cq&" + utterance)
    if polar:
        feats.append("cp&" + lex)
        if utterance:
            feats.append("cp&" + utterance)
    return feats


_THRESHOLDS = ("threshold_known_phrase", "threshold_after_question", "threshold_content")


@dataclass(frozen=True)
class BackchannelModel:
    """Logistic regression weights and the three thresholds chosen with them.

    P(BACKCHANNEL) = 1 / (1 + exp(-(bias + sum of the weights of the features))).
    :meth:`decide` turns it into a verdict, given what the lexicon said:

    * the lexicon covers every word and the context is a question (``c=q``,
      ``c=aux`` or ``c=wh``): a backchannel when P >= ``threshold_after_question``
      (below it, an answer: "yeah" after "Would you like me to book it?");
    * the lexicon covers every word, no question: a backchannel unless the model
      knows the whole phrase (its ``u=`` feature has a weight: MRDA has it at least
      ``min_count`` times) and P < ``threshold_known_phrase`` ("right?" as a tag
      question). A phrase the corpus never had ("um-hum", "absolutely") keeps the
      lexicon's verdict: the model does not overrule the lexicon on no evidence;
    * words outside the lexicons: a backchannel when P >= ``threshold_content``
      ("i bet", "that sounds interesting").

    Attributes:
        weights: Feature name -> weight (log-odds of BACKCHANNEL).
        bias: Intercept (log-odds).
        threshold_known_phrase: See above; a probability in [0, 1].
        threshold_after_question: See above; a probability in [0, 1].
        threshold_content: See above; a probability in [0, 1].
        language: Language the model was trained on (``"en"``).
        meta: Free-form training record (data file, its SHA-256, counts, the chosen
            regularisation, validation figures).

    Raises:
        ModelFileError: a threshold outside [0, 1] or a weight that is not finite.
    """

    weights: Mapping[str, float]
    bias: float
    threshold_known_phrase: float
    threshold_after_question: float
    threshold_content: float
    language: str = "en"
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        for name in _THRESHOLDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ModelFileError(f"{name} must be a probability in [0, 1], got {value!r}")
        bad = [k for k, w in self.weights.items() if not isinstance(w, (int, float)) or not math.isfinite(w)]
        if bad or not math.isfinite(self.bias):
            raise ModelFileError(f"weights must be finite numbers; bad: {(bad or ['bias'])[:5]!r}")

    def score(self, feats: Iterable[str]) -> float:
        """Log-odds of BACKCHANNEL for these feature names."""
        get = self.weights.get
        return self.bias + sum(get(f, 0.0) for f in feats)

    def probability(self, feats: Iterable[str]) -> float:
        """P(BACKCHANNEL) for these feature names, in [0, 1]."""
        z = self.score(feats)
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def knows_phrase(self, tokens: Sequence[str]) -> bool:
        """The model has a weight for this whole utterance (its ``u=`` feature)."""
        phrase = phrase_feature(tokens)
        return phrase is not None and phrase in self.weights

    def decide(self, feats: Sequence[str], lexicon_backchannel: bool, after_question: bool) -> bool:
        """True for a backchannel (the bot keeps talking), by the rules above.

        Args:
            feats: The utterance's :func:`features`.
            lexicon_backchannel: The lexicon covers every word.
            after_question: The context is a question (:func:`context_features`).
        """
        if not lexicon_backchannel:
            return self.probability(feats) >= self.threshold_content
        if after_question:
            return self.probability(feats) >= self.threshold_after_question
        if not any(f in self.weights for f in feats if f.startswith("u=")):
            return True
        return self.probability(feats) >= self.threshold_known_phrase

    def to_dict(self) -> dict:
        """The JSON layout of a weights file (weights sorted by name)."""
        return {
            "format": MODEL_FORMAT,
            "language": self.language,
            "bias": self.bias,
            **{name: getattr(self, name) for name in _THRESHOLDS},
            "meta": dict(self.meta),
            "weights": dict(sorted(self.weights.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "model") -> "BackchannelModel":
        """Build a model from the JSON layout of :meth:`to_dict`.

        Raises:
            ModelFileError: a missing key, a wrong ``format``, or a bad value; the
                message names ``source``.
        """
        if not isinstance(data, Mapping):
            raise ModelFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{source}: format must be {MODEL_FORMAT!r}, got {data.get('format')!r}")
        missing = [k for k in ("bias", "weights", *_THRESHOLDS) if k not in data]
        if missing:
            raise ModelFileError(f"{source}: missing key(s) {', '.join(missing)}")
        if not isinstance(data["weights"], Mapping):
            raise ModelFileError(f"{source}: weights must be an object of name -> number")
        try:
            return cls(
                weights=dict(data["weights"]),
                bias=float(data["bias"]),
                **{name: data[name] for name in _THRESHOLDS},
                language=str(data.get("language", "en")),
                meta=dict(data.get("meta", {})),
            )
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{source}: {e}") from e


def load_model(path: str | os.PathLike) -> BackchannelModel:
    """Read a weights file (JSON, :meth:`BackchannelModel.to_dict` layout).

    Raises:
        ModelFileError: unreadable file, invalid JSON or a bad layout; the message
            names the path.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"cannot read model file {str(path)!r}: {e}") from e
    return BackchannelModel.from_dict(data, f"model file {str(path)!r}")


@lru_cache(maxsize=None)
def default_model(language: str = "en") -> BackchannelModel:
    """The built-in model for ``language`` (loaded once per process).

    Raises:
        ModelFileError: no built-in model for that language, or a broken file.
    """
    if language not in MODEL_LANGUAGES:
        raise ModelFileError(
            f"no built-in model for language {language!r} (models exist for {list(MODEL_LANGUAGES)})"
        )
    resource = resources.files("pipecat_softack.configs") / f"model_{language}.json"
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelFileError(f"cannot read built-in model_{language}.json: {e}") from e
    return BackchannelModel.from_dict(data, f"built-in model_{language}.json")
