"""Acoustic echo cancellation for transports whose microphone hears the bot's speaker.

With ``--transport local`` and no headphones, the laptop's microphone picks up the
bot's own voice (the *echo*) about 10-20 dB below what the speaker played (the *echo
return loss*, ERL). Silero hears speech, PocketSphinx hears words ("i'm pretty",
"i but per"), and the bot interrupts itself. Browsers cancel that echo before it
leaves the page (SmallWebRTC, Daily); PyAudio does not, so this module does it with
the WebRTC audio processing module (APM, AEC3) as bound by LiveKit's Python SDK
(``livekit.rtc.AudioProcessingModule``, the ``livekit`` package on PyPI): we write no
echo canceller of our own.

It is fed in one of two ways:

* **Paired, sample for sample** (:meth:`EchoCanceller.process_duplex`): ``python run.py
  --transport local`` uses :class:`bot.duplex_audio.DuplexAudioTransport`, whose
  speaker runs in PortAudio's callback mode (silence included) and whose microphone
  callback hands over each chunk with the played audio it pairs with. Nothing is
  timed: the echo comes back at a fixed delay. This is how WebRTC's own audio device
  module and LiveKit's ``rtc.MediaDevices`` feed it, and it measured best (README: on
  the virtual sound card 0-1 interruptions released on the bot's echo alone per
  2-minute conversation, against 6 with the filters below on Pipecat's
  ``LocalAudioTransport``).
* **Timed, as two Pipecat audio filters** on any transport whose speaker is written
  in chunks (the bench's ``SpeakerOutputTransport``; a transport of your own), below.

As two ``BaseAudioFilter``s sharing one :class:`EchoCanceller`:

* :attr:`EchoCanceller.render_tap` is the output transport's ``audio_out_filter``:
  it sees every chunk of bot audio just before the transport writes it to the
  speaker, keeps a copy as the *reverse stream* and returns the audio unchanged.
* :attr:`EchoCanceller.capture_filter` is the input transport's ``audio_in_filter``:
  it cuts the microphone into 10 ms frames and, for each, first hands the APM the
  next 10 ms of the reverse stream (``process_reverse_stream``; silence when the bot
  is not playing) and then the microphone frame (``process_stream``), which comes
  back with the echo removed, before the VAD and the STT see it.

Keeping the two streams in step is the hard part: the APM wants each capture frame to
follow the reverse frames it echoes, by a delay that stays put (AEC3 finds the delay
itself, but every jump costs it a re-convergence, and a delay that creeps, a few ms
per chunk, it never catches). LiveKit's ``rtc.MediaDevices`` feeds the reverse stream
from the sound card's output callback, silence included; Pipecat's local output
transport instead writes 40 ms chunks that block on PyAudio's buffer, and nothing is
written while the bot is quiet. So the reverse stream is laid on the microphone's own
timeline: sample ``k`` of the microphone arrived no earlier than ``t0 + k / rate``,
with ``t0`` the smallest ``arrival - k / rate`` seen (the least-delayed arrival). A
chunk of bot audio is laid where it can start playing at the earliest: right after the
previous chunk, or at the moment it is written if that is later (by more than
``GAP_TOL_SECS``: the speaker ran dry, for a pause or for a write that came late). A
speaker never plays a chunk before it is written nor before the one ahead of it, so
the echo of a sample comes after its reverse frame, by the speaker's buffer, the
acoustic path and the capture buffer, a delay AEC3's estimator finds; a chunk laid at
its write time while the speaker still had audio queued is laid no later than it plays
(that delay shrinks, and stays positive). Writes into a buffered speaker mostly come
ahead of the previous chunk's end (PyAudio on the virtual sound card: 35-90 ms ahead)
and keep the run contiguous. An unbuffered speaker that starts each chunk a little
after the previous one ended (the bench's ``SpeakerOutputTransport``: its write lasts
the chunk, then the event loop's lateness, measured 1-18 ms a chunk, median 3) gets
those gaps in the reverse stream too, where laying it contiguous would let the echo
creep later by as much, chunk after chunk (measured there over 9 s of echo: laid
contiguous within 50 ms, the echo crept from 20 to 42 ms behind its reverse frame
within each run and 12 dB were removed; laid at each write, it stayed 20 ms behind and
23-35 dB were removed, 43-46 dB median per 10 ms frame). When the process stalls
(PocketSphinx holds the GIL while it decodes), the sound card drops microphone
samples; the arrivals then stay late for good, and the reverse stream skips as much
audio as the microphone lost.

Measured (``python -m bench aec``, ``tests/test_local_soundcard.py``): see README.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from loguru import logger
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter
from pipecat.frames.frames import FilterControlFrame, FilterEnableFrame

#: Sample rates (Hz) taken for the microphone and the speaker: whole 10 ms frames
#: (a multiple of 100 Hz) from 8 to 96 kHz. WebRTC's APM resamples each stream to its
#: native 16/32/48 kHz itself; measured with livekit 1.2 (tests/test_echo_cancel.py):
#: 8, 16, 24, 44.1, 48 and 96 kHz cancel alike, 22.05 kHz (220.5 samples per 10 ms)
#: does not.
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 96000
#: The APM processes 10 ms frames (``AudioProcessingModule.process_stream`` docs).
FRAME_SECS = 0.01
#: Default delay hint (ms) for ``set_stream_delay_ms``: the acoustic path and capture
#: buffer of a laptop, about 50 ms. AEC3 estimates the delay itself; this is a start.
DEFAULT_STREAM_DELAY_MS = 50
#: Reverse-stream audio (s) laid ahead of the microphone at most; more than any
#: speaker buffer, bounded so a stalled microphone cannot make it grow without end.
MAX_REVERSE_BACKLOG_SECS = 1.0
#: Seconds. Bot audio written more than this after the end of the previous chunk's
#: place starts where it is written (the speaker ran dry); written earlier, it goes
#: right after the previous chunk. One millisecond absorbs the rounding of clock
#: readings (a chunk written just as the previous one ends) and lets the echo creep
#: behind its reverse frame by 1 ms at most before a chunk is laid at its write time
#: again: AEC3 works in 4 ms blocks.
GAP_TOL_SECS = 0.001
#: Watchdog (our rule, measured on the virtual sound card): when, over the last
#: ``RESET_WINDOW_SECS`` of bot audio, the APM removed at least ``RESET_BELOW_DB`` from
#: fewer than ``RESET_MIN_GOOD_FRACTION`` of the 10 ms frames in which the microphone
#: heard something (above ``RESET_MIN_LEVEL_DBFS``), and such frames made up at least
#: half of the window, it is started afresh. After minutes of jumping delays (process
#: stalls) AEC3 was seen stuck at 0-2 dB with the streams back in step, where a fresh
#: APM removed 30-60 dB. Frames, not the window's energy: the user talking over the
#: bot is kept by the APM (0 dB removed from those frames) and, 15 dB above the echo,
#: would outweigh a window of well-cancelled echo (the real-time bench restarted a
#: converged APM on the user's "stop" that way, then let echo through while it
#: re-converged); the echo between their words still shows the APM working.
RESET_BELOW_DB = 6.0
RESET_WINDOW_SECS = 3.0
RESET_MIN_LEVEL_DBFS = -50.0
RESET_MIN_GOOD_FRACTION = 0.25
#: Bins (1 dB each, from 0 dB) of :attr:`EchoCancelStats.frame_erle_counts`.
ERLE_BINS = 100
# Mean square (16-bit units) of a frame at RESET_MIN_LEVEL_DBFS.
_LOUD_POWER = 32768.0**2 * 10 ** (RESET_MIN_LEVEL_DBFS / 10)
#: Microphone arrivals staying later than ``t0 + k / rate`` by more than
#: ``DROP_TOL_SECS`` for ``DROP_WINDOW_SECS`` mean lost samples (a burst of queued
#: audio catches up well within that window; lost audio never does).
DROP_TOL_SECS = 0.03
DROP_WINDOW_SECS = 0.3


class UnsupportedSampleRateError(ValueError):
    """A microphone or speaker sample rate the APM cannot take in 10 ms frames (not a
    multiple of 100 Hz from 8 to 96 kHz, e.g. 22050), or not an int."""


class UnsupportedChannelsError(ValueError):
    """The echo canceller handles mono audio only (``audio_in_channels`` and
    ``audio_out_channels`` must be 1)."""


@dataclass
class EchoCancelStats:
    """What the canceller has done so far.

    Attributes:
        capture_frames: 10 ms microphone frames passed through the APM.
        bypassed_frames: microphone frames passed unchanged (no bot audio yet, or
            the filter disabled).
        reverse_frames: 10 ms reverse frames that carried bot audio.
        runs: runs of bot audio laid on the timeline (a new one each time the
            speaker ran dry: a pause, or a chunk written more than ``GAP_TOL_SECS``
            after the previous one's end).
        late_reverse_secs: how far behind the microphone bot audio was written, in
            all (each time the run of bot audio went on from the microphone's place).
        dropped_reverse_secs: bot audio not laid because it was more than
            ``max_reverse_backlog_secs`` ahead.
        lost_capture_secs: microphone audio the sound card lost (process stalls),
            skipped in the reverse stream too.
        resets: times the watchdog started the APM afresh (see ``RESET_BELOW_DB``).
        active_in_energy: sum of squares of the microphone samples in frames whose
            reverse frame carried bot audio.
        active_out_energy: the same after the APM.
        frame_erle_counts: of those frames, the ones in which the microphone heard
            something (above ``RESET_MIN_LEVEL_DBFS``), counted by the dB the APM
            removed from each (``10 log10(e_in / e_out)``, rounded down, clamped to
            0 .. ``ERLE_BINS - 1``): see :attr:`median_frame_erle_db`.
    """

    capture_frames: int = 0
    bypassed_frames: int = 0
    reverse_frames: int = 0
    runs: int = 0
    late_reverse_secs: float = 0.0
    dropped_reverse_secs: float = 0.0
    lost_capture_secs: float = 0.0
    resets: int = 0
    active_in_energy: float = 0.0
    active_out_energy: float = 0.0
    frame_erle_counts: list[int] = field(default_factory=lambda: [0] * ERLE_BINS)

    @property
    def erle_db(self) -> float | None:
        """Echo return loss enhancement (dB) while the bot played: microphone energy
        over output energy, ``10 log10(E_in / E_out)``. A lower bound of the APM's ERLE
        when the user also spoke then (their voice is kept, as it should be). None
        before any such frame."""
        if self.active_in_energy <= 0.0:
            return None
        return float(10.0 * np.log10(self.active_in_energy / max(self.active_out_energy, 1.0)))

    @property
    def median_frame_erle_db(self) -> int | None:
        """The median over 10 ms frames of the dB removed while the bot played and the
        microphone heard something (whole dB, rounded down; ``ERLE_BINS - 1`` means
        that much or more). Unlike :attr:`erle_db`, a user talking over the bot for
        less than half of that time leaves it on the echo: the energy ratio is
        dominated by their voice, which the APM rightly keeps (measured on the
        real-time bench, "stop" said over 9 s of echo: 3-5 dB in all, 43-46 dB median).
        None before any such frame."""
        total = sum(self.frame_erle_counts)
        if not total:
            return None
        seen = 0
        for db, count in enumerate(self.frame_erle_counts):
            seen += count
            if 2 * seen >= total:
                return db
        return ERLE_BINS - 1  # pragma: no cover - the loop always returns


def _check_rate(sample_rate: int, what: str) -> int:
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool):
        raise UnsupportedSampleRateError(f"{what} sample rate must be an int (Hz), got {sample_rate!r}")
    if not (MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE) or sample_rate % 100:
        raise UnsupportedSampleRateError(
            f"the WebRTC APM takes 10 ms frames, so the {what} sample rate must be a multiple of "
            f"100 Hz from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, got {sample_rate} Hz (set the "
            f"transport's audio_{'in' if what == 'microphone' else 'out'}_sample_rate)"
        )
    return sample_rate


class EchoCanceller:
    """WebRTC acoustic echo cancellation (AEC3, via ``livekit.rtc.AudioProcessingModule``)
    for one conversation, with the bot's output audio as the reverse stream.

    Use its two filters on a transport (or :meth:`apply_to`)::

        aec = EchoCanceller()
        params = LocalAudioTransportParams(audio_in_enabled=True, audio_out_enabled=True,
                                           audio_in_filter=aec.capture_filter,
                                           audio_out_filter=aec.render_tap)

    or :class:`bot.duplex_audio.DuplexAudioTransport` (:meth:`process_duplex`), or call
    :meth:`push_reverse` and :meth:`process_capture` directly, with the times
    (``now``, seconds on one clock) at which the audio was written and arrived (the
    bench and the tests do). Audio is 16-bit signed little-endian mono PCM
    throughout; the microphone and the speaker may run at different rates (the APM
    resamples the reverse stream itself). Until the first bot audio reaches
    :meth:`push_reverse` the microphone passes through unchanged: there is nothing
    to cancel yet (and the APM delays what it processes by 4 ms, one AEC3 block).

    Args:
        noise_suppression: WebRTC noise suppression (default off: not needed against
            echo, and the VAD and STT were tuned on unsuppressed audio).
        high_pass_filter: WebRTC's high-pass filter (default on, as in WebRTC's own
            capture pipeline and LiveKit's ``MediaDevices``).
        auto_gain_control: WebRTC AGC (default off: it would raise residual echo).
        stream_delay_ms: delay hint (ms) for ``set_stream_delay_ms``; default
            :data:`DEFAULT_STREAM_DELAY_MS`.
        max_reverse_backlog_secs: seconds of bot audio laid ahead of the microphone
            at most (default :data:`MAX_REVERSE_BACKLOG_SECS`).

    Raises:
        ValueError: ``stream_delay_ms`` negative or ``max_reverse_backlog_secs`` not
            positive.
    """

    def __init__(
        self,
        *,
        noise_suppression: bool = False,
        high_pass_filter: bool = True,
        auto_gain_control: bool = False,
        stream_delay_ms: int = DEFAULT_STREAM_DELAY_MS,
        max_reverse_backlog_secs: float = MAX_REVERSE_BACKLOG_SECS,
    ):
        if stream_delay_ms < 0:
            raise ValueError(f"stream_delay_ms must be >= 0, got {stream_delay_ms}")
        if max_reverse_backlog_secs <= 0:
            raise ValueError(f"max_reverse_backlog_secs must be > 0, got {max_reverse_backlog_secs}")
        self._options = dict(
            echo_cancellation=True,
            noise_suppression=noise_suppression,
            high_pass_filter=high_pass_filter,
            auto_gain_control=auto_gain_control,
        )
        self.stream_delay_ms = int(stream_delay_ms)
        self.max_reverse_backlog_secs = float(max_reverse_backlog_secs)
        #: False passes the microphone through unchanged (``FilterEnableFrame``).
        self.enabled = True
        self.stats = EchoCancelStats()
        self._apm = None
        self._rate: int | None = None  # microphone (= APM capture) rate
        self._render_rate: int | None = None  # speaker (= reverse stream) rate
        self.capture_filter = _CaptureFilter(self)
        self.render_tap = _RenderTap(self)
        self._reset()

    def _reset(self):
        self._capture = bytearray()  # microphone remainder (< 10 ms), not yet processed
        self._received = 0  # microphone samples received, plus those the sound card lost
        self._consumed = 0  # microphone samples processed (or passed), plus those lost
        self._ring = bytearray()  # reverse stream (render rate) from self._ring_base on
        self._ring_base = 0  # render-rate index paired with microphone sample self._consumed
        self._t0: float | None = None  # arrival time of microphone sample 0, least delayed
        self._arrivals: deque[tuple[float, float]] = deque()  # (now, now - index / rate)
        self._render_next: int | None = None  # render-rate index where the last bot chunk ends
        self._active = False  # bot audio has been laid at least once

    # -- setup ---------------------------------------------------------------

    @property
    def sample_rate(self) -> int | None:
        """The microphone's (and the APM's capture) sample rate in Hz, once started."""
        return self._rate

    def start_capture(self, sample_rate: int) -> None:
        """Create the APM for a microphone at ``sample_rate`` Hz.

        Raises:
            UnsupportedSampleRateError: ``sample_rate`` is not a multiple of 100 Hz
                between :data:`MIN_SAMPLE_RATE` and :data:`MAX_SAMPLE_RATE`.
        """
        _check_rate(sample_rate, "microphone")
        self._rate = sample_rate
        self._render_rate = self._render_rate or sample_rate
        self._new_apm()
        self._reset()

    def _new_apm(self):
        from livekit import rtc

        self._apm = rtc.AudioProcessingModule(**self._options)
        self._apm.set_stream_delay_ms(self.stream_delay_ms)
        # Per bot-audio frame: whether the microphone heard something, and whether the
        # APM removed at least RESET_BELOW_DB from it (see the watchdog's constants).
        self._window: deque[tuple[bool, bool]] = deque()
        self._window_loud = self._window_good = 0

    def _watch(self, e_in: float, e_out: float, n: int) -> None:
        """Start the APM afresh when it has stopped removing echo (see RESET_BELOW_DB)."""
        loud = e_in > n * _LOUD_POWER
        good = loud and e_in >= max(e_out, 1.0) * 10 ** (RESET_BELOW_DB / 10)
        self._window.append((loud, good))
        self._window_loud += loud
        self._window_good += good
        size = round(RESET_WINDOW_SECS / FRAME_SECS)
        if len(self._window) > size:
            old_loud, old_good = self._window.popleft()
            self._window_loud -= old_loud
            self._window_good -= old_good
        if len(self._window) < size or 2 * self._window_loud < size:
            return
        if self._window_good < RESET_MIN_GOOD_FRACTION * self._window_loud:
            logger.info(
                f"Echo canceller: {RESET_BELOW_DB:g} dB or more removed from {self._window_good} of "
                f"{self._window_loud} frames over {RESET_WINDOW_SECS:g} s of bot audio; restarting the APM"
            )
            self.stats.resets += 1
            self._new_apm()

    def start_render(self, sample_rate: int) -> None:
        """Take bot audio at ``sample_rate`` Hz (default: the microphone's rate).

        Raises:
            UnsupportedSampleRateError: as :meth:`start_capture`.
        """
        self._render_rate = _check_rate(sample_rate, "speaker")
        self._ring.clear()
        self._render_next = None

    def stop(self) -> None:
        """Log what the canceller did and release the APM."""
        if self._apm is not None:
            s = self.stats
            erle, med = s.erle_db, s.median_frame_erle_db
            logger.info(
                f"Echo canceller: {s.capture_frames} frames processed, {s.reverse_frames} with bot "
                f"audio{f' in {s.runs} runs' if s.runs else ''}, {s.resets} restarts; microphone lost {s.lost_capture_secs:.2f} s, late bot audio "
                f"{s.late_reverse_secs:.2f} s; ERLE {'-' if erle is None else f'{erle:.1f} dB'} "
                f"while the bot played (median {'-' if med is None else f'{med} dB'} per 10 ms frame)"
            )
        self._apm = None

    def apply_to(self, params):
        """Set this canceller's filters on Pipecat ``TransportParams`` and return them.

        Raises:
            ValueError: the params already have an ``audio_in_filter`` or
                ``audio_out_filter`` (one transport filter each; chain them yourself).
            UnsupportedChannelsError: audio in or out is not mono.
        """
        if params.audio_in_filter is not None or params.audio_out_filter is not None:
            raise ValueError("the transport already has an audio filter; the echo canceller needs both slots")
        if params.audio_in_channels != 1 or params.audio_out_channels != 1:
            raise UnsupportedChannelsError(
                f"echo cancellation needs mono audio, got {params.audio_in_channels} in / "
                f"{params.audio_out_channels} out"
            )
        params.audio_in_filter = self.capture_filter
        params.audio_out_filter = self.render_tap
        return params

    # -- streams -------------------------------------------------------------

    def push_reverse(self, audio: bytes, now: float | None = None) -> None:
        """Lay bot audio (PCM at the render rate) written to the speaker at ``now``
        (seconds, ``time.monotonic()`` by default) on the reverse stream.

        Ignored before the microphone's first audio (nothing to place it against).
        """
        if self._rate is None or self._t0 is None or not audio:
            return
        now = time.monotonic() if now is None else now
        rrate = self._render_rate
        n = len(audio) // 2
        # Where the chunk can start playing at the earliest: when it is written, or
        # after the chunk ahead of it if that one is still playing.
        index = int(np.ceil((now - self._t0) * rrate))
        if self._render_next is None or index > self._render_next + GAP_TOL_SECS * rrate:
            self.stats.runs += 1  # the speaker ran dry: this audio plays from now on
        else:
            index = self._render_next  # right after the previous chunk
        if index < self._ring_base:
            # The microphone is already past this chunk's place: it was written late
            # (the process stalled, or it came last in the speaker's buffer). Its echo
            # cannot have been heard before now, so the run goes on from here.
            self.stats.late_reverse_secs += (self._ring_base - index) / rrate
            index = self._ring_base
        self._render_next = index + n
        pcm = bytes(audio[: 2 * n])
        offset = index - self._ring_base
        if not pcm:
            return
        if offset > self.max_reverse_backlog_secs * rrate:
            self.stats.dropped_reverse_secs += len(pcm) / (2 * rrate)
            return
        a = 2 * offset
        if a > len(self._ring):
            self._ring += bytes(a - len(self._ring))
        self._ring[a : a + len(pcm)] = pcm
        self._active = True

    def process_capture(self, audio: bytes, now: float | None = None) -> bytes:
        """Cancel the echo in microphone PCM (capture rate) that arrived at ``now``
        (seconds, ``time.monotonic()`` by default).

        Returns the processed audio of every complete 10 ms frame so far (a
        remainder shorter than 10 ms waits for the next call, so the output may be
        shorter than the input). Unchanged while bypassed (see the class docs).

        Raises:
            RuntimeError: :meth:`start_capture` was not called.
        """
        if self._apm is None:
            raise RuntimeError("EchoCanceller.process_capture before start_capture")
        now = time.monotonic() if now is None else now
        self._track_arrival(len(audio) // 2, now)
        if not self.enabled or not self._active:
            if self._capture:  # a remainder from before the filter was disabled
                audio, self._capture = bytes(self._capture) + audio, bytearray()
            self._consume(len(audio) // 2)
            self.stats.bypassed_frames += len(audio) // (2 * int(self._rate * FRAME_SECS))
            return audio
        n = int(self._rate * FRAME_SECS)
        nr = int(self._render_rate * FRAME_SECS)
        self._capture += audio
        out = bytearray()
        while len(self._capture) >= 2 * n:
            mic = bytes(self._capture[: 2 * n])
            del self._capture[: 2 * n]
            ref = bytes(self._ring[: 2 * nr])
            self._consume(n)
            out += self._cancel_frame(mic, ref + bytes(2 * nr - len(ref)))
        return bytes(out)

    def process_duplex(self, mic: bytes, played: bytes) -> bytes:
        """Cancel in microphone PCM the echo of ``played``, the bot audio the speaker
        played that pairs with it sample for sample (:class:`bot.duplex_audio.DuplexAudioTransport`).

        The two come in step by construction (both streams on the sound card's clock),
        so no timeline is kept: the echo of each frame of ``played`` reaches the
        microphone a fixed delay later (the sound card's output and input buffers and
        the acoustic path), which AEC3 finds once and keeps. ``played`` is silence
        while the bot is quiet; unlike :meth:`process_capture` nothing is bypassed.

        Args:
            mic: 16-bit mono PCM at the microphone rate (:meth:`start_capture`).
            played: 16-bit mono PCM at the speaker rate (:meth:`start_render`; by
                default the microphone's), covering the same time as ``mic``.

        Returns:
            The processed audio of every complete 10 ms frame so far (a remainder
            waits for the next call, as in :meth:`process_capture`); unchanged while
            the filter is disabled.

        Raises:
            RuntimeError: :meth:`start_capture` was not called.
            ValueError: ``played`` does not cover the same time as ``mic``.
        """
        if self._apm is None:
            raise RuntimeError("EchoCanceller.process_duplex before start_capture")
        if len(played) * self._rate != len(mic) * self._render_rate:
            raise ValueError(
                f"played audio ({len(played)} bytes at {self._render_rate} Hz) must cover the same time "
                f"as the microphone's ({len(mic)} bytes at {self._rate} Hz)"
            )
        if not self.enabled:
            if self._capture:  # a remainder from before the filter was disabled
                mic, self._capture, self._ring = bytes(self._capture) + mic, bytearray(), bytearray()
            self.stats.bypassed_frames += len(mic) // (2 * int(self._rate * FRAME_SECS))
            return mic
        n = int(self._rate * FRAME_SECS)
        nr = int(self._render_rate * FRAME_SECS)
        self._capture += mic
        self._ring += played
        out = bytearray()
        while len(self._capture) >= 2 * n:
            frame, ref = bytes(self._capture[: 2 * n]), bytes(self._ring[: 2 * nr])
            del self._capture[: 2 * n], self._ring[: 2 * nr]
            out += self._cancel_frame(frame, ref)
        return bytes(out)

    def _cancel_frame(self, mic: bytes, ref: bytes) -> bytes:
        """One 10 ms frame through the APM: ``ref`` (the reverse frame) first, then
        ``mic``; returns the processed microphone frame and keeps the stats."""
        from livekit import rtc

        n = len(mic) // 2
        nr = len(ref) // 2
        playing = any(ref)
        self._apm.process_reverse_stream(rtc.AudioFrame(ref, self._render_rate, 1, nr))
        frame = rtc.AudioFrame(mic, self._rate, 1, n)
        self._apm.process_stream(frame)
        processed = bytes(frame.data.cast("B"))
        if playing:
            x = np.frombuffer(mic, dtype="<i2").astype(np.float64)
            y = np.frombuffer(processed, dtype="<i2").astype(np.float64)
            e_in, e_out = float(x @ x), float(y @ y)
            self.stats.active_in_energy += e_in
            self.stats.active_out_energy += e_out
            self.stats.reverse_frames += 1
            if e_in > n * _LOUD_POWER:
                db = int(10 * np.log10(e_in / max(e_out, 1.0)))
                self.stats.frame_erle_counts[min(max(db, 0), ERLE_BINS - 1)] += 1
            self._watch(e_in, e_out, n)
        self.stats.capture_frames += 1
        return processed

    def _consume(self, n: int) -> None:
        """Advance the pairing by ``n`` microphone samples (the reverse stream with it)."""
        self._consumed += n
        base = round(self._consumed * self._render_rate / self._rate)
        del self._ring[: 2 * (base - self._ring_base)]
        self._ring_base = base

    def _track_arrival(self, n: int, now: float) -> None:
        """Update ``t0`` from a chunk of ``n`` samples arriving at ``now``; skip the
        reverse stream over microphone audio the sound card lost."""
        rate = self._rate
        self._received += n
        c = now - self._received / rate
        if self._t0 is None or c < self._t0:
            self._t0 = c
        self._arrivals.append((now, c))
        while self._arrivals and self._arrivals[0][0] < now - DROP_WINDOW_SECS:
            self._arrivals.popleft()
        if len(self._arrivals) < 2 or now - self._arrivals[0][0] < 0.9 * DROP_WINDOW_SECS:
            return
        late = min(x for _, x in self._arrivals) - self._t0
        if late <= DROP_TOL_SECS:
            return
        lost = int(round(late * rate))
        self.stats.lost_capture_secs += lost / rate
        self._received += lost
        self._consume(lost)
        shift = lost / rate
        self._arrivals = deque((t, x - shift) for t, x in self._arrivals)


class _CaptureFilter(BaseAudioFilter):
    """The input transport's ``audio_in_filter``: microphone in, echo cancelled out.

    ``FilterEnableFrame(False)`` passes the microphone through unchanged (the reverse
    stream is still queued); ``FilterEnableFrame(True)`` cancels again.
    """

    def __init__(self, canceller: EchoCanceller):
        self._aec = canceller

    async def start(self, sample_rate: int):
        self._aec.start_capture(sample_rate)

    async def stop(self):
        self._aec.stop()

    async def process_frame(self, frame: FilterControlFrame):
        if isinstance(frame, FilterEnableFrame):
            self._aec.enabled = frame.enable

    async def filter(self, audio: bytes) -> bytes:
        return self._aec.process_capture(audio)


class _RenderTap(BaseAudioFilter):
    """The output transport's ``audio_out_filter``: keeps a copy of the bot audio
    about to be played as the reverse stream, returns it unchanged."""

    def __init__(self, canceller: EchoCanceller):
        self._aec = canceller

    async def start(self, sample_rate: int):
        self._aec.start_render(sample_rate)

    async def stop(self):
        pass

    async def process_frame(self, frame: FilterControlFrame):
        pass

    async def filter(self, audio: bytes) -> bytes:
        self._aec.push_reverse(audio)
        return audio
