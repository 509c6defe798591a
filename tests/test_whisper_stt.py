"""The embedded Whisper ear (bot/whisper_stt.py): the model located in the two PyPI
packages and assembled once, Pipecat's WhisperSTTService on it, and the hybrid ear's
command-keyword gate on PocketSphinx interims."""

from __future__ import annotations

from importlib import metadata

import pytest
from pipecat.frames.frames import InterimTranscriptionFrame, TranscriptionFrame

from bench.audio_io import CLIPS_DIR, read_wav
from bot import whisper_stt
from bot.pocketsphinx_stt import SttEvent
from bot.whisper_stt import (
    WHISPER_BASE_DISTS,
    WhisperModelError,
    create_command_word_stt,
    create_hybrid_stt,
    create_whisper_stt,
    whisper_model_dir,
)


def _part(n: int):
    dist = metadata.distribution(WHISPER_BASE_DISTS[n - 1])
    f = next(f for f in dist.files if f.name == f"model.bin.part{n}")
    return dist.locate_file(f)


def test_model_bin_is_the_two_parts_concatenated_and_assembled_once(tmp_path):
    d = whisper_model_dir(tmp_path)
    p1, p2 = _part(1), _part(2)
    model = d / "model.bin"
    assert {p.name for p in d.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    assert model.stat().st_size == p1.stat().st_size + p2.stat().st_size
    with open(model, "rb") as m, open(p1, "rb") as a, open(p2, "rb") as b:
        assert m.read(4096) == a.read(4096)
        m.seek(p1.stat().st_size)
        assert m.read(4096) == b.read(4096)
    stamp = model.stat().st_mtime_ns
    assert whisper_model_dir(tmp_path) == d
    assert model.stat().st_mtime_ns == stamp  # reused, not rewritten


def test_a_truncated_model_is_rebuilt(tmp_path):
    d = whisper_model_dir(tmp_path)
    full = (d / "model.bin").stat().st_size
    with open(d / "model.bin", "r+b") as f:
        f.truncate(1000)  # an interrupted copy from some other tool
    assert (whisper_model_dir(tmp_path) / "model.bin").stat().st_size == full
    assert not list(d.glob("*.tmp"))


def test_a_missing_package_is_named(monkeypatch, tmp_path):
    real = metadata.distribution

    def distribution(name):
        if name == WHISPER_BASE_DISTS[1]:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(whisper_stt.metadata, "distribution", distribution)
    with pytest.raises(WhisperModelError, match=WHISPER_BASE_DISTS[1]):
        whisper_model_dir(tmp_path)


@pytest.fixture(scope="module")
def whisper():
    return create_whisper_stt()


async def _transcribe(stt, clip: str) -> str:
    frames = [f async for f in stt.run_stt(read_wav(CLIPS_DIR / clip) + bytes(16000))]
    return " ".join(f.text for f in frames if isinstance(f, TranscriptionFrame))


async def test_pipecats_whisper_service_transcribes_a_command(whisper):
    from pipecat.services.whisper.stt import WhisperSTTService

    assert isinstance(whisper, WhisperSTTService)
    assert "wait" in (await _transcribe(whisper, "wait__joe.wav")).lower()


async def test_the_model_is_loaded_once_per_process(whisper):
    assert create_whisper_stt()._model is whisper._model


async def test_noise_gives_no_transcript(whisper):
    assert await _transcribe(whisper, "noise_keyboard.wav") == ""


async def test_the_command_word_stt_passes_command_interims_only():
    stt = create_command_word_stt()
    pushed = []

    async def push_frame(frame, direction=None):
        pushed.append(frame)

    stt.push_frame = push_frame
    for kind, text in [("interim", "mama"), ("interim", "wait"), ("interim", "okay"),
                       ("interim", "yeah hold on"), ("final", "wait")]:  # fmt: skip
        await stt._handle_event(SttEvent(kind, text, 0.0))
    assert [(type(f), f.text) for f in pushed] == [
        (InterimTranscriptionFrame, "wait"),
        (InterimTranscriptionFrame, "yeah hold on"),
    ]


def test_the_hybrid_ear_is_pocketsphinx_then_whisper():
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.services.whisper.stt import WhisperSTTService

    from bot.pocketsphinx_stt import PocketsphinxSTTService

    hybrid = create_hybrid_stt()
    assert isinstance(hybrid, Pipeline)
    inner = [p for p in hybrid.processors if isinstance(p, (PocketsphinxSTTService, WhisperSTTService))]
    assert [type(p).__mro__[1] for p in inner] == [PocketsphinxSTTService, WhisperSTTService]


def test_the_bot_waits_longer_for_whispers_final():
    from bot.services import choose_services, transcript_timeout_secs

    for ear in ("whisper", "hybrid"):
        assert transcript_timeout_secs(choose_services(ear, "local", "piper", environ={})) == 3.0
    assert transcript_timeout_secs(choose_services("pocketsphinx", "local", "piper", environ={})) is None
