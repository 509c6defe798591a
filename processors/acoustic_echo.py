"""Acoustic echo check: does the microphone hear the bot's own played audio?

The text rule (:mod:`pipecat_softack.echo`) needs the recognizer to hear the bot's
words as words the bot said; on a residual echo burst it often hears others ("i but
per"), boosted command keywords among them. This check compares sound with sound: the
spectral envelope of what the microphone heard during an utterance against that of
what the output transport played just before, at every delay in a window. An echo is
the played audio delayed and filtered by the acoustic path, so the two envelopes rise
and fall together (Pearson correlation near 1); the user's own speech has an envelope
of its own. It is a detector, not a canceller: nothing is removed from the audio
(echo cancellation is the WebRTC module's job, ``bot/echo_cancel.py``).

Envelope: 20 ms frames (Hann window), the square root of the power in 16 bands spaced
evenly on a log scale from 100 Hz to 8 kHz (up to the lower Nyquist frequency of the
two streams), per-band means removed; the correlation is taken over all frames and
bands at once, and the best over delays from ``-MAX_LEAD_SECS`` to ``MAX_DELAY_SECS``
counts.

Where the thresholds come from (measured offline, ``tests/audio`` clips, the tuned set,
each mixed in numpy into the bench's Piper answers with 1 s of noise bed before it and
10 ms of arrival jitter; the open-vocabulary clips were not used): an echo burst alone
at 12 dB echo return loss, delayed 40-120 ms, correlates 0.96 (median; 86% of clips at
0.9 or more; at 18 dB, 0.95 and 73%); the user's speech alone, 0.37 (at most 0.86); the
user with the echo 6 dB below, at most 0.88; the user with the echo as loud as the
speech, 0.70 (at most 0.89). ``MIN_CORRELATION`` = 0.9 sits above every case with the
user's voice in it, by little for the loudest echo, so an utterance holding a command
keyword (where a wrong drop costs the user's "stop") needs halfway from it to 1, 0.95
(the filter's rule; chosen by that reasoning, not fitted). Reverberation smears the echo's envelope (a synthetic room of RT60
0.2 s: 12% of clips at 0.9 or more; 0.4 s: 3%), so in a reverberant room the check
catches little and the text rule is left to do the rest. It fails towards
interrupting, never towards dropping the user: a linear echo path (a virtual sound
card, a phone's earpiece, a bench) is what it is for.

On the audio bench's own microphone tracks (``python -m bench echo_check``, seed
20260521; checked after the threshold was chosen, nothing tuned on it): the user's
sounds alone, at most 0.79 (160 scenarios); the bench's 25 echo bursts (6-30 dB echo
return loss over its noise bed), median 0.92, 13 at 0.9 or more, 6 with too little
sound above the noise to score; the same bursts after WebRTC AEC3, median 0.21 (the
canceller's residual no longer follows the played audio: that is the text rule's
job); through a synthetic room of RT60 0.3 s or 0.6 s, median 0.82 or 0.76, none at
0.9.
"""

from __future__ import annotations

import time
from collections import deque
import numpy as np

FRAME_SECS = 0.02
"""Envelope frame length (seconds): about a syllable's attack."""
HOP_SECS = 0.01
"""Envelope hop (seconds), also the resolution of the delay search: a delay between
two frames of a coarser hop costs the correlation more than a tenth."""
BAND_EDGES_HZ = tuple(float(f) for f in np.geomspace(100.0, 8000.0, 17))
"""16 log-spaced bands over the speech range."""
BIN_HZ = 31.25
"""FFT bin spacing (Hz) at every sample rate (a 512-point FFT at 16 kHz), so each band
holds the same bins in a 16 kHz microphone stream and a 24 or 48 kHz played one."""
MIN_CORRELATION = 0.9
"""Correlation at or above which the heard audio is the bot's echo (module docstring)."""
MAX_DELAY_SECS = 0.6
"""Longest delay (s) from a played chunk's push to its echo in the microphone: an
output buffer, the acoustic path and an input buffer."""
MAX_LEAD_SECS = 0.1
"""Longest lead (s) of the echo over the push: an output transport that pushes a chunk
on only after writing it (Pipecat's does) to a speaker that plays while it writes."""
MIN_FRAMES = 20
"""Heard frames with sound (0.2 s) the correlation needs; fewer correlate by chance."""
ACTIVE_ABOVE_FLOOR = 10 ** (3 / 10)
"""Frames less than 3 dB above the window's floor (its 10th percentile of frame
energy: the noise between words, or before an echo burst) count as quiet (ignored)."""
SILENCE_BELOW_PEAK = 10 ** (-60 / 10)
"""Frames more than 60 dB below the window's loudest are silence, whatever the floor."""
KEEP_SECS = 6.0
"""Audio (s) a history keeps by default (the played audio: 288 KB per session at
24 kHz): the filter's check reads from 0.9 s before a speech start (its 0.3 s
pre-roll and the 0.6 s delay) and may run up to about 5 s after it (``max_hold_secs``
3 s plus the transcript timeout). The filter's microphone history keeps 1 s, and
while it holds an utterance everything since 1 s before the hold, up to this."""
JITTER_SECS = 0.03
"""A chunk that arrives up to this much after the previous one ended, or any time
before, is laid right after it: arrival times jitter, sample streams do not."""
MAX_BACKLOG_SECS = 1.0
"""Chunks laid right after one another may run this far ahead of their arrival (a
buffered speaker, a burst of queued microphone audio) before the history re-anchors."""


