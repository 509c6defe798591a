"""The full-duplex local transport (bot/duplex_audio.py) without a sound card.

Its PortAudio callback is called directly, as PortAudio would: the microphone audio
of one callback in, the speaker audio for it out. The echo canceller's duplex path
(``EchoCanceller.process_duplex``) is driven the same way on synthetic echo: the
speaker's audio heard 60 ms later at 12 dB echo return loss. The end-to-end run on a
real (virtual) sound card is tests/test_local_soundcard.py.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame
from pipecat.tests.utils import run_test
from pipecat.transports.local.audio import LocalAudioTransportParams

from bot.duplex_audio import PLAY_AHEAD_SECS, DuplexAudioTransport, PlayBuffer
from bot.echo_cancel import EchoCanceller, UnsupportedChannelsError
from tests.test_echo_cancel import MIN_ERLE_DB, SR, as_array, echo_of, pcm, power_db, reference  # noqa: F401

CALLBACK = 320  # samples: 20 ms at 16 kHz


def params(**kw) -> LocalAudioTransportParams:
    return LocalAudioTransportParams(audio_in_enabled=True, audio_out_enabled=True, **kw)


class Sink:
    """Stands in for the input transport: what the callback delivers."""

    def __init__(self):
        self.audio = bytearray()

    def deliver(self, audio: bytes) -> None:
        self.audio += audio


def duplex(canceller=None) -> tuple[DuplexAudioTransport, Sink]:
    t = DuplexAudioTransport(params(), canceller)
    sink = Sink()
    t._sink = sink  # what open() sets, without opening a PyAudio stream
    if canceller is not None:
        canceller.start_capture(SR)
        canceller.start_render(SR)
    return t, sink


def run_duplex(t: DuplexAudioTransport, mic: np.ndarray) -> bytes:
    """Call the callback over ``mic``; returns what it handed to the speaker."""
    played = bytearray()
    for i in range(0, len(mic) - CALLBACK + 1, CALLBACK):
        out, _ = t.callback(pcm(mic[i : i + CALLBACK]), CALLBACK, {}, 0)
        played += out
    return bytes(played)


def test_the_callback_plays_the_queued_bot_audio_in_order_then_silence():
    t, sink = duplex()
    t.play.put(bytes(range(200)) * 4)  # 800 bytes: 1.25 callbacks
    mic = np.arange(3 * CALLBACK) % 100
    played = run_duplex(t, mic.astype(np.float64))
    assert played[:800] == bytes(range(200)) * 4
    assert played[800:] == bytes(3 * 2 * CALLBACK - 800)  # silence once nothing is queued
    assert len(t.play) == 0
    assert bytes(sink.audio) == pcm(mic.astype(np.float64))  # no canceller: unchanged


def test_the_echo_of_what_the_callback_played_is_cancelled(reference):
    """The bot's audio goes through the play buffer; the microphone hears it 60 ms
    later. What the input receives has the echo removed."""
    aec = EchoCanceller()
    t, sink = duplex(aec)
    ref = reference[: 6 * SR]
    t.play.put(pcm(ref))
    mic = echo_of(ref)
    played = as_array(run_duplex(t, mic))
    np.testing.assert_array_equal(played, np.round(ref[: len(played)]))
    out = as_array(sink.audio)
    settled = slice(SR, len(out))
    assert power_db(mic[settled]) - power_db(out[settled]) >= MIN_ERLE_DB
    assert aec.stats.bypassed_frames == 0 and aec.stats.capture_frames == len(out) // 160


def test_the_users_voice_over_the_echo_is_kept(reference):
    aec = EchoCanceller()
    t, sink = duplex(aec)
    ref = reference[: 6 * SR]
    t.play.put(pcm(ref))
    user = np.zeros(len(ref))
    talk = slice(4 * SR, 5 * SR)
    user[talk] = reference[7 * SR : 8 * SR]  # other speech, at the bot's own level
    run_duplex(t, echo_of(ref) + user)
    out = as_array(sink.audio)
    # Double talk: the suppressor may take some of it, never most of it.
    assert power_db(out[talk]) >= power_db(user[talk]) - 6


def test_a_canceller_that_fails_leaves_the_microphone_on_uncancelled():
    """An exception in PortAudio's callback would stop the stream and leave the bot
    deaf; the transport logs it and goes on without cancellation."""

    class Broken(EchoCanceller):
        def process_duplex(self, mic, played):
            raise RuntimeError("boom")

    t, sink = duplex(Broken())
    mic = np.full(2 * CALLBACK, 1000.0)
    run_duplex(t, mic)
    assert bytes(sink.audio) == pcm(mic)


def test_process_duplex_checks_its_input():
    aec = EchoCanceller()
    with pytest.raises(RuntimeError, match="start_capture"):
        aec.process_duplex(bytes(320), bytes(320))
    aec.start_capture(SR)
    with pytest.raises(ValueError, match="same time"):
        aec.process_duplex(bytes(320), bytes(480))
    aec.start_render(24000)
    assert len(aec.process_duplex(bytes(320), bytes(480))) == 320  # 10 ms each


def test_process_duplex_keeps_a_remainder_and_passes_through_when_disabled():
    aec = EchoCanceller()
    aec.start_capture(SR)
    assert aec.process_duplex(bytes(200), bytes(200)) == b""  # < 10 ms waits
    assert len(aec.process_duplex(bytes(200), bytes(200))) == 320
    aec.enabled = False
    x = pcm(np.full(160, 123.0))
    assert aec.process_duplex(x, bytes(320)) == bytes(80) + x  # the remainder, then the rest unchanged


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        (dict(audio_in_sample_rate=16000, audio_out_sample_rate=24000), ValueError, "one rate"),
        (dict(audio_out_channels=2), UnsupportedChannelsError, "mono"),
    ],
)
def test_the_transport_refuses_what_one_mono_stream_cannot_do(kw, error, match):
    with pytest.raises(error, match=match):
        DuplexAudioTransport(params(**kw))


def test_the_transport_refuses_disabled_audio_and_odd_callbacks():
    with pytest.raises(ValueError, match="audio_out_enabled"):
        DuplexAudioTransport(LocalAudioTransportParams(audio_in_enabled=True))
    with pytest.raises(ValueError, match="callback_secs.*0.015"):
        DuplexAudioTransport(params(), callback_secs=0.015)


@pytest.mark.parametrize(("given", "rate"), [({}, 16000), ({"audio_out_sample_rate": 24000}, 24000)])
def test_microphone_and_speaker_share_the_streams_rate(given, rate):
    p = params(**given)
    DuplexAudioTransport(p)
    assert p.audio_in_sample_rate == p.audio_out_sample_rate == rate


def test_the_buffer_pads_with_silence_and_clears():
    b = PlayBuffer()
    b.put(b"\x01\x02")
    assert b.take(4) == b"\x01\x02\x00\x00"
    b.put(bytes(10))
    assert b.clear() == 10 and len(b) == 0


async def test_writes_wait_for_the_speaker_and_an_interruption_drops_the_queue():
    """The output transport is paced by the callback draining the play buffer: at most
    ``PLAY_AHEAD_SECS`` plus one chunk is ever queued. An interruption drops it."""
    t = DuplexAudioTransport(params(audio_out_end_silence_secs=0))  # no 2 s of silence at the end
    t._stream = object()  # running: the callback drains the buffer (below, a thread)
    most = [0]
    done = threading.Event()

    def speaker():
        while not done.is_set():
            most[0] = max(most[0], len(t.play))
            t.play.take(2 * CALLBACK)
            done.wait(0.02)

    thread = threading.Thread(target=speaker)
    thread.start()
    try:
        one_second = OutputAudioRawFrame(audio=bytes(2 * SR), sample_rate=SR, num_channels=1)
        await run_test(t.output(), frames_to_send=[one_second], expected_down_frames=None)
    finally:
        done.set()
        thread.join()
    chunk = 2 * int(SR * 0.04)  # Pipecat's default output chunk: 40 ms
    assert 0 < most[0] <= 2 * int(PLAY_AHEAD_SECS * SR) + chunk

    t2 = DuplexAudioTransport(params(audio_out_end_silence_secs=0))  # not running: writes do not wait
    t2.play.put(bytes(1000))
    await run_test(t2.output(), frames_to_send=[InterruptionFrame()], expected_down_frames=None)
    assert len(t2.play) == 0
    await asyncio.sleep(0)


def test_a_device_that_cannot_run_both_ways_gets_a_clear_error(monkeypatch):
    import pyaudio

    from bot.duplex_audio import DuplexStreamError

    class NoDuplex:
        terminated = False

        def open(self, **kw):
            assert kw["input"] and kw["output"] and kw["rate"] == 16000
            raise OSError(-9993, "Illegal combination of I/O devices")

        def terminate(self):
            NoDuplex.terminated = True

    monkeypatch.setattr(pyaudio, "PyAudio", NoDuplex)
    t = DuplexAudioTransport(params(input_device_index=3))
    with pytest.raises(DuplexStreamError, match=r"16000 Hz.*input device #3.*output device \(the default\).*Illegal.*--no-aec"):
        t.open(16000, Sink())
    assert NoDuplex.terminated and not t.running
