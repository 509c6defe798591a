"""Scripted barge-in scenarios for ``python -m bench audio`` (bench/audio.py).

A scenario is one short stretch of a conversation: the bot starts a long answer
(Piper audio, played on a real-time output timeline) and, while it talks, one
user sound reaches the microphone at a set offset:

* ``backchannel``: a BACKCHANNEL clip of ``tests/audio`` ("yeah", "uh-huh", ...).
  The bot should keep talking.
* ``interruption``: a TURN clip ("wait", "no stop", "actually i have a
  question", ...). The bot should stop.
* ``mixed``: a backchannel that turns into an interruption: the committed
  "yeah but what about the price" clips, and a backchannel clip followed by a
  command clip of the same voice ("okay" + "hold on" = "okay hold on"). The bot
  should stop.
* ``noise``: a NOISE clip (breath, cough, keyboard, hum) varied in numpy: gain,
  time reversal, resampling (pitch and length), two noises mixed. The bot
  should keep talking.
* ``echo``: the bot's own answer leaking into the microphone: the stretch of the
  answer being played at that moment, delayed by an acoustic path of 40-120 ms
  and attenuated by an echo return loss of 6-30 dB, for 0.8-2.0 s (a residual
  echo burst, e.g. while an echo canceller re-converges). The bot should keep
  talking.

Variation: voices (Piper joe, espeak-ng, and joe resampled to a lower or higher
pitch), speaking rates (1 and 1.25 from the committed clips, times the resampling
factor), and a pink-noise bed under the whole microphone track at an SNR of
clean / 30 / 20 / 10 dB relative to the speech. Everything is drawn from one
seeded ``numpy`` generator: the same seed gives the same scenarios and the same
audio, sample for sample.

Bot answers are synthesized once with Piper (``en_US-joe-medium``,
deterministic: noise scales 0) and cached as WAV files under
``$BENCH_AUDIO_CACHE`` (default ``~/.cache/pipecat-softack/bench-audio``); no
large audio is committed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.audio_io import (  # noqa: F401 - PIPER_VOICE, to_pcm: re-exported
    CLIPS_DIR,
    OPEN_CLIPS_DIR,
    PIPER_VOICE,
    SAMPLE_RATE,
    cache_dir,
    load_manifest,
    load_piper,
    piper_say,
    read_wav,
    to_array,
    to_pcm,
    write_wav,
)

SR = SAMPLE_RATE

KINDS = ("backchannel", "interruption", "mixed", "noise", "echo")
#: Kinds where the bot should keep talking (a stop is a false interrupt).
KEEP_KINDS = ("backchannel", "noise", "echo")
#: Kinds where the bot should stop (no stop in time is a missed interrupt).
STOP_KINDS = ("interruption", "mixed")

#: Scenario count per kind in the default mix (210 in all).
DEFAULT_MIX = {"backchannel": 75, "interruption": 55, "mixed": 30, "noise": 25, "echo": 25}
DEFAULT_SEED = 20260521

BOT_START = 0.4  # s of timeline: the bot starts its answer
INJECT_MIN, INJECT_MAX = 0.8, 1.8  # s after BOT_START: the user clip starts
# The answer goes on this long after the user's speech onset (missed-interrupt
# window + margin) and after the clip's end (time for late decisions: the filter's
# 1 s transcript timeout, Pipecat's turn logic).
AFTER_ONSET = 3.5
AFTER_CLIP = 2.5
#: Seconds after its speech onset within which an interruption must stop the bot.
MISS_WINDOW = 3.0

SNRS: tuple[float | None, ...] = (None, 30.0, 20.0, 10.0)

# Bot answers: long enough for any scenario (at most ~7 s are played).
BOT_ANSWERS = [
    "The first thing to know about sourdough is that the starter is alive. It is a "
    "colony of wild yeast and bacteria that you feed with flour and water every day, "
    "and it takes about a week before it is strong enough to raise a loaf of bread.",
    "Mars is a cold desert world, much colder than anywhere on Earth. During the day "
    "near the equator it can reach twenty degrees, but at night the temperature drops "
    "to minus seventy, and huge dust storms can cover the whole planet for weeks.",
    "If you want to run your first marathon, give yourself at least four months. Start "
    "with three short runs a week, add one long run on the weekend, and make it a "
    "little longer every week, while keeping most of your running slow and easy.",
]
BOT_SPEEDS = (1.0, 1.15)

# Pitch/rate factors applied to Piper clips by resampling ("joe-low", "joe-high").
VOICE_FACTORS = {"": 1.0, "-low": 0.92, "-high": 1.08}

# Mixed = backchannel + command, same voice.
MIXED_PAIRS = [
    ("yeah", "wait"), ("okay", "hold_on"), ("uh_huh", "stop"), ("right", "hang_on"),
    ("yes", "never_mind"), ("sure", "excuse_me"), ("okay", "stop"), ("mm_hmm", "wait"),
    ("yeah", "no_stop"), ("i_see", "hold_on"), ("got_it", "wait"), ("right", "stop"),
]  # fmt: skip


# --------------------------------------------------------------------------- #
# Audio helpers
# --------------------------------------------------------------------------- #


def resample_factor(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (pitch up and shorter for factor > 1)."""
    if factor == 1.0:
        return x
    n = max(1, int(round(len(x) / factor)))
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink noise (1/f power), shaped in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    spec *= 1.0 / np.sqrt(np.maximum(f, 20.0))  # flat below 20 Hz
    y = np.fft.irfft(spec, n)
    return (y / (np.sqrt(np.mean(y**2)) or 1.0)).astype(np.float32)