class _Chunk:
    """One chunk as it arrived: raw bytes, converted only when a window is read (the
    check runs once per held utterance; chunks arrive 50 times a second)."""

    __slots__ = ("start", "rate", "channels", "audio", "secs")

    def __init__(self, start: float, rate: int, channels: int, audio: bytes):
        self.start = start  # time.monotonic() seconds of its first sample
        self.rate = rate
        self.channels = channels
        self.audio = audio  # interleaved little-endian 16-bit samples
        self.secs = len(audio) / (2 * channels * rate)

    @property
    def end(self) -> float:
        return self.start + self.secs

    def samples(self) -> np.ndarray:
        """Mono float32 samples."""
        x = np.frombuffer(self.audio, dtype="<i2").astype(np.float32)
        return x.reshape(-1, self.channels).mean(axis=1) if self.channels > 1 else x


class AudioHistory:
    """The last ``keep_secs`` of one audio stream, laid on the ``time.monotonic()`` clock.

    Bounded both ways: chunks that ended more than ``keep_secs`` ago are dropped, and
    so is the oldest audio once more than ``keep_secs`` of it is kept (a stream fed
    faster than real time: a test, a backlog). At most about ``keep_secs`` x rate x
    channels x 2 bytes of audio (6 s of 16 kHz mono: 192 KB).

    :meth:`pin` keeps more for a while: everything since a given time, up to
    ``max_keep_secs``.

    Args:
        keep_secs: Seconds of audio to keep (default ``KEEP_SECS``, 6.0).
        max_keep_secs: The most kept while pinned (default: ``keep_secs``).

    Raises:
        ValueError: ``keep_secs`` or ``max_keep_secs`` not a positive number, or
            ``max_keep_secs`` below ``keep_secs``.
    """

    def __init__(self, *, keep_secs: float = KEEP_SECS, max_keep_secs: float | None = None):
        max_keep_secs = keep_secs if max_keep_secs is None else max_keep_secs
        for name, value in (("keep_secs", keep_secs), ("max_keep_secs", max_keep_secs)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if max_keep_secs < keep_secs:
            raise ValueError(f"max_keep_secs ({max_keep_secs!r}) must be at least keep_secs ({keep_secs!r})")
        self._keep_secs = float(keep_secs)
        self._max_keep_secs = float(max_keep_secs)
        self._pinned_from: float | None = None
        self._chunks: deque[_Chunk] = deque()
        self._kept_secs = 0.0

    def add(self, audio: bytes, sample_rate: int, num_channels: int = 1, t: float | None = None):
        """Record a chunk of 16-bit PCM that arrived (was captured, or pushed on after
        playing) at ``t`` (default: now), as ending then.

        Args:
            audio: Interleaved little-endian 16-bit samples (Pipecat's audio frames).
            sample_rate: Samples per second per channel (a positive int).
            num_channels: Channels interleaved in ``audio`` (averaged to mono).
            t: ``time.monotonic()`` seconds of arrival.

        Raises:
            ValueError: a sample rate or channel count that is not a positive int, or
                ``audio`` that is not whole frames of 16-bit samples.
        """
        if type(sample_rate) is not int or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
        if type(num_channels) is not int or num_channels <= 0:
            raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
        if len(audio) % (2 * num_channels):
            raise ValueError(
                f"audio of {len(audio)} bytes is not whole frames of {num_channels} 16-bit sample(s)"
            )
        if not audio:
            return
        now = time.monotonic() if t is None else t
        chunk = _Chunk(0.0, sample_rate, num_channels, bytes(audio))
        start = now - chunk.secs
        if self._chunks:
            last = self._chunks[-1]
            contiguous = last.rate == sample_rate and start < last.end + JITTER_SECS
            if contiguous and last.end - start < MAX_BACKLOG_SECS:
                start = last.end
        chunk.start = start
        self._chunks.append(chunk)
        self._kept_secs += chunk.secs
        keep = self._keep_secs
        if self._pinned_from is not None:
            keep = min(max(keep, now - self._pinned_from), self._max_keep_secs)
        chunks = self._chunks
        while chunks and (chunks[0].end < now - keep or self._kept_secs - chunks[0].secs >= keep):
            self._kept_secs -= chunks.popleft().secs

    def window(self, t0: float, t1: float) -> tuple[np.ndarray, int] | None:
        """The audio from ``t0`` to ``t1`` (``time.monotonic()`` seconds).

        Returns:
            ``(samples, rate)``: mono float32 at 16-bit scale, ``round((t1 - t0) *
            rate)`` of them, silence where nothing was recorded, at the newest
            chunk's rate; or None if nothing of that rate overlaps the window.

        Raises:
            ValueError: ``t0``/``t1`` not finite, ``t1`` not after ``t0``, or a span
                longer than the history keeps.
        """
        if not (np.isfinite(t0) and np.isfinite(t1) and t0 < t1):
            raise ValueError(f"window needs finite t0 < t1 (monotonic seconds), got {t0!r}, {t1!r}")
        if t1 - t0 > self._max_keep_secs + MAX_BACKLOG_SECS:
            raise ValueError(f"a window of {t1 - t0:g} s is longer than the {self._max_keep_secs:g} s kept")
        if not self._chunks:
            return None
        rate = self._chunks[-1].rate
        out = np.zeros(int(round((t1 - t0) * rate)), np.float32)
        found = False
        for c in self._chunks:
            if c.rate != rate or c.end <= t0 or c.start >= t1:
                continue
            samples = c.samples()
            at = int(round((c.start - t0) * rate))
            lo = max(0, -at)
            hi = min(len(samples), len(out) - at)
            if hi > lo:
                out[at + lo : at + hi] = samples[lo:hi]
                found = True
        return (out, rate) if found else None

    def pin(self, since: float | None):
        """Keep everything from ``since`` (``time.monotonic()`` seconds) on, up to
        ``max_keep_secs``, until unpinned (``None``): a held utterance's audio is kept
        until it is decided, and only then."""
        self._pinned_from = since

    def clear(self):
        """Forget everything recorded (and unpin)."""
        self._chunks.clear()
        self._kept_secs = 0.0
        self._pinned_from = None


def band_envelope(samples: np.ndarray, sample_rate: int, top_hz: float) -> np.ndarray:
    """Envelope of ``samples`` (mono, any scale) at ``sample_rate`` Hz.

    Returns:
        Shape ``(frames, bands)``: one row per ``HOP_SECS`` (Hann frames of
        ``FRAME_SECS``), the root of the power in each band of ``BAND_EDGES_HZ``
        that ends at or below ``top_hz``; ``(0, 0)`` for less than one frame.
    """
    hop = int(round(sample_rate * HOP_SECS))
    size = int(round(sample_rate * FRAME_SECS))
    if len(samples) < size:
        return np.zeros((0, 0))
    frames = np.lib.stride_tricks.sliding_window_view(samples, size)[::hop]
    n = len(frames)
    nfft = max(size, int(round(sample_rate / BIN_HZ)))
    frames = frames * np.hanning(size).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, nfft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    edges = [e for e in BAND_EDGES_HZ if e <= top_hz]
    bands = [power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(edges, edges[1:])]
    return np.sqrt(np.stack(bands, axis=1)) if bands else np.zeros((n, 0))


def echo_correlation(heard: AudioHistory, played: AudioHistory, start: float, end: float) -> float | None:
    """How well the played audio explains what was heard from ``start`` to ``end``
    (``time.monotonic()`` seconds): the best Pearson correlation of their envelopes
    (:func:`band_envelope`, over the heard frames with sound) over the delays of
    ``-MAX_LEAD_SECS`` to ``MAX_DELAY_SECS``, in [-1, 1]. The two streams may have
    different rates; bands above the lower Nyquist frequency are left out.

    Returns None when there is nothing to compare: under ``MIN_FRAMES`` frames with
    sound heard, or nothing played in the window (the bot was quiet).

    Raises:
        ValueError: a window :meth:`AudioHistory.window` refuses (not finite, empty,
            or longer than a history keeps).
    """
    mic = heard.window(start, end)
    bot = played.window(start - MAX_DELAY_SECS, end + MAX_LEAD_SECS)
    if mic is None or bot is None:
        return None
    top = min(mic[1], bot[1]) / 2
    m = band_envelope(mic[0], mic[1], top)
    p = band_envelope(bot[0], bot[1], top)
    k = len(m)
    if k < MIN_FRAMES or m.shape[1] == 0 or len(p) < k:
        return None
    # Only the frames with sound in them: the quiet ones before an echo burst starts
    # (or between words) follow nothing and would dilute a real echo's correlation.
    energy = (m * m).sum(axis=1)
    # The floor is never taken below 60 dB under the loudest frame: digital silence
    # (a floor of 0) would otherwise count every frame as sound.
    floor = max(float(np.percentile(energy, 10)), float(energy.max()) * SILENCE_BELOW_PEAK)
    active = energy > floor * ACTIVE_ABOVE_FLOOR
    if active.sum() < MIN_FRAMES:
        return None
    m = m[active]
    m = m - m.mean(axis=0)
    m_norm = float(np.sqrt((m * m).sum()))
    if m_norm == 0.0:
        return None
    # Window o of the played envelope: the echo delayed by MAX_DELAY_SECS - o frames.
    windows = np.lib.stride_tricks.sliding_window_view(p, k, axis=0).transpose(0, 2, 1)[:, active]
    windows = windows - windows.mean(axis=1, keepdims=True)
    norms = np.sqrt((windows * windows).sum(axis=(1, 2)))
    ok = norms > 0
    if not ok.any():
        return None
    corr = (windows[ok] * m).sum(axis=(1, 2)) / (norms[ok] * m_norm)
    return float(corr.max())
