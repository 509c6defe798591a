"""Soft-ack settings: lexicons and timings, resolved from four sources.

Precedence, highest first (each field is resolved on its own):

1. constructor arguments (``soft_acks=``, ``command_keywords=``, ``language=``,
   ``config_file=``, ``transcript_timeout_secs=``, ``max_hold_secs=``, ``min_words=``,
   ``min_speech_secs=``, ``bot_grace_secs=``);
2. environment variables ``SOFT_ACKS`` and ``COMMAND_KEYWORDS`` (comma-separated
   phrases, as the LiveKit seed's ``LIVEKIT_SOFT_ACKS``), ``SOFT_ACK_LANGUAGE``,
   ``SOFT_ACK_CONFIG_FILE``, ``SOFT_ACK_TRANSCRIPT_TIMEOUT_SECS``,
   ``SOFT_ACK_MAX_HOLD_SECS``, ``SOFT_ACK_MIN_WORDS``, ``SOFT_ACK_MIN_SPEECH_SECS``,
   ``SOFT_ACK_BOT_GRACE_SECS``;
3. a user config file (TOML, same schema as ``configs/en.toml``);
4. the built-in defaults for the language, shipped as ``configs/<language>.toml``.

A list given at a higher level replaces the lower one (it does not extend it).

Environment values are read leniently but never guessed at: surrounding whitespace
is ignored (a blank value is still an error where a value is needed), phrases may be
separated by commas (``,``, the full-width ``，`` and ``、``) or line breaks, and a
``;`` or ``|`` inside a phrase is refused with an error naming the value, since it
is almost surely a separator.
Standard library only, so the decision core stays testable without Pipecat.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ENV_SOFT_ACKS = "SOFT_ACKS"
ENV_COMMAND_KEYWORDS = "COMMAND_KEYWORDS"
ENV_LANGUAGE = "SOFT_ACK_LANGUAGE"
ENV_CONFIG_FILE = "SOFT_ACK_CONFIG_FILE"
ENV_TRANSCRIPT_TIMEOUT = "SOFT_ACK_TRANSCRIPT_TIMEOUT_SECS"
ENV_MAX_HOLD = "SOFT_ACK_MAX_HOLD_SECS"
ENV_MIN_WORDS = "SOFT_ACK_MIN_WORDS"
ENV_MIN_SPEECH = "SOFT_ACK_MIN_SPEECH_SECS"
ENV_BOT_GRACE = "SOFT_ACK_BOT_GRACE_SECS"

DEFAULT_LANGUAGE = "en"

# What separates phrases in SOFT_ACKS / COMMAND_KEYWORDS; and what must not be in one.
_ENV_SEPARATORS = re.compile("[,\uff0c\u3001\r\n]")
_NOT_SEPARATORS = (";", "|")


class SoftAckConfigError(ValueError):
    """A soft-ack setting is invalid; the message names the bad value and its source."""


@dataclass(frozen=True)
class SoftAckSettings:
    """Resolved settings for the classifier and the filter.

    Attributes:
        language: Language code of the built-in defaults used, e.g. ``"en"``.
        soft_acks: Backchannel phrases, as written (normalised by the classifier).
        command_keywords: Phrases that always make an utterance an interruption.
        transcript_timeout_secs: Seconds to wait after the user's speech stops for a
            final transcript before deciding (default 1.0, from ``configs/en.toml``).
        max_hold_secs: Seconds an undecided utterance may be held while the user
            keeps speaking before it is released (default 3.0).
        min_words: Words an utterance needs before it may interrupt (default 0: off;
            the legacy voice assistant's ``interrupt_min_words``). Command keywords
            are exempt, so "stop" always works.
        min_speech_secs: Seconds of speech an utterance needs before it may interrupt
            (default 0.0: off; the legacy ``interrupt_speech_duration``). Command
            keywords are exempt.
        bot_grace_secs: Seconds at the start of each bot utterance during which
            nothing interrupts it (default 0.0: off); an interruption in that time
            takes effect when it ends.
        continuation_keywords: Command keywords that introduce what the user wants
            to say ("but", "though"): one that ends an interim transcript waits for
            the next word (a config file's ``continuation_keywords`` list, else the
            built-in one; default empty).
    """

    language: str
    soft_acks: tuple[str, ...]
    command_keywords: tuple[str, ...]
    transcript_timeout_secs: float
    max_hold_secs: float
    min_words: int = 0
    min_speech_secs: float = 0.0
    bot_grace_secs: float = 0.0
    continuation_keywords: tuple[str, ...] = ()


def available_languages() -> list[str]:
    """Language codes that have built-in defaults (``configs/<code>.toml``)."""
    return sorted(
        p.name.removesuffix(".toml")
        for p in resources.files("pipecat_softack.configs").iterdir()
        if p.name.endswith(".toml")
    )


def load_settings(
    *,
    language: str | None = None,
    soft_acks: Iterable[str] | None = None,
    command_keywords: Iterable[str] | None = None,
    config_file: str | os.PathLike | None = None,
    transcript_timeout_secs: float | None = None,
    max_hold_secs: float | None = None,
    min_words: int | None = None,
    min_speech_secs: float | None = None,
    bot_grace_secs: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> SoftAckSettings:
    """Resolve settings by the precedence in this module's docstring.

    Args:
        language: Code of the built-in defaults (``"en"``, ``"es"``); default ``"en"``.
        soft_acks: Backchannel phrases replacing every lower source.
        command_keywords: Command phrases replacing every lower source.
        config_file: Path of a TOML file with ``soft_acks``, ``command_keywords``
            (lists, or tables of lists) and a ``[timings]`` table.
        transcript_timeout_secs: Seconds, > 0.
        max_hold_secs: Seconds, > 0.
        min_words: Words, >= 0.
        min_speech_secs: Seconds, >= 0.
        bot_grace_secs: Seconds, >= 0.
        environ: Environment to read; defaults to ``os.environ``.

    Returns:
        The resolved :class:`SoftAckSettings`.

    Raises:
        SoftAckConfigError: unknown language, unreadable or malformed config file,
            an empty phrase list, a phrase in an environment variable holding ``;``
            or ``|``, a timeout that is not a positive number, or a threshold that
            is negative. The message names the value and where it came from.
    """
    env = os.environ if environ is None else environ

    lang = language or (_env(env, ENV_LANGUAGE) or "").lower() or DEFAULT_LANGUAGE
    if lang not in available_languages():
        source = "language=" if language else f"{ENV_LANGUAGE}=" if _env(env, ENV_LANGUAGE) else ""
        raise SoftAckConfigError(
            f"unknown language {source}{lang!r}; built-in languages: {available_languages()}"
        )
    builtin = _read_toml(resources.files("pipecat_softack.configs") / f"{lang}.toml", f"built-in {lang}.toml")

    path = config_file or _env(env, ENV_CONFIG_FILE)
    user = _read_toml(Path(path), f"config file {str(path)!r}") if path else {}
    user_timings = user.get("timings", {})
    builtin_timings = builtin.get("timings", {})

    def phrases(arg, arg_name, env_name, key):
        if arg is not None:
            return _check_phrases(arg if isinstance(arg, str) else list(arg), f"{arg_name}=")
        if _env(env, env_name) is not None:
            return _env_phrases(_env(env, env_name), f"environment variable {env_name}")
        if key in user:
            return _check_phrases(_flatten(user[key], f"{key} in {path}"), f"{key} in {path}")
        return _check_phrases(_flatten(builtin[key], key), f"{key} in built-in {lang}.toml")

    def continuations():
        key = "continuation_keywords"
        if key in user:
            return _check_phrases(_flatten(user[key], f"{key} in {path}"), f"{key} in {path}")
        if key in builtin:
            return _check_phrases(_flatten(builtin[key], key), f"{key} in built-in {lang}.toml")
        return ()

    def seconds(arg, arg_name, env_name, check=None, default=None):
        check = check or _check_seconds
        if arg is not None:
            return check(arg, f"{arg_name}=")
        if _env(env, env_name) is not None:
            return check(_env(env, env_name), f"environment variable {env_name}")
        if arg_name in user_timings:
            return check(user_timings[arg_name], f"timings.{arg_name} in {path}")
        if arg_name in builtin_timings:
            return check(builtin_timings[arg_name], f"timings.{arg_name} in {lang}.toml")
        return default

    return SoftAckSettings(
        language=lang,
        soft_acks=phrases(soft_acks, "soft_acks", ENV_SOFT_ACKS, "soft_acks"),
        command_keywords=phrases(
            command_keywords, "command_keywords", ENV_COMMAND_KEYWORDS, "command_keywords"
        ),
        transcript_timeout_secs=seconds(
            transcript_timeout_secs, "transcript_timeout_secs", ENV_TRANSCRIPT_TIMEOUT
        ),
        max_hold_secs=seconds(max_hold_secs, "max_hold_secs", ENV_MAX_HOLD),
        min_words=seconds(min_words, "min_words", ENV_MIN_WORDS, _check_count, 0),
        min_speech_secs=seconds(
            min_speech_secs, "min_speech_secs", ENV_MIN_SPEECH, _check_nonnegative, 0.0
        ),
        bot_grace_secs=seconds(
            bot_grace_secs, "bot_grace_secs", ENV_BOT_GRACE, _check_nonnegative, 0.0
        ),
        continuation_keywords=continuations(),
    )


def _env(env: Mapping[str, str], name: str) -> str | None:
    """An environment variable's value without surrounding whitespace; None if unset."""
    value = env.get(name)
    return None if value is None else value.strip()


def _env_phrases(value: str, source: str) -> tuple[str, ...]:
    """Phrases from an environment value: separated by commas or line breaks."""
    parts = _ENV_SEPARATORS.split(value)
    for part in parts:
        for sep in _NOT_SEPARATORS:
            if sep in part:
                raise SoftAckConfigError(
                    f"{source} holds {part.strip()!r}: separate phrases with commas, not {sep!r}"
                )
    return _check_phrases(parts, source)


# Parsed user config files by (path, mtime_ns, size): every session's filter reads the
# same file, and a 100,000-phrase file takes 0.2 s to parse. Never mutated.
_TOML_CACHE: dict[tuple[str, int, int], dict] = {}
_TOML_CACHE_SIZE = 8


def _read_toml(path, what: str) -> dict:
    try:
        key = None
        if isinstance(path, Path):
            stat = path.stat()
            key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
            if key in _TOML_CACHE:
                return _TOML_CACHE[key]
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SoftAckConfigError(f"cannot read {what}: {e}") from e
    if key is not None:
        if len(_TOML_CACHE) >= _TOML_CACHE_SIZE:
            _TOML_CACHE.pop(next(iter(_TOML_CACHE)))
        _TOML_CACHE[key] = data
    return data


def _flatten(value, what: str) -> list[str]:
    """A list of phrases, or a table of category -> list (as in configs/en.toml)."""
    if isinstance(value, dict):
        return [p for group in value.values() for p in _flatten(group, what)]
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return value
    raise SoftAckConfigError(f"{what} must be a list of strings or a table of lists, got {value!r}")


def _check_phrases(raw: list, source: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raise SoftAckConfigError(f"{source} must be a list of phrases, not the string {raw!r}")
    phrases = []
    for p in raw:
        if not isinstance(p, str):
            raise SoftAckConfigError(f"{source} holds {p!r}, which is not a string")
        if p.strip():
            phrases.append(p.strip())
    if not phrases:
        raise SoftAckConfigError(f"{source} is empty: {raw!r}")
    return tuple(phrases)


def _check_seconds(value, source: str) -> float:
    try:
        secs = float(value)
    except (TypeError, ValueError):
        raise SoftAckConfigError(f"{source} must be a number of seconds, got {value!r}") from None
    if not secs > 0 or secs == float("inf"):
        raise SoftAckConfigError(f"{source} must be a positive number of seconds, got {value!r}")
    return secs


def _check_nonnegative(value, source: str) -> float:
    if value in (0, "0", 0.0):
        return 0.0
    try:
        return _check_seconds(value, source)
    except SoftAckConfigError:
        raise SoftAckConfigError(
            f"{source} must be a number of seconds >= 0, got {value!r}"
        ) from None


def _check_count(value, source: str) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise SoftAckConfigError(f"{source} must be a whole number, got {value!r}") from None
    if count < 0 or count != float(value):
        raise SoftAckConfigError(f"{source} must be a whole number >= 0, got {value!r}")
    return count


def check_content_confirmations(value) -> int:
    """Validate ``content_confirmations=`` (an integer >= 1) for the filter and strategy."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SoftAckConfigError(f"content_confirmations= must be an integer >= 1, got {value!r}")
    return value


def check_interim_min_speech(value) -> float:
    """Validate ``interim_min_speech_secs=`` (seconds >= 0) for the filter and strategy."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0 <= value < float("inf"):
        raise SoftAckConfigError(f"interim_min_speech_secs= must be a number of seconds >= 0, got {value!r}")
    return float(value)
