"""The acoustic echo check: the bot's played audio coming back through the microphone
sounds like echo whatever the STT made of it, while the user's own voice, alone or over
a quieter echo, does not. Real clips: the bot is Piper joe (tests/audio), the user
espeak-ng."""

import wave
from pathlib import Path

import numpy as np
import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_softack import SoftAckConfigError
from pipecat_softack.acoustic_echo import MIN_CORRELATION, AudioHistory, echo_correlation
from pipecat_softack.bot_speech import BotSpeechRecord
from tests.frames import final, interim, recording_filter

AUDIO = Path(__file__).parent / "audio"
SR = 16000
CHUNK = 320  # 20 ms, a transport's chunk
BOT_CLIPS = ("tell_me_a_story_about_a_dog__joe", "actually_i_have_a_question__joe",
             "what_s_the_weather_like_on_mars__joe", "yeah_but_what_about_the_price__joe")  # fmt: skip
USER_CLIPS = ("stop__espeak", "wait__espeak", "yeah__espeak", "hold_on__espeak", "excuse_me__espeak")


def clip(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / f"{name}.wav")) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def bot_speech() -> np.ndarray:
    """About 8 s of the bot talking: four Piper sentences."""
    return np.concatenate([clip(n) for n in BOT_CLIPS])


def pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def db(gain_db: float) -> float:
    return 10 ** (gain_db / 20)


def histories(mic: np.ndarray, bot: np.ndarray, at: int, jitter: float = 0.005, seed: int = 0):
    """The bot played ``bot`` from t=100 s; the microphone heard ``mic`` from sample ``at``
    of that timeline; 20 ms chunks, each arriving up to ``jitter`` s late."""
    rng = np.random.default_rng(seed)
    heard, played = AudioHistory(keep_secs=20), AudioHistory(keep_secs=20)
    t0 = 100.0
    for i in range(0, len(bot), CHUNK):
        played.add(pcm(bot[i : i + CHUNK]), SR, t=t0 + (i + CHUNK) / SR + rng.uniform(0, jitter))
    for i in range(0, len(mic), CHUNK):
        heard.add(pcm(mic[i : i + CHUNK]), SR, t=t0 + (at + i + CHUNK) / SR + rng.uniform(0, jitter))
    return heard, played, t0 + at / SR


def noise(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.003, n).astype(np.float32)  # about -50 dBFS


@pytest.mark.parametrize("delay", [0.04, 0.12, 0.3])
@pytest.mark.parametrize("erl_db", [6, 12, 18])
def test_the_played_audio_coming_back_sounds_like_echo(delay, erl_db):
    bot = bot_speech()
    at, n = 2 * SR, int(1.5 * SR)  # 1.5 s of echo, 2 s into the bot's speech
    d = int(delay * SR)
    mic = bot[at - d : at - d + n] * db(-erl_db) + noise(n)
    heard, played, start = histories(mic, bot, at)
    c = echo_correlation(heard, played, start + 0.2, start + 1.4)
    assert c is not None and c >= MIN_CORRELATION, c


def test_an_echo_burst_out_of_digital_silence_sounds_like_echo():
    """A clean line (a bench, a virtual sound card) is exact zeros between bursts: the
    silent frames before the burst must not count as heard sound that follows nothing."""
    bot = bot_speech()
    at, d, n = 2 * SR, int(0.06 * SR), int(1.2 * SR)
    mic = np.zeros(int(0.5 * SR) + n, np.float32)
    mic[int(0.5 * SR) :] = bot[at - d : at - d + n] * db(-18)
    heard, played, start = histories(mic, bot, at - int(0.5 * SR))
    c = echo_correlation(heard, played, start, start + len(mic) / SR)
    assert c is not None and c >= MIN_CORRELATION, c


