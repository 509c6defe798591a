"""Echo rejection: is what the STT heard the bot's own recent words coming back?

On a laptop without headphones the microphone hears the bot, and the STT transcribes
it, with recognizer errors ("i'm pretty", "i but per"). Pure Python, no Pipecat import.

The rule (:func:`echo_explains`): every word heard must be explained by a word the bot
played since shortly before the user's speech began; a word is explained by the same
word, or, for words of four letters or more, by a bot word that it is a prefix of or
that is similar enough (``difflib`` ratio at least ``min_ratio``, which tolerates
recognizer errors such as "pretty"/"pritty"). Short words (three letters or fewer,
"no", "not", "now") must match exactly, so "no" is never taken for the bot's "not".
By default every word must be explained (``min_share=1.0``): one word of the
user's own makes the utterance theirs, so "wait, the price?" interrupts even while
the bot is saying "the price is" (the bot never said "wait"), and "yes, the blue one"
interrupts a bot listing "the blue one or the green one". A lower ``min_share`` lets
that share of words be recognizer errors no bot word explains, except in an utterance
holding a command keyword, where every word must be one the bot said, exactly
(so "wait" is never the echo of the bot's "want"). A user who
only repeats the bot's own recent words, with nothing of their own ("the green
one"), is taken for echo: text alone cannot tell them apart.

Echo under speech (:func:`echo_residue`): when the user speaks over the bot, the STT
hears both, and the user's "yeah" comes out as "it yeah" or "the story yeah". The
filter takes away the words the bot's recent words explain (same test as above) and
judges the rest, the user's own words, alone, with the same context: a backchannel if
it is one. It does so only when the echo comes first: an utterance that opens with
the user's own words and goes on with the bot's ("yes, the blue one", "okay, the
green one") is the user choosing among what the bot said, and "tell me more about
the dog" keeps "tell me more about". An utterance holding a command keyword (the
user's "but" or "stop" counts even while the bot says it) or a question mark ("yeah,
the price?") is never taken apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher

# Defaults, chosen on the reasoning above (not fitted on any set): a recognizer error
# keeps most letters of a word ("pretty" -> "pritty" is 0.83); every word explained,
# because dropping a real barge-in costs more than letting an echo through.
DEFAULT_MIN_RATIO = 0.75
DEFAULT_MIN_SHARE = 1.0
_SHORT = 3  # letters; words this short must match exactly


def _explained(word: str, bot: set[str], min_ratio: float) -> bool:
    if word in bot:
        return True
    if len(word) <= _SHORT:
        return False
    for b in bot:
        if len(b) > _SHORT and (
            b.startswith(word) or SequenceMatcher(None, word, b).ratio() >= min_ratio
        ):
            return True
    return False


def echo_residue(
    heard: Sequence[str],
    bot_words: Iterable[str],
    *,
    min_ratio: float = DEFAULT_MIN_RATIO,
) -> list[str]:
    """The words heard that the bot's recent words do not explain, in their order.

    Args:
        heard: The utterance's tokens (``normalize`` output); ``"?"`` is kept.
        bot_words: Tokens the bot played around the utterance.
        min_ratio: As in :func:`echo_explains` (default 0.75).

    Returns:
        ``heard`` without its explained words; all of ``heard`` when the bot said
        nothing.

    Raises:
        ValueError: ``min_ratio`` outside (0, 1].
    """
    if not 0 < min_ratio <= 1:
        raise ValueError(f"min_ratio must be in (0, 1], got {min_ratio!r}")
    bot = set(bot_words)
    if not bot:
        return list(heard)
    return [w for w in heard if w == "?" or not _explained(w, bot, min_ratio)]


def echo_explains(
    heard: Sequence[str],
    bot_words: Iterable[str],
    *,
    has_command: bool = False,
    min_ratio: float = DEFAULT_MIN_RATIO,
    min_share: float = DEFAULT_MIN_SHARE,
) -> bool:
    """Whether the bot's recent words explain the words heard (see the module rule).

    Args:
        heard: The utterance's tokens (``normalize`` output); ``"?"`` is ignored.
        bot_words: Tokens the bot played around the utterance.
        has_command: The utterance holds a command keyword: every word must be one
            of ``bot_words`` exactly.
        min_ratio: Similarity (0..1) at which a word of four letters or more is
            explained by a bot word (default 0.75).
        min_share: Share (0..1] of words that must be explained (default 1.0).

    Returns:
        False for an utterance with no words or when the bot said nothing.

    Raises:
        ValueError: ``min_ratio`` or ``min_share`` outside (0, 1].
    """
    for name, value in (("min_ratio", min_ratio), ("min_share", min_share)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    words = [w for w in heard if w != "?"]
    bot = set(bot_words)
    if not words or not bot:
        return False
    if has_command:
        # Exact words only: a command must never be taken for a near bot word
        # ("wait" is 0.75 like "want").
        return all(w in bot for w in words)
    explained = sum(_explained(w, bot, min_ratio) for w in words)
    return explained >= min_share * len(words)
