"""Backchannel-aware barge-in for Pipecat.

``BackchannelClassifier`` and ``Verdict`` are pure Python. ``SoftAckInterruptionFilter``
and ``SoftAckUserTurnStartStrategy`` import Pipecat, so they load on first use.
"""

from pipecat_softack.classifier import BackchannelClassifier, Verdict, normalize
from pipecat_softack.config import SoftAckConfigError, SoftAckSettings, load_settings

_PIPECAT_EXPORTS = {
    "SoftAckInterruptionFilter": "pipecat_softack.softack_filter",
    "SoftAckDecision": "pipecat_softack.softack_filter",
    "SoftAckUserTurnStartStrategy": "pipecat_softack.turn_start",
    "HeardSpeechTracker": "pipecat_softack.heard",
    "ResumeProcessor": "pipecat_softack.heard",
    "BotInterruption": "pipecat_softack.heard",
    "BotSpeechRecord": "pipecat_softack.bot_speech",
    "say": "pipecat_softack.speech",
    "speech_frame": "pipecat_softack.speech",
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
    raise AttributeError(f"module 'pipecat_softack' has no attribute {name!r}")
