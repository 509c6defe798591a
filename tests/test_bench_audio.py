"""CI slice of the audio barge-in benchmark (``python -m bench audio``), and the
peers' rules it runs (bench/peers.py).

Runs 4 real-time scenarios of the default mix and 2 of the open-vocabulary set
(~60 s: Silero VAD, the default ear, eight strategy branches) and checks the JSON
shape and that the counts add up. No timing or rate targets here: those are
measured by the full run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.audio import OURS, STRATEGIES, TARGETS, select  # noqa: E402
from bench.audio_io import OPEN_CLIPS_DIR, load_manifest  # noqa: E402
from bench.audio_scenarios import (  # noqa: E402
    DEFAULT_MIX,
    KEEP_KINDS,
    KINDS,
    STOP_KINDS,
    make_open_scenarios,
    make_scenarios,
    mix_summary,
)
from bench.peers import livekit_legacy_interrupts, vapi_interrupts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 4
OPEN_LIMIT = max(2, LIMIT // 2)


def test_default_scenarios_are_reproducible_and_large_enough():
    a, b = make_scenarios(), make_scenarios()
    assert len(a) == sum(DEFAULT_MIX.values()) >= 200
    assert [s.describe() for s in a] == [s.describe() for s in b]
    assert mix_summary(a)["by_kind"] == DEFAULT_MIX
    assert len(mix_summary(a)["by_voice"]) >= 4 and len(mix_summary(a)["by_snr_db"]) >= 3
    other = make_scenarios(seed=1)
    assert [s.describe() for s in other] != [s.describe() for s in a]


def test_open_scenarios_play_every_open_clip_once_and_leave_the_default_mix_alone():
    rows = load_manifest(OPEN_CLIPS_DIR)
    scenarios = make_open_scenarios(start_index=10_000)
    assert sorted(s.name + ".wav" for s in scenarios) == sorted(rows)
    assert {s.set for s in scenarios} == {"open"}
    assert sum(s.kind == "backchannel" for s in scenarios) >= 40
    assert sum(s.kind == "interruption" for s in scenarios) >= 40
    tuned_texts = {r["text"] for r in load_manifest().values()}
    assert not tuned_texts & {s.text for s in scenarios}
    assert [s.describe() for s in make_open_scenarios(start_index=10_000)] == [s.describe() for s in scenarios]
    assert {s.set for s in make_scenarios()} == {"tuned"}


def test_vapi_rule():
    # Acknowledgement phrases never interrupt, interruption phrases always do.
    assert not vapi_interrupts("yeah okay")
    assert not vapi_interrupts("Mm-hmm.")
    assert not vapi_interrupts("I'm listening")  # "im listening" in Vapi's list
    assert vapi_interrupts("no")
    assert vapi_interrupts("yeah but what about the price")
    assert vapi_interrupts("Don't.")
    # numWords: words outside both lists interrupt from that many on.
    assert vapi_interrupts("mama")
    assert not vapi_interrupts("mama", num_words=2)
    assert vapi_interrupts("what time", num_words=2)
    assert not vapi_interrupts("")


def test_livekit_legacy_rule_needs_more_than_three_words():
    assert not livekit_legacy_interrupts("what time is")
    assert livekit_legacy_interrupts("what time is it")
    assert livekit_legacy_interrupts("", interim="could you say that again")
    assert not livekit_legacy_interrupts("stop")  # no command words: words only


def test_limit_takes_every_kind_first():
    picked = select(make_scenarios(), len(KINDS))
    assert sorted(s.kind for s in picked) == sorted(KINDS)


@pytest.fixture(scope="module")
def report():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "audio", "--json", "--limit", str(LIMIT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"--json must print exactly one line, got {len(lines)}"
    return json.loads(lines[0])


def test_json_shape(report):
    assert {"seed", "mix", "strategies", "targets", "scenarios", "wall_secs"} <= set(report)
    assert report["mix"]["n"] == LIMIT
    assert report["open_mix"]["n"] == OPEN_LIMIT
    assert len(report["scenarios"]) == LIMIT + OPEN_LIMIT
    assert list(report["strategies"]) == list(STRATEGIES) == list(report["open"])
    assert report["stt"] in ("pocketsphinx", "whisper", "hybrid")
    for s in report["scenarios"]:
        assert s["kind"] in KINDS
        assert set(s["outcomes"]) == set(STRATEGIES)
        for o in s["outcomes"].values():
            assert isinstance(o["stopped"], bool)
            assert ("missed" in o) == (s["kind"] in STOP_KINDS)
            assert ("false_interrupt" in o) == (s["kind"] in KEEP_KINDS)
    assert set(report["targets"]) == set(OURS) == {"ours-filter", "ours-canonical", "ours-strategy"}
    for t in report["targets"].values():
        assert set(t) == set(TARGETS)
        assert all(v["met"] in (True, False, None) for v in t.values())


def test_open_counts_add_up(report):
    opened = [s for s in report["scenarios"] if s["set"] == "open"]
    for name, m in report["open"].items():
        bc = [s for s in opened if s["kind"] == "backchannel"]
        turns = [s for s in opened if s["kind"] == "interruption"]
        assert (m["n_backchannel"], m["n_interruption"]) == (len(bc), len(turns))
        assert m["n_false_interrupt"] == sum(s["outcomes"][name]["stopped"] for s in bc) == len(m["false_interrupts"])
        assert m["n_missed"] == sum(s["outcomes"][name]["missed"] for s in turns) == len(m["missed"])


def test_counts_add_up(report):
    scenarios = [s for s in report["scenarios"] if s["set"] == "tuned"]
    n_keep = sum(s["kind"] in KEEP_KINDS for s in scenarios)
    n_stop = sum(s["kind"] in STOP_KINDS for s in scenarios)
    assert n_keep + n_stop == LIMIT
    for name, m in report["strategies"].items():
        assert m["n_scenarios"] == LIMIT
        assert (m["n_keep"], m["n_stop"]) == (n_keep, n_stop)
        by_kind = m["false_interrupt_by_kind"]
        assert sum(v["n"] for v in by_kind.values()) == n_keep
        assert sum(v["n_false_interrupt"] for v in by_kind.values()) == m["n_false_interrupt"]
        assert sum(v["n"] for v in m["false_interrupt_by_snr_db"].values()) == n_keep
        assert sum(v["n"] for v in m["missed_by_kind"].values()) == n_stop
        assert sum(v["n_missed"] for v in m["missed_by_kind"].values()) == m["n_missed"]
        assert m["n_false_interrupt"] == sum(
            s["outcomes"][name]["stopped"] for s in scenarios if s["kind"] in KEEP_KINDS
        )
        # Each interruption/mixed scenario is missed, stopped before the onset, or timed.
        timed = m["onset_to_audio_stop"]["n"]
        assert m["n_missed"] + m["n_stopped_before_onset"] + timed == n_stop
        assert m["onset_to_interruption_frame"]["n"] <= timed
        assert m["command_onset_to_interruption_frame"]["n"] <= m["n_stop_command_word"] <= n_stop
        if n_keep:
            assert m["false_interrupt_rate"] == pytest.approx(m["n_false_interrupt"] / n_keep)
        if n_stop:
            assert m["missed_interrupt_rate"] == pytest.approx(m["n_missed"] / n_stop)


def test_plot_writes_a_png(report, tmp_path):
    from bench.audio import plot

    out = tmp_path / "bench.png"
    plot(report, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_package():
    # Hide matplotlib (installed by the bench extra): sys.modules[name] = None makes
    # its import fail as if it were missing.
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from bench.__main__ import main; "
        "sys.exit(main(['audio', '--limit', '1', '--plot', 'x.png']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "matplotlib" in proc.stderr and proc.stdout == ""

async def test_the_speaker_gives_the_filters_records_the_audio_it_plays():
    """The acoustic echo check compares the microphone with what the bot played: the
    bench's speaker must hand its records the answer's samples, in order, on the
    clock they play on."""
    import numpy as np
    from pipecat.tests.utils import SleepFrame, run_test

    from bench.audio import _build_classes
    from bench.audio_io import SAMPLE_RATE, to_pcm
    from pipecat_softack.bot_speech import BotSpeechRecord

    SyncTimeline, _, _, BotSpeaker = _build_classes()
    answer = (np.arange(int(0.4 * SAMPLE_RATE)) % 1000).astype(np.float32)  # every sample tells its place
    tl = SyncTimeline()
    speaker = BotSpeaker(tl, "ours-filter", 0.05, 0.4, audio=to_pcm(answer))
    record = BotSpeechRecord()
    speaker.records.append(record)
    tl.start()
    await run_test(speaker, frames_to_send=[SleepFrame(sleep=1.5)], expected_down_frames=None)
    chunks = list(record.audio._chunks)
    assert len(chunks) == 10  # 0.4 s in 40 ms chunks
    assert all(c.rate == SAMPLE_RATE for c in chunks)
    assert b"".join(c.audio for c in chunks) == to_pcm(answer)
    assert all(a.start <= b.start for a, b in zip(chunks, chunks[1:]))  # in play order


async def test_the_tee_gives_the_filter_branches_the_microphone_audio():
    from pipecat.frames.frames import InputAudioRawFrame, InterimTranscriptionFrame, VADUserStartedSpeakingFrame
    from pipecat.processors.frame_processor import FrameDirection

    from bench.audio import _build_classes

    _, _, Tee, _ = _build_classes()

    class Worker:
        def __init__(self):
            self.frames = []

        async def queue_frame(self, frame):
            self.frames.append(type(frame).__name__)

    tee = Tee()
    peer, filter_branch, own_vad = Worker(), Worker(), Worker()
    tee.targets = [(peer, False, False), (filter_branch, False, True), (own_vad, True, True)]
    tee.push_frame = _noop
    frames = [
        InputAudioRawFrame(audio=b"\x00\x00" * 320, sample_rate=16000, num_channels=1),
        VADUserStartedSpeakingFrame(),
        InterimTranscriptionFrame(text="yeah", user_id="", timestamp=""),
    ]
    for f in frames:
        await tee.process_frame(f, FrameDirection.DOWNSTREAM)
    assert peer.frames == ["VADUserStartedSpeakingFrame", "InterimTranscriptionFrame"]
    assert filter_branch.frames == ["InputAudioRawFrame", "VADUserStartedSpeakingFrame", "InterimTranscriptionFrame"]
    assert own_vad.frames == ["InputAudioRawFrame", "InterimTranscriptionFrame"]


async def _noop(*_args, **_kwargs):
    pass
