"""The echo canceller (bot/echo_cancel.py) on synthetic echo, frame by frame.

The reference signal (what the bot plays) is committed speech from tests/audio; the
microphone hears it through a synthetic acoustic path: delayed 60 ms and attenuated
by an echo return loss of 12 dB (a laptop without headphones). Both streams are fed
in simulated real time, 20 ms at a time, as the local transport does: a chunk of bot
audio is written, and 20 ms later a chunk of microphone audio arrives.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pipecat.frames.frames import FilterEnableFrame
from pipecat.transports.base_transport import TransportParams

from bench.audio_timeline import CLIPS_DIR, read_wav
from bot.echo_cancel import (
    EchoCanceller,
    UnsupportedChannelsError,
    UnsupportedSampleRateError,
)

SR = 16000
CHUNK = 320  # 20 ms at 16 kHz
ERL_DB = 12.0
DELAY_SECS = 0.06
# dB. WebRTC AEC3 removes far more than this on a linear echo path (measured here:
# about 30 dB in the first half second, 50-60 dB after); 20 dB is the floor we rely on.
MIN_ERLE_DB = 20.0


def speech(*files: str) -> np.ndarray:
    return np.concatenate([np.frombuffer(read_wav(CLIPS_DIR / f), dtype="<i2") for f in files]).astype(np.float64)


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def echo_of(reference: np.ndarray) -> np.ndarray:
    d = int(DELAY_SECS * SR)
    return np.concatenate([np.zeros(d), reference])[: len(reference)] * 10 ** (-ERL_DB / 20)


def power_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-9))


def as_array(b: bytes) -> np.ndarray:
    return np.frombuffer(bytes(b), dtype="<i2").astype(np.float64)


class Sim:
    """An echo canceller driven in simulated time (seconds on ``self.t``)."""

    def __init__(self, **kwargs):
        self.aec = EchoCanceller(**kwargs)
        self.aec.start_capture(SR)
        self.t = 100.0

    def step(self, mic: np.ndarray, ref: np.ndarray | None) -> bytes:
        """Write ``ref`` (20 ms of bot audio, or nothing), then capture ``mic``."""
        if ref is not None:
            self.aec.push_reverse(pcm(ref), now=self.t)
        self.t += len(mic) / SR
        return self.aec.process_capture(pcm(mic), now=self.t)

    def run(self, mic: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
        out = bytearray()
        for i in range(0, len(mic) - CHUNK + 1, CHUNK):
            out += self.step(mic[i : i + CHUNK], None if ref is None else ref[i : i + CHUNK])
        return as_array(out)


@pytest.fixture
def reference() -> np.ndarray:
    return speech(
        "tell_me_a_story_about_a_dog__joe.wav",
        "what_s_the_weather_like_on_mars__joe.wav",
        "actually_i_have_a_question__joe.wav",
        "tell_me_a_story_about_a_dog__joe_x125.wav",
    )


def test_echo_is_attenuated_after_convergence(reference):
    sim = Sim()
    mic = echo_of(reference)
    out = sim.run(mic, reference)
    settled = slice(SR, len(out))  # after the first second
    erle = power_db(mic[settled]) - power_db(out[settled])
    assert erle >= MIN_ERLE_DB, f"ERLE {erle:.1f} dB"
    assert sim.aec.stats.erle_db is not None and sim.aec.stats.erle_db >= MIN_ERLE_DB
    # The first chunk is bypassed: bot audio written before the microphone's first audio
    # has no place on its timeline.
    assert sim.aec.stats.capture_frames + sim.aec.stats.bypassed_frames == len(out) // 160
    assert sim.aec.stats.bypassed_frames == 2 and sim.aec.stats.runs == 1
    assert sim.aec.stats.median_frame_erle_db >= MIN_ERLE_DB


@pytest.mark.parametrize("speaker_rate", [24000, 44100, 48000])
def test_the_speaker_may_run_at_another_rate(reference, speaker_rate):
    """Pipecat's output runs at 24 kHz by default, the microphone at 16 kHz."""
    import soxr

    sim = Sim()
    sim.aec.start_render(speaker_rate)
    mic = echo_of(reference)
    played = soxr.resample(reference, SR, speaker_rate)
    step = speaker_rate // 50
    out = bytearray()
    for k, i in enumerate(range(0, len(mic) - CHUNK + 1, CHUNK)):
        sim.aec.push_reverse(pcm(played[k * step : (k + 1) * step]), now=sim.t)
        sim.t += CHUNK / SR
        out += sim.aec.process_capture(pcm(mic[i : i + CHUNK]), now=sim.t)
    out = as_array(out)
    assert power_db(mic[SR : len(out)]) - power_db(out[SR:]) >= MIN_ERLE_DB
    assert sim.aec.stats.late_reverse_secs == 0