def speech_rms(x: np.ndarray, start: float, end: float) -> float:
    seg = x[int(start * SR) : max(int(end * SR), int(start * SR) + 1)]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if len(seg) else 0.0


# --------------------------------------------------------------------------- #
# Bot answers (Piper, cached)
# --------------------------------------------------------------------------- #


def bot_answers(directory: Path | None = None, log=None) -> dict[tuple[int, float], np.ndarray]:
    """``{(answer index, speed): 16 kHz float32 samples}``, synthesized once with Piper."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[tuple[int, float], np.ndarray] = {}
    voice = None
    for i, text in enumerate(BOT_ANSWERS):
        for speed in BOT_SPEEDS:
            key = hashlib.sha1(f"{PIPER_VOICE}|{speed}|{text}".encode()).hexdigest()[:12]
            path = directory / f"answer{i}_x{speed:g}_{key}.wav"
            if not path.exists():
                if voice is None:
                    if log:
                        log(f"synthesizing bot answers with Piper into {directory} (once)")
                    voice = load_piper()
                write_wav(path, piper_say(voice, text, speed))
            out[(i, speed)] = to_array(read_wav(path))
    return out


def bot_answer_sentences(directory: Path | None = None, log=None) -> dict[tuple[int, float], list[tuple[float, str]]]:
    """``{(answer index, speed): [(seconds into the answer, sentence), ...]}``: when each
    sentence of the scripted answer starts playing, as Pipecat's output transport
    pushes a Piper ``TTSTextFrame`` (sentence by sentence) when its audio starts.

    Piper synthesizes one chunk per sentence; the chunk lengths (scaled from Piper's
    22.05 kHz to 16 kHz) give the offsets. Computed once and cached as JSON next to
    the answer WAVs (:func:`bot_answers`)."""
    import json
    import re

    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    voice = None
    for i, text in enumerate(BOT_ANSWERS):
        sentences = [x.strip() for x in re.split(r"(?<=[.!?])\s+", text) if x.strip()]
        for speed in BOT_SPEEDS:
            key = hashlib.sha1(f"{PIPER_VOICE}|{speed}|{text}".encode()).hexdigest()[:12]
            path = directory / f"answer{i}_x{speed:g}_{key}.sentences.json"
            if not path.exists():
                if voice is None:
                    if log:
                        log(f"timing the bot answers' sentences with Piper into {directory} (once)")
                    voice = load_piper()
                from piper import SynthesisConfig

                cfg = SynthesisConfig(length_scale=1.0 / speed, noise_scale=0.0, noise_w_scale=0.0)
                lengths = [len(c.audio_int16_array) / c.sample_rate for c in voice.synthesize(text, cfg)]
                if len(lengths) != len(sentences):  # Piper split differently: one entry
                    offsets, texts = [0.0], [text]
                else:
                    offsets = [float(sum(lengths[:k])) for k in range(len(lengths))]
                    texts = sentences
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps([[round(o, 3), t] for o, t in zip(offsets, texts)]))
                tmp.replace(path)
            out[(i, speed)] = [(float(o), t) for o, t in json.loads(path.read_text())]
    return out


# --------------------------------------------------------------------------- #
# Scenarios
# --------------------------------------------------------------------------- #


@dataclass
class UserSound:
    """The sound injected into the microphone (before the noise bed)."""

    name: str
    text: str
    samples: np.ndarray = field(repr=False)
    speech_start: float  # s from the sound's start to the speech onset (0 for noise/echo)
    speech_end: float


@dataclass
class Scenario:
    index: int
    kind: str
    name: str  # what was injected, e.g. "okay__joe-low+hold_on__joe-low"
    text: str  # what is said ("" for noise and echo)
    voice: str  # piper-joe, piper-joe-low, piper-joe-high, espeak-ng, synth, echo
    speed: float  # speaking rate relative to the voice's normal rate
    snr_db: float | None  # noise bed under the whole mic track; None = clean
    answer: int  # index into BOT_ANSWERS
    answer_speed: float
    inject_at: float  # timeline s: the sound starts
    speech_onset: float  # timeline s: speech (or noise/echo) starts
    speech_end: float  # timeline s
    bot_end: float  # timeline s: the scripted answer ends if nobody stops it
    sound: UserSound = field(repr=False)
    extra: dict = field(default_factory=dict)
    #: "tuned" (the default mix, from the clips defaults were chosen on) or "open"
    #: (the open-vocabulary clips, held out).
    set: str = "tuned"

    @property
    def should_stop(self) -> bool:
        return self.kind in STOP_KINDS

    @property
    def duration(self) -> float:
        return self.bot_end

    def describe(self) -> dict:
        d = {
            "index": self.index,
            "set": self.set,
            "kind": self.kind,
            "name": self.name,
            "text": self.text,
            "voice": self.voice,
            "speed": round(self.speed, 3),
            "snr_db": self.snr_db,
            "inject_at": round(self.inject_at, 3),
            "speech_onset": round(self.speech_onset, 3),
            "speech_end": round(self.speech_end, 3),
            "bot_start": BOT_START,
            "bot_end": round(self.bot_end, 3),
        }
        d.update(self.extra)
        return d


class _Clips:
    def __init__(self, clips_dir: Path = CLIPS_DIR):
        self.rows = load_manifest(clips_dir)
        self.dir = clips_dir
        self._cache: dict[str, np.ndarray] = {}

    def samples(self, file: str) -> np.ndarray:
        if file not in self._cache:
            self._cache[file] = to_array(read_wav(self.dir / file))
        return self._cache[file]

    def files(self, label: str, exclude_prefix: tuple[str, ...] = ()) -> list[str]:
        return sorted(f for f, r in self.rows.items() if r["label"] == label and not f.startswith(exclude_prefix))

    def sound(self, file: str, factor: float = 1.0, suffix: str = "") -> tuple[UserSound, str, float]:
        """A committed clip, optionally resampled; returns (sound, voice, speed)."""
        row = self.rows[file]
        x = resample_factor(self.samples(file), factor)
        s = UserSound(
            name=file.removesuffix(".wav") + suffix,
            text=row["text"],
            samples=x,
            speech_start=float(row["speech_start"]) / factor,
            speech_end=float(row["speech_end"]) / factor,
        )
        return s, row["voice"] + suffix, float(row["speed"]) * factor


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _voice_factor(rng: np.random.Generator, file: str) -> tuple[float, str]:
    """Piper clips (not the noisy ones) get a pitch variant one time in two."""
    if "__joe" not in file or "_noise" in file or rng.random() < 0.5:
        return 1.0, ""
    suffix = _pick(rng, ["-low", "-high"])
    return VOICE_FACTORS[suffix], suffix


def _speech_sound(clips: _Clips, rng, file: str) -> tuple[UserSound, str, float]:
    factor, suffix = _voice_factor(rng, file)
    return clips.sound(file, factor, suffix)


def _mixed_sound(clips: _Clips, rng) -> tuple[UserSound, str, float]:
    bc, cmd = _pick(rng, MIXED_PAIRS)
    tag = _pick(rng, ["joe", "joe_x125", "espeak"])
    factor, suffix = _voice_factor(rng, f"x__{tag}")
    a, voice, speed = clips.sound(f"{bc}__{tag}.wav", factor, suffix)
    b, _, _ = clips.sound(f"{cmd}__{tag}.wav", factor, suffix)
    gap = float(rng.uniform(0.05, 0.25))
    # a's speech, a gap of silence, then b's speech (each clip's own lead/tail trimmed)
    a_speech = a.samples[: int(a.speech_end * SR)]
    b_speech = b.samples[int(b.speech_start * SR) :]
    x = np.concatenate([a_speech, np.zeros(int(gap * SR), np.float32), b_speech])
    end = len(a_speech) / SR + gap + (b.speech_end - b.speech_start)
    name = f"{bc}__{tag}{suffix}+{cmd}__{tag}{suffix}"
    return UserSound(name, f"{a.text} {b.text}", x, a.speech_start, end), voice, speed


def _noise_sound(clips: _Clips, rng) -> tuple[UserSound, str, float]:
    files = clips.files("NOISE")
    f = _pick(rng, files)
    x = clips.samples(f).copy()
    parts = [f.removesuffix(".wav")]
    if rng.random() < 0.3:  # mix in a second noise
        g = _pick(rng, [h for h in files if h != f])
        y = clips.samples(g)
        off = int(rng.uniform(0.0, 0.4) * SR)
        n = max(len(x), off + len(y))
        z = np.zeros(n, np.float32)
        z[: len(x)] += x
        z[off : off + len(y)] += y
        x = z
        parts.append(f"+{g.removesuffix('.wav').removeprefix('noise_')}")
    if rng.random() < 0.3:
        x = x[::-1].copy()
        parts.append("rev")
    factor = float(_pick(rng, [0.8, 1.0, 1.0, 1.25]))
    if factor != 1.0:
        x = resample_factor(x, factor)
        parts.append(f"x{factor:g}")
    gain_db = float(_pick(rng, [-6.0, 0.0, 6.0, 12.0]))
    x = x * 10 ** (gain_db / 20)
    parts.append(f"{gain_db:+g}dB")
    x = np.clip(x, -32768, 32767)
    nz = np.nonzero(np.abs(x) > 0.02 * (np.abs(x).max() or 1))[0]
    start, end = (float(nz[0]) / SR, float(nz[-1]) / SR) if len(nz) else (0.0, len(x) / SR)
    return UserSound("_".join(parts), "", x.astype(np.float32), start, end), "synth", factor


def make_scenarios(seed: int = DEFAULT_SEED, mix: dict[str, int] | None = None,
                   clips_dir: Path = CLIPS_DIR) -> list[Scenario]:  # fmt: skip
    """The scenario list for ``seed``: same seed, same scenarios (kinds interleaved)."""
    mix = dict(DEFAULT_MIX if mix is None else mix)
    rng = np.random.default_rng(seed)
    clips = _Clips(clips_dir)
    backchannels = clips.files("BACKCHANNEL")
    turns = clips.files("TURN", exclude_prefix=("yeah_but",))
    yeah_but = [f for f in clips.files("TURN") if f.startswith("yeah_but")]

    kinds = [k for k in KINDS for _ in range(mix.get(k, 0))]
    order = rng.permutation(len(kinds))
    scenarios = []
    for idx, pos in enumerate(order):
        kind = kinds[pos]
        answer = int(rng.integers(len(BOT_ANSWERS)))
        answer_speed = float(_pick(rng, list(BOT_SPEEDS)))
        snr = _pick(rng, list(SNRS))
        inject_at = BOT_START + float(rng.uniform(INJECT_MIN, INJECT_MAX))
        extra: dict = {}
        if kind == "backchannel":
            sound, voice, speed = _speech_sound(clips, rng, _pick(rng, backchannels))
        elif kind == "interruption":
            sound, voice, speed = _speech_sound(clips, rng, _pick(rng, turns))
        elif kind == "mixed":
            if rng.random() < 0.25:
                sound, voice, speed = _speech_sound(clips, rng, _pick(rng, yeah_but))
            else:
                sound, voice, speed = _mixed_sound(clips, rng)
        elif kind == "noise":
            sound, voice, speed = _noise_sound(clips, rng)
        else:  # echo: filled in by build_mic (needs the answer audio); placeholders here
            dur = float(rng.uniform(0.8, 2.0))
            erl = float(_pick(rng, [6.0, 12.0, 18.0, 24.0, 30.0]))
            delay = float(rng.uniform(0.04, 0.12))
            extra = {"echo_return_loss_db": erl, "echo_delay_s": round(delay, 3)}
            sound = UserSound(f"echo_erl{erl:g}dB", "", np.zeros(int(dur * SR), np.float32), 0.0, dur)
            voice, speed = "echo", answer_speed
        onset = inject_at + sound.speech_start
        end = inject_at + sound.speech_end
        clip_end = inject_at + len(sound.samples) / SR
        bot_end = max(onset + AFTER_ONSET, clip_end + AFTER_CLIP)
        scenarios.append(
            Scenario(
                index=idx, kind=kind, name=sound.name, text=sound.text, voice=voice, speed=speed,
                snr_db=snr, answer=answer, answer_speed=answer_speed, inject_at=inject_at,
                speech_onset=onset, speech_end=end, bot_end=bot_end, sound=sound, extra=extra,
            )  # fmt: skip
        )
    return scenarios


#: Seed offset of the open set's generator: the default mix of a seed stays the
#: same whether or not the open scenarios are added.
OPEN_SEED_STREAM = 1


def make_open_scenarios(seed: int = DEFAULT_SEED, start_index: int = 0,
                        clips_dir: Path = OPEN_CLIPS_DIR) -> list[Scenario]:  # fmt: skip
    """One scenario per open-vocabulary clip (``tests/audio/open``): BACKCHANNEL
    clips as ``backchannel``, TURN clips as ``interruption``, in the manifest's order,
    indices from ``start_index``. The bot's answer, its speed, the noise bed and the
    injection time are drawn as for the default mix, from a generator of their own
    (``[seed, OPEN_SEED_STREAM]``); the voices are used as recorded (no resampling:
    the open set has voices and speeds of its own)."""
    rng = np.random.default_rng([seed, OPEN_SEED_STREAM])
    clips = _Clips(clips_dir)
    out = []
    for i, (file, row) in enumerate(clips.rows.items()):
        kind = {"BACKCHANNEL": "backchannel", "TURN": "interruption"}.get(row["label"])
        if kind is None:
            continue
        answer = int(rng.integers(len(BOT_ANSWERS)))
        answer_speed = float(_pick(rng, list(BOT_SPEEDS)))
        snr = _pick(rng, list(SNRS))
        inject_at = BOT_START + float(rng.uniform(INJECT_MIN, INJECT_MAX))
        sound, voice, speed = clips.sound(file)
        onset = inject_at + sound.speech_start
        clip_end = inject_at + len(sound.samples) / SR
        out.append(
            Scenario(
                index=start_index + len(out), kind=kind, name=sound.name, text=sound.text, voice=voice,
                speed=speed, snr_db=snr, answer=answer, answer_speed=answer_speed, inject_at=inject_at,
                speech_onset=onset, speech_end=inject_at + sound.speech_end,
                bot_end=max(onset + AFTER_ONSET, clip_end + AFTER_CLIP), sound=sound, set="open",
            )  # fmt: skip
        )
    return out


WARMUP_SECS = 2.0


def build_mic(scn: Scenario, answers: dict[tuple[int, float], np.ndarray], seed: int) -> tuple[bytes, bytes]:
    """The scenario's microphone track (noise bed + the user sound, or the echo),
    and ``WARMUP_SECS`` of what the microphone heard before it (the noise bed alone)."""
    n = int((scn.bot_end + 1.0) * SR)
    warm = int(WARMUP_SECS * SR)
    mic = np.zeros(n, np.float32)
    at = int(scn.inject_at * SR)
    answer = answers[(scn.answer, scn.answer_speed)]
    if scn.kind == "echo":
        # The answer the bot is playing right now, delayed and attenuated.
        delay = scn.extra["echo_delay_s"]
        pos = int((scn.inject_at - BOT_START - delay) * SR)
        seg = answer[max(pos, 0) : max(pos, 0) + len(scn.sound.samples)]
        seg = seg * 10 ** (-scn.extra["echo_return_loss_db"] / 20)
        # 30 ms fades: the leak comes and goes
        fade = min(int(0.03 * SR), len(seg) // 2)
        if fade:
            ramp = np.linspace(0, 1, fade, dtype=np.float32)
            seg[:fade] *= ramp
            seg[-fade:] *= ramp[::-1]
        sound = seg
    else:
        sound = scn.sound.samples
    mic[at : at + len(sound)] += sound[: max(0, n - at)]
    if scn.snr_db is not None:
        if scn.kind in ("noise", "echo"):
            ref = 0.1 * 32767  # about the speech level of the committed clips
        else:
            ref = speech_rms(scn.sound.samples, scn.sound.speech_start, scn.sound.speech_end)
        rng = np.random.default_rng([seed, scn.index])
        bed = pink_noise(warm + n, rng) * (ref / 10 ** (scn.snr_db / 20))
        mic += bed[warm:]
        return to_pcm(mic), to_pcm(bed[:warm])
    return to_pcm(mic), bytes(2 * warm)


def mix_summary(scenarios: list[Scenario]) -> dict:
    """Counts by kind, voice, speed and SNR (printed with the seed)."""

    def count(key):
        return dict(sorted(Counter(key(s) for s in scenarios).items(), key=lambda kv: str(kv[0])))

    return {
        "n": len(scenarios),
        "by_kind": {k: v for k, v in Counter(s.kind for s in scenarios).items()},
        "by_voice": count(lambda s: s.voice),
        "by_speed": count(lambda s: f"{s.speed:g}"),
        "by_snr_db": count(lambda s: "clean" if s.snr_db is None else f"{s.snr_db:g}"),
    }
