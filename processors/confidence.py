"""How sure the STT was of a transcript, where it says.

Read from the raw service result Pipecat keeps on ``TranscriptionFrame.result`` and
``InterimTranscriptionFrame.result``:

- Deepgram (``pipecat/services/deepgram/stt.py``, ``result=message``): the live
  result's ``channel.alternatives[0].confidence`` (0..1);
- AssemblyAI (``pipecat/services/assemblyai/stt.py``, the turn message as ``result``):
  the mean of ``words[i].confidence`` (0..1);
- any other result with a numeric ``confidence`` attribute or key (an STT of your own).

Pipecat's ``WhisperSTTService`` sets no ``result`` (it drops segments above its
``no_speech_prob`` threshold itself and sends finals only), and the reference bot's
pocketsphinx interims carry no posterior (pocketsphinx computes one only on a finished
lattice); for them, and for every STT that reports nothing, this returns None and the
filter's confidence rule does not apply.
"""

from __future__ import annotations

from numbers import Real
from typing import Any


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _number(value: Any) -> float | None:
    if isinstance(value, Real) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0:
        return float(value)
    return None


def transcript_confidence(frame: Any) -> float | None:
    """The STT's confidence (0..1) in ``frame``'s text, or None if it reports none.

    Args:
        frame: A transcription frame (anything with a ``result`` attribute).

    Returns:
        A number in [0, 1], or None (no result, no confidence in it, or a value outside
        [0, 1], which is then ignored rather than guessed at).
    """
    result = getattr(frame, "result", None)
    if result is None:
        return None
    own = _number(_get(result, "confidence"))
    if own is not None:
        return own
    alternatives = _get(_get(result, "channel"), "alternatives")
    if alternatives:
        found = _number(_get(alternatives[0], "confidence"))
        if found is not None:
            return found
    words = _get(result, "words")
    if words:
        values = [_number(_get(w, "confidence")) for w in words]
        if values and all(v is not None for v in values):
            return sum(values) / len(values)
    return None
