"""Backchannel-aware barge-in for Pipecat.

``BackchannelClassifier`` and ``Verdict`` are pure Python. ``SoftAckInterruptionFilter``
and ``SoftAckUserTurnStartStrategy`` import Pipecat, so they load on first use.
"""

from processors.classifier import BackchannelClassifier, Verdict, normalize
from processors.config import SoftAckConfigError, SoftAckSettings, load_settings

_PIPECAT_EXPORTS = {
    "SoftAckInterruptionFilter": "processors.softack_filter",
    "SoftAckDecision": "processors.softack_filter",
    "SoftAckUserTurnStartStrategy": "processors.turn_start",
    "HeardSpeechTracker": "processors.heard",
    "ResumeProcessor": "processors.heard",
    "BotInterruption": "processors.heard",
    "say": "processors.speech",
    "speech_frame": "processors.speech",
}

__all__ = [
    "BackchannelClassifier",
    "Verdict",
    "normalize",
    "SoftAckConfigError",
    "SoftAckSettings",
    "load_settings",
    *_PIPECAT_EXPORTS,
]


def __getattr__(name: str):
    if name in _PIPECAT_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_PIPECAT_EXPORTS[name]), name)
    raise AttributeError(f"module 'processors' has no attribute {name!r}")