@pytest.mark.parametrize("name", USER_CLIPS)
@pytest.mark.parametrize("echo_db", [None, -12])
def test_the_users_voice_alone_or_over_a_quieter_echo_is_not_echo(name, echo_db):
    """``echo_db``: the echo's level against the user's speech (None: no echo)."""
    bot, user = bot_speech(), clip(name)
    at, d = 3 * SR, int(0.08 * SR)
    mic = user + noise(len(user))
    if echo_db is not None:
        echo = bot[at - d : at - d + len(user)]
        mic = mic + echo * (np.sqrt(np.mean(user**2)) / np.sqrt(np.mean(echo**2))) * db(echo_db)
    heard, played, start = histories(mic, bot, at)
    c = echo_correlation(heard, played, start, start + len(user) / SR)
    assert c is not None and c < MIN_CORRELATION, c


@pytest.mark.parametrize("at_secs", [2, 4, 6])
def test_a_different_speaker_rate_still_matches(at_secs):
    """Played at 24 kHz (Piper's, Cartesia's), heard at 16 kHz: bands, not samples."""
    bot16 = bot_speech()
    t = np.arange(int(len(bot16) * 1.5)) / 24000
    bot24 = np.interp(t, np.arange(len(bot16)) / SR, bot16).astype(np.float32)
    at, n, d = at_secs * SR, SR, int(0.06 * SR)
    mic = bot16[at - d : at - d + n] * db(-6) + noise(n)
    heard, played = AudioHistory(), AudioHistory()
    t0 = 100.0
    for i in range(0, len(bot24), 480):
        played.add(pcm(bot24[i : i + 480]), 24000, t=t0 + (i + 480) / 24000)
    for i in range(0, n, CHUNK):
        heard.add(pcm(mic[i : i + CHUNK]), SR, t=t0 + (at + i + CHUNK) / SR)
    c = echo_correlation(heard, played, t0 + at / SR + 0.1, t0 + at / SR + 0.9)
    assert c is not None and c >= MIN_CORRELATION, c
    # The same echo against the 16 kHz played audio: the bands hold the same bins
    # at both rates, so the rate of the played stream changes (almost) nothing.
    same_rate = AudioHistory()
    for i in range(0, len(bot16), CHUNK):
        same_rate.add(pcm(bot16[i : i + CHUNK]), SR, t=t0 + (i + CHUNK) / SR)
    c16 = echo_correlation(heard, same_rate, t0 + at / SR + 0.1, t0 + at / SR + 0.9)
    assert abs(c - c16) < 0.01, (c, c16)


def test_nothing_to_compare_gives_no_verdict():
    bot = bot_speech()
    heard, played, start = histories(bot[: SR] * 0.1, np.zeros(3 * SR, np.float32), 2 * SR)
    assert echo_correlation(heard, played, start, start + 1.0) is None  # the bot was quiet
    heard, played, start = histories(bot[: SR] * 0.1, bot, 2 * SR)
    assert echo_correlation(heard, played, start, start + 0.1) is None  # too short
    assert echo_correlation(AudioHistory(), played, start, start + 1.0) is None  # nothing heard


def test_chunks_arriving_with_jitter_are_laid_end_to_end():
    x = np.arange(SR, dtype=np.float32) % 1000 / 32768  # a sawtooth: every sample tells its place
    h = AudioHistory()
    rng = np.random.default_rng(3)
    for i in range(0, SR, CHUNK):  # the first on time, the rest up to 20 ms late
        h.add(pcm(x[i : i + CHUNK]), SR, t=10.0 + (i + CHUNK) / SR + (i > 0) * rng.uniform(0, 0.02))
    got, rate = h.window(10.0, 11.0)
    assert rate == SR
    np.testing.assert_array_equal(got, np.frombuffer(pcm(x), "<i2").astype(np.float32))


def test_old_audio_is_forgotten():
    h = AudioHistory(keep_secs=1.0)
    h.add(pcm(np.full(CHUNK, 0.5, np.float32)), SR, t=1.0)
    h.add(pcm(np.full(CHUNK, 0.5, np.float32)), SR, t=5.0)
    assert h.window(0.0, 1.0) is None
    assert h.window(4.9, 5.0) is not None


