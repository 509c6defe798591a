"""`python -m bench stt`: the ears per clip set, and the pieces it measures with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.stt import released_on_interims, whisper_segment
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
