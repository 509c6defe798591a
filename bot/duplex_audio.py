"""Pipecat's local audio with the speaker and microphone paired sample for sample, echo
cancelled in the microphone's PortAudio callback.

Pipecat's ``LocalAudioTransport`` opens two PyAudio streams: the microphone's, with a
callback, and the speaker's, written in 40 ms chunks that block on PortAudio's buffer,
with nothing written while the bot is quiet. An echo canceller then has to guess when
each chunk of bot audio actually plays (:meth:`bot.echo_cancel.EchoCanceller.push_reverse`
lays it on the microphone's timeline), and each answer starts a new run at a new
delay that AEC3 must find again: on the virtual sound card of
``tests/test_local_soundcard.py`` the echo came through in the first one or two
seconds of answers (the bot cut itself off "at 0%").

This transport runs the speaker in callback mode too, as WebRTC's own audio device
module and LiveKit's ``rtc.MediaDevices`` do: PortAudio asks for the next 20 ms to
play, silence when the bot is quiet, and what it is given joins a *reverse FIFO*;
each microphone callback takes as many samples from that FIFO as it brings. Both
streams run on the sound card's clock, so the k-th sample played is paired with the
k-th sample captured, a fixed distance ahead of its echo (the output buffer, the
acoustic path, the input buffer), whatever the event loop does. The canceller gets
that exact reverse stream (:meth:`bot.echo_cancel.EchoCanceller.process_duplex`)
before the VAD and the STT see the microphone. An output underflow or input overflow
moves the pairing once, by the samples lost; AEC3 finds the new delay.

Two streams, not one full-duplex stream: PortAudio's ALSA backend stopped a
full-duplex stream for good after an underrun on the virtual sound card
(``PaAlsaStream_WaitForFrames`` failed, no callback after it; once in seven 2-minute
conversations), leaving the bot deaf and its output stuck. A watchdog restarts the
streams if either callback stops coming for ``STALL_SECS``.

The bot's audio waits in a small play buffer: ``write_audio_frame`` returns once
less than ``PLAY_AHEAD_SECS`` is queued, which paces the output transport as a
blocking PyAudio write does; an interruption drops what is queued.

The microphone and the speaker run at one rate, so that the pairing is one sample for
one: the output transport resamples the bot's audio to it (Pipecat's own resampler).
"""

from __future__ import annotations

import asyncio
import threading
import time

from loguru import logger
from pipecat.frames.frames import InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame, StartFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport

from bot.echo_cancel import EchoCanceller, UnsupportedChannelsError

#: Seconds of audio per PortAudio callback: two APM frames (10 ms each), as Pipecat's
#: own local input uses (``LocalAudioInputTransport``: 20 ms).
CALLBACK_SECS = 0.02
#: Seconds of bot audio queued ahead of the speaker at most before
#: ``write_audio_frame`` returns: one 40 ms output chunk (Pipecat's default
#: ``audio_out_10ms_chunks=4``) beyond the one playing, about what PortAudio's own
#: buffer holds under a blocking write.
PLAY_AHEAD_SECS = 0.06
#: Pipecat's default microphone rate (``PipelineParams.audio_in_sample_rate``).
DEFAULT_SAMPLE_RATE = 16000
#: Seconds of played audio the reverse FIFO keeps at most (its steady fill is the
#: output buffer, tens of ms): bounded so a stalled microphone cannot make it grow.
MAX_REVERSE_SECS = 1.0
#: Seconds without a callback from either stream after which the watchdog restarts
#: both (PortAudio calls each every ``CALLBACK_SECS``).
STALL_SECS = 1.0
#: Seconds ``close()`` waits for a restart under way before it closes anyway (a
#: restart stuck in a wedged device must not hang the pipeline's shutdown).
CLOSE_WAIT_SECS = 5.0


class DuplexStreamError(RuntimeError):
    """PortAudio cannot open the microphone or the speaker (a device or rate it cannot
    take); the message names the devices, the rate and PortAudio's error."""


def _device(index: int | None) -> str:
    return "(the default)" if index is None else f"#{index}"


