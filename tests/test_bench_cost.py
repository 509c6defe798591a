"""Cost benchmark (`python -m bench cost`): a fast slice of the CLI and the session generator.

No timing assertions: the speed targets are reported by the benchmark, never tested here.
"""

import json
import math
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import cost  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

GATED = (
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    UserSpeakingFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
)


@pytest.fixture(scope="module")
def report():
    """One small run of the real CLI, through the dispatcher, as a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "cost", "--json",
         "--minutes", "0.5", "--hours", "0.02", "--repeats", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one line on stdout, got {proc.stdout!r}"
    return json.loads(lines[0])


def _positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def test_json_has_the_expected_keys_with_positive_numbers(report):
    assert report["loguru_level"] == "WARNING"
    assert {"throughput", "decision_step", "memory"} <= report.keys()

    tp = report["throughput"]
    for key in ("filter", "identity"):
        for field in ("frames_in", "median_secs", "frames_per_sec", "us_per_frame"):
            assert _positive(tp[key][field]), (key, field, tp[key][field])
        assert len(tp[key]["runs_frames_per_sec"]) == 1
    assert tp["filter"]["processor"] == "SoftAckInterruptionFilter"
    assert tp["identity"]["processor"] == "IdentityFilter"
    # The verdicts follow from the figures, both ways.
    assert tp["ratio"] == pytest.approx(tp["filter"]["frames_per_sec"] / tp["identity"]["frames_per_sec"])
    assert tp["extra_us_per_frame"] == pytest.approx(
        tp["filter"]["us_per_frame"] - tp["identity"]["us_per_frame"]
    )
    assert tp["meets_target"] is (tp["ratio"] >= tp["target_ratio"])

    ds = report["decision_step"]
    assert _positive(ds["us_per_classify"]) and _positive(ds["transcripts"])

    mem = report["memory"]
    assert _positive(mem["peak_bytes"]) and _positive(mem["frames"])
    assert len(mem["samples"]) >= 2
    assert all(_positive(s["current_bytes"]) for s in mem["samples"])
    first, last = mem["samples"][0], mem["samples"][-1]
    assert mem["growth_bytes"] == last["current_bytes"] - first["current_bytes"]
    assert mem["peak_bytes"] >= max(s["current_bytes"] for s in mem["samples"])
    assert mem["frames_in"] == mem["frames"]
    assert mem["flat"] is (abs(mem["growth_bytes"]) <= mem["flat_tolerance_bytes"])


def test_the_printed_verdicts_are_the_report_s(report):
    text = cost.render(report)
    tp, mem = report["throughput"], report["memory"]
    verdict = f"target >= {tp['target_ratio']}: {'met' if tp['meets_target'] else 'NOT met'}"
    assert verdict in text
    assert f"target flat within {cost._fmt_bytes(mem['flat_tolerance_bytes'])}: " + (
        "met" if mem["flat"] else "NOT met"
    ) in text
    flipped = {**report, "throughput": {**tp, "meets_target": not tp["meets_target"]}}
    assert verdict not in cost.render(flipped)


def test_both_processors_get_the_same_frames(report):
    tp = report["throughput"]
    session = tp["session"]
    assert tp["filter"]["frames_in"] == tp["identity"]["frames_in"] == session["frames"]
    assert tp["filter"]["sync_markers"] == tp["identity"]["sync_markers"]
    # The 30 s slice holds 1500 audio frames and some utterances.
    assert session["audio_frames"] == 1500
    assert session["frames"] > session["audio_frames"]


def test_filter_behaved_as_planned_in_the_slice(report):
    b = report["throughput"]["behaviour"]
    assert b["ok"], b
    assert b["identity_frames_out"] == report["throughput"]["identity"]["frames_in"]
    assert b["backchannels_reported"] == b["backchannels_planned"]


def test_bad_arguments_exit_with_usage_error(capsys):
    for argv in (["--minutes", "0"], ["--hours", "-1"], ["--repeats", "0"]):
        with pytest.raises(SystemExit) as e:
            cost.main(argv)
        assert e.value.code == 2


# --- the simulated session ----------------------------------------------------


def _utterances(seconds, seed=7):
    """Scan a session's frames: per utterance, its frames, times and the bot state."""
    utterances, current, bot = [], None, False
    audio_per_minute = defaultdict(int)
    for t, frame in cost.SessionGenerator(seconds, seed):
        if isinstance(frame, InputAudioRawFrame):
            audio_per_minute[int(t // 60)] += 1
        elif isinstance(frame, BotStartedSpeakingFrame):
            bot = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            bot = False
            if current is not None:
                current.setdefault("bot_stopped_at", t)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            assert current is None or "final" in current, "utterances must not overlap"
            current = {"start": t, "bot_at_start": bot, "frames": [], "holdable": 0}
            utterances.append(current)
        if isinstance(frame, GATED):
            current["frames"].append((t, frame))
            current["holdable"] += bot
        if isinstance(frame, TranscriptionFrame):
            current["final"] = frame.text
            current["bot_at_final"] = bot
    return utterances, audio_per_minute


def test_session_frame_mix():
    seconds = 600
    gen = cost.SessionGenerator(seconds, seed=7)
    frames = [frame for _, frame in gen]
    stats = gen.stats
    by_type = Counter(type(f) for f in frames)

    # 20 ms audio at 16 kHz: exactly 50 frames a second, 3000 a minute.
    assert by_type[InputAudioRawFrame] == stats.audio_frames == 50 * seconds
    audio = next(f for f in frames if isinstance(f, InputAudioRawFrame))
    assert audio.sample_rate == 16000 and audio.num_channels == 1 and len(audio.audio) == 640
    utterances, audio_per_minute = _utterances(seconds)
    assert set(audio_per_minute.values()) == {3000} and len(audio_per_minute) == 10

    # Every utterance is complete: a VAD start, a stop and a final each.
    n = sum(stats.utterances.values())
    assert len(utterances) == n
    assert by_type[VADUserStartedSpeakingFrame] == by_type[VADUserStoppedSpeakingFrame] == n
    assert by_type[TranscriptionFrame] == n
    assert by_type[BotStartedSpeakingFrame] == by_type[BotStoppedSpeakingFrame] > 0
    assert stats.frames == len(frames) == sum(stats.by_type.values())

    # All three kinds, in realistic proportions, and the bot speaks about 60% of the time.
    assert stats.utterances["backchannel"] >= 20
    assert stats.utterances["interruption"] >= 5
    assert stats.utterances["user_turn"] >= 10
    assert 0.5 <= stats.bot_speaking_secs / seconds <= 0.7

    kinds = Counter()
    holdable = 0
    for u in utterances:
        times = [t for t, _ in u["frames"]]
        assert times == sorted(times)
        speaking = [t for t, f in u["frames"] if isinstance(f, UserSpeakingFrame)]
        assert speaking and all(math.isclose(b - a, 0.2) for a, b in zip(speaking, speaking[1:]))
        assert any(isinstance(f, InterimTranscriptionFrame) for _, f in u["frames"])
        holdable += u["holdable"]
        if u["final"] in cost.BACKCHANNELS:
            kinds["backchannel"] += 1
            # Held then dropped: said entirely while the bot speaks.
            assert u["bot_at_start"] and u["bot_at_final"]
            assert u["holdable"] == len(u["frames"])
        elif u["final"] in cost.INTERRUPTIONS:
            kinds["interruption"] += 1
            # Held then released: starts while the bot speaks, which stops 1 s later, after
            # at least two interims (the decisive word is among the first two).
            assert u["bot_at_start"] and not u["bot_at_final"]
            assert u["bot_stopped_at"] == pytest.approx(u["start"] + 1.0)
            interims = [t for t, f in u["frames"] if isinstance(f, InterimTranscriptionFrame)]
            assert sum(t < u["bot_stopped_at"] for t in interims) >= 2
        else:
            assert u["final"] in cost.USER_TURNS
            kinds["user_turn"] += 1
            # While the bot is silent: nothing to hold.
            assert not u["bot_at_start"] and not u["bot_at_final"] and u["holdable"] == 0
    assert kinds == Counter(stats.utterances)

    # Held-able frames: gated frames that arrive while the bot speaks.
    assert holdable == stats.holdable_frames
    gated = sum(by_type[t] for t in GATED)
    assert gated == sum(stats.gated_frames.values())
    assert stats.gated_frames["backchannel"] <= stats.holdable_frames < gated
    assert stats.holdable_frames == stats.gated_frames["backchannel"] + sum(
        u["holdable"] for u in utterances if u["final"] in cost.INTERRUPTIONS
    )


def test_session_is_deterministic_and_lazy():
    def signature(seed):
        return [
            (type(f).__name__, getattr(f, "text", None)) for f in cost.session_frames(120, seed)
        ]

    assert signature(3) == signature(3)
    assert signature(3) != signature(4)
    stream = cost.session_frames(3600)
    assert iter(stream) is stream  # a generator: nothing is built up front
    first = [next(stream) for _ in range(10)]
    assert all(f is not None for f in first)


def test_short_session_ends_in_silence_with_exact_audio():
    for seconds in (12, 30, 45.5):
        gen = cost.SessionGenerator(seconds, seed=1)
        frames = list(gen)
        assert gen.stats.audio_frames == round(seconds * 50)
        assert all(t < seconds for t, _ in frames)