def test_nothing_happens_without_a_reverse_stream(reference):
    sim = Sim()
    mic = reference * 0.5
    out = sim.run(mic, None)
    assert np.array_equal(out, np.round(mic[: len(out)]))
    assert sim.aec.stats.capture_frames == 0 and sim.aec.stats.bypassed_frames == len(out) // 160


def test_the_users_voice_survives(reference):
    """After the bot has spoken (converged), the user's speech in silence comes through."""
    sim = Sim()
    sim.run(echo_of(reference), reference)
    user = speech("stop__joe.wav", "wait__joe.wav")
    out = sim.run(user, None)  # the bot is quiet: nothing is written
    loss = power_db(user[: len(out)]) - power_db(out)
    assert loss < 3.0, f"user speech lost {loss:.1f} dB"


def test_the_users_voice_survives_double_talk(reference):
    """The user talks over the bot: their voice is kept while the echo is removed."""
    n = len(reference) // 2
    first, rest = reference[:n], reference[n:]
    clip = speech("no_stop__joe.wav")
    user = np.zeros_like(rest)
    user[: len(clip)] = clip
    talk, alone = Sim(), Sim()
    talk.run(echo_of(first), first)
    alone.run(echo_of(first), first)
    out = talk.run(echo_of(rest) + user, rest)
    echo_out = alone.run(echo_of(rest), rest)
    s = slice(0, len(clip))
    assert power_db(user[s]) - power_db(out[s]) < 6.0  # the user's voice, within 6 dB
    assert power_db(echo_of(rest)[s]) - power_db(echo_out[s]) >= MIN_ERLE_DB


def test_pauses_keep_the_echo_delay(reference):
    """The bot pauses between sentences (nothing is written then): the next sentence
    is laid where it is played, so the canceller needs no re-convergence."""
    sim = Sim()
    gap = np.zeros(int(0.7 * SR))
    ref = np.concatenate([reference, gap, reference])
    mic = echo_of(ref)
    out = bytearray()
    for i in range(0, len(mic) - CHUNK + 1, CHUNK):
        speaking = i < len(reference) or i >= len(reference) + len(gap)
        out += sim.step(mic[i : i + CHUNK], ref[i : i + CHUNK] if speaking else None)
    out = as_array(out)
    second = slice(len(reference) + len(gap), len(out))
    assert power_db(mic[second]) - power_db(out[second]) >= MIN_ERLE_DB
    assert sim.aec.stats.runs == 2


def test_an_unbuffered_speaker_that_starts_each_chunk_late_is_followed(reference):
    """A speaker without a buffer (the bench's ``SpeakerOutputTransport``): each 40 ms
    chunk is written, and starts playing, a little after the previous one ended
    (here 2 ms; the bench measured 1-18 ms). The reverse stream takes each chunk at
    its write time; laid end to end instead, the echo would creep 2 ms later behind
    it every chunk (5 %), which AEC3 never catches up with."""
    sim = Sim()
    step, late = 2 * CHUNK, int(0.002 * SR)
    chunks = [reference[i : i + step] for i in range(0, len(reference) - step + 1, step)]
    starts = [sim.t + k * (step + late) / SR for k in range(len(chunks))]  # write = play time
    played = np.zeros(int(round((starts[-1] - sim.t) * SR)) + step)
    for w, c in zip(starts, chunks):
        i = int(round((w - sim.t) * SR))
        played[i : i + step] = c
    mic = echo_of(played)
    out, k = bytearray(), 0
    for i in range(0, len(mic) - CHUNK + 1, CHUNK):
        while k < len(chunks) and starts[k] < sim.t + CHUNK / SR:  # written before it arrives
            sim.aec.push_reverse(pcm(chunks[k]), now=starts[k])
            k += 1
        sim.t += CHUNK / SR
        out += sim.aec.process_capture(pcm(mic[i : i + CHUNK]), now=sim.t)
    out = as_array(out)
    assert power_db(mic[SR : len(out)]) - power_db(out[SR:]) >= MIN_ERLE_DB
    assert sim.aec.stats.runs == len(chunks) - 1  # all but the first (bypassed) start anew


