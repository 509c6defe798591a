"""Live decisions of the soft-ack filter for browser clients, over RTVI.

:func:`attach_decision_panel` hooks a :class:`~pipecat_softack.SoftAckInterruptionFilter`'s
events to RTVI server messages: each decision (a backchannel ignored, an
interruption released, noise dropped, ...) is pushed as an
``RTVIServerMessageFrame``, which Pipecat's RTVI observer sends to the client as a
``server-message``::

    {"label": "rtvi-ai", "type": "server-message",
     "data": {"type": "softack-decision", "kind": "backchannel", "text": "yeah",
              "reason": "utterance ended", "held_secs": 0.84,
              "after_speech_stop_secs": 0.31, "frames": 7, "at": 1718.2}}

The browser client (``client/``) shows them in its "Filter decisions" panel; any
RTVI client receives them with its ``onServerMessage`` callback.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame

from pipecat_softack import SoftAckInterruptionFilter

MESSAGE_TYPE = "softack-decision"
EVENTS = ("on_backchannel", "on_interruption_released", "on_noise_dropped", "on_echo_dropped", "on_speech_discarded")


def decision_message(decision: Any) -> dict[str, Any]:
    """The JSON-able ``server-message`` data of one ``SoftAckDecision``.

    Every plain field of the decision is kept (kind, text, reason, held_secs,
    after_speech_stop_secs, frames, ...); seconds are rounded to milliseconds.
    """
    data: dict[str, Any] = {"type": MESSAGE_TYPE}
    fields = dataclasses.asdict(decision) if dataclasses.is_dataclass(decision) else vars(decision)
    for key, value in fields.items():
        if isinstance(value, float):
            data[key] = round(value, 3)
        elif value is None or isinstance(value, (str, int, bool)):
            data[key] = value
        else:
            data[key] = str(value)
    data["at"] = round(time.time(), 3)
    return data


def attach_decision_panel(softack: SoftAckInterruptionFilter) -> SoftAckInterruptionFilter:
    """Send each decision of ``softack`` to the RTVI client as a server message.

    Call it once when building the pipeline; the filter must be in a pipeline run
    by a ``PipelineWorker`` with RTVI enabled (the default). The messages are pushed
    downstream from the filter as ``RTVIServerMessageFrame`` system frames, in the
    event handlers' own tasks, so they never delay the held frames.

    Returns:
        ``softack``, for chaining.
    """
    for event in EVENTS:
        if event not in getattr(softack, "_event_handlers", {}):
            continue  # an event this version of the filter does not have

        async def send(processor, decision, *_args):
            await processor.push_frame(RTVIServerMessageFrame(data=decision_message(decision)))

        softack.add_event_handler(event, send)
    return softack
