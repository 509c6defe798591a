#!/usr/bin/env python3
"""Synthesize the open-vocabulary clips (held out: no default was chosen on them).

Same layout and level as the committed clips of ``tests/audio`` (16 kHz mono 16-bit
WAV: ``LEAD_S`` of silence, the speech trimmed of its own silence, ``TAIL_S`` of
silence; peak 0.7 of full scale), made with the same helpers
(``tests/audio/make_clips.py``), but with phrases, voices and speeds that appear
nowhere in ``tests/audio/clips.tsv`` and were never used to choose a default:

* phrases: :data:`BACKCHANNELS` and :data:`TURNS` below, none of them a phrase of
  ``tests/audio/clips.tsv``; written as everyday listener responses and barge-ins,
  without looking at the lexicon (``configs/en.toml``) or at what any STT hears;
* voices and speeds: Piper ``en_US-joe-medium`` at speeds 0.87 and 1.12 (the tuned
  set uses 1 and 1.25, and ``bench audio`` resamples those by 0.92 and 1.08), and
  four espeak-ng voices and variants the tuned set never uses (it uses ``en-us`` at
  165 words/min): see :data:`ENGINES`. Phrase ``i`` is said by engine
  ``i % len(ENGINES)`` of its list.

Deterministic (Piper noise scales 0; espeak-ng is deterministic). Usage::

    apt-get install -y espeak-ng
    python tests/audio/open/make_clips.py           # rewrite the clips + clips.tsv
    python tests/audio/open/make_clips.py --check   # rebuild in a temp dir, diff
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("tuned_make_clips", HERE.parent / "make_clips.py")
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)

# Listener responses that should not stop the bot.
BACKCHANNELS = [
    "that makes sense", "no way", "hmm, interesting", "oh wow", "cool", "nice",
    "makes sense", "of course", "totally", "for sure", "i know", "oh okay",
    "oh i see", "right right", "yep", "yup", "gotcha", "fair enough", "true",
    "that's true", "good point", "oh nice", "wow", "really?", "oh my god", "mm",
    "uh huh, yeah", "okay okay", "yeah totally", "absolutely", "definitely",
    "interesting", "oh no", "oh dear", "that's great", "awesome", "sounds good",
    "all right", "i hear you", "oh cool", "right on", "sweet", "huh, okay",
    "yes yes", "mm, right",
]  # fmt: skip
# Barge-ins and questions that should stop the bot.
TURNS = [
    "could you repeat that", "what time is it there", "sorry, what was that",
    "can i ask something", "wait a second", "hold on a minute", "one moment please",
    "let me stop you there", "that's not what i asked", "no, that's wrong",
    "can you speak slower", "i don't understand", "what do you mean",
    "how much does it cost", "where is that", "skip this part", "go back",
    "tell me about the moon", "what's your name", "can we talk about something else",
    "how long does it take", "who told you that", "i have to go", "please stop talking",
    "why is that", "is it safe", "actually, forget it", "how do i get there",
    "what about tomorrow", "can you say that again", "i need help with my order",
    "that's enough", "be quiet", "let me think", "what was the last part",
    "give me the short version", "how far is it", "are you sure about that",
    "which one is better", "just a sec", "i disagree", "how many are there",
    "what happens next", "say it again", "okay but why",
]  # fmt: skip

# (voice tag, engine, voice or speed, espeak words per minute)
ENGINES = [
    ("joe_x087", "piper", 0.87, None),
    ("espeak_rp_f3", "espeak", "en-gb-x-rp+f3", 150),
    ("joe_x112", "piper", 1.12, None),
    ("espeak_scot_m3", "espeak", "en-gb-scotland+m3", 180),
    ("espeak_029", "espeak", "en-029", 160),
    ("espeak_us_f2", "espeak", "en-us+f2", 175),
]


def spoken(text: str) -> str:
    """What the manifest says was said: lower case, no punctuation but apostrophes
    and a final question mark dropped (as ``tests/audio/clips.tsv`` spells text)."""
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c in "' ").split())


def espeak(text: str, voice: str, wpm: int) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text], check=True, capture_output=True
    ).stdout
    x, sr = mc.read_wav_bytes(out)
    return mc.resample(x, sr)


def build(out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    tuned = {r["text"] for r in csv.DictReader(open(HERE.parent / "clips.tsv"), delimiter="\t")}
    rows: list[dict] = []
    piper = mc.Piper()
    for label, phrases in (("BACKCHANNEL", BACKCHANNELS), ("TURN", TURNS)):
        for i, phrase in enumerate(phrases):
            text = spoken(phrase)
            if text in tuned:
                raise SystemExit(f"{phrase!r} is a phrase of the tuned set (tests/audio/clips.tsv)")
            tag, engine, arg, wpm = ENGINES[i % len(ENGINES)]
            if engine == "piper":
                sp, voice, speed = piper.say(phrase, arg), "piper-joe", arg
            else:
                sp, voice, speed = espeak(phrase, arg, wpm), f"espeak-ng:{arg}@{wpm}", round(wpm / 165, 3)
            clip = mc.layout(mc.normalize(mc.trim(sp)))
            name = f"{mc.slug(text)}__{tag}.wav"
            mc.write_wav(out / name, clip)
            rows.append({
                "file": name, "text": text, "label": label, "voice": voice, "speed": f"{speed:g}",
                "speech_start": f"{mc.LEAD_S:.3f}", "speech_end": f"{len(clip) / mc.SR - mc.TAIL_S:.3f}",
            })  # fmt: skip
    with open(out / "clips.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and diff against --out")
    a = ap.parse_args(argv)
    if not shutil.which("espeak-ng"):
        print("missing espeak-ng: apt-get install -y espeak-ng", file=sys.stderr)
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
