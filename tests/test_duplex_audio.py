"""The paired local transport (bot/duplex_audio.py) without a sound card.

Its PortAudio callbacks' work is called directly, as PortAudio would: the speaker's
next 20 ms out (``render``), then the microphone's 20 ms in (``capture``). The echo canceller's duplex path
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
from pipecat.tests.utils import SleepFrame, run_test
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
    t._sink, t._rate = sink, SR  # what open() sets, without opening PyAudio streams
    if canceller is not None:
        canceller.start_capture(SR)
        canceller.start_render(SR)
    return t, sink


def run_duplex(t: DuplexAudioTransport, mic: np.ndarray, ahead: int = 2) -> bytes:
    """The speaker's callback ``ahead`` times first (PortAudio fills its output buffer
    before the first capture), then one each per microphone callback over ``mic``;
    returns what was handed to the speaker."""
    played = bytearray()
    for _ in range(ahead):
        played += t.render(2 * CALLBACK)
    for i in range(0, len(mic) - CALLBACK + 1, CALLBACK):
        played += t.render(2 * CALLBACK)
        t.capture(pcm(mic[i : i + CALLBACK]))
    return bytes(played)


def test_the_callback_plays_the_queued_bot_audio_in_order_then_silence():
    t, sink = duplex()
    t.play.put(bytes(range(200)) * 4)  # 800 bytes: 1.25 callbacks
    mic = np.arange(3 * CALLBACK) % 100
    played = run_duplex(t, mic.astype(np.float64), ahead=0)
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
    # Played sample k is heard at microphone sample k + 100 ms: the 40 ms PortAudio
    # played before the first capture, then echo_of's 60 ms.
    mic = np.concatenate([np.zeros(2 * CALLBACK), echo_of(ref)])
    played = as_array(run_duplex(t, mic))
    np.testing.assert_array_equal(played[: len(ref)], np.round(ref))  # in order, then silence
    out = as_array(sink.audio)
    settled = slice(SR, len(out))
    assert power_db(mic[settled]) - power_db(out[settled]) >= MIN_ERLE_DB
    assert aec.stats.bypassed_frames == 0 and aec.stats.capture_frames == len(out) // 160


def test_the_users_voice_over_the_echo_is_kept(reference):
    aec = EchoCanceller()
    t, sink = duplex(aec)
    ref = reference[: 6 * SR]
    t.play.put(pcm(ref))
    user = np.zeros(len(ref) + 2 * CALLBACK)
    talk = slice(4 * SR, 5 * SR)
    user[talk] = reference[7 * SR : 8 * SR]  # other speech, at the bot's own level
    run_duplex(t, np.concatenate([np.zeros(2 * CALLBACK), echo_of(ref)]) + user)
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
    t._out_stream = object()  # running: the speaker's callback drains the buffer (below, a thread)
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


def test_a_device_that_cannot_open_gets_a_clear_error(monkeypatch):
    import pyaudio

    from bot.duplex_audio import DuplexStreamError

    class NoDuplex:
        terminated = False

        def open(self, **kw):
            assert kw["rate"] == 16000
            raise OSError(-9997, "Invalid sample rate")

        def terminate(self):
            NoDuplex.terminated = True

    monkeypatch.setattr(pyaudio, "PyAudio", NoDuplex)
    t = DuplexAudioTransport(params(input_device_index=3))
    with pytest.raises(DuplexStreamError, match=r"16000 Hz.*input device #3, output device \(the default\).*Invalid sample rate.*--no-aec"):
        t.open(16000, Sink())
    assert NoDuplex.terminated and not t.running


def test_the_reverse_fifo_pairs_played_with_captured_samples_and_is_bounded():
    t, sink = duplex(EchoCanceller())
    t._canceller.start_capture(SR)
    first = t.render(2 * CALLBACK)  # PortAudio fills its buffer first: 20 ms ahead
    assert len(t.reverse) == 2 * CALLBACK and first == bytes(2 * CALLBACK)
    t.capture(bytes(2 * CALLBACK))  # takes as many played samples as it brings
    assert len(t.reverse) == 0
    for _ in range(80):  # 1.6 s played with no microphone: only the last 1 s is kept
        t.render(2 * CALLBACK)
    assert len(t.reverse) == 2 * SR and t.reverse_dropped == 2 * int(0.6 * SR)


class FakeStream:
    def __init__(self, log, **kw):
        self.log, self.kw, self.active = log, kw, False
        log.append(("open", "output" if kw.get("output") else "input"))

    def is_active(self):
        return self.active

    def start_stream(self):
        self.active = True

    def stop_stream(self):
        self.log.append(("stop", "output" if self.kw.get("output") else "input"))

    def close(self):
        pass


def test_the_watchdog_sees_a_stalled_callback_and_restarts_both_streams(monkeypatch):
    """PortAudio's ALSA backend once stopped calling back after an underrun: the bot
    deaf and its output stuck. A stream whose callback has not come for STALL_SECS
    is restarted, with the other."""
    import pyaudio

    import bot.duplex_audio as duplex_audio

    log = []

    class PA:
        def open(self, **kw):
            return FakeStream(log, **kw)

        def terminate(self):
            log.append(("terminate",))

    monkeypatch.setattr(pyaudio, "PyAudio", PA)
    clock = [100.0]
    monkeypatch.setattr(duplex_audio.time, "monotonic", lambda: clock[0])
    t = DuplexAudioTransport(params())
    t.open(SR, Sink())
    t.start()
    assert log == [("open", "output"), ("open", "input")] and t.running
    clock[0] += 0.5
    t.render(2 * CALLBACK)
    t.capture(bytes(2 * CALLBACK))
    assert t.stalled() is None
    clock[0] += duplex_audio.STALL_SECS + 0.1
    t.render(2 * CALLBACK)  # the speaker goes on, the microphone stopped
    assert t.stalled() == "microphone"
    t.restart()
    assert log[2:] == [("stop", "input"), ("stop", "output"), ("open", "output"), ("open", "input")]
    assert t.restarts == 1 and t.stalled() is None and len(t.reverse) == 0
    t.close()
    assert log[-1] == ("terminate",) and not t.running and t.stalled() is None


async def test_the_watchdog_task_ends_with_the_pipeline(monkeypatch):
    """No task outlives EndFrame: the input transport's watchdog is cancelled at cleanup."""
    import pyaudio

    monkeypatch.setattr(pyaudio, "PyAudio", lambda: type("PA", (), {
        "open": lambda self, **kw: FakeStream([], **kw), "terminate": lambda self: None})())  # fmt: skip
    import bot.duplex_audio as duplex_audio

    watching = []
    watch = duplex_audio._DuplexInput._watch

    async def counted(self):
        watching.append(self)
        await watch(self)

    monkeypatch.setattr(duplex_audio._DuplexInput, "_watch", counted)
    t = DuplexAudioTransport(params())
    before = {task for task in asyncio.all_tasks()}
    await run_test(t.input(), frames_to_send=[SleepFrame(sleep=0.1)], expected_down_frames=None)
    assert watching == [t.input()]  # it ran while the pipeline did
    assert t.input()._watchdog is None and not t.running
    left = {task for task in asyncio.all_tasks() - before if not task.done()}
    assert not [task for task in left if "watchdog" in task.get_name()]


