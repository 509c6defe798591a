"""The decision core: is what the user said while the bot talks a backchannel?

Pure Python, no Pipecat import, so it can be tested and benchmarked on text alone.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from enum import Enum
from functools import lru_cache

from pipecat_softack.config import SoftAckConfigError, SoftAckSettings, load_settings
from pipecat_softack.model import (
    MODEL_LANGUAGES,
    BackchannelModel,
    LexiconView,
    context_features,
    default_model,
    features,
)


class Verdict(Enum):
    """What an utterance heard while the bot speaks means for barge-in."""

    BACKCHANNEL = "backchannel"
    """Only soft-acks ("yeah", "uh-huh", "i see"): the bot keeps talking."""
    INTERRUPTION = "interruption"
    """A command keyword or any other word: the bot stops."""
    EMPTY = "empty"
    """No words after normalisation (empty transcript, punctuation only)."""


_QUESTION_MARK = "?"
_PUNCTUATION = re.compile(r"[^\w\s?]|_")
_DOTTED_LETTERS = re.compile(r"\b(\w)\.(?=\w\b)")  # "o.k." -> "ok"
_ELONGATION = re.compile(r"(\w)\1{2,}")  # "yeahhh" -> "yeahh", "hmmm" -> "hmm"
_DOUBLE_LETTER = re.compile(r"(\w)\1")
# Zero-width and bidirectional format characters (Unicode category Cf): dropped, so
# "ye\u200bah" is "yeah" and a right-to-left mark splits nothing.
_FORMAT_CHARS = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


def _first_group(match: re.Match) -> str:
    return match[1]


def _double_first_group(match: re.Match) -> str:
    return match[1] * 2


def normalize(text: str) -> tuple[str, ...]:
    """Turn a transcript into the tokens the lexicons are matched on.

    Lower case; accents removed ("sí" -> "si"); apostrophes removed ("that's" ->
    "thats"); "o.k." -> "ok"; a question mark becomes a token of its own ("huh?" ->
    "huh ?"), because "huh?" asks for a repair where "huh" is a news marker; hyphens
    and other punctuation become spaces ("uh-huh" -> "uh huh"); a letter repeated
    three or more times is cut to two ("hmmm" -> "hmm", "yeahhh" -> "yeahh"; the
    classifier then tries the word with doubled letters single, "yeah").

    Zero-width and bidirectional format characters are dropped; control characters,
    emoji and other symbols separate words like punctuation.

    Args:
        text: A transcript, any case and punctuation.

    Returns:
        The tokens, possibly empty.

    Raises:
        TypeError: ``text`` is not a ``str`` (e.g. None), naming what it is.
    """
    if not isinstance(text, str):
        raise TypeError(f"a transcript must be a str, got {type(text).__name__} {text!r:.60}")
    text = _FORMAT_CHARS.sub("", text).lower()
    if not text.isascii():  # ASCII has no accents to strip (NFKD leaves it as it is)
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("'", "").replace("\u2019", "").replace("`", "")
    if "." in text:
        text = _DOTTED_LETTERS.sub(_first_group, text)  # a function: 4x a "\1" template
    text = _PUNCTUATION.sub(" ", text).replace(_QUESTION_MARK, f" {_QUESTION_MARK} ")
    text = _ELONGATION.sub(_double_first_group, text)
    return tuple(text.split())


_SENTENCE_END = re.compile(r"[.!?]+\s+")
_CONTEXT_CHARS = 600  # of a long context only its end is read (its last sentence)
_CONTEXT_CACHE_SIZE = 16  # contexts whose features a classifier keeps


def _context_tokens(context: str | None) -> tuple[str, ...] | None:
    """Tokens of the last sentence of ``context``; None when it is None."""
    if context is None:
        return None
    if not isinstance(context, str):
        raise TypeError(f"context must be a string or None, got {type(context).__name__}: {context!r}")
    tail = context[-_CONTEXT_CHARS:].strip()
    return normalize(_SENTENCE_END.split(tail)[-1])


@lru_cache(maxsize=8)
def _lexicon_index(soft_acks: tuple[str, ...], command_keywords: tuple[str, ...]):
    """``(phrases, max_len, vocabulary, soft_prefixes)`` of two phrase lists: tokens
    -> is a command keyword; the longest phrase in tokens; every token; and what an
    interim transcript may end with while a soft-ack is still being said (the start
    of a multi-word soft-ack, "i" of "i see", possibly cut inside its last word, "oh
    real" of "oh really": STTs stream word pieces).

    Raises:
        SoftAckConfigError: a phrase with no words after normalisation.
    """
    phrases: dict[tuple[str, ...], bool] = {}
    for phrase in soft_acks:
        phrases[BackchannelClassifier._tokens_of(phrase)] = False
    for phrase in command_keywords:
        phrases[BackchannelClassifier._tokens_of(phrase)] = True
    soft_prefixes = frozenset(
        p[:k] + (p[k][:j],)
        for p, command in phrases.items()
        if not command
        for k in range(len(p))
        for j in range(1, len(p[k]) + 1)
    )
    vocabulary = frozenset(t for p in phrases for t in p)
    return phrases, max(len(p) for p in phrases), vocabulary, soft_prefixes


@lru_cache(maxsize=None)
def _builtin_settings(language: str) -> SoftAckSettings:
    """The built-in defaults of ``language``, ignoring the environment."""
    return load_settings(language=language, environ={})


@lru_cache(maxsize=None)
def _builtin_classifier(language: str) -> "BackchannelClassifier":
    """A lexicon-only classifier on the built-in defaults (the model's lexicon view)."""
    return BackchannelClassifier(settings=_builtin_settings(language), model=False)


class BackchannelClassifier:
    """Classifies the text of one user utterance heard while the bot speaks.

    Rule (DESIGN.md section 2): the normalised tokens are segmented left to right,
    taking at each position the longest phrase found in either lexicon (a command
    keyword wins a tie). The utterance is an INTERRUPTION if a segment is a command
    keyword or if a token starts no phrase at all (a content word); a BACKCHANNEL if
    every token is covered by soft-ack phrases; EMPTY if there are no tokens.
    Because the longest phrase wins, "oh no" (a sympathy backchannel in the English
    defaults) is not the command "no", while "no", "no no" and "oh no wait" are
    interruptions. Repeats ("yeah yeah yeah") are covered phrase by phrase. A word
    not in the lexicons is also tried with its doubled letters single, which undoes
    STT elongations ("okayy" -> "okay", "cooll" -> "cool"). A question mark is
    neutral unless a phrase holds it: the English commands "huh?", "hm?", "sorry?"
    are repair requests, while "really?" is still a news marker.

    English also has a learned model (:mod:`pipecat_softack.model`: a logistic
    regression over words, the lexicon's verdict and what the other speaker said
    last, trained on the ICSI MRDA meeting corpus; ``python -m bench train``). With
    it the decision is:

    1. a command keyword interrupts at once (``by_command``), whatever the model says;
    2. a soft-ack phrase the user configured (constructor, environment or config
       file) is a backchannel, whatever the model says;
    3. on an interim transcript (``partial=True``), words the lexicon covers (or the
       start of a soft-ack, or a continuation keyword such as "but" as the last
       word) keep the utterance a backchannel for now: the final transcript or the
       next word decides, with the model;
    4. otherwise :meth:`pipecat_softack.model.BackchannelModel.decide`: after a
       question from the bot the model may overrule the lexicon ("yeah" answering
       "Would you like me to book it?" interrupts); without one it overrules it
       only on a phrase the corpus knows; and it lets words outside the lexicons
       pass when it is fairly sure they are a reaction ("that sounds interesting",
       "well that's good"). With content after leading soft-acks ("okay, book it")
       the model judges the content.

    Every other language gets the lexicon alone.

    Args:
        soft_acks: Backchannel phrases; replaces every lower-precedence source.
        command_keywords: Phrases that always interrupt; replaces lower sources.
        language: Built-in defaults to use (``"en"``, ``"es"``); default ``"en"``
            or the ``SOFT_ACK_LANGUAGE`` environment variable.
        config_file: TOML file overriding the built-in lists (see
            :mod:`pipecat_softack.config` for the precedence with the environment).
        settings: Already-resolved settings; excludes the four arguments above.
        model: ``None`` (default, "auto"): the built-in model when the language is
            English and the soft-ack list is the built-in one (a user's soft-ack
            list replaces the built-in one, so it is then taken as the whole set of
            backchannels, as before the model); ``False``: the lexicon alone;
            ``True``: the built-in model, also together with a user's soft-acks
            (rule 2 above; everything else is then judged by the model, which reads
            the built-in lexicon's verdict); or a
            :class:`~pipecat_softack.model.BackchannelModel` of your own.

    Raises:
        SoftAckConfigError: bad settings (see :func:`pipecat_softack.config.load_settings`),
            a phrase that normalises to nothing, ``settings`` given together with
            another argument, ``model=True`` (or a model) for a language without a
            model, or a ``model`` value of another type.
    """

    def __init__(
        self,
        *,
        soft_acks: Iterable[str] | None = None,
        command_keywords: Iterable[str] | None = None,
        language: str | None = None,
        config_file: str | os.PathLike | None = None,
        settings: SoftAckSettings | None = None,
        model: bool | BackchannelModel | None = None,
    ):
        if settings is None:
            settings = load_settings(
                language=language,
                soft_acks=soft_acks,
                command_keywords=command_keywords,
                config_file=config_file,
            )
        elif any(a is not None for a in (soft_acks, command_keywords, language, config_file)):
            raise SoftAckConfigError("pass either settings= or the lexicon arguments, not both")
        self.settings = settings

        # Shared by every classifier with the same lists (never mutated): one index
        # per process, not per session (a 100,000-phrase lexicon is ~140 MiB).
        self._phrases, self._max_len, self._vocabulary, self._soft_prefixes = _lexicon_index(
            tuple(settings.soft_acks), tuple(settings.command_keywords)
        )

        # Command keywords that wait for the next word when they end an interim.
        self._continuations = frozenset(self._tokens_of(p) for p in settings.continuation_keywords)
        builtin = _builtin_settings(settings.language)
        self._user_soft_acks = settings.soft_acks != builtin.soft_acks
        self._model = self._resolve_model(model, settings.language)
        # The model was trained on the built-in English lexicon's view of each
        # utterance; with a user's lists, that view comes from a built-in classifier.
        self._model_lexicon = (
            self
            if self._model is None
            or (not self._user_soft_acks and settings.command_keywords == builtin.command_keywords)
            else _builtin_classifier(settings.language)
        )
        self._context_cache: dict[str | None, tuple] = {None: context_features(None)}
        # The last explain() call and its answer (the filter asks twice as an utterance ends).
        self._last_explained: tuple[tuple, tuple[Verdict, bool]] = ((None, None, None), (Verdict.EMPTY, False))

    def _resolve_model(self, model, language: str) -> BackchannelModel | None:
        if model is None:
            if language in MODEL_LANGUAGES and not self._user_soft_acks:
                return default_model(language)
            return None
        if model is False:
            return None
        if model is True or isinstance(model, BackchannelModel):
            if language not in MODEL_LANGUAGES:
                raise SoftAckConfigError(
                    f"model={model if model is True else 'a BackchannelModel'} needs a language with a "
                    f"model {list(MODEL_LANGUAGES)}; language {language!r} has the lexicon only"
                )
            return default_model(language) if model is True else model
        raise SoftAckConfigError(
            f"model= must be None (auto), True, False or a BackchannelModel, got {model!r}"
        )

    @property
    def model(self) -> BackchannelModel | None:
        """The learned model in use, or None (lexicon only)."""
        return self._model

    @staticmethod
    def _tokens_of(phrase: str) -> tuple[str, ...]:
        tokens = normalize(phrase)
        if not tokens:
            raise SoftAckConfigError(f"phrase {phrase!r} has no words after normalisation")
        return tokens

    def _known_form(self, token: str) -> str:
        if token in self._vocabulary:
            return token
        single = _DOUBLE_LETTER.sub(_first_group, token)  # a function: faster than "\1"
        return single if single in self._vocabulary else token

    def classify(self, text: str, *, partial: bool = False, context: str | None = None) -> Verdict:
        """Classify the text heard so far in one utterance.

        Args:
            text: The utterance's transcript (finals joined, plus the latest interim).
            partial: True while the utterance may still grow (an interim transcript):
                trailing words that start a soft-ack ("i" of "i see", "got" of "got
                it", "oh real" of "oh really") then count as soft-acks for now, so the
                filter keeps holding instead of releasing on half a phrase.
            context: What the bot said last (its current or last sentence; of a
                longer text only the last sentence is used), or None when unknown.
                Only the model reads it: "yeah" after "Would you like me to book
                it?" is an answer, after a statement a backchannel.

        Returns:
            BACKCHANNEL, INTERRUPTION or EMPTY (see the class docstring).
        """
        if context is None:  # subclasses that override explain(text, partial=) still work
            return self.explain(text, partial=partial)[0]
        return self.explain(text, partial=partial, context=context)[0]

    def explain(
        self, text: str, *, partial: bool = False, context: str | None = None
    ) -> tuple[Verdict, bool]:
        """Like :meth:`classify`, and also say whether a command keyword decided it.

        Returns:
            ``(verdict, by_command)``: ``by_command`` is True when the verdict is
            INTERRUPTION because of a command keyword, False when it is because of a
            word in neither lexicon (content) or of the model, or when the verdict
            is not INTERRUPTION.
        """
        key = (text, partial, context)
        if key == self._last_explained[0]:
            return self._last_explained[1]
        result = self._explain(text, partial, context)
        self._last_explained = (key, result)
        return result

    def _explain(self, text: str, partial: bool, context: str | None) -> tuple[Verdict, bool]:
        tokens = tuple([self._known_form(t) for t in normalize(text)])
        if all(t == _QUESTION_MARK for t in tokens):
            return Verdict.EMPTY, False
        command, content, first_content = self._scan(tokens, partial)
        if command:
            return Verdict.INTERRUPTION, True
        model = self._model
        if model is None or (not content and (partial or self._user_soft_acks)):
            return (Verdict.INTERRUPTION, False) if content else (Verdict.BACKCHANNEL, False)
        if not content and self._model_lexicon is self and not model.knows_phrase(tokens):
            if not self._context_features(context)[1]:  # what model.decide would say, sooner
                return Verdict.BACKCHANNEL, False
        feats, lexicon_backchannel, after_question = self._features(
            tokens, content, first_content, partial, context
        )
        if model.decide(feats, lexicon_backchannel, after_question):
            return Verdict.BACKCHANNEL, False
        return Verdict.INTERRUPTION, False

    def model_inputs(
        self, text: str, *, partial: bool = False, context: str | None = None
    ) -> tuple[list[str], bool, bool] | None:
        """What the English model reads for this utterance.

        For training (``bench/train.py``) and for debugging a decision; works with or
        without a model loaded.

        Returns:
            ``(features, lexicon_backchannel, after_question)``: the feature names
            (see :mod:`pipecat_softack.model`), whether the built-in lexicon covers
            every word, whether the context is a question; or None when the model
            never sees the utterance (it is EMPTY or a command keyword decides).
        """
        tokens = tuple(self._known_form(t) for t in normalize(text))
        if all(t == _QUESTION_MARK for t in tokens):
            return None
        command, content, first_content = self._scan(tokens, partial)
        if command:
            return None
        return self._features(tokens, content, first_content, partial, context)

    def _scan(self, tokens: tuple[str, ...], partial: bool) -> tuple[bool, int, int]:
        """Segment ``tokens`` by the lexicons (see the class docstring).

        Returns:
            ``(command, content_words, first_content)``: a command keyword was found
            (the scan stops there); how many words are in neither lexicon; the index
            of the first of them (``len(tokens)`` when there is none).
        """
        content = 0
        first_content = len(tokens)
        i, n = 0, len(tokens)
        while i < n:
            # A word in no phrase starts none: straight to the else (no slicing).
            longest = min(self._max_len, n - i) if tokens[i] in self._vocabulary else 0
            for length in range(longest, 0, -1):
                command = self._phrases.get(tokens[i : i + length])
                if command is not None:
                    break
            else:
                if tokens[i] == _QUESTION_MARK:
                    i += 1
                    continue
                # A soft-ack prefix is no longer than the longest phrase: test the
                # tail only then (slicing every tail made long transcripts quadratic).
                if partial and n - i <= self._max_len and tokens[i:] in self._soft_prefixes:
                    break
                if not content:
                    first_content = i
                content += 1  # keep reading: a later command keyword decides sooner
                i += 1
                continue
            if command:
                if partial and i + length == n and tokens[i:] in self._continuations:
                    break  # "but" ending an interim: the next word tells what it leads to
                return True, content, first_content
            i += length
        return False, content, first_content

    def _context_features(self, context: str | None) -> tuple:
        """:func:`~pipecat_softack.model.context_features` of the context, cached: the
        bot's last sentence stays the same over many transcripts (a few contexts are
        kept, e.g. two sessions sharing a classifier)."""
        cache = self._context_cache
        ctx = cache.get(context)
        if ctx is None:
            ctx = context_features(_context_tokens(context))
            if len(cache) >= _CONTEXT_CACHE_SIZE:
                cache.clear()
            cache[context] = ctx
        return ctx

    def _features(
        self, tokens: tuple[str, ...], content: int, first_content: int, partial: bool, context: str | None
    ) -> tuple[list[str], bool, bool]:
        """Model features; whether the built-in lexicon covers every word; whether the
        context is a question."""
        lexicon = self._model_lexicon
        if lexicon is not self:  # a user's lists: the view of the built-in lexicon
            tokens = tuple(lexicon._known_form(t) for t in tokens)
            command, content, first_content = lexicon._scan(tokens, partial)
            if command:  # a built-in command the user dropped counts as a plain word
                content, first_content = max(content, 1), min(first_content, len(tokens) - 1)
        ctx = self._context_features(context)
        if not content:
            return features(tokens, LexiconView(True, 0, False), ctx), True, ctx[1]
        prefix = any(t != _QUESTION_MARK for t in tokens[:first_content])
        view = LexiconView(backchannel=False, content_words=content, soft_prefix=prefix)
        return features(tokens[first_content:], view, ctx), False, ctx[1]
