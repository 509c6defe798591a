"""Pipecat's local audio on one full-duplex PortAudio stream, echo cancelled in its callback.

Pipecat's ``LocalAudioTransport`` opens two PyAudio streams: the microphone's, with a
callback, and the speaker's, written in 40 ms chunks that block on PortAudio's buffer,
with nothing written while the bot is quiet. An echo canceller then has to guess when
each chunk of bot audio actually plays (:meth:`bot.echo_cancel.EchoCanceller.push_reverse`
lays it on the microphone's timeline), and each answer starts a new run at a new
delay that AEC3 must find again: on the virtual sound card of
``tests/test_local_soundcard.py`` the echo came through in the first one or two
seconds of answers (the bot cut itself off "at 0%").

This transport instead opens one stream with input and output (PyAudio's full-duplex
callback mode), as WebRTC's own audio device module and LiveKit's
``rtc.MediaDevices`` do: each callback hands over the microphone audio just captured
and takes the speaker audio to play next, silence when the bot is quiet. The echo of
what one callback played comes back in the microphone a fixed number of samples
later, whatever the event loop does, so the canceller is fed the exact reverse
stream (:meth:`bot.echo_cancel.EchoCanceller.process_duplex`) before the VAD and the
STT see the microphone.

The bot's audio waits in a small play buffer: ``write_audio_frame`` returns once
less than ``play_ahead_secs`` is queued, which paces the output transport as a
blocking PyAudio write does; an interruption drops what is queued.

One stream runs at one rate, so the microphone and the speaker share it: the
output transport resamples the bot's audio to it (Pipecat's own resampler).
"""

from __future__ import annotations

import asyncio
import threading

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


class DuplexStreamError(RuntimeError):
    """PortAudio cannot open the full-duplex stream (a device pair or rate it cannot
    run both ways); the message names the devices, the rate and PortAudio's error."""


def _device(index: int | None) -> str:
    return "(the default)" if index is None else f"#{index}"


class PlayBuffer:
    """A thread-safe FIFO of PCM bytes between the event loop and the audio callback."""

    def __init__(self):
        self._data = bytearray()
        self._lock = threading.Lock()

    def put(self, pcm: bytes) -> None:
        """Queue ``pcm`` after what is already queued."""
        with self._lock:
            self._data += pcm

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
    """Opens the duplex stream; pushes the (echo-cancelled) microphone audio."""

    def __init__(self, transport: "DuplexAudioTransport", params):
        super().__init__(params)
        self._duplex = transport
        self._ready = False

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        self._duplex.open(self.sample_rate, self)

    async def start(self, frame: StartFrame):
        await super().start(frame)
        self._ready = True
        self._duplex.start()
        await self.set_transport_ready(frame)

    async def cleanup(self):
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
    """Queues the bot's audio for the duplex stream's callback."""

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
    """A local microphone and speaker on one PyAudio full-duplex stream, with the
    bot's echo cancelled by ``canceller`` in the stream's callback (see the module
    docstring). A drop-in for Pipecat's ``LocalAudioTransport``.

    Args:
        params: ``LocalAudioTransportParams`` with audio in and out enabled, mono.
            ``audio_in_sample_rate`` and ``audio_out_sample_rate`` are set to the one
            rate of the stream: the one given (either or both, equal), else
            :data:`DEFAULT_SAMPLE_RATE` (16 kHz). ``input_device_index`` and
            ``output_device_index`` pick the devices (default: the system's).
        canceller: The echo canceller, or None for none (the stream alone).
        callback_secs: Seconds per callback (default :data:`CALLBACK_SECS`), a
            multiple of 10 ms.

    Raises:
        ValueError: audio in or out disabled, the two rates given and different, or
            ``callback_secs`` not a positive multiple of 10 ms.
        UnsupportedChannelsError: audio in or out is not mono.
        UnsupportedSampleRateError: (when the stream opens) a rate the APM cannot
            take in 10 ms frames.
        DuplexStreamError: (when the stream opens) PortAudio cannot open it.
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
                f"one duplex stream runs at one rate; got audio_in_sample_rate={params.audio_in_sample_rate} "
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
        self._pyaudio = None
        self._stream = None
        self._input: _DuplexInput | None = None
        self._output: _DuplexOutput | None = None
        self._sink: _DuplexInput | None = None
        #: Callbacks PortAudio flagged with an input overflow or output underflow
        #: (the process was too busy to keep up: samples lost or silence played).
        self.xruns = 0
        self._failed = False

    @property
    def running(self) -> bool:
        """The stream is open and its callback consumes the play buffer."""
        return self._stream is not None

    def input(self) -> _DuplexInput:
        if not self._input:
            self._input = _DuplexInput(self, self._params)
        return self._input

    def output(self) -> _DuplexOutput:
        if not self._output:
            self._output = _DuplexOutput(self, self._params)
        return self._output

    def open(self, sample_rate: int, sink: _DuplexInput) -> None:
        """Open the stream at ``sample_rate`` Hz (not started), delivering to ``sink``."""
        import pyaudio

        if self._canceller is not None:
            self._canceller.start_capture(sample_rate)
            self._canceller.start_render(sample_rate)
        self._sink = sink
        self._pyaudio = pyaudio.PyAudio()
        try:
            self._stream = self._pyaudio.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=sample_rate,
                input=True,
                output=True,
                frames_per_buffer=round(sample_rate * self._callback_secs),
                input_device_index=self._params.input_device_index,
                output_device_index=self._params.output_device_index,
                stream_callback=self.callback,
                start=False,
            )
        except (OSError, ValueError) as e:
            self._pyaudio.terminate()
            self._pyaudio = None
            raise DuplexStreamError(
                f"cannot open a full-duplex stream at {sample_rate} Hz, mono, on input device "
                f"{_device(self._params.input_device_index)} and output device "
                f"{_device(self._params.output_device_index)}: {e}. Some devices cannot run "
                "both ways on one stream or at that rate; with --no-aec the bot uses Pipecat's "
                "LocalAudioTransport (two streams, no echo cancellation: use headphones)"
            ) from e

    def start(self) -> None:
        if self._stream is not None and not self._stream.is_active():
            self._stream.start_stream()

    def close(self) -> None:
        """Stop and close the stream, log what the canceller did (idempotent)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop_stream()
            stream.close()
        if self._pyaudio is not None:
            self._pyaudio.terminate()
            self._pyaudio = None
        if self._canceller is not None:
            self._canceller.stop()
        dropped = self.play.clear()
        logger.info(
            f"Duplex audio: closed; {self.xruns} callbacks with an overflow or underflow, "
            f"{dropped // 2} samples of bot audio left unplayed"
        )

    def callback(self, in_data, frame_count, time_info, status):
        """PortAudio's callback (its own thread): play the next queued bot audio,
        cancel its echo in the microphone audio, push the result."""
        import pyaudio

        if status:
            self.xruns += 1
        played = self.play.take(2 * frame_count)
        mic = bytes(in_data)
        if self._canceller is not None and not self._failed:
            try:
                mic = self._canceller.process_duplex(mic, played)
            except Exception as e:  # an exception here would stop the stream: the bot deaf
                self._failed = True
                logger.error(f"Duplex audio: echo cancellation failed ({e!r}); the microphone goes on uncancelled")
        if self._sink is not None:
            self._sink.deliver(mic)
        return played, pyaudio.paContinue