def restart_held_in_open(monkeypatch):
    """A transport whose watchdog restart is under way, held inside PortAudio's open
    of the speaker (a slow or wedged device) until the returned event is set.
    Returns (transport, PortAudio log, release event, restarting thread)."""
    import pyaudio

    log, held, release = [], threading.Event(), threading.Event()

    class HeldPA:
        def open(self, **kw):
            if kw.get("output") and log.count(("open", "output")) == 1:
                held.set()  # the restart's first open
                release.wait(5)
            return FakeStream(log, **kw)

        def terminate(self):
            log.append(("terminate",))

    monkeypatch.setattr(pyaudio, "PyAudio", HeldPA)
    t = DuplexAudioTransport(params())
    t.open(SR, Sink())
    t.start()
    restarting = threading.Thread(target=t.restart)
    restarting.start()
    assert held.wait(5)
    return t, log, release, restarting


def test_a_restart_under_way_when_the_pipeline_ends_leaves_no_stream_open(monkeypatch):
    """The watchdog's restart runs in an executor thread and goes on after its task is
    cancelled at cleanup: close() waits for it, and a restart after close() opens
    nothing, so no PortAudio callback outlives the pipeline."""
    t, log, release, restarting = restart_held_in_open(monkeypatch)
    closing = threading.Thread(target=t.close)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive()  # close() waits for the restart
    release.set()
    restarting.join(5)
    closing.join(5)
    opened = [e for e in log if e[0] == "open"]
    stopped = [e for e in log if e[0] == "stop"]
    assert len(opened) == 4 and len(stopped) == 4 and log[-1] == ("terminate",) and not t.running
    t.restart()  # the watchdog's last look, after the end
    assert len([e for e in log if e[0] == "open"]) == 4 and t.restarts == 1


def test_a_restart_that_hangs_does_not_hang_the_shutdown(monkeypatch):
    """A restart stuck in a wedged device: close() waits CLOSE_WAIT_SECS, then closes."""
    import bot.duplex_audio as duplex_audio

    monkeypatch.setattr(duplex_audio, "CLOSE_WAIT_SECS", 0.2)
    t, log, release, restarting = restart_held_in_open(monkeypatch)
    closing = threading.Thread(target=t.close)
    closing.start()
    closing.join(2)
    assert not closing.is_alive() and ("terminate",) in log  # closed without the restart
    release.set()
    restarting.join(5)
    opened = [e for e in log if e[0] == "open"]
    stopped = [e for e in log if e[0] == "stop"]
    assert len(opened) == len(stopped) and not t.running  # the late restart closed what it opened
