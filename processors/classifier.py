"""The decision core: is what the user said while the bot talks a backchannel?

Pure Python, no Pipecat import, so it can be tested and benchmarked on text alone.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from enum import Enum

from pipecat_softack.config import SoftAckConfigError, SoftAckSettings, load_settings


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


def normalize(text: str) -> tuple[str, ...]:
    """Turn a transcript into the tokens the lexicons are matched on.

    Lower case; accents removed ("sí" -> "si"); apostrophes removed ("that's" ->
    "thats"); "o.k." -> "ok"; a question mark becomes a token of its own ("huh?" ->
    "huh ?"), because "huh?" asks for a repair where "huh" is a news marker; hyphens
    and other punctuation become spaces ("uh-huh" -> "uh huh"); a letter repeated
    three or more times is cut to two ("hmmm" -> "hmm", "yeahhh" -> "yeahh"; the
    classifier then tries the word with doubled letters single, "yeah").

    Args:
        text: A transcript, any case and punctuation.

    Returns:
        The tokens, possibly empty.
    """
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("'", "").replace("\u2019", "").replace("`", "")
    text = _DOTTED_LETTERS.sub(r"\1", text)
    text = _PUNCTUATION.sub(" ", text).replace(_QUESTION_MARK, f" {_QUESTION_MARK} ")
    text = _ELONGATION.sub(r"\1\1", text)
    return tuple(text.split())


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

    Args:
        soft_acks: Backchannel phrases; replaces every lower-precedence source.
        command_keywords: Phrases that always interrupt; replaces lower sources.
        language: Built-in defaults to use (``"en"``, ``"es"``); default ``"en"``
            or the ``SOFT_ACK_LANGUAGE`` environment variable.
        config_file: TOML file overriding the built-in lists (see
            :mod:`pipecat_softack.config` for the precedence with the environment).
        settings: Already-resolved settings; excludes the four arguments above.

    Raises:
        SoftAckConfigError: bad settings (see :func:`pipecat_softack.config.load_settings`),
            a phrase that normalises to nothing, or ``settings`` given together with
            another argument.
    """

    def __init__(
        self,
        *,
        soft_acks: Iterable[str] | None = None,
        command_keywords: Iterable[str] | None = None,
        language: str | None = None,
        config_file: str | os.PathLike | None = None,
        settings: SoftAckSettings | None = None,
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

        self._phrases: dict[tuple[str, ...], bool] = {}  # tokens -> is a command keyword
        for phrase in settings.soft_acks:
            self._phrases[self._tokens_of(phrase)] = False
        for phrase in settings.command_keywords:
            self._phrases[self._tokens_of(phrase)] = True
        self._max_len = max(len(p) for p in self._phrases)
        self._vocabulary = {t for p in self._phrases for t in p}
        # What an interim transcript may end with while the soft-ack is still being
        # said: the start of a multi-word soft-ack ("i" of "i see"), possibly cut
        # inside its last word ("oh real" of "oh really": STTs stream word pieces).
        self._soft_prefixes = {
            p[:k] + (p[k][:j],)
            for p, command in self._phrases.items()
            if not command
            for k in range(len(p))
            for j in range(1, len(p[k]) + 1)
        }

    @staticmethod
    def _tokens_of(phrase: str) -> tuple[str, ...]:
        tokens = normalize(phrase)
        if not tokens:
            raise SoftAckConfigError(f"phrase {phrase!r} has no words after normalisation")
        return tokens

    def _known_form(self, token: str) -> str:
        if token in self._vocabulary:
            return token
        single = _DOUBLE_LETTER.sub(r"\1", token)
        return single if single in self._vocabulary else token

    def classify(self, text: str, *, partial: bool = False) -> Verdict:
        """Classify the text heard so far in one utterance.

        Args:
            text: The utterance's transcript (finals joined, plus the latest interim).
            partial: True while the utterance may still grow (an interim transcript):
                trailing words that start a soft-ack ("i" of "i see", "got" of "got
                it", "oh real" of "oh really") then count as soft-acks for now, so the
                filter keeps holding instead of releasing on half a phrase.

        Returns:
            BACKCHANNEL, INTERRUPTION or EMPTY (see the class docstring).
        """
        return self.explain(text, partial=partial)[0]

    def explain(self, text: str, *, partial: bool = False) -> tuple[Verdict, bool]:
        """Like :meth:`classify`, and also say whether a command keyword decided it.

        Returns:
            ``(verdict, by_command)``: ``by_command`` is True when the verdict is
            INTERRUPTION because of a command keyword, False when it is because of a
            word in neither lexicon (content) or when the verdict is not INTERRUPTION.
        """
        tokens = tuple(self._known_form(t) for t in normalize(text))
        if all(t == _QUESTION_MARK for t in tokens):
            return Verdict.EMPTY, False
        content = False
        i, n = 0, len(tokens)
        while i < n:
            for length in range(min(self._max_len, n - i), 0, -1):
                command = self._phrases.get(tokens[i : i + length])
                if command is not None:
                    break
            else:
                if tokens[i] == _QUESTION_MARK:
                    i += 1
                    continue
                if partial and tokens[i:] in self._soft_prefixes:
                    break
                content = True  # keep reading: a later command keyword decides sooner
                i += 1
                continue
            if command:
                return Verdict.INTERRUPTION, True
            i += length
        return (Verdict.INTERRUPTION, False) if content else (Verdict.BACKCHANNEL, False)