def test_audio_fed_faster_than_real_time_keeps_only_the_newest_keep_secs():
    # A test or a backlog can push a minute of audio within a second of wall time.
    h = AudioHistory(keep_secs=1.0)
    x = np.arange(60 * SR, dtype=np.float32) % 1000 / 32768
    for i in range(0, len(x), CHUNK):
        h.add(pcm(x[i : i + CHUNK]), SR, t=100.0 + i / len(x))
    kept = list(h._chunks)
    assert 1.0 - CHUNK / SR <= sum(c.secs for c in kept) <= 1.0 + 1e-9
    newest = h.window(kept[-1].start, kept[-1].end)[0]
    np.testing.assert_array_equal(newest, np.frombuffer(pcm(x[-CHUNK:]), "<i2").astype(np.float32))


def test_a_pinned_history_keeps_everything_since_the_pin_up_to_its_most():
    h = AudioHistory(keep_secs=1.0, max_keep_secs=3.0)
    chunk = pcm(np.full(CHUNK, 0.5, np.float32))

    def feed(t0: float, t1: float):
        t = t0
        while t < t1 - 1e-9:
            t += CHUNK / SR
            h.add(chunk, SR, t=t)

    def kept() -> float:
        return sum(c.secs for c in h._chunks)

    feed(0.0, 5.0)
    assert kept() == pytest.approx(1.0, abs=0.021)
    h.pin(4.5)  # a hold opened at 5.5 s, 1 s before
    feed(5.0, 7.0)
    assert h._chunks[0].start <= 4.5 + 1e-9 and kept() == pytest.approx(2.5, abs=0.021)
    feed(7.0, 9.0)  # a hold longer than max_keep_secs: bounded all the same
    assert kept() == pytest.approx(3.0, abs=0.021)
    h.pin(None)
    feed(9.0, 9.02)
    assert kept() == pytest.approx(1.0, abs=0.021)


def test_a_pinned_history_answers_windows_as_long_as_it_may_keep():
    # The filter's microphone history keeps 1 s, and a hold's audio up to 6 s: a
    # 3.3 s window over a long hold is a question it must answer, not refuse.
    h = AudioHistory(keep_secs=1.0, max_keep_secs=6.0)
    h.pin(0.0)
    for i in range(200):
        h.add(pcm(np.full(CHUNK, 0.5, np.float32)), SR, t=(i + 1) * CHUNK / SR)
    got, _ = h.window(0.5, 3.8)
    assert len(got) == int(round(3.3 * SR)) and got.min() > 0


def test_stereo_is_averaged_to_mono():
    left, right = np.full(CHUNK, 0.25, np.float32), np.full(CHUNK, 0.75, np.float32)
    h = AudioHistory()
    h.add(pcm(np.stack([left, right], axis=1).ravel()), SR, num_channels=2, t=1.0)
    got, _ = h.window(1.0 - CHUNK / SR, 1.0)
    np.testing.assert_allclose(got, (np.frombuffer(pcm(left), "<i2") + np.frombuffer(pcm(right), "<i2")) / 2.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": "16000"}, "sample_rate"),
        ({"num_channels": 0}, "num_channels"),
        ({"audio": b"\x00\x00\x00"}, "3 bytes"),
        ({"audio": b"\x00\x00", "num_channels": 2}, "2 16-bit"),
    ],
)
def test_bad_audio_is_named(kwargs, match):
    args = {"audio": b"\x00\x00" * 4, "sample_rate": SR, "num_channels": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        AudioHistory().add(**args)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="keep_secs"):
        AudioHistory(keep_secs=0)
    with pytest.raises(ValueError, match="max_keep_secs"):
        AudioHistory(keep_secs=2, max_keep_secs=1)
    for bad in (1.5, 0, True, "0.9"):
        with pytest.raises(SoftAckConfigError, match="echo_min_correlation"):
            recording_filter(echo_min_correlation=bad)


