"""Which STT, LLM and TTS the reference bot uses: cloud services when their keys are
set, the embedded offline stack otherwise.

Each service is chosen on its own, by flag (``--stt``, ``--llm``, ``--tts``) or,
with ``auto`` (the default), by whether its key is in the environment (``.env`` is
read by ``run.py`` with python-dotenv):

=====  =================================  ==========================================
kind   cloud (key)                        offline default (ships inside a package)
=====  =================================  ==========================================
STT    Deepgram (``DEEPGRAM_API_KEY``)    see :data:`OFFLINE_STT` (``--stt``)
LLM    OpenAI (``OPENAI_API_KEY``)        SmolLM2-135M-Instruct via llama.cpp server
TTS    Cartesia (``CARTESIA_API_KEY``)    Piper, voice en_US-joe-medium
=====  =================================  ==========================================

``--llm-base-url`` points the LLM at any OpenAI-compatible server (Ollama, vLLM,
a llama.cpp server) instead.

Offline ears (``--stt``), all embedded in PyPI packages of the ``offline`` extra:

* ``pocketsphinx``: streaming PocketSphinx en-us with interims (``bot/pocketsphinx_stt.py``);
* ``whisper``: Pipecat's ``WhisperSTTService`` on Whisper base (``bot/whisper_stt.py``),
  one final per VAD segment, no interims;
* ``hybrid``: PocketSphinx interims that hold a command keyword (immediate release
  on "wait", "stop") and Whisper for every final (``bot.whisper_stt.create_hybrid_stt``).

The default offline ear (:data:`OFFLINE_STT`) stays ``pocketsphinx``, chosen on the
tuned clips only (``tests/audio/clips.tsv`` and ``bench audio``'s default mix built from
them), never on the open-vocabulary clips (``tests/audio/open``). Full runs of
``python -m bench audio`` (seed 20260521, 210 tuned scenarios, ``ours-filter``):
``--stt pocketsphinx`` stopped on 40.0 % of the sounds to ignore and missed 3.5 % of
the interruptions (median onset to ``InterruptionFrame`` on command words 524 ms, p95
1018 ms); ``--stt hybrid`` stopped on 24.8 % but missed 12.9 % (919 ms, p95 2409 ms),
Whisper's finals coming 1-4 s after the speech on the shared 2 cores (that run had a
load of 4-7, the PocketSphinx run 1.5-2.5). Fewer false stops do not pay for four
times the missed interruptions, the costly error, so ``hybrid`` is not the default;
``whisper`` alone (no interims) missed 3 of 6 interruptions of a 15-scenario slice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from loguru import logger

CLOUD_KEYS = {"deepgram": "DEEPGRAM_API_KEY", "openai": "OPENAI_API_KEY", "cartesia": "CARTESIA_API_KEY"}
CHOICES = {
    "stt": ("auto", "deepgram", "pocketsphinx", "whisper", "hybrid"),
    "llm": ("auto", "openai", "local"),
    "tts": ("auto", "cartesia", "piper"),
}
_CLOUD = {"stt": "deepgram", "llm": "openai", "tts": "cartesia"}
#: The offline ears (``--stt``); see the module docstring.
OFFLINE_STTS = ("pocketsphinx", "whisper", "hybrid")
#: The default offline ear: see the module docstring for the evidence.
OFFLINE_STT = "pocketsphinx"
_OFFLINE = {"stt": OFFLINE_STT, "llm": "local", "tts": "piper"}
DEFAULT_OPENAI_MODEL = "gpt-4.1-mini"
# Cartesia's "British Reading Lady" stock voice, from Pipecat's examples.
DEFAULT_CARTESIA_VOICE = "71a7ad14-091c-4e8e-a314-022ece01c121"


class MissingKeyError(RuntimeError):
    """A cloud service was asked for but its API key is not set."""


@dataclass(frozen=True)
class ServiceChoice:
    """The resolved service per kind, e.g. ``ServiceChoice("deepgram", "local", "piper")``.

    Attributes:
        stt: ``"deepgram"``, or an offline ear: ``"pocketsphinx"``, ``"whisper"``,
            ``"hybrid"``.
        llm: ``"openai"`` or ``"local"`` (``"openai"`` also covers ``--llm-base-url``).
        tts: ``"cartesia"`` or ``"piper"``.
        llm_base_url: OpenAI-compatible server to use instead of OpenAI, or None.
        llm_model: Model name for the LLM, or None for the default.
    """

    stt: str
    llm: str
    tts: str
    llm_base_url: str | None = None
    llm_model: str | None = None

    @property
    def offline(self) -> bool:
        """True when nothing needs the network."""
        return (
            self.stt in OFFLINE_STTS
            and self.tts == "piper"
            and (self.llm == "local" or self.llm_base_url is not None)
        )


def choose_services(
    stt: str = "auto",
    llm: str = "auto",
    tts: str = "auto",
    *,
    llm_base_url: str | None = None,
    llm_model: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServiceChoice:
    """Resolve ``auto`` per service and check keys before anything connects.

    Args:
        stt: ``auto``, ``deepgram``, ``pocketsphinx``, ``whisper`` or ``hybrid``.
        llm: ``auto``, ``openai`` or ``local``; ignored when ``llm_base_url`` is set.
        tts: ``auto``, ``cartesia`` or ``piper``.
        llm_base_url: An OpenAI-compatible server's base URL (``.../v1``).
        llm_model: Model name to ask that server (or OpenAI) for.
        environ: Environment to read keys from; defaults to ``os.environ``.

    Returns:
        The :class:`ServiceChoice`.

    Raises:
        ValueError: an unknown choice.
        MissingKeyError: a cloud service was asked for without its key; the message
            names the missing variable.
    """
    env = os.environ if environ is None else environ
    chosen = {}
    for kind, value in (("stt", stt), ("llm", llm), ("tts", tts)):
        if value not in CHOICES[kind]:
            raise ValueError(f"--{kind} {value!r} is not one of {CHOICES[kind]}")
        if kind == "llm" and llm_base_url:
            value = "openai"  # the OpenAI client, pointed at the given server
        elif value == "auto":
            value = _CLOUD[kind] if env.get(CLOUD_KEYS[_CLOUD[kind]]) else _OFFLINE[kind]
        elif value in CLOUD_KEYS and not env.get(CLOUD_KEYS[value]):
            raise MissingKeyError(
                f"--{kind} {value} needs the environment variable {CLOUD_KEYS[value]} "
                f"(set it in .env), or use --{kind} {_OFFLINE[kind]} to run offline"
            )
        chosen[kind] = value
    return ServiceChoice(**chosen, llm_base_url=llm_base_url, llm_model=llm_model)


def create_stt(choice: ServiceChoice, environ: Mapping[str, str] | None = None):
    """Build the STT: Deepgram streaming with interim results, or an offline ear.

    ``hybrid`` returns a Pipecat ``Pipeline`` of two processors (PocketSphinx for
    command-keyword interims, then Whisper); the others one STT service.
    """
    env = os.environ if environ is None else environ
    if choice.stt == "deepgram":
        from pipecat.services.deepgram.stt import DeepgramSTTService

        return DeepgramSTTService(
            api_key=env[CLOUD_KEYS["deepgram"]],
            settings=DeepgramSTTService.Settings(interim_results=True, smart_format=True),
        )
    if choice.stt == "whisper":
        from bot.whisper_stt import create_whisper_stt

        return create_whisper_stt()
    if choice.stt == "hybrid":
        from bot.whisper_stt import create_hybrid_stt

        return create_hybrid_stt()
    from bot.pocketsphinx_stt import PocketsphinxSTTService

    return PocketsphinxSTTService()


def transcript_timeout_secs(choice: ServiceChoice) -> float | None:
    """The ``SoftAckInterruptionFilter(transcript_timeout_secs=...)`` the chosen STT
    needs, in seconds, or None for the filter's own setting (default 1.0 s).

    Whisper's final comes one transcription after the VAD stop (p99 2.65 s on 2 busy
    cores, ``python -m bench stt --set tuned --stt whisper``), later than the filter's
    1 s default: with ``whisper`` and ``hybrid`` it is
    ``bot.whisper_stt.WHISPER_TRANSCRIPT_TIMEOUT_SECS`` (3.0 s).
    """
    if choice.stt in ("whisper", "hybrid"):
        from bot.whisper_stt import WHISPER_TRANSCRIPT_TIMEOUT_SECS

        return WHISPER_TRANSCRIPT_TIMEOUT_SECS
    return None


def create_llm(
    choice: ServiceChoice,
    environ: Mapping[str, str] | None = None,
    *,
    system_instruction: str | None = None,
):
    """Build the LLM service: OpenAI (or an OpenAI-compatible server), or the local one,
    with ``system_instruction`` as its system prompt."""
    env = os.environ if environ is None else environ
    if choice.llm == "openai":
        from pipecat.services.openai.llm import OpenAILLMService

        if choice.llm_base_url:
            logger.info(f"LLM: OpenAI-compatible server at {choice.llm_base_url}")
            return OpenAILLMService(
                api_key=env.get(CLOUD_KEYS["openai"]) or "none",
                base_url=choice.llm_base_url,
                settings=OpenAILLMService.Settings(
                    model=choice.llm_model or "default", system_instruction=system_instruction
                ),
            )
        return OpenAILLMService(
            api_key=env[CLOUD_KEYS["openai"]],
            settings=OpenAILLMService.Settings(
                model=choice.llm_model or DEFAULT_OPENAI_MODEL, system_instruction=system_instruction
            ),
        )
    from bot.local_llm import create_local_llm_service

    return create_local_llm_service(system_instruction=system_instruction)


def create_tts(choice: ServiceChoice, environ: Mapping[str, str] | None = None):
    """Build the TTS service: Cartesia, or Piper with the bundled voice."""
    env = os.environ if environ is None else environ
    if choice.tts == "cartesia":
        from pipecat.services.cartesia.tts import CartesiaTTSService

        return CartesiaTTSService(
            api_key=env[CLOUD_KEYS["cartesia"]],
            settings=CartesiaTTSService.Settings(
                voice=env.get("CARTESIA_VOICE_ID", DEFAULT_CARTESIA_VOICE)
            ),
        )
    from bot.piper_tts import create_piper_tts_service

    return create_piper_tts_service()


def preload(choice: ServiceChoice) -> None:
    """Load what is shared by all sessions once, before the first one.

    The local LLM server is started here (it loads the GGUF model once per process),
    and the Piper voice is loaded into the per-process cache of :mod:`bot.piper_tts`;
    with the whisper or hybrid ear, Whisper's model is assembled (once per machine)
    and loaded into the per-process cache of :mod:`bot.whisper_stt`; with the
    pocketsphinx or hybrid ear, a PocketSphinx decoder process is spawned into the
    pool of :mod:`bot.pocketsphinx_stt` (it loads its model in the background, so the
    first session does not wait 1-2 s for it).
    """
    if choice.stt in ("pocketsphinx", "hybrid"):
        from bot.pocketsphinx_stt import preload as preload_pocketsphinx

        preload_pocketsphinx()
    if choice.stt in ("whisper", "hybrid"):
        from bot.whisper_stt import create_whisper_stt

        create_whisper_stt()
    if choice.tts == "piper":
        from bot.piper_tts import create_piper_tts_service

        create_piper_tts_service()
    if choice.llm == "local":
        from bot.local_llm import get_shared_local_llm_server

        get_shared_local_llm_server().start()
