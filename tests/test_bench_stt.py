"""`python -m bench stt`: the ears per clip set, and the pieces it measures with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.stt import OVER_ECHO_DELAY_SECS, OVER_ECHO_LEAD_SECS, over_bot_echo, released_on_interims, whisper_segment
from pipecat_softack import BackchannelClassifier, Verdict

ROOT = Path(__file__).resolve().parent.parent
SR = 16000


def test_whisper_gets_the_segment_segmented_stt_would_send():
    row = {"label": "TURN", "speech_start": "0.250", "speech_end": "1.250"}
    pcm = bytes(2 * int(2.0 * SR))
    seg = whisper_segment(pcm, row, vad_start=0.2, vad_stop=0.2)
    # from max(0, VAD start - 1 s) = 0 to the VAD stop (1.45 s), then 0.5 s of silence
    assert len(seg) == 2 * (int(1.45 * SR) + int(0.5 * SR))
    late = {"label": "TURN", "speech_start": "1.500", "speech_end": "1.800"}
    assert len(whisper_segment(bytes(2 * int(3.0 * SR)), late, 0.2, 0.2)) == 2 * (int(1.3 * SR) + int(0.5 * SR))


def test_release_on_interims_follows_the_filter():
    clf = BackchannelClassifier()
    assert released_on_interims(["wait"], clf, Verdict)  # a command: at once
    assert not released_on_interims(["mama"], clf, Verdict)  # one content interim
    assert released_on_interims(["mama", "mama"], clf, Verdict)  # stood in two
    assert not released_on_interims(["over", "oh really"], clf, Verdict)
    assert not released_on_interims(["yeah", "uh-huh"], clf, Verdict)


def test_bench_stt_reports_each_ear_on_each_set():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "stt", "--stt", "pocketsphinx,hybrid", "--filter", "wait", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = json.loads(proc.stdout)["blocks"]
    assert [(b["set"], b["ear"]) for b in blocks] == [
        ("tuned", "pocketsphinx"), ("tuned", "hybrid"), ("open", "pocketsphinx"), ("open", "hybrid"),
    ]  # fmt: skip
    tuned_hybrid = blocks[1]["metrics"]
    assert tuned_hybrid["verdict_TURN"] == [4, 4]  # the four "wait" clips, Whisper's finals
    # "wait" is a command keyword: the hybrid ear passes PocketSphinx's interim on.
    assert tuned_hybrid["released_on_interims_TURN"][0] >= 1
    assert blocks[2]["metrics"]["n"] >= 1  # "wait a second" of the open set


def test_an_unknown_ear_is_refused():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "stt", "--stt", "vosk"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "vosk" in proc.stderr


def _db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9)


def test_double_talk_puts_the_clip_over_the_bots_echo_and_the_canceller_removes_the_echo():
    """--over-echo: the clip lies OVER_ECHO_LEAD_SECS into the bot's answer, the echo at
    the echo return loss asked for, 50 ms late; through the canceller the echo drops
    (measured on a clip of silence, so what is left is echo) while the user's voice stays."""
    rng = np.random.default_rng(3)
    answer = (rng.standard_normal(6 * SR) * 3000).astype(np.float32)  # the bot playing, loud
    silence = bytes(2 * SR)
    row = {"label": "BACKCHANNEL", "speech_start": "0.250", "speech_end": "0.530"}
    raw, moved = over_bot_echo(silence, row, answer, 13.0, cancel=False)
    assert float(moved["speech_start"]) == pytest.approx(0.25 + OVER_ECHO_LEAD_SECS)
    assert float(moved["speech_end"]) == pytest.approx(0.53 + OVER_ECHO_LEAD_SECS)
    assert row["speech_start"] == "0.250"  # the manifest row itself is left alone
    mic = np.frombuffer(raw, np.int16)
    d = int(OVER_ECHO_DELAY_SECS * SR)
    assert not mic[:d].any()  # nothing before the echo's delay
    assert _db(mic[d : 2 * SR]) == pytest.approx(_db(answer[: 2 * SR - d]) - 13.0, abs=0.2)
    cancelled, _ = over_bot_echo(silence, row, answer, 13.0, cancel=True)
    late = slice(int(OVER_ECHO_LEAD_SECS * SR), int((OVER_ECHO_LEAD_SECS + 1) * SR))  # the canceller warm
    erle = _db(mic[late]) - _db(np.frombuffer(cancelled, np.int16)[late])
    assert erle > 10, erle
    voice = (np.sin(np.arange(SR) * 2 * np.pi * 220 / SR) * 8000).astype(np.int16).tobytes()
    alone, _ = over_bot_echo(voice, row, np.zeros(6 * SR, np.float32), 13.0, cancel=True)
    kept = np.frombuffer(alone, np.int16)[late]
    assert _db(kept) == pytest.approx(_db(np.frombuffer(voice, np.int16)), abs=1.0)  # no echo: passed through
    with pytest.raises(ValueError, match="-3"):
        over_bot_echo(silence, row, answer, -3.0, cancel=True)


def test_no_aec_needs_over_echo():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "stt", "--stt", "pocketsphinx", "--no-aec"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "--no-aec goes with --over-echo" in proc.stderr