@pytest.mark.parametrize("t0, t1", [(5.0, 5.0), (6.0, 5.0), (float("nan"), 5.0), (0.0, float("inf")), (0.0, 1e6)])
def test_bad_windows_are_named(t0, t1):
    h = AudioHistory(keep_secs=10)
    h.add(b"\x00\x00" * CHUNK, SR, t=5.0)
    with pytest.raises(ValueError, match="window"):
        h.window(t0, t1)


def test_a_record_without_audio_keeps_none():
    record = BotSpeechRecord(keep_audio=False)
    assert record.audio is None
    record.clear()  # nothing to clear, no error
    # The filter's own record keeps audio only when its acoustic check is on.
    assert recording_filter()._bot_speech.audio is not None
    assert recording_filter(echo_min_correlation=None)._bot_speech.audio is None
    assert recording_filter(echo_rejection=False)._bot_speech.audio is None


class SampleClock:
    """``time.monotonic`` for the filter and the audio record, run by the microphone's
    samples: a test's event loop runs a little slower than real time, which would put
    gaps into both streams that a real capture stream does not have."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class Room(FrameProcessor):
    """The bot's speaker and the microphone in one room: each microphone chunk that
    goes by advances the clock by its length, and the chunk of bot audio playing at
    that moment is recorded as played then (what the output transport does)."""

    def __init__(self, record: BotSpeechRecord, played: np.ndarray, clock: SampleClock):
        super().__init__()
        self._record, self._played, self._clock, self._i = record, played, clock, 0

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._clock.now += CHUNK / SR
            self._record.audio.add(pcm(self._played[self._i : self._i + CHUNK]), SR)
            self._i += CHUNK
        await self.push_frame(frame, direction)


def room_frames(mic: np.ndarray, words: str, stop_chunk: int = 90) -> list:
    """Bot speaking, then the microphone: the VAD hears speech from 0.8 s to chunk
    ``stop_chunk`` (1.8 s), the STT makes ``words`` of it (an interim at 1.5 s, then
    the final)."""
    frames: list = [BotStartedSpeakingFrame(), SleepFrame(sleep=0.05)]
    for k in range(len(mic) // CHUNK):
        frames.append(InputAudioRawFrame(audio=pcm(mic[k * CHUNK : (k + 1) * CHUNK]), sample_rate=SR, num_channels=1))
        frames.append(SleepFrame(sleep=0.01))  # keeps the VAD and transcript frames in place
        if k == 40:
            frames.append(VADUserStartedSpeakingFrame())
        elif k == 75:
            frames.append(interim(words))
        elif k == stop_chunk:
            frames.append(VADUserStoppedSpeakingFrame())
    return frames + [final(words), SleepFrame(sleep=0.3)]


@pytest.fixture
def run_room(monkeypatch):
    import types

    from pipecat.pipeline.pipeline import Pipeline

    from pipecat_softack import acoustic_echo, bot_speech, softack_filter

    clock = SampleClock()
    for module in (acoustic_echo, bot_speech, softack_filter):
        monkeypatch.setattr(module, "time", types.SimpleNamespace(monotonic=clock.monotonic))

    async def run(mic: np.ndarray, played: np.ndarray, words: str, stop_chunk: int = 90, **kwargs):
        record = BotSpeechRecord()
        f = recording_filter(bot_speech=record, **kwargs)
        pipeline = Pipeline([Room(record, played, clock), f])
        down, _ = await run_test(pipeline, frames_to_send=room_frames(mic, words, stop_chunk))
        return f, down

    return run


async def test_a_misheard_echo_burst_never_interrupts_even_as_a_command(run_room):
    """The bot's own voice at 12 dB echo return loss, heard as "but hold on" (a command
    keyword no word of the bot explains): dropped as echo."""
    played = bot_speech()[: 2 * SR]
    d = int(0.08 * SR)
    echo = np.concatenate([np.zeros(d, np.float32), played[:-d]]) * db(-12)
    mic = np.where(np.arange(2 * SR) >= int(0.7 * SR), echo, 0) + noise(2 * SR)
    f, down = await run_room(mic, played, "but hold on")
    assert [d.kind for d in f.decisions] == ["echo"]
    assert not any(isinstance(x, (TranscriptionFrame, InterruptionFrame)) for x in down)
    # The control: the acoustic check off, the same words interrupt.
    f, down = await run_room(mic, played, "but hold on", echo_min_correlation=None)
    assert [d.kind for d in f.decisions] == ["interruption"]


async def test_the_microphone_audio_of_a_hold_is_kept_until_it_is_decided(run_room, monkeypatch):
    pins = []
    real_pin = AudioHistory.pin
    monkeypatch.setattr(AudioHistory, "pin", lambda self, since: (pins.append(since), real_pin(self, since)))
    played = bot_speech()[: 2 * SR]
    f, _ = await run_room(noise(2 * SR), played, "give yourself")
    assert [d.kind for d in f.decisions] == ["interruption"]
    # Pinned from a second before the hold opened, unpinned when it was decided.
    assert len(pins) == 2 and isinstance(pins[0], float) and pins[1] is None


async def test_a_long_echo_burst_is_checked_over_its_first_three_seconds(run_room):
    """Speech from 0.8 s to 4.6 s, decided at its end: the check reads 3.3 s of
    microphone audio, more than the filter keeps while nothing is held."""
    played = bot_speech()[: 5 * SR]
    d = int(0.08 * SR)
    echo = np.concatenate([np.zeros(d, np.float32), played[:-d]]) * db(-12)
    mic = np.where(np.arange(5 * SR) >= int(0.7 * SR), echo, 0) + noise(5 * SR)
    f, down = await run_room(mic, played, "give yourself", stop_chunk=230)
    assert [d.kind for d in f.decisions] == ["echo"]
    assert not any(isinstance(x, (TranscriptionFrame, InterruptionFrame)) for x in down)


async def test_the_user_saying_stop_over_a_quieter_echo_interrupts(run_room):
    played = bot_speech()[: 2 * SR]
    d = int(0.08 * SR)
    echo = np.concatenate([np.zeros(d, np.float32), played[:-d]]) * db(-18)
    user = clip("stop__espeak")
    voice = np.zeros(2 * SR, np.float32)
    voice[int(0.7 * SR) : int(0.7 * SR) + len(user)] = user[: 2 * SR - int(0.7 * SR)]
    f, down = await run_room(voice + echo + noise(2 * SR), played, "stop")
    assert [d.kind for d in f.decisions] == ["interruption"]
    assert any(isinstance(x, TranscriptionFrame) and x.text == "stop" for x in down)
    # It interrupted on a correlation it computed (and found below the threshold),
    # not for want of audio to compare.
    assert f._correlation_memo is not None and f._correlation_memo[2] is not None
    assert f._correlation_memo[2] < MIN_CORRELATION


@pytest.mark.parametrize("correlation, words, kind", [
    (0.92, "give yourself", "echo"),  # no command keyword: 0.9 is enough
    (0.92, "but hold on", "interruption"),  # a command needs halfway to 1: 0.95
    (0.96, "but hold on", "echo"),
    (0.5, "give yourself", "interruption"),
])  # fmt: skip
async def test_a_command_keyword_needs_a_closer_match_to_be_echo(run_room, monkeypatch, correlation, words, kind):
    from pipecat_softack import softack_filter

    monkeypatch.setattr(softack_filter, "echo_correlation", lambda *_args: correlation)
    silence = np.zeros(2 * SR, np.float32)
    f, _ = await run_room(silence, silence, words)
    assert [d.kind for d in f.decisions] == [kind]