class PlayBuffer:
    """A thread-safe FIFO of PCM bytes between the event loop and the audio callback."""

    def __init__(self):
        self._data = bytearray()
        self._lock = threading.Lock()

    def put(self, pcm: bytes, max_bytes: int | None = None) -> int:
        """Queue ``pcm`` after what is already queued; with ``max_bytes``, drop the
        oldest bytes beyond it. Returns how many bytes were dropped."""
        with self._lock:
            self._data += pcm
            over = 0 if max_bytes is None else max(0, len(self._data) - max_bytes)
            del self._data[:over]
        return over

    def take(self, nbytes: int) -> bytes:
        """The next ``nbytes`` (padded with silence when fewer are queued)."""
        with self._lock:
            out = bytes(self._data[:nbytes])
            del self._data[:nbytes]
        return out + bytes(nbytes - len(out))

    def clear(self) -> int:
        """Drop everything queued; returns how many bytes were dropped."""
        with self._lock:
            n = len(self._data)
            self._data.clear()
        return n

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class _DuplexInput(BaseInputTransport):
    """Opens the streams; pushes the (echo-cancelled) microphone audio."""

    def __init__(self, transport: "DuplexAudioTransport", params):
        super().__init__(params)
        self._duplex = transport
        self._ready = False
        self._watchdog: asyncio.Task | None = None

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        self._duplex.open(self.sample_rate, self)

    async def start(self, frame: StartFrame):
        await super().start(frame)
        self._ready = True
        self._duplex.start()
        if self._watchdog is None:
            self._watchdog = self.create_task(self._watch(), "duplex-audio-watchdog")
        await self.set_transport_ready(frame)

    async def _watch(self):
        """Restart the streams when a callback stops coming (see ``STALL_SECS``)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(STALL_SECS / 4)
            stalled = self._duplex.stalled()
            if stalled:
                logger.error(f"Duplex audio: no {stalled} callback for {STALL_SECS:g} s; restarting the streams")
                await loop.run_in_executor(None, self._duplex.restart)

    async def cleanup(self):
        if self._watchdog is not None:
            await self.cancel_task(self._watchdog)
            self._watchdog = None
        await super().cleanup()
        self._ready = False
        self._duplex.close()

    def deliver(self, audio: bytes) -> None:
        """From the audio thread: push ``audio`` as an ``InputAudioRawFrame``."""
        if not self._ready or not audio:
            return
        frame = InputAudioRawFrame(audio=audio, sample_rate=self.sample_rate, num_channels=1)
        asyncio.run_coroutine_threadsafe(self.push_audio_frame(frame), self.get_event_loop())


class _DuplexOutput(BaseOutputTransport):
    """Queues the bot's audio for the speaker's callback."""

    def __init__(self, transport: "DuplexAudioTransport", params):
        super().__init__(params)
        self._duplex = transport

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self._duplex.play.clear()  # what the speaker has not played yet

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        play = self._duplex.play
        play.put(frame.audio)
        ahead = int(PLAY_AHEAD_SECS * self.sample_rate) * 2
        while len(play) > ahead and self._duplex.running:
            await asyncio.sleep(CALLBACK_SECS / 2)
        return True


class DuplexAudioTransport(BaseTransport):
    """A local microphone and speaker on two PyAudio callback streams paired sample
    for sample, with the bot's echo cancelled by ``canceller`` in the microphone's
    callback (see the module docstring). A drop-in for Pipecat's ``LocalAudioTransport``.

    Args:
        params: ``LocalAudioTransportParams`` with audio in and out enabled, mono.
            ``audio_in_sample_rate`` and ``audio_out_sample_rate`` are set to the one
            rate of both streams: the one given (either or both, equal), else
            :data:`DEFAULT_SAMPLE_RATE` (16 kHz). ``input_device_index`` and
            ``output_device_index`` pick the devices (default: the system's).
        canceller: The echo canceller, or None for none (the paired streams alone).
        callback_secs: Seconds per callback (default :data:`CALLBACK_SECS`), a
            multiple of 10 ms.

    Raises:
        ValueError: audio in or out disabled, the two rates given and different, or
            ``callback_secs`` not a positive multiple of 10 ms.
        UnsupportedChannelsError: audio in or out is not mono.
        UnsupportedSampleRateError: (when the streams open) a rate the APM cannot
            take in 10 ms frames.
        DuplexStreamError: (when the streams open) PortAudio cannot open one.
    """

    def __init__(self, params, canceller: EchoCanceller | None = None, *, callback_secs: float = CALLBACK_SECS):
        super().__init__()
        if not (params.audio_in_enabled and params.audio_out_enabled):
            raise ValueError("the duplex transport needs audio_in_enabled and audio_out_enabled")
        if params.audio_in_channels != 1 or params.audio_out_channels != 1:
            raise UnsupportedChannelsError(
                f"the duplex transport is mono, got {params.audio_in_channels} in / {params.audio_out_channels} out"
            )
        rates = {r for r in (params.audio_in_sample_rate, params.audio_out_sample_rate) if r}
        if len(rates) > 1:
            raise ValueError(
                f"the microphone and the speaker run at one rate; got audio_in_sample_rate={params.audio_in_sample_rate} "
                f"and audio_out_sample_rate={params.audio_out_sample_rate}"
            )
        tenths = round(callback_secs / 0.01)
        if tenths < 1 or abs(tenths * 0.01 - callback_secs) > 1e-9:
            raise ValueError(f"callback_secs must be a positive multiple of 0.01 s, got {callback_secs!r}")
        rate = rates.pop() if rates else DEFAULT_SAMPLE_RATE
        params.audio_in_sample_rate = params.audio_out_sample_rate = rate
        self._params = params
        self._canceller = canceller
        self._callback_secs = callback_secs
        self.play = PlayBuffer()
        #: What the speaker was given, waiting for the microphone samples it pairs with.
        self.reverse = PlayBuffer()
        self._rate = 0
        self._pyaudio = None
        self._out_stream = None
        self._in_stream = None
        self._input: _DuplexInput | None = None
        self._output: _DuplexOutput | None = None
        self._sink: _DuplexInput | None = None
        #: Callbacks PortAudio flagged with an input overflow or output underflow
        #: (the process was too busy to keep up: samples lost or silence played).
        self.xruns = 0
        #: Times the watchdog restarted the streams.
        self.restarts = 0
        #: Played audio (bytes) dropped from the reverse FIFO (microphone stalled).
        self.reverse_dropped = 0
        self._last_render = self._last_capture = 0.0
        self._failed = False
        # restart() runs in an executor thread and goes on after the watchdog task is
        # cancelled: close() waits for it, and a restart after close() does nothing.
        self._streams_lock = threading.Lock()

    @property
    def running(self) -> bool:
        """The streams are open and the speaker's callback consumes the play buffer."""
        return self._out_stream is not None

    def input(self) -> _DuplexInput:
        if not self._input:
            self._input = _DuplexInput(self, self._params)
        return self._input

    def output(self) -> _DuplexOutput:
        if not self._output:
            self._output = _DuplexOutput(self, self._params)
        return self._output

    def open(self, sample_rate: int, sink: _DuplexInput) -> None:
        """Open the two streams at ``sample_rate`` Hz (not started), delivering the
        microphone to ``sink``.

        Raises:
            UnsupportedSampleRateError: see the class docstring.
            DuplexStreamError: PortAudio cannot open a stream.
        """
        import pyaudio

        if self._canceller is not None:
            self._canceller.start_capture(sample_rate)
            self._canceller.start_render(sample_rate)
        self._rate = sample_rate
        self._sink = sink
        self._pyaudio = pyaudio.PyAudio()
        try:
            self._open_streams()
        except DuplexStreamError:
            self._pyaudio.terminate()
            self._pyaudio = None
            raise

    def _open_streams(self) -> None:
        import pyaudio

        pa = self._pyaudio
        if pa is None:
            raise DuplexStreamError("the audio device was closed")

        common = dict(
            format=pyaudio.paInt16,
            channels=1,
            rate=self._rate,
            frames_per_buffer=round(self._rate * self._callback_secs),
            start=False,
        )
        try:
            self._out_stream = pa.open(
                output=True, output_device_index=self._params.output_device_index,
                stream_callback=self._render_callback, **common,
            )  # fmt: skip
            self._in_stream = pa.open(
                input=True, input_device_index=self._params.input_device_index,
                stream_callback=self._capture_callback, **common,
            )  # fmt: skip
        except (OSError, ValueError) as e:
            self._close_streams()
            raise DuplexStreamError(
                f"cannot open the microphone and speaker at {self._rate} Hz, mono (input device "
                f"{_device(self._params.input_device_index)}, output device "
                f"{_device(self._params.output_device_index)}): {e}. With --no-aec the bot uses "
                "Pipecat's LocalAudioTransport (no echo cancellation: use headphones)"
            ) from e

    def start(self) -> None:
        """Start the speaker, then the microphone (idempotent)."""
        self._last_render = self._last_capture = time.monotonic()
        for stream in (self._out_stream, self._in_stream):
            if stream is not None and not stream.is_active():
                stream.start_stream()

    def stalled(self) -> str | None:
        """``"speaker"`` or ``"microphone"`` when that stream's callback has not come
        for ``STALL_SECS`` while running, else None."""
        if not self.running:
            return None
        now = time.monotonic()
        if now - self._last_render > STALL_SECS:
            return "speaker"
        if now - self._last_capture > STALL_SECS:
            return "microphone"
        return None

    def restart(self) -> None:
        """Close and reopen both streams (the watchdog; runs off the event loop). The
        reverse FIFO starts empty; the canceller finds the new delay. Nothing once
        :meth:`close` has run."""
        with self._streams_lock:
            if self._pyaudio is None:
                return
            self.restarts += 1
            self._close_streams()
            self.reverse.clear()
            try:
                self._open_streams()
            except DuplexStreamError as e:
                logger.error(f"Duplex audio: restart failed: {e}")
                self._last_render = self._last_capture = time.monotonic()  # try again later
                return
            if self._pyaudio is None:
                self._close_streams()  # close() gave up waiting and closed meanwhile
            else:
                self.start()

    def _close_streams(self) -> None:
        for name in ("_in_stream", "_out_stream"):
            stream = getattr(self, name)
            setattr(self, name, None)
            if stream is not None:
                try:
                    stream.stop_stream()
                    stream.close()
                except OSError as e:  # a stream PortAudio has already given up on
                    logger.warning(f"Duplex audio: closing a stream: {e}")

    def close(self) -> None:
        """Stop and close the streams, log what the canceller did (idempotent). Waits
        up to :data:`CLOSE_WAIT_SECS` for a restart under way to finish."""
        locked = self._streams_lock.acquire(timeout=CLOSE_WAIT_SECS)
        if not locked:
            logger.error(f"Duplex audio: a stream restart still hangs after {CLOSE_WAIT_SECS:g} s; closing anyway")
        try:
            was_open = self._pyaudio is not None
            self._close_streams()
            if self._pyaudio is not None:
                self._pyaudio.terminate()
                self._pyaudio = None
        finally:
            if locked:
                self._streams_lock.release()
        if not was_open:
            return
        if self._canceller is not None:
            self._canceller.stop()
        dropped = self.play.clear()
        self.reverse.clear()
        logger.info(
            f"Duplex audio: closed; {self.xruns} callbacks with an overflow or underflow, "
            f"{self.restarts} restarts, {self.reverse_dropped // 2} played samples never paired, "
            f"{dropped // 2} samples of bot audio left unplayed"
        )

    def render(self, nbytes: int) -> bytes:
        """The next ``nbytes`` for the speaker (silence when nothing is queued); kept
        in the reverse FIFO for the microphone samples it pairs with."""
        self._last_render = time.monotonic()
        played = self.play.take(nbytes)
        self.reverse_dropped += self.reverse.put(played, max_bytes=2 * int(MAX_REVERSE_SECS * self._rate))
        return played

    def capture(self, mic: bytes) -> None:
        """Microphone audio just captured: cancel the echo of the played audio it pairs
        with and deliver it to the input transport."""
        self._last_capture = time.monotonic()
        if self._canceller is not None and not self._failed:
            try:
                mic = self._canceller.process_duplex(mic, self.reverse.take(len(mic)))
            except Exception as e:  # an exception here would stop the stream: the bot deaf
                self._failed = True
                logger.error(f"Duplex audio: echo cancellation failed ({e!r}); the microphone goes on uncancelled")
        if self._sink is not None:
            self._sink.deliver(mic)

    def _render_callback(self, in_data, frame_count, time_info, status):
        import pyaudio

        self.xruns += bool(status)
        return self.render(2 * frame_count), pyaudio.paContinue

    def _capture_callback(self, in_data, frame_count, time_info, status):
        import pyaudio

        self.xruns += bool(status)
        self.capture(bytes(in_data))
        return None, pyaudio.paContinue