def test_the_watchdog_does_not_restart_a_working_apm_on_double_talk(reference):
    """The user says "no, stop" over the bot: 0 dB removed from those frames (their
    voice is kept, 15 dB above the echo), which outweighs the 3 s window's echo in
    energy; the frames of echo alone around it show the APM working, so it is kept."""
    n = 2 * SR
    first, rest = reference[:-n], reference[-n:]
    sim = Sim()
    sim.run(echo_of(first), first)
    clip = speech("no_stop__joe.wav")
    user = np.zeros_like(rest)
    user[SR // 4 : SR // 4 + len(clip)] = clip[: n - SR // 4]
    sim.run(echo_of(rest) + user, rest)
    assert sim.aec.stats.erle_db is not None and sim.aec.stats.resets == 0


def test_the_watchdog_restarts_an_apm_that_removes_nothing():
    """The microphone hears loud speech the faint reverse stream does not explain (the
    APM removes about 0 dB from it): after 3 s of that the APM is started afresh."""
    heard = speech("what_s_the_weather_like_on_mars__joe.wav", "actually_i_have_a_question__joe.wav",
                   "tell_me_a_story_about_a_dog__joe.wav")  # fmt: skip
    played = speech("tell_me_a_story_about_a_dog__joe_x125.wav", "what_s_the_weather_like_on_mars__joe.wav",
                    "actually_i_have_a_question__joe.wav")  # fmt: skip
    m = min(len(heard), len(played))
    sim = Sim()
    sim.run(heard[:m] * 10 ** (-ERL_DB / 20), played[:m] * 0.01)
    assert sim.aec.stats.median_frame_erle_db < 3 and sim.aec.stats.resets >= 1


def test_lost_microphone_audio_is_skipped_in_the_reverse_stream(reference):
    """A stall loses 200 ms of microphone audio: the reverse stream skips as much."""
    sim = Sim()
    ref = np.concatenate([reference, reference])
    mic = echo_of(ref)
    lost = range(len(reference), len(reference) + int(0.2 * SR))
    kept = []
    for i in range(0, len(mic) - CHUNK + 1, CHUNK):
        sim.aec.push_reverse(pcm(ref[i : i + CHUNK]), now=sim.t)
        sim.t += CHUNK / SR
        if i in lost:
            continue  # the sound card dropped it
        kept.append((i, sim.aec.process_capture(pcm(mic[i : i + CHUNK]), now=sim.t)))
    assert 0.15 <= sim.aec.stats.lost_capture_secs <= 0.25
    after = [(i, o) for i, o in kept if i >= len(reference) + SR]  # from a second after the loss
    m = np.concatenate([mic[i : i + CHUNK] for i, _ in after])
    o = np.concatenate([as_array(x) for _, x in after])
    assert power_db(m) - power_db(o) >= MIN_ERLE_DB


def test_a_late_burst_of_microphone_audio_is_not_taken_for_a_loss(reference):
    """The event loop is busy for 300 ms: the microphone's chunks queue up and then
    arrive at once. Nothing was lost, so nothing is skipped."""
    sim = Sim()
    mic = echo_of(reference)
    out = bytearray()
    queued = []
    for k, i in enumerate(range(0, len(mic) - CHUNK + 1, CHUNK)):
        sim.aec.push_reverse(pcm(reference[i : i + CHUNK]), now=sim.t)
        sim.t += CHUNK / SR
        queued.append(mic[i : i + CHUNK])
        if 50 <= k < 65:
            continue  # stalled: delivered with the next chunk
        for chunk in queued:
            out += sim.aec.process_capture(pcm(chunk), now=sim.t)
        queued.clear()
    assert sim.aec.stats.lost_capture_secs == 0
    out = as_array(out)
    assert power_db(mic[2 * SR : len(out)]) - power_db(out[2 * SR :]) >= MIN_ERLE_DB


@pytest.mark.parametrize("rate", [22050, 11025, 44101, 4000, 192000, 0, -16000])
def test_rates_without_whole_10ms_frames_or_out_of_range_are_rejected(rate):
    with pytest.raises(UnsupportedSampleRateError, match=str(rate)):
        EchoCanceller().start_capture(rate)
    with pytest.raises(UnsupportedSampleRateError, match=str(rate)):
        EchoCanceller().start_render(rate)


@pytest.mark.parametrize("rate", [16000.0, "16000", True])
def test_rates_that_are_not_ints_are_rejected(rate):
    with pytest.raises(UnsupportedSampleRateError, match="must be an int"):
        EchoCanceller().start_capture(rate)


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 32000, 44100, 48000])
def test_microphone_rates_with_whole_10ms_frames_are_accepted(rate):
    aec = EchoCanceller()
    aec.start_capture(rate)
    chunk = bytes(2 * rate // 50)
    aec.process_capture(chunk, now=0.02)
    aec.push_reverse(pcm(np.full(rate // 50, 1000.0)), now=0.02)
    assert len(aec.process_capture(chunk, now=0.04)) == len(chunk)
    assert aec.stats.capture_frames == 2


def test_process_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="start_capture"):
        EchoCanceller().process_capture(bytes(320))


def test_uneven_chunks_come_out_in_10ms_frames(reference):
    sim = Sim()
    sim.aec.process_capture(bytes(2 * CHUNK), now=sim.t)
    sim.aec.push_reverse(pcm(reference[:SR]), now=sim.t)
    sizes = [len(sim.aec.process_capture(pcm(reference[i : i + 250]), now=sim.t + (i + 250) / SR))
             for i in range(0, 2500, 250)]  # fmt: skip
    assert all(s % 320 == 0 for s in sizes) and sum(sizes) == 2 * 2400  # 2500 samples -> 15 frames


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="stream_delay_ms"):
        EchoCanceller(stream_delay_ms=-1)
    with pytest.raises(ValueError, match="max_reverse_backlog_secs"):
        EchoCanceller(max_reverse_backlog_secs=0)


def test_transport_params_and_enable_frames(reference):
    """Through Pipecat's filter interface, on the wall clock."""
    aec = EchoCanceller()
    params = aec.apply_to(TransportParams(audio_in_enabled=True, audio_out_enabled=True))
    assert params.audio_in_filter is aec.capture_filter and params.audio_out_filter is aec.render_tap

    async def go():
        await params.audio_in_filter.start(SR)
        await params.audio_out_filter.start(SR)
        await params.audio_in_filter.filter(bytes(2 * CHUNK))  # the microphone is running
        played = pcm(reference[SR : SR + 4 * CHUNK])  # speech, not the clip's leading silence
        assert await params.audio_out_filter.filter(played) == played  # the tap changes nothing
        await params.audio_in_filter.process_frame(FilterEnableFrame(enable=False))
        mic = pcm(echo_of(reference)[SR : SR + CHUNK])
        assert await params.audio_in_filter.filter(mic) == mic
        await params.audio_in_filter.process_frame(FilterEnableFrame(enable=True))
        assert await params.audio_in_filter.filter(mic) != mic
        assert aec.stats.capture_frames == 2
        await params.audio_in_filter.stop()

    asyncio.run(go())


def test_apply_to_refuses_stereo_and_taken_filter_slots():
    with pytest.raises(UnsupportedChannelsError):
        EchoCanceller().apply_to(TransportParams(audio_in_channels=2))
    taken = EchoCanceller().apply_to(TransportParams())
    with pytest.raises(ValueError, match="already has an audio filter"):
        EchoCanceller().apply_to(taken)
